"""Entry point of the ``medviewer`` command: the CLI, or the GUI when asked for.

This module sits above both :mod:`medviewer.cli` and :mod:`medviewer.qt`; it
is the only place that may reach both.  Qt is imported only when the GUI opens.
"""

from __future__ import annotations

import sys

from medviewer.cli.main import main as cli_main
from medviewer.cli.output import GuiRequest


def main(argv: list[str] | None = None) -> int:
    """Run ``medviewer``; return the process exit code."""
    result = cli_main(argv)
    if isinstance(result, GuiRequest):
        from medviewer.gui_environment import gui_problem

        # Before Qt: a missing library or display would abort inside QApplication.
        problem = gui_problem()
        if problem:
            sys.stderr.write(f"medviewer: error: {problem}\n")
            return 2
        from medviewer.qt.app import run_app, run_reading

        if result.smoke_test is not None:
            from medviewer.qt.smoke import run_smoke_test

            return run_smoke_test(**result.smoke_test)
        if result.study or result.package:
            return run_reading(library=result.library, study=result.study, reader=result.reader,
                               package=result.package)
        return run_app(library=result.library, demo_tour=result.demo_tour,
                       demo_started=result.demo_started)
    return result


if __name__ == "__main__":
    sys.exit(main())
