"""Import every module of netsched's packages (pyproject.toml's packages.find), one by one.

Run under ``tests.packaging.absent``: shows that no module needs what the images leave out.
Prints each module imported; a module whose import fails ends the run with its error.
"""

from __future__ import annotations

import importlib
import pkgutil
import tomllib
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    includes = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]["find"]["include"]
    for package_name in sorted(name.rstrip("*") for name in includes):
        package = importlib.import_module(package_name)
        print(package_name, flush=True)
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if module.name.rpartition(".")[2] != "__main__":  # that one would run a command
                importlib.import_module(module.name)
                print(module.name, flush=True)
