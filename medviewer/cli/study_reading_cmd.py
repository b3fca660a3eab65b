"""``medviewer study export|import|picks|read``: reading packages, tidy picks, the reading screen."""

from __future__ import annotations

from medviewer.cli.output import GuiRequest, emit


def _study_id(library: str, study: str) -> int:
    from medviewer.store import Library
    from medviewer.study.design import find_study

    with Library(library) as lib:
        return find_study(lib.conn, study)


def add_create_parser(sub):
    """Add ``study create``."""
    parser = sub.add_parser("create", help="design a study: queries with 5 closest + 5 farthest")
    parser.add_argument("--library", required=True)
    parser.add_argument("--model", required=True, metavar="BUNDLE")
    parser.add_argument("--name", required=True)
    parser.add_argument("--queries", type=int, default=20, help="number of query cases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stratify", choices=("none", "label", "modality"), default="none")
    parser.add_argument("--cases", help="explicit query case ids, comma-separated")
    parser.add_argument("-k", type=int, default=5, help="closest and farthest per query")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run_create)
    return parser


def run_create(args) -> int:
    """Design the study from the index."""
    from medviewer.services.reader_study import design_study
    from medviewer.store import Library

    cases = [int(c) for c in args.cases.split(",")] if args.cases else None
    with Library(args.library) as library:
        summary = design_study(library, args.model, args.name, queries=args.queries,
                               seed=args.seed, stratify=args.stratify, case_ids=cases, k=args.k)
    emit(args.json, {"id": summary.id, "name": summary.name, "uid": summary.uid,
                     "queries": summary.queries},
         f"Created study {summary.name!r} (id {summary.id}) with {summary.queries} queries")
    return 0


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
    parser.add_argument("--summary", metavar="FILE.csv",
                        help="also write the per-reader summary (queries done, time per query)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run_picks)
    return parser


def run_picks(args) -> int:
    """Write the tidy CSV."""
    from medviewer.study.session import open_study_db
    from medviewer.study.tidy import reader_summary, write_reader_summary_csv, write_tidy_csv

    study_id = _study_id(args.library, args.study)
    conn = open_study_db(args.library)
    rows = write_tidy_csv(conn, study_id, args.out)
    data, text = {"out": args.out, "rows": rows}, f"wrote {rows} rows to {args.out}"
    if args.summary:
        summary = reader_summary(conn, study_id)
        write_reader_summary_csv(summary, args.summary)
        data["summary"] = summary
        text += f"; {len(summary)} readers summarised in {args.summary}"
    emit(args.json, data, text)
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
