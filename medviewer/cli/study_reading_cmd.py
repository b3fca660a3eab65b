"""``medviewer study export|import|picks|read``: reading packages, tidy picks, the reading screen."""

from __future__ import annotations

from medviewer.cli.output import GuiRequest, emit


def _study_id(library: str, study: str) -> int:
    from medviewer.store import Library
    from medviewer.study.design import find_study

    with Library(library) as lib:
        return find_study(lib.conn, study)


def add_export_parser(sub):
    """Add ``study export``."""
    parser = sub.add_parser("export", help="write a reading package for a reader on another machine")
    parser.add_argument("study", help="study name or id")
    parser.add_argument("--library", required=True)
    parser.add_argument("--reader", required=True, help="the reader the package is for")
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run_export)
    return parser


def run_export(args) -> int:
    """Write the package."""
    from medviewer.services.study_images import LibraryCaseImages
    from medviewer.study.package import export_package, read_manifest

    study_id = _study_id(args.library, args.study)
    out = export_package(args.library, study_id, args.reader, args.out,
                         LibraryCaseImages(args.library))
    manifest = read_manifest(out)
    emit(args.json, {"package": str(out), **manifest},
         f"Reading package for {args.reader}: {out} ({manifest['queries']} queries, "
         f"{manifest['images']} images)")
    return 0


def add_import_parser(sub):
    """Add ``study import``."""
    parser = sub.add_parser("import", help="merge a reader's package results into the library")
    parser.add_argument("package", metavar="DIR")
    parser.add_argument("--library", required=True)
    parser.add_argument("--prefer", choices=("local", "package"), default="local",
                        help="which answer wins a conflict (default: the one at home)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run_import)
    return parser


def run_import(args) -> int:
    """Merge and report duplicates and conflicts."""
    from medviewer.study.package import import_results

    report = import_results(args.library, args.package, prefer=args.prefer)
    lines = [f"{report.reader}: {report.imported} answers imported, {report.duplicates} "
             f"duplicates, {len(report.conflicts)} conflicts"]
    lines += [f"  conflict on query {c['query']}: home {c['home']}, package {c['package']}"
              for c in report.conflicts]
    emit(args.json, report.as_dict(), "\n".join(lines))
    return 0


def add_picks_parser(sub):
    """Add ``study picks``."""
    parser = sub.add_parser("picks", help="write the tidy picks CSV (input of 'study stats')")
    parser.add_argument("study", help="study name or id")
    parser.add_argument("--library", required=True)
    parser.add_argument("--out", required=True, metavar="FILE.csv")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run_picks)
    return parser


def run_picks(args) -> int:
    """Write the tidy CSV."""
    from medviewer.study.session import open_study_db
    from medviewer.study.tidy import write_tidy_csv

    study_id = _study_id(args.library, args.study)
    conn = open_study_db(args.library)
    rows = write_tidy_csv(conn, study_id, args.out)
    emit(args.json, {"out": args.out, "rows": rows}, f"wrote {rows} rows to {args.out}")
    return 0


def add_read_parser(sub):
    """Add ``study read``."""
    parser = sub.add_parser("read", help="open the reading screen")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--library", help="read a study of this library")
    group.add_argument("--package", metavar="DIR", help="read a reading package")
    parser.add_argument("--study", help="study name or id (with --library)")
    parser.add_argument("--reader", help="your name (asked for if missing)")
    parser.set_defaults(func=run_read)
    return parser


def run_read(args) -> GuiRequest:
    """Ask the launcher to open the reading screen."""
    if args.library and not args.study:
        raise SystemExit("medviewer study read: --study is required with --library")
    return GuiRequest(library=args.library, study=args.study, reader=args.reader,
                      package=args.package)
