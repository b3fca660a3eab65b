"""The ``medviewer`` command line: subcommands run headless.

With no subcommand (or ``demo`` without ``--no-gui``) the parser returns a
:class:`GuiRequest`; :mod:`medviewer.launcher` then opens the GUI, so this
package never imports Qt.

Each command group lives in its own module under :mod:`medviewer.cli` and
exposes ``register(subparsers)``; the parser it adds sets ``func`` to a
callable taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
from medviewer import __version__
from medviewer.errors import MedViewerError

from medviewer.cli.output import GuiRequest, fail

# Modules that contribute subcommands, in the order they appear in --help.
COMMAND_MODULES = [
    "medviewer.cli.import_cmd",
    "medviewer.cli.info_cmd",
    "medviewer.cli.render_cmd",
    "medviewer.cli.synthetic_cmd",
    "medviewer.cli.demo_cmd",
    "medviewer.cli.study_cmd",
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


def main(argv: list[str] | None = None) -> int | GuiRequest:
    """Run the command line; return the exit code, or a request to open the GUI."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        return GuiRequest(library=args.library)
    try:
        result = args.func(args)
        return result if isinstance(result, GuiRequest) else int(result or 0)
    except MedViewerError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted", 130)


