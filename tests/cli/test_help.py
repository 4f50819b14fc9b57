"""Help texts read as plain text: no reStructuredText markup from docstrings leaks into them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from netsched.cli import build_parser
from node_reporter.main import build_parser as reporter_parser


def help_texts() -> dict[str, str]:
    parser = build_parser()
    texts = {"netsched": parser.format_help()}
    (subcommands,) = (a for a in parser._actions if a.dest == "command")
    for name, subparser in subcommands.choices.items():
        texts[f"netsched {name}"] = subparser.format_help()
    texts["netsched reporter"] = reporter_parser().format_help()
    for verb in ("daemon", "install"):
        texts[f"netsched-cni {verb}"] = subprocess.run(
            [sys.executable, "-m", "cni.main", verb, "--help"],
            capture_output=True, text=True, check=True,
        ).stdout
    return texts


@pytest.mark.parametrize("command, text", sorted(help_texts().items()))
def test_help_is_plain_text(command: str, text: str) -> None:
    assert text.strip(), command
    assert "`" not in text, f"{command} --help:\n{text}"
