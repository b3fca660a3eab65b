"""The ``medviewer`` command: no arguments opens the GUI, subcommands run headless.

Each command group lives in its own module under :mod:`medviewer.cli` and
exposes ``register(subparsers)``; the parser it adds sets ``func`` to a
callable taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from medviewer import __version__
from medviewer.errors import MedViewerError

from medviewer.cli.output import fail

# Modules that contribute subcommands, in the order they appear in --help.
COMMAND_MODULES = [
    "medviewer.cli.synthetic_cmd",
]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="medviewer",
        description="Radiology study tool. Without a command, opens the viewer.",
    )
    parser.add_argument("--version", action="version", version=f"medviewer {__version__}")
    parser.add_argument("--library", help="case library (SQLite file) to open in the GUI")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from medviewer.cli.gui_launch import launch_gui

        return launch_gui(library=args.library)
    try:
        return int(args.func(args) or 0)
    except MedViewerError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
