"""What deploy/Dockerfile does to an image's environment once pip has filled it.

``prune``: remove the official kubernetes client's asyncio half.

The ``kubernetes`` distribution carries two generated clients: the synchronous one that
netsched uses (``kubernetes.client``, over urllib3) and an asyncio one (``kubernetes.aio``,
over aiohttp), 41 MB of source, 63 MB with its bytecode, and it requires aiohttp and
aiohttp-retry for the second. Nothing in the synchronous package imports ``kubernetes.aio``
or aiohttp, and nothing of netsched does (tests/packaging runs every part with them made
unimportable). So deploy/Dockerfile, after pip has installed the requirements:

- runs ``prune`` with the environment's own python: it deletes the ``kubernetes/aio``
  directory and its lines in the distribution's RECORD (the record stays true to what is
  installed), and prints the distributions that nothing installed needs once the client's
  asyncio requirements are set aside (aiohttp and what only aiohttp needs);
- ``pip uninstall``-s those.

``check``: import the top-level packages of every distribution the requirements name, so
that a build whose environment lost something netsched imports (by the pruning, or by
stripping the compiled extensions' debug symbols) fails there and not in a cluster.

Usage, with the environment's own python: ``python environment.py prune|check requirements.txt``.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import re
import shutil
import sys
from pathlib import Path

CLIENT = "kubernetes"
ASYNCIO_HALF = "kubernetes/aio/"
ASYNCIO_REQUIREMENTS = {"aiohttp", "aiohttp-retry"}
"""What the client requires for ``kubernetes.aio`` alone (its generated setup.py: aiohttp)."""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(requirement: str) -> tuple[str, set[str], str | None]:
    """A requirement's distribution, the extras it asks for, and the extra its marker is
    for (``...; extra == "aiohttp"``), if any."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", requirement)
    if match is None:
        raise SystemExit(f"environment.py: cannot read requirement {requirement!r}")
    extras = {canonical(e) for e in (match.group(2) or "").split(",") if e.strip()}
    for_extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", requirement.partition(";")[2])
    return canonical(match.group(1)), extras, canonical(for_extra.group(1)) if for_extra else None


def remove_asyncio_half() -> None:
    client = metadata.distribution(CLIENT)
    shutil.rmtree(Path(str(client.locate_file(ASYNCIO_HALF))))
    (record,) = (f for f in client.files or () if f.name == "RECORD" and f.parent.suffix == ".dist-info")
    record_path = Path(str(client.locate_file(record)))
    lines = record_path.read_text().splitlines(keepends=True)
    record_path.write_text("".join(line for line in lines if not line.startswith(ASYNCIO_HALF)))


def unneeded(roots: list[str]) -> list[str]:
    """Installed distributions that no root needs, directly or not, once the client's
    asyncio requirements are set aside. A requirement for an extra counts when that extra
    was asked for; every other one counts whatever its marker says, which can only keep a
    distribution, never drop a needed one."""
    installed = {canonical(d.metadata["Name"]): d for d in metadata.distributions()}
    needed: dict[str, set[str]] = {}
    pending = [parse(root)[:2] for root in roots]
    while pending:
        name, extras = pending.pop()
        if name not in installed or (name in needed and extras <= needed[name]):
            continue
        needed[name] = needed.get(name, set()) | extras
        for requirement in installed[name].requires or ():
            dependency, wanted, for_extra = parse(requirement)
            if for_extra is not None and for_extra not in needed[name]:
                continue
            if not (name == CLIENT and dependency in ASYNCIO_REQUIREMENTS):
                pending.append((dependency, wanted))
    return sorted(set(installed) - set(needed))


def check(roots: list[str]) -> None:
    providers: dict[str, list[str]] = {}
    for package, distributions in metadata.packages_distributions().items():
        for distribution in distributions:
            providers.setdefault(canonical(distribution), []).append(package)
    for root in roots:
        name = parse(root)[0]
        packages = [p for p in providers.get(name, []) if not p.startswith("_")]
        if not packages:
            raise SystemExit(f"environment.py: {name} provides no package to import")
        for package in packages:
            importlib.import_module(package)


if __name__ == "__main__":
    step, requirements = sys.argv[1:]
    lines = Path(requirements).read_text().splitlines()
    roots = [line for line in lines if line.strip() and not line.startswith("#")]
    if step == "prune":
        remove_asyncio_half()
        print("\n".join(unneeded(roots)))
    elif step == "check":
        check(roots)
    else:
        raise SystemExit(f"environment.py: unknown step {step!r} (prune or check)")
