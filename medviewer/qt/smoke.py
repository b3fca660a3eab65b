"""The first-run smoke test: a fresh user, the welcome page, the demo, one explained case.

``medviewer smoke-test`` (and the packaged app's smoke check) runs exactly what a
new user does: the window opens on the first-run page with no library, "Open the
demo library" is chosen, the demo is built and opened, and the demo tour
classifies, searches and explains one case.  It exits 0 only if every step
finished, and prints the timings.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from time import perf_counter


def run_smoke_test(workdir: str | None = None, timeout: float = 300.0, as_json: bool = False,
                   screenshot: str | None = None) -> int:
    """Run the first-run path headless; return 0 when it completed.

    Parameters
    ----------
    workdir : str, optional
        Folder for the throw-away data and config folders (a temporary one by default),
        so the user's own settings and libraries are never touched.
    timeout : float
        Seconds before the test gives up and fails.
    as_json : bool
        Print the result as JSON instead of lines of text.
    screenshot : str, optional
        Save the window as a PNG at the end (to look at what a new user sees).
    """
    began = perf_counter()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="medviewer-smoke-"))
    for name, sub in (("MEDVIEWER_DATA_DIR", "data"), ("MEDVIEWER_CONFIG_DIR", "config"),
                      ("MEDVIEWER_LOG_DIR", "logs")):
        os.environ[name] = str(root / sub)
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from medviewer.qt.app import create_window, forward_qt_messages
    from medviewer.services.logs import configure_logging

    configure_logging()
    forward_qt_messages()
    window = create_window(None)
    window.show()
    app = QApplication.instance()
    outcome: dict = {"ok": False, "workdir": str(root)}
    outcome["window_s"] = round(perf_counter() - began, 3)
    outcome["welcome_shown"] = window.central.currentWidget() is window.welcome
    clicked = perf_counter()

    def finished(result) -> None:
        outcome.update(ok=bool(result.probabilities and result.similar and result.overlay),
                       demo_ready_s=round(perf_counter() - clicked, 3), steps={
                           k: round(v, 3) for k, v in result.steps.items()},
                       provider=result.provider, similar=result.similar, overlay=result.overlay,
                       probabilities={k: round(v, 3) for k, v in result.probabilities.items()})
        app.exit(0)

    def failed(why: str) -> None:
        outcome["error"] = why
        app.exit(1)

    def start_tour_watch() -> None:
        # The tour exists once the demo library is built and opened.
        if window.demo_tour is None:
            QTimer.singleShot(50, start_tour_watch)
            return
        window.demo_tour.sig_finished.connect(finished)
        window.demo_tour.sig_failed.connect(failed)

    QTimer.singleShot(0, window.welcome.buttons["demo"].click)
    QTimer.singleShot(0, start_tour_watch)
    QTimer.singleShot(int(timeout * 1000), lambda: failed(f"timed out after {timeout:.0f} s"))
    app.exec()
    if screenshot:
        # QPixmap.save only returns False (a missing folder, an unknown suffix): say so.
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        saved = window.grab().save(screenshot)
        outcome["screenshot"] = screenshot if saved else f"could not be saved to {screenshot}"
        outcome["ok"] = outcome["ok"] and saved
    window.close()
    outcome["ok"] = outcome["ok"] and outcome["welcome_shown"]
    outcome["total_s"] = round(perf_counter() - began, 3)
    if as_json:
        json.dump(outcome, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for key, value in outcome.items():
            sys.stdout.write(f"{key}: {value}\n")
    return 0 if outcome["ok"] else 1
