"""``medviewer demo``: build the demo library (once) and open it."""

from __future__ import annotations

from medviewer.cli.output import GuiRequest, emit


def register(subparsers) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser("demo", help="build the demo library and open it")
    parser.add_argument("--no-gui", action="store_true", help="only build the library")
    parser.add_argument("--dir", help="folder for the demo (default: your MedViewer data folder)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args) -> int:
    """Build the demo if needed, then open the viewer on it unless ``--no-gui``."""
    from pathlib import Path

    from medviewer.services.demo import build_demo
    from medviewer.store import Library

    library = build_demo(Path(args.dir) if args.dir else None)
    if args.no_gui:
        with Library(library) as lib:
            counts = lib.counts()
        emit(args.json, {"library": str(library), **counts},
             f"Demo library ready: {library} ({counts['cases']} cases)")
        return 0
    return GuiRequest(library=str(library), demo_tour=True)
