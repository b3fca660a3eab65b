"""Import of hostile inputs: peak memory and time against the same import of clean files.

Writes, in a temporary folder, the inputs the hardening issue (15) found dangerous: a 4 GiB
file of zeros (sparse on disk), a zip bomb (256 MB of zeros in a 250 KB member), a
header promising a 4 GiB image, a zip with ``..``/absolute/link/duplicate members, a FIFO
and a link loop; and beside them 20 clean synthetic radiographs.  Each import runs in a
fresh process (``resource.getrusage`` peak RSS of that child).  It prints one table:
clean import (the baseline) vs hostile + clean, peak MB, seconds, and whether the goal
(peak < 500 MB, every hostile input reported with a reason) is met.

Usage: python benchmarks/bench_hostile_import.py [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHILD = """
import json, resource, sys, time
from medviewer.services.importer import import_paths
from medviewer.store import Library
start = time.perf_counter()
with Library(sys.argv[1]) as library:
    report = import_paths(library, [sys.argv[2]])
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "children_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "instances": report.instances,
                  "skipped": [[s.path.rsplit("/", 1)[-1], s.reason] for s in report.skipped]}))
"""


def write_clean(folder: Path) -> None:
    from medviewer.synthetic import generate_dataset

    generate_dataset(folder, 20, 7, png=False, ct_series=0)


def write_hostile(folder: Path) -> None:
    import pydicom

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "zeros.dcm", "wb") as handle:
        handle.truncate(4 << 30)
    with zipfile.ZipFile(folder / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.dcm", bytes(256 << 20))
    clean = next((folder.parent / "clean").rglob("*.dcm"))
    ds = pydicom.dcmread(clean)
    ds.Rows = ds.Columns = 46341  # 4 GiB of 16-bit pixels promised
    ds.save_as(folder / "huge.dcm")
    with zipfile.ZipFile(folder / "evil.zip", "w") as zf:
        zf.writestr(zipfile.ZipInfo("../escape.dcm"), clean.read_bytes())
        zf.writestr(zipfile.ZipInfo("/abs.dcm"), clean.read_bytes())
        link = zipfile.ZipInfo("link.dcm")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/passwd")
    os.mkfifo(folder / "pipe.dcm")
    os.symlink("loop.dcm", folder / "loop.dcm")


def run_import(library: Path, folder: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(library), str(folder)],
                         capture_output=True, text=True, check=True, cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="work folder (default: a temporary one)")
    args = parser.parse_args()
    np.random.seed(0)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        write_clean(root / "clean")
        baseline = run_import(root / "a.sqlite", root / "clean")
        write_hostile(root / "hostile")
        hostile = run_import(root / "b.sqlite", root / "hostile")
        both = run_import(root / "c.sqlite", root)
    print(f"{'input':<28}{'peak MB':>10}{'workers MB':>12}{'seconds':>10}{'imported':>10}")
    for name, r in (("20 clean radiographs", baseline), ("hostile inputs only", hostile),
                    ("hostile + clean", both)):
        print(f"{name:<28}{r['peak_mb']:>10.0f}{r['children_peak_mb']:>12.0f}"
              f"{r['seconds']:>10.2f}{r['instances']:>10}")
    print("hostile skips:", ", ".join(f"{n} ({why})" for n, why in hostile["skipped"]))
    peak = max(both["peak_mb"], both["children_peak_mb"])
    met = peak < 500 and both["instances"] == baseline["instances"]
    print(f"goal: peak < 500 MB and the clean files still imported -> peak {peak:.0f} MB, "
          f"ratio to clean {peak / max(1.0, baseline['peak_mb']):.2f}x: "
          f"{'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
