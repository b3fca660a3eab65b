"""``medviewer deid``: de-identify DICOM files into an export folder (PS3.15 Annex E)."""

from __future__ import annotations

from medviewer.cli.output import emit, fail


def register(subparsers) -> None:
    """Add the ``deid`` subcommand."""
    parser = subparsers.add_parser(
        "deid", help="de-identify DICOM files (PS3.15 Basic Profile)",
        description="De-identify DICOM files, folders, zips or DICOMDIRs into DIR with the "
        "DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile and the options "
        "chosen below. Writes DIR/deid_audit.json. Images that may show identifying text in "
        "their pixels are skipped unless given --blackout regions or --allow-burned-in.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT")
    parser.add_argument("--out", required=True, metavar="DIR", help="export folder")
    add_deid_options(parser)
    parser.add_argument("--secret-file", metavar="FILE",
                        help="key file (created if missing) so later exports reuse the same "
                        "UIDs and pseudonyms; keep it out of the export")
    parser.add_argument("--blackout", action="append", default=[], metavar="TARGET:X,Y,W,H",
                        help="black out a rectangle (pixels) in the file at path TARGET or "
                        "with SOP Instance UID TARGET; repeat for more")
    parser.add_argument("--allow-burned-in", action="store_true",
                        help="export images flagged for burned-in text anyway (listed)")
    parser.add_argument("--json", action="store_true", help="print a JSON report")
    parser.set_defaults(func=run)


def add_deid_options(parser) -> None:
    """Add the de-identification option flags (shared with ``teach export``)."""
    from medviewer.services.deid_choices import DATE_CHOICES, DATES_HELP, OPTION_CHOICES

    parser.add_argument("--dates", choices=[c.policy for c in DATE_CHOICES], default="remove",
                        help=DATES_HELP)
    parser.add_argument("--shift-days", type=int, metavar="N",
                        help="days to add with --dates shift (default: a secret negative shift)")
    for choice in OPTION_CHOICES:
        parser.add_argument(choice.flag, dest=choice.field, action="store_true", help=choice.help)
    parser.add_argument("--patient-id", metavar="ID",
                        help="replacement Patient ID and Name (default: a keyed pseudonym)")


def options_from(args):
    """Return the :class:`~medviewer.deid.DeidOptions` the parsed flags ask for."""
    from medviewer.deid import DeidOptions
    from medviewer.services.deid_choices import OPTION_CHOICES

    return DeidOptions(dates=args.dates, date_shift_days=args.shift_days,
                       patient_id=args.patient_id,
                       **{c.field: getattr(args, c.field) for c in OPTION_CHOICES})


def run(args) -> int:
    """De-identify and print the report."""
    import os

    from medviewer.deid import Region, deidentify_files
    from medviewer.tasks import TaskState

    options = options_from(args)
    regions: dict[str, list] = {}
    for spec in args.blackout:
        target, sep, rect = spec.rpartition(":")
        if not sep or not target:
            return fail(f"--blackout takes TARGET:X,Y,W,H, not {spec!r}")
        key = target if not os.path.exists(target) else os.path.abspath(target)
        regions.setdefault(key, []).append(Region.parse(rect))
    secret = read_secret(args.secret_file) if args.secret_file else None
    report = deidentify_files(args.inputs, args.out, options, secret=secret, regions=regions,
                              burned_in="export" if args.allow_burned_in else "skip",
                              state=TaskState())
    lines = [(f"De-identified {len(report.written)} files into {report.out_dir}; "
              f"skipped {len(report.skipped)}."), f"Audit: {report.audit_path}"]
    lines += [f"  flagged (exported, check the pixels): {w.output}: "
              f"{'; '.join(w.burned_in_reasons)}" for w in report.flagged]
    lines += [f"  skipped: {s.source}: {s.reason}: {s.detail}" for s in report.skipped]
    emit(args.json, report.as_dict(), "\n".join(lines))
    return 0


def read_secret(path: str) -> bytes:
    """Read a hex key file, creating it (readable by the owner only) if missing."""
    import os
    import secrets
    from pathlib import Path

    from medviewer.deid import DeidOptionsError

    file = Path(path)
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    try:
        return bytes.fromhex(file.read_text().strip())
    except ValueError as exc:
        raise DeidOptionsError("the secret file does not hold a hex key", path=file,
                               hint="delete it to create a new one") from exc
