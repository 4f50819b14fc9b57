"""Run a netsched entry point as if some distributions were not installed.

``python -m tests.packaging.absent numpy,fastapi netsched.cli serve ...`` makes
every import of those packages (or subpackages: ``kubernetes.aio``) fail as a missing
distribution does (``ModuleNotFoundError`` naming it), then runs the module as
``__main__``. It shows what an image built with fewer extras can run, without building one.
"""

from __future__ import annotations

import importlib.abc
import runpy
import sys


class Absent(importlib.abc.MetaPathFinder):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        """``names`` may hold a package (``numpy``) or a subpackage (``kubernetes.aio``)."""
        if any(name == absent or name.startswith(absent + ".") for absent in self.names):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


if __name__ == "__main__":
    absent, module, *arguments = sys.argv[1:]
    sys.meta_path.insert(0, Absent(set(absent.split(","))))
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
