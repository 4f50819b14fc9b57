"""Print netsched's requirements for some extras, one a line, from ``pyproject.toml`` alone.

``deploy/Dockerfile`` installs them before it copies the source, so that a change to the
source reuses the dependency layers. Usage: ``python3 requirements.py pyproject.toml node``.
"""

import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    project = tomllib.load(handle)["project"]
extras = project["optional-dependencies"]
for requirement in [*project["dependencies"], *(r for extra in sys.argv[2:] for r in extras[extra])]:
    print(requirement)
