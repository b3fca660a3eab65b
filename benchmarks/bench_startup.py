"""Cold start: seconds from process start to the first shown main window.

Each run starts a fresh Python process that imports MedViewer, builds the
main window on an (empty) library and reports when the window has been shown
and painted.  The baseline is the same for a bare PySide6 ``QMainWindow``:
the floor any Qt application pays.  Target (issue 2): <= 1.5 s.

Usage: python benchmarks/bench_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

PROBE_MEDVIEWER = """
import sys, time
from PySide6.QtCore import QTimer
from medviewer.qt.app import create_window
from PySide6.QtWidgets import QApplication
window = create_window(sys.argv[1])
window.show()
def done():
    print(time.time(), flush=True)
    QApplication.instance().quit()
QTimer.singleShot(0, done)
QApplication.instance().exec()
"""

PROBE_BARE = """
import sys, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv[:1])
window = QMainWindow()
window.resize(1400, 900)
window.show()
def done():
    print(time.time(), flush=True)
    app.quit()
QTimer.singleShot(0, done)
app.exec()
"""


def time_probe(code: str, library: str, env: dict) -> float:
    """Return seconds from launching ``code`` in a new interpreter to its window shown."""
    start = time.time()
    out = subprocess.run([sys.executable, "-c", code, library], capture_output=True, text=True,
                         env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1]) - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="mv-bench-start-")
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
               MEDVIEWER_CONFIG_DIR=os.path.join(tmp, "config"),
               MEDVIEWER_DATA_DIR=os.path.join(tmp, "data"))
    library = os.path.join(tmp, "library.sqlite")
    time_probe(PROBE_MEDVIEWER, library, env)  # warm the file cache once; cold = new process
    ours = [time_probe(PROBE_MEDVIEWER, library, env) for _ in range(args.runs)]
    bare = [time_probe(PROBE_BARE, library, env) for _ in range(args.runs)]
    m, b = float(np.median(ours)), float(np.median(bare))
    print(f"MedViewer main window : median {m:.3f} s  (runs: {', '.join(f'{x:.2f}' for x in ours)})")
    print(f"bare PySide6 window   : median {b:.3f} s")
    print(f"ratio MedViewer / bare: {m / b:.2f}x   target <= 1.5 s: "
          f"{'met' if m <= 1.5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
