"""Scrolling speed: milliseconds per displayed frame through a 300-slice 512x512 CT.

Runs the real viewer widget offscreen with a window applied (CT mediastinum),
steps through every slice once the series is cached, and for each step forces a
synchronous repaint of the canvas and processes pending events (corner text),
so each sample is state change + levels + LUT + paint of everything that changed.  The baseline is pyqtgraph's own ``ImageView`` showing the same
volume with the same levels (the peer widget a plain pyqtgraph tool would use).
Target (issue 2): p99 <= 16.7 ms.

Usage: python benchmarks/bench_scroll.py [--slices 300] [--size 512]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402


def percentiles(samples: list[float]) -> tuple[float, float]:
    """Return p50 and p99 in milliseconds."""
    arr = np.asarray(samples) * 1000.0
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mv-bench-scroll-"))
    os.environ.setdefault("MEDVIEWER_CONFIG_DIR", str(tmp / "config"))
    os.environ.setdefault("MEDVIEWER_DATA_DIR", str(tmp / "data"))

    from PySide6.QtWidgets import QApplication

    from medviewer.display.windowing import PRESETS
    from medviewer.qt.app import create_window
    from medviewer.services.importer import import_paths
    from medviewer.store import Library
    from medviewer.synthetic import generate_dataset

    t0 = time.perf_counter()
    generate_dataset(tmp / "ct", 1, 11, ct_series=1, ct_size=args.size, ct_slices=args.slices,
                     png=False, size=512)
    library_path = tmp / "lib.sqlite"
    with Library(library_path) as library:
        import_paths(library, [tmp / "ct" / "dicom"])
        series = max(library.series(), key=lambda s: s.instances)
    print(f"prepared {series.instances} slices of {args.size}x{args.size} in "
          f"{time.perf_counter() - t0:.1f} s")

    window = create_window(str(library_path))
    window.resize(1400, 900)
    window.show()
    app = QApplication.instance()
    viewport = window.viewports[0]
    window.open_series(series.id)
    deadline = time.time() + 300
    while viewport._prefetch.busy and time.time() < deadline:
        app.processEvents()
        time.sleep(0.01)
    viewport.state.set_window(PRESETS["mediastinum"])
    viewport.state.set_index(0)
    app.processEvents()
    canvas = viewport.view.viewport()
    ours = []
    for index in range(1, len(viewport.state.planes)):
        start = time.perf_counter()
        viewport.state.set_index(index)
        canvas.repaint()
        app.processEvents()  # corner text and anything else queued for this frame
        ours.append(time.perf_counter() - start)
    shown = viewport.state.index

    import pyqtgraph as pg

    from medviewer.display.windowing import linear_levels

    volume = np.stack([window.cache.peek(p.instance.location).frames[0]
                       for p in viewport.state.planes])
    peer = pg.ImageView()
    peer.resize(1000, 900)
    peer.show()
    peer.setImage(volume, autoLevels=False, levels=linear_levels(PRESETS["mediastinum"]),
                  autoHistogramRange=False)
    app.processEvents()
    peer_canvas = peer.ui.graphicsView.viewport()
    baseline = []
    for index in range(1, volume.shape[0]):
        start = time.perf_counter()
        peer.setCurrentIndex(index)
        peer_canvas.repaint()
        app.processEvents()
        baseline.append(time.perf_counter() - start)

    p50, p99 = percentiles(ours)
    b50, b99 = percentiles(baseline)
    print(f"MedViewer viewport : p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  ({len(ours)} frames, "
          f"last shown {shown + 1})")
    print(f"pyqtgraph ImageView: p50 {b50:6.2f} ms  p99 {b99:6.2f} ms")
    print(f"ratio (ImageView / ours), p99: {b99 / p99:.2f}x   target p99 <= 16.7 ms: "
          f"{'met' if p99 <= 16.7 else 'NOT met'}")
    window.close()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Skip interpreter teardown: PySide6 and pyqtgraph objects destroyed in GC order can
    # crash at exit, which says nothing about the measurement.
    os._exit(code)
