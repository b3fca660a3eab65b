"""``medviewer info``: list the series in a file or folder, without a library."""

from __future__ import annotations

from collections import defaultdict

from medviewer.cli.output import emit


def register(subparsers) -> None:
    """Add the ``info`` subcommand."""
    parser = subparsers.add_parser("info", help="describe the series in a file or folder")
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args) -> int:
    """Scan headers, group by series, and print each series with its warnings."""
    from medviewer.dicom.geometry import sort_series
    from medviewer.dicom.scan import scan
    from medviewer.dicom.sources import iter_files
    from medviewer.errors import ImageReadError

    groups = defaultdict(list)
    skipped = []
    def listed_skip(name: str, reason: str, detail: str) -> None:
        skipped.append({"path": name, "reason": reason, "detail": detail})

    for ref in iter_files(args.paths, on_skip=listed_skip):
        try:
            header = scan(ref)
        except ImageReadError as exc:
            skipped.append({"path": ref.display, "reason": exc.reason, "detail": exc.message})
            continue
        groups[header.series_uid].append(header)
    series = []
    for uid, headers in groups.items():
        geometry = sort_series(headers)
        first = headers[geometry.order[0]]
        series.append({
            "series_uid": uid,
            "patient_id": first.patient_id,
            "study_date": first.study_date,
            "modality": first.modality,
            "description": first.series_description,
            "instances": len(headers),
            "frames": sum(h.frames for h in headers),
            "size": [first.columns, first.rows],
            "pixel_spacing": list(first.pixel_spacing) if first.pixel_spacing else None,
            "slice_spacing": geometry.spacing,
            "sorted_by": geometry.sorted_by,
            "warnings": [w.message for w in geometry.warnings],
            "files": [headers[i].ref.display for i in geometry.order],
        })
    series.sort(key=lambda s: (s["patient_id"], s["study_date"], s["description"]))
    lines = []
    for s in series:
        spacing = (f"{s['pixel_spacing'][0]:.3g}x{s['pixel_spacing'][1]:.3g} mm"
                   if s["pixel_spacing"] else "spacing unknown")
        step = f", slices every {s['slice_spacing']:.3g} mm" if s["slice_spacing"] else ""
        lines.append(f"{s['modality'] or '??':3} {s['description'] or '(no description)'}: "
                     f"{s['instances']} files, {s['frames']} frames, "
                     f"{s['size'][0]}x{s['size'][1]} px, {spacing}{step}")
        lines.extend(f"    warning: {w}" for w in s["warnings"])
    lines.extend(f"skipped {k['path']}: {k['reason']}: {k['detail']}" for k in skipped)
    emit(args.json, {"series": series, "skipped": skipped}, "\n".join(lines) or "no images found")
    return 0
