"""``medviewer import``: add files, folders, zips and DICOMDIRs to a case library."""

from __future__ import annotations

import sys

from medviewer.cli.output import emit
from medviewer.tasks import TaskState


def register(subparsers) -> None:
    """Add the ``import`` subcommand."""
    parser = subparsers.add_parser("import", help="import images into a case library",
                                   description="Import DICOM files, folders (recursive), zip "
                                   "archives, DICOMDIRs and PNG/JPEG radiographs.")
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--library", required=True, help="library file (created if missing)")
    parser.add_argument("--labels", metavar="CSV", help="label table (Data_Entry_2017 or path,labels)")
    parser.add_argument("--verify", choices=("compressed", "all", "none"), default="compressed",
                        help="test-decode these files during import (default: compressed)")
    parser.add_argument("--json", action="store_true", help="print a JSON report")
    parser.set_defaults(func=run)


def run(args) -> int:
    """Run the import and print its report."""
    from medviewer.services.importer import import_paths
    from medviewer.store import Library

    state = TaskState()
    with Library(args.library) as library:
        report = import_paths(library, args.paths, labels=args.labels, verify=args.verify,
                              state=state)
        totals = library.counts()
    payload = report.as_dict() | {"library": str(args.library), "library_totals": totals}
    lines = [f"Imported {report.instances} images ({report.patients} patients, "
             f"{report.studies} studies, {report.series} series); {report.unchanged} unchanged; "
             f"{len(report.skipped)} skipped."]
    if report.labelled_cases:
        lines.append(f"Labels applied to {report.labelled_cases} cases.")
    for name, warnings in report.warnings.items():
        lines.extend(f"  warning: {name}: {w}" for w in warnings)
    # Obvious non-images (notes, tables) are counted in one line; --json lists each.
    not_images = [s for s in report.skipped if s.reason == "not an image"
                  and not s.path.lower().endswith(".gz")]
    for skip in report.skipped:
        if skip not in not_images or len(not_images) <= 3:
            lines.append(f"  skipped: {skip.path}: {skip.reason}: {skip.detail}")
    if len(not_images) > 3:
        lines.append(f"  skipped: {len(not_images)} files that are not images by their name "
                     "(.txt, .json, ...); --json lists them")
    emit(args.json, payload, "\n".join(lines))
    sys.stdout.flush()
    return 0
