"""``medviewer report``: import, show and type the reports of a library's studies and cases."""

from __future__ import annotations

import argparse

from medviewer.cli.output import emit


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand group."""
    parser = subparsers.add_parser(
        "report", help="import, show or type reports",
        description="Reports are text attached to a study or case of a library: from DICOM SR "
        "documents, a CSV table (a path, study_uid or accession column, and a report column), "
        "a folder of .txt files named after the study UID, accession or image file, or typed. "
        "They stay in the library file and are never sent anywhere.")
    sub = parser.add_subparsers(dest="report_command", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="attach reports from CSV tables, .txt folders or SR files")
    imp.add_argument("library", metavar="LIB")
    imp.add_argument("sources", nargs="+", metavar="SOURCE")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=run_import)
    show = sub.add_parser("show", help="print a case's report by section")
    show.add_argument("library", metavar="LIB")
    show.add_argument("case", type=int, metavar="CASE_ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=run_show)
    typed = sub.add_parser("set", help="store a typed report for a case")
    typed.add_argument("library", metavar="LIB")
    typed.add_argument("case", type=int, metavar="CASE_ID")
    group = typed.add_mutually_exclusive_group(required=True)
    group.add_argument("--text", help="the report text")
    group.add_argument("--file", help="read the report from this text file")
    typed.add_argument("--json", action="store_true")
    typed.set_defaults(func=run_set)
    match = sub.add_parser("match", help="which report sentences match a case's image (learned model)")
    match.add_argument("library", metavar="LIB")
    match.add_argument("case", type=int, metavar="CASE_ID")
    match.add_argument("--model", required=True, metavar="BUNDLE", help="an image-text bundle")
    match.add_argument("--sentence", action="append", default=None,
                       help="score these sentences instead of the case's report (repeatable)")
    match.add_argument("--region", metavar="X,Y,W,H",
                       help="match this rectangle of the image (pixels) instead of the whole "
                       "image: the patch tokens it covers, pooled in the joint space")
    match.add_argument("--library-sentences", action="store_true",
                       help="also rank the distinct sentences of the library's other reports")
    match.add_argument("--provider", default="auto")
    match.add_argument("--json", action="store_true")
    match.set_defaults(func=run_match)


def run_import(args) -> int:
    """Import reports and print what was attached and skipped."""
    from medviewer.cli.index_cmd import _open_library
    from medviewer.services.reports import import_reports

    with _open_library(args.library) as library:
        summary = import_reports(library, args.sources)
    lines = [f"attached {summary.attached} reports ({summary.replaced} replaced an earlier one), "
             f"skipped {len(summary.skipped)}"]
    lines.extend(f"  skipped {item}: {reason}" for item, reason in summary.skipped[:50])
    if len(summary.skipped) > 50:
        lines.append(f"  ... and {len(summary.skipped) - 50} more (see --json)")
    emit(args.json, summary.to_dict(), "\n".join(lines))
    return 0 if summary.attached or not summary.skipped else 1


def run_show(args) -> int:
    """Print the report of one case, section by section."""
    from medviewer.cli.index_cmd import _open_library
    from medviewer.reports.sections import SECTION_ORDER
    from medviewer.services.reports import case_report

    with _open_library(args.library) as library:
        report = case_report(library, args.case)
    if report is None:
        emit(args.json, None, f"case {args.case} has no report")
        return 1
    lines = [f"report {report.id} ({report.source}: {report.source_detail})"]
    for name in SECTION_ORDER:
        if name in report.sections:
            lines += [f"{name.upper()}:", f"  {report.sections[name]}"]
    emit(args.json, {"id": report.id, "source": report.source, "text": report.text,
                     "sections": report.sections}, "\n".join(lines))
    return 0


def run_set(args) -> int:
    """Store a typed report for a case."""
    from pathlib import Path

    from medviewer.cli.index_cmd import _open_library
    from medviewer.services.reports import set_typed_report

    text = args.text if args.text is not None else Path(args.file).read_text(encoding="utf-8")
    with _open_library(args.library) as library:
        report = set_typed_report(library, args.case, text)
    emit(args.json, {"id": report.id, "sections": report.sections},
         f"stored report {report.id} for case {args.case} (sections: "
         f"{', '.join(report.sections) or 'none'})")
    return 0


def run_match(args) -> int:
    """Print a case's report sentences (or given ones) by similarity to its image or a region."""
    from medviewer.cli.index_cmd import _open_library
    from medviewer.cli.search_cmd import parse_region
    from medviewer.reports.errors import ReportError
    from medviewer.services.region_sentences import match_sentences, model_problem

    problem = model_problem(args.model)
    if problem:
        raise ReportError(problem, path=args.model)
    with _open_library(args.library) as library:
        found = match_sentences(library, args.case, args.model, region=parse_region(args.region),
                                include_library=args.library_sentences, provider=args.provider,
                                sentences=args.sentence)
    verdict = found.applicability
    lines = [verdict.summary()] if verdict is not None else []
    lines.append(f"sentences by similarity to {found.target} of case {args.case} (cosine in the "
                 "model's joint space; a ranking, not a probability):")
    lines.extend(f"  {m.cosine:+.3f}  {m.sentence}" for m in found.own)
    if found.library:
        lines.append("from other reports in the library:")
        lines.extend(f"  {m.cosine:+.3f}  {m.sentence}  (cases {', '.join(map(str, m.cases[:5]))}"
                     f"{', ...' if len(m.cases) > 5 else ''})" for m in found.library)
    lines.extend(found.notes)
    emit(args.json, found.to_dict(), "\n".join(lines))
    return 0
