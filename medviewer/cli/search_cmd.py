"""``medviewer search``: the cases of a library most similar to an image, or matching a phrase."""

from __future__ import annotations

import argparse

from medviewer.cli.output import emit


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``search`` subcommand."""
    parser = subparsers.add_parser(
        "search", help="find the library cases most similar to an image, or matching a phrase",
        description="Search LIB's index for BUNDLE with IMAGE (a DICOM/PNG/JPEG file). An image "
        "that is a case of the library is searched as that case: its own patient is excluded "
        "(unless --include-same-patient). Filters select candidates before ranking, so k "
        "results come back whenever k cases pass them. With --text PHRASE instead of IMAGE: "
        "the cases whose reports match the phrase, by BM25 (negations respected: 'effusion' "
        "does not find 'no effusion'); with --model an image-text bundle, by the learned "
        "phrase-to-image similarity fused with BM25 (--rank).")
    parser.add_argument("image", metavar="IMAGE", nargs="?")
    parser.add_argument("--library", required=True, metavar="LIB")
    parser.add_argument("--model", metavar="BUNDLE",
                        help="model bundle folder, or 'pixels' for the raw-pixel baseline "
                        "(with --text: an image-text bundle)")
    parser.add_argument("--text", metavar="PHRASE", help="search the reports for this phrase")
    parser.add_argument("--rank", choices=("bm25", "learned", "fused"), default=None,
                        help="with --text: BM25 only (default without --model), the learned "
                        "model only, or both fused (default with --model)")
    parser.add_argument("-k", type=int, default=5, help="nearest cases to return (default 5)")
    parser.add_argument("--farthest", type=int, default=0, metavar="N",
                        help="also return the N farthest cases")
    parser.add_argument("--region", metavar="X,Y,W,H", help="search with this rectangle of the image")
    parser.add_argument("--label", action="append", default=[], help="only cases with this label (repeatable: any)")
    parser.add_argument("--modality", action="append", default=[],
                        help="only this modality (repeatable; default: the query's modality family, "
                             "e.g. CR, DX and PNG radiographs together)")
    parser.add_argument("--any-modality", action="store_true",
                        help="search every modality, not only the query's family")
    parser.add_argument("--body-part", action="append", default=[], help="only this body part (repeatable)")
    parser.add_argument("--date-from", default="", metavar="YYYYMMDD")
    parser.add_argument("--date-to", default="", metavar="YYYYMMDD")
    parser.add_argument("--include-same-patient", action="store_true",
                        help="allow cases of the query's own patient")
    parser.add_argument("--exclude-same-study", action="store_true",
                        help="drop cases of the query's own study")
    parser.add_argument("--allow-stale", action="store_true",
                        help="search an out-of-date index anyway (changed and new cases are left out)")
    parser.add_argument("--provider", default="auto", help="auto (default), cpu, cuda, ...")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def parse_region(text: str | None):
    """Parse ``X,Y,W,H`` into a :class:`~medviewer.retrieval.Region` (None stays None)."""
    from medviewer.retrieval import QueryError, Region

    if not text:
        return None
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError as exc:
        raise QueryError(f"--region must be X,Y,W,H in pixels, not {text!r}") from exc
    return Region(x, y, w, h)


def run(args) -> int:
    """Run one search and print the results."""
    from medviewer.cli.index_cmd import _open_library
    from medviewer.retrieval import QueryError

    if args.text is not None:
        if args.image:
            raise QueryError("give either IMAGE or --text PHRASE, not both")
        return run_text(args)
    if not args.image or not args.model:
        raise QueryError("an image search needs IMAGE and --model BUNDLE",
                         hint="or search the reports with --text PHRASE")
    from medviewer.retrieval import SearchFilter
    from medviewer.services.retrieval import open_searcher, search_file

    flt = SearchFilter(labels=tuple(args.label), modalities=tuple(args.modality),
                       body_parts=tuple(args.body_part), date_from=args.date_from, date_to=args.date_to,
                       exclude_same_patient=not args.include_same_patient,
                       exclude_same_study=args.exclude_same_study)
    from medviewer.inference.applicability import image_facts
    from medviewer.services.applicability import best_match_note, family_filter, image_applicability

    facts = image_facts(args.image)
    flt, family_note = family_filter(flt, facts, args.any_modality)
    with _open_library(args.library) as library:
        searcher = open_searcher(library, args.model, allow_stale=args.allow_stale, provider=args.provider)
    result = search_file(searcher, args.image, region=parse_region(args.region), k=args.k,
                         farthest=args.farthest, filters=flt)
    runner = getattr(searcher.embedder, "runner", None)
    payload = result.to_dict()
    lines = []
    if runner is not None:
        from medviewer.services.retrieval import file_image

        verdict = image_applicability(runner, facts, file_image(args.image))
        weak = best_match_note(runner.bundle, result)
        payload.update(verdict.to_dict())
        payload["best_match_note"] = weak
        lines.append(verdict.summary())
        if weak:
            lines.append(weak[0].upper() + weak[1:] + ".")
    else:
        payload.update({"applicable": None, "reasons": [], "ood_percentile": None,
                        "notes": ["the raw-pixel baseline has no domain"]})
    if family_note:
        payload["family_filter"] = family_note
        lines.append(f"Showing {family_note}.")
    lines += [f"{result.vote.text}  ({result.candidates} candidates; {', '.join(result.filters) or 'no filter'})"]
    for title, hits in (("nearest", result.nearest), ("farthest", result.farthest)):
        if hits:
            lines.append(f"{title}:")
            lines.extend(f"  {h.rank:2d}  {h.distance:8.4f}  case {h.case_id:<6d} {h.location}  "
                         f"[{', '.join(h.labels) or 'unlabelled'}]" for h in hits)
    lines.extend(f"warning: {w}" for w in result.warnings)
    emit(args.json, payload, "\n".join(lines))
    return 0


def run_text(args) -> int:
    """Search the reports of a library for a phrase; print the ranked cases."""
    from medviewer.cli.index_cmd import _open_library
    from medviewer.services.reports import text_search

    with _open_library(args.library) as library:
        result = text_search(library, args.text, k=args.k, model=args.model, rank=args.rank,
                             provider=args.provider, allow_stale=args.allow_stale)
    lines = [result.summary] + ([f"Fused by {result.fusion}."] if result.fusion else [])
    lines.extend(f"  {h.rank:2d}  {h.score:8.4f}  case {h.case_id:<6d} {h.location}  "
                 f"[{', '.join(h.labels) or 'unlabelled'}]\n        found by: {h.ranker_text()}"
                 + (f"\n        \u201c{h.snippet}\u201d" if h.snippet else "")
                 for h in result.hits)
    lines.extend(f"warning: {w}" for w in result.warnings)
    emit(args.json, result.to_dict(), "\n".join(lines))
    return 0
