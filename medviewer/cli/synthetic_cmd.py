"""``medviewer synthetic``: write a seeded synthetic dataset of chest studies."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from medviewer.cli.output import emit


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synthetic`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "synthetic",
        help="write seeded synthetic radiographs and CT series as DICOM",
        description=(
            "Write chest radiographs (DX/CR with Cardiomegaly, Emphysema and Opacity "
            "findings, lesion masks, 8-bit PNGs and a ChestX-ray14-style table) and CT "
            "series as real DICOM with fake identities. The same seed gives the same files."
        ),
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="folder to write into")
    parser.add_argument("--cases", type=int, default=20, help="number of radiographs (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", type=int, default=512,
                        help="radiograph width and height in pixels (default 512)")
    parser.add_argument("--ct-series", type=int, default=None, metavar="M",
                        help="number of CT series (default: max(1, cases // 10))")
    parser.add_argument("--ct-size", type=int, default=256, help="CT matrix size (default 256)")
    parser.add_argument("--ct-slices", type=int, default=48,
                        help="slices per CT series (default 48)")
    parser.add_argument("--ct-defects", action="store_true",
                        help="add a CT series with a missing slice and one with uneven spacing")
    parser.add_argument("--no-png", dest="png", action="store_false",
                        help="skip the 8-bit PNGs and Data_Entry_2017.csv")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the dataset described by ``args`` and print a summary; return 0."""
    # Imported here so `medviewer --help` does not pay for numpy and pydicom.
    from medviewer.synthetic import NO_FINDING, generate_dataset

    manifest = generate_dataset(
        args.out_dir,
        args.cases,
        args.seed,
        size=args.size,
        ct_series=args.ct_series,
        png=args.png,
        ct_size=args.ct_size,
        ct_slices=args.ct_slices,
        ct_geometry_defects=args.ct_defects,
    )
    radiographs = manifest.radiographs
    series = manifest.ct_series
    findings = Counter(label for r in radiographs for label in r.labels)
    findings[NO_FINDING] = sum(1 for r in radiographs if not r.labels)
    payload = {
        "out_dir": str(manifest.out_dir),
        "seed": manifest.seed,
        "radiographs": len(radiographs),
        "ct_series": len(series),
        "ct_slices": sum(len(s) for s in series.values()),
        "patients": len({r.patient_id for r in manifest.records}),
        "findings": dict(sorted(findings.items())),
        "labels_csv": str(manifest.labels_csv),
        "data_entry_csv": None if manifest.data_entry_csv is None else str(manifest.data_entry_csv),
    }
    counts = ", ".join(f"{name} {n}" for name, n in payload["findings"].items())
    text = (
        f"wrote {payload['radiographs']} radiographs and {payload['ct_series']} CT series "
        f"({payload['ct_slices']} slices) of {payload['patients']} patients to {manifest.out_dir}\n"
        f"findings: {counts or 'none'}\n"
        f"labels: {manifest.labels_csv}"
    )
    emit(args.json, payload, text)
    return 0
