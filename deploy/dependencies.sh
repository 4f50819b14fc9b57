#!/bin/sh
# Fills an image's environment, /opt/netsched, with netsched's dependencies for the extras
# named (deploy/Dockerfile's dependency stages, run where pyproject.toml and the deploy/
# scripts were copied). Each step below is measured in docs/deploy.md, "Sizes".
set -eu
python=/opt/netsched/bin/python
python3 requirements.py pyproject.toml "$@" > requirements.txt
# With the bytecode pip writes: a read-only root filesystem lets Python write none, and
# compiling the client's modules at every start costs the CNI daemon 3 s of CPU more.
pip3 --python "$python" install --no-cache-dir -r requirements.txt
# The kubernetes client's asyncio half and what only it needs (environment.py).
"$python" environment.py prune requirements.txt > unneeded.txt
if [ -s unneeded.txt ]; then pip3 --python "$python" uninstall --yes -r unneeded.txt; fi
# The debug symbols of the compiled extensions: never loaded (uvloop's alone are 14 MB).
# Not those of a package that bundles libraries (auditwheel's numpy.libs): patchelf
# rewrote them and what links them, and strip can break such files (numpy then fails
# with "ELF load command address/offset not page-aligned").
site=$("$python" -c 'import sysconfig; print(sysconfig.get_path("platlib"))')
find "$site" -type f \( -name '*.so' -o -name '*.so.*' \) | while read -r library; do
    package=${library#"$site"/}
    package=${package%%/*}
    package=${package%.libs}
    [ -d "$site/$package.libs" ] || strip --strip-unneeded "$library"
done
# Everything the requirements name still imports, its compiled extensions loaded.
"$python" environment.py check requirements.txt
