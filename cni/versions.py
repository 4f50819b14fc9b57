"""The CNI spec versions netsched-cni speaks, and its answer to ``CNI_COMMAND=VERSION``.

Kept apart from the pydantic models so that VERSION, which a runtime calls to probe a
plugin, imports nothing but this module.
"""

from __future__ import annotations

SPEC_VERSION = "1.1.0"
SUPPORTED_VERSIONS = ("0.3.1", "0.4.0", "1.0.0", "1.1.0")


def version_report(requested: str | None) -> dict[str, object]:
    """The VERSION result: in the requested version when supported, else the newest."""
    version = requested if requested in SUPPORTED_VERSIONS else SPEC_VERSION
    return {"cniVersion": version, "supportedVersions": list(SUPPORTED_VERSIONS)}
