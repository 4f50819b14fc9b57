"""Subcommands of ``netsched``."""
