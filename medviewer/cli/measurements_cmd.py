"""``medviewer measurements``: list, delete, export (DICOM SR) and import measurements."""

from __future__ import annotations

from medviewer.cli.output import emit, fail


def register(subparsers) -> None:
    """Add the ``measurements`` command group."""
    parser = subparsers.add_parser(
        "measurements", help="measurements on images: list, delete, SR export and import",
        description="Measurements and annotations stored in a case library, exported as and "
        "imported from DICOM SR measurement reports (TID 1500), as OHIF writes them.")
    sub = parser.add_subparsers(dest="measurements_command", metavar="ACTION", required=True)

    def add(name: str, help_text: str, func):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--library", required=True, help="library file")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
        return p

    add("list", "list every measurement with its image and values", _list)
    p = add("delete", "delete measurements by id", _delete)
    p.add_argument("ids", nargs="+", type=int, metavar="ID")
    p = add("export", "write one TID 1500 SR per study", _export)
    p.add_argument("--out", required=True, metavar="FOLDER")
    p.add_argument("--series", type=int, help="only this series (library id)")
    p = add("import", "read the measurements of SR measurement reports", _import)
    p.add_argument("paths", nargs="+", metavar="SR")


def _open(args):
    from pathlib import Path

    from medviewer.store import Library

    if not Path(args.library).is_file():
        return None
    return Library(args.library)


def _list(args) -> int:
    from medviewer.dicom.pixels import decode
    from medviewer.dicom.sources import FileRef
    from medviewer.measurements.model import measure
    from medviewer.measurements.store import list_measurements

    library = _open(args)
    if library is None:
        return fail(f"no library at {args.library}")
    with library:
        rows = list_measurements(library)
    payload, lines, images = [], [], {}
    for m, location, series in rows:
        try:
            image = images.get(location) or decode(FileRef.from_display(location))
            images[location] = image
            values = measure(m, None if image.is_color else image.frames[m.frame],
                             image.pixel_spacing, image.units)
            text = values.text().replace("\n", "; ")
        except Exception as exc:  # noqa: BLE001 - one unreadable image must not hide the rest
            text = f"(values unavailable: {exc})"
        payload.append({"id": m.id, "kind": m.kind, "label": m.label, "image": location,
                        "frame": m.frame, "points": m.points, "uid": m.uid, "source": m.source,
                        "values": text})
        lines.append(f"{m.id:>5}  {m.kind:<9} {text:<40} {m.label or '-':<20} {series}  {location}")
    emit(args.json, payload, "\n".join(lines) if lines else "no measurements")
    return 0


def _delete(args) -> int:
    from medviewer.measurements.store import delete_measurement

    library = _open(args)
    if library is None:
        return fail(f"no library at {args.library}")
    with library:
        gone = [i for i in args.ids if delete_measurement(library, i)]
    missing = sorted(set(args.ids) - set(gone))
    emit(args.json, {"deleted": gone, "missing": missing},
         f"deleted {len(gone)}" + (f"; no measurement {', '.join(map(str, missing))}" if missing else ""))
    return 0 if not missing else 1


def _export(args) -> int:
    from medviewer.measurements.sr import export_report
    from medviewer.errors import MedViewerError

    library = _open(args)
    if library is None:
        return fail(f"no library at {args.library}")
    with library:
        try:
            files = export_report(library, args.out, series_ref=args.series)
        except MedViewerError as exc:
            return fail(str(exc))
    emit(args.json, {"written": [str(f) for f in files]},
         "\n".join(f"wrote {f}" for f in files))
    return 0


def _import(args) -> int:
    from medviewer.errors import MedViewerError
    from medviewer.measurements.sr import import_report

    library = _open(args)
    if library is None:
        return fail(f"no library at {args.library}")
    results, lines, code = [], [], 0
    with library:
        for path in args.paths:
            try:
                summary = import_report(library, path)
            except MedViewerError as exc:
                results.append({"path": path, "error": str(exc)})
                lines.append(f"{path}: {exc}")
                code = 1
                continue
            results.append({"path": path, "imported": summary.imported,
                            "updated": summary.updated, "skipped": summary.skipped})
            line = f"{path}: {summary.imported} imported, {summary.updated} updated"
            if summary.skipped:
                line += f", {len(summary.skipped)} skipped ({'; '.join(sorted(set(summary.skipped)))})"
            lines.append(line)
    emit(args.json, results, "\n".join(lines))
    return code
