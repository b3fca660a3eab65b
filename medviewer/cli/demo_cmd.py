"""``medviewer demo``: build the demo library (once) and open it."""

from __future__ import annotations

import sys

from medviewer.cli.output import GuiRequest, emit, fail
from medviewer.tasks import TaskState


def register(subparsers) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser("demo", help="build the demo library and open it")
    parser.add_argument("--no-gui", action="store_true", help="only build the library")
    parser.add_argument("--dir", help="folder for the demo (default: your MedViewer data folder)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


class TerminalProgress(TaskState):
    """A task state that prints each new step of a long build on stderr, with its share done.

    The demo build takes 10-20 s before any window exists; a line per step says it runs.
    """

    def __init__(self, stream=None) -> None:
        super().__init__()
        self.stream = stream
        self._last = ""

    def set_progress(self, fraction: float, status: str | None = None) -> None:
        """Record progress and print the status when it changes."""
        super().set_progress(fraction, status)
        if self.status and self.status != self._last:
            self._last = self.status
            stream = self.stream or sys.stderr
            stream.write(f"medviewer demo: {self.status} ({self.progress:.0%})\n")
            stream.flush()


def run(args) -> int:
    """Build the demo if needed, then open the viewer on it unless ``--no-gui``."""
    from pathlib import Path
    from time import perf_counter

    from medviewer.services.demo import build_demo
    from medviewer.store import Library

    started = perf_counter()
    if not args.no_gui:
        from medviewer.gui_environment import gui_problem

        problem = gui_problem()  # say it before a 20 s build, not after
        if problem:
            return fail(problem)
    library = build_demo(Path(args.dir) if args.dir else None, state=TerminalProgress())
    if args.no_gui:
        with Library(library) as lib:
            counts = lib.counts()
        emit(args.json, {"library": str(library), **counts},
             f"Demo library ready: {library} ({counts['cases']} cases)")
        return 0
    return GuiRequest(library=str(library), demo_tour=True, demo_started=started)
