"""How well the free-text identity cleaner removes planted identity and keeps the diagnosis.

Seeded synthetic radiographs (real DICOM headers with names, IDs, dates and a private
block that also holds the finding labels) get teaching notes with planted identity
next to the diagnosis: the patient's name and ID from the header, a titled doctor
("Dr Quintero"), a labelled MRN, a date, a telephone number, an e-mail address and, to
show the limit honestly, a bare first name found nowhere ("saw Lucia").  Two cleaners
read the same headers:

- ``ours``: :class:`medviewer.deid.free_text.FreeTextCleaner` (teaching export, quiz);
- ``baseline``: :class:`medviewer.deid.clean.TextCleaner`, the DICOM descriptor cleaner
  the teaching export used before.

Printed per kind: the share of planted values removed, with a 95% Wilson interval, and
the share of notes whose diagnosis word survives.

Run: ``.venv/bin/python benchmarks/eval_free_text.py [--cases 60] [--seed 3]``
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
from pathlib import Path

import pydicom

DOCTORS = ["Quintero", "Okafor", "Lindqvist", "Haddad", "Moreau", "Takahashi"]
BARE = ["Lucia", "Mateo", "Ingrid", "Tomasz"]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Return the 95% Wilson score interval of k successes in n."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def main() -> None:
    from medviewer.deid.clean import TextCleaner
    from medviewer.deid.free_text import FreeTextCleaner
    from medviewer.synthetic import generate_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="eval-free-text-"))
    generate_dataset(root, args.cases, args.seed, size=64, ct_series=0, png=False)
    files = sorted((root / "dicom").rglob("*.dcm"))
    kinds = ("patient name", "patient ID", "titled doctor", "labelled MRN", "date", "phone",
             "e-mail", "bare first name")
    removed = {name: {k: 0 for k in kinds} for name in ("ours", "baseline")}
    kept = {"ours": 0, "baseline": 0}
    notes = 0
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        labels = [v for v in str(ds.get((0x0009, 0x1010), "") or "").split("|") if v]
        diagnosis = labels[0] if labels else "Cardiomegaly"
        family, given = str(ds.PatientName).split("^")[:2]
        planted = {"patient name": f"{given.title()} {family.title()}",
                   "patient ID": str(ds.PatientID),
                   "titled doctor": rng.choice(DOCTORS),
                   "labelled MRN": str(rng.randrange(1_000_000, 9_999_999)),
                   "date": f"20{rng.randrange(10, 24)}-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}",
                   "phone": f"555-{rng.randrange(100, 999)}-{rng.randrange(1000, 9999)}",
                   "e-mail": f"{given.lower()}.{family.lower()}@example.org",
                   "bare first name": rng.choice(BARE)}
        note = (f"{planted['patient name']} ({planted['patient ID']}), MRN "
                f"{planted['labelled MRN']}: {diagnosis}. Seen {planted['date']} by Dr "
                f"{planted['titled doctor']}; call {planted['phone']} or {planted['e-mail']}. "
                f"Discussed with {planted['bare first name']}.")
        ours, baseline = FreeTextCleaner(keep=labels), TextCleaner()
        ours.collect(ds)
        baseline.collect(ds)
        outputs = {"ours": ours.clean(note).text, "baseline": baseline.clean(note)}
        notes += 1
        for name, text in outputs.items():
            low = text.lower()
            for kind, value in planted.items():
                parts = value.lower().split() if kind == "patient name" else [value.lower()]
                removed[name][kind] += all(p not in low for p in parts)
            kept[name] += diagnosis.lower() in low
    print(f"{notes} notes ({args.cases} synthetic cases, seed {args.seed})")
    print(f"{'':26s} {'ours':>22s} {'baseline':>22s}")
    for kind in kinds:
        cells = []
        for name in ("ours", "baseline"):
            k = removed[name][kind]
            lo, hi = wilson(k, notes)
            cells.append(f"{k / notes:6.1%} [{lo:.2f}, {hi:.2f}]")
        print(f"{kind + ' removed':26s} {cells[0]:>22s} {cells[1]:>22s}")
    cells = []
    for name in ("ours", "baseline"):
        lo, hi = wilson(kept[name], notes)
        cells.append(f"{kept[name] / notes:6.1%} [{lo:.2f}, {hi:.2f}]")
    print(f"{'diagnosis kept':26s} {cells[0]:>22s} {cells[1]:>22s}")


if __name__ == "__main__":
    main()
