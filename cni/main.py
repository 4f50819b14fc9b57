"""``netsched-cni``: the executable a container runtime calls.

Reads the command from ``CNI_COMMAND`` and the config from stdin, prints the result (or
the spec's error JSON) on stdout and exits non-zero on error. Imports stay minimal
here: every ADD pays for them.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import traceback

from cni.errors import CNIError, ErrorCode
from cni.fastimport import skip_package_inits
from cni.versions import SPEC_VERSION, version_report


def _requested_version(raw: bytes) -> str | None:
    try:
        value = json.loads(raw or b"{}").get("cniVersion")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def run(environ: dict[str, str] | os._Environ, stdin: bytes) -> tuple[int, str]:
    """One invocation: (exit code, stdout). Separate from ``main`` so tests can call it."""
    version = _requested_version(stdin) or SPEC_VERSION
    try:
        command = environ.get("CNI_COMMAND", "")
        if command == "VERSION":
            return 0, json.dumps(version_report(_requested_version(stdin)))
        from cni import commands
        from cni.config import Environment, parse_netconf

        env = Environment.from_environ(environ)
        conf = parse_netconf(stdin)
        version = conf.cni_version
        if env.command == "ADD":
            return 0, json.dumps(commands.cmd_add(env, conf))
        if env.command == "DEL":
            commands.cmd_del(env, conf)
        elif env.command == "CHECK":
            commands.cmd_check(env, conf)
        elif env.command == "STATUS":
            commands.cmd_status(conf)
        elif env.command == "GC":
            commands.cmd_gc(conf)
        else:
            raise CNIError(ErrorCode.INVALID_ENVIRONMENT,
                           f"CNI_COMMAND: {env.command!r} is not a CNI verb")
        return 0, ""
    except CNIError as exc:
        return 1, exc.to_json(version)
    except Exception as exc:  # noqa: BLE001 - never a traceback instead of the spec's JSON
        traceback.print_exc(file=sys.stderr)
        error = CNIError(ErrorCode.IO_FAILURE, f"internal error: {type(exc).__name__}: {exc}")
        return 1, error.to_json(version)


def main() -> int:
    # One short-lived run: the cyclic collector would only rescan the import-time objects
    # of pydantic and pyroute2 (~10 ms an ADD); the process exit frees everything.
    gc.disable()
    skip_package_inits()
    code, output = run(os.environ, sys.stdin.buffer.read())
    if output:
        sys.stdout.write(output + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
