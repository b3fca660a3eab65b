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
import os
import sys

from medviewer import __version__
from medviewer.cli.output import GuiRequest, fail
from medviewer.errors import MedViewerError

# Modules that contribute subcommands, in the order they appear in --help.
COMMAND_MODULES = [
    "medviewer.cli.import_cmd",
    "medviewer.cli.info_cmd",
    "medviewer.cli.render_cmd",
    "medviewer.cli.synthetic_cmd",
    "medviewer.cli.demo_cmd",
    "medviewer.cli.model_cmd",
    "medviewer.cli.classify_cmd",
    "medviewer.cli.index_cmd",
    "medviewer.cli.search_cmd",
    "medviewer.cli.report_cmd",
    "medviewer.cli.eval_cmd",
    "medviewer.cli.explain_cmd",
    "medviewer.cli.study_cmd",
    "medviewer.cli.deid_cmd",
    "medviewer.cli.teach_cmd",
    "medviewer.cli.measurements_cmd",
    "medviewer.cli.pacs_cmd",
    "medviewer.cli.smoke_cmd",
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


def _join_negative_values(argv: list[str], options=("--window",)) -> list[str]:
    """Turn ``--window -600,1500`` into ``--window=-600,1500`` (argparse reads "-600,..." as an option)."""
    out = []
    for arg in argv:
        if out and out[-1] in options and arg.startswith("-") and arg[1:2].isdigit():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int | GuiRequest:
    """Run the command line; return the exit code, or a request to open the GUI."""
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        return GuiRequest(library=args.library)
    try:
        result = args.func(args)
        return result if isinstance(result, GuiRequest) else int(result or 0)
    except MedViewerError as exc:
        return fail(str(exc))
    except FileNotFoundError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return fail(f"{where}{exc.strerror or 'the file cannot be read or written'}")
    except MemoryError:
        return fail("not enough memory for this input (is it far larger than an image?)")
    except RecursionError:
        return fail("the input is nested too deeply to be read (a damaged or hostile file)")
    except Exception as exc:
        if os.environ.get("MEDVIEWER_DEBUG"):
            raise
        return fail(f"unexpected problem ({type(exc).__name__}: {exc}); rerun with "
                    "MEDVIEWER_DEBUG=1 for details and report it")


