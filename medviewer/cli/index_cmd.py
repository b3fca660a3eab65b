"""``medviewer index``: build, update, inspect and remove a library's retrieval index."""

from __future__ import annotations

import argparse
import sys

from medviewer.cli.output import emit

INDEX_KINDS = ("auto", "exact", "hnsw", "ivf")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``index`` group with ``build``, ``status`` and ``remove``."""
    parser = subparsers.add_parser(
        "index", help="similar-case retrieval index of a library (build, status, remove)",
        description="The retrieval index of a library for one model: FAISS over the model's "
        "embeddings, stored beside the library in LIB.indexes/<model sha256>/.")
    parser.set_defaults(func=lambda _args: (parser.print_help(), 0)[1])
    sub = parser.add_subparsers(dest="index_command", metavar="SUBCOMMAND")

    build = sub.add_parser(
        "build", help="build the index, or update it (only new and changed cases are embedded)",
        description="Build the index of LIB for BUNDLE, or bring it up to date: new cases are "
        "embedded and added, removed ones dropped, changed ones re-embedded. A corrupt or "
        "foreign index is rebuilt from scratch; the library itself is never modified.")
    _common(build)
    build.add_argument("--kind", choices=INDEX_KINDS, default="auto",
                       help="exact search, or approximate HNSW / IVF (auto: exact up to 50,000 "
                       "cases, HNSW above)")
    build.add_argument("--rebuild", action="store_true", help="embed every case again")
    build.add_argument("--batch-size", type=int, default=64, help="images per model run (default 64)")
    build.add_argument("--provider", default="auto", help="auto (default), cpu, cuda, ...")
    build.set_defaults(func=run_build)

    status = sub.add_parser("status", help="say whether the index is ready, stale, corrupt or missing")
    _common(status)
    status.set_defaults(func=run_status)

    remove = sub.add_parser("remove", help="delete the index (the library is untouched)")
    _common(remove)
    remove.set_defaults(func=run_remove)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--library", required=True, metavar="LIB", help="library file")
    parser.add_argument("--model", required=True, metavar="BUNDLE",
                        help="model bundle folder, or 'pixels' for the raw-pixel baseline")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _open_library(path: str):
    from pathlib import Path

    from medviewer.errors import LibraryError
    from medviewer.store import Library

    if not Path(path).is_file():
        raise LibraryError("no such library", path=path, hint="create it with `medviewer import`")
    return Library(path)


def run_build(args) -> int:
    """Build or update the index; print what was done."""
    from medviewer.services.retrieval import build_index
    from medviewer.tasks import TaskState

    state = TaskState()
    with _open_library(args.library) as library:
        report = build_index(library, args.model, kind=args.kind, rebuild=args.rebuild,
                             provider=args.provider, batch_size=args.batch_size, state=state)
    lines = []
    if report.up_to_date:
        lines.append(f"Index up to date: {report.count} cases ({report.kind}, {report.metric}).")
    else:
        lines.append(f"Indexed {report.count} cases ({report.kind}, {report.metric}, {report.dim}-d) in "
                     f"{report.seconds:.1f} s: embedded {report.embedded} ({report.added} new, "
                     f"{report.changed} changed), dropped {report.removed}; structure {report.structure}.")
    if report.full_rebuild_reason and report.full_rebuild_reason != "new index":
        lines.append(f"Rebuilt from scratch: {report.full_rebuild_reason}.")
    if report.recall:
        lines.append(f"Recall@{report.recall['k']} against exact search: {report.recall['recall']:.3f} "
                     f"({report.recall['queries']} queries, {report.recall['setting']}).")
    lines.extend(f"  unreadable: {u['path']}: {u['reason']}" for u in report.unreadable)
    lines.append(f"Index folder: {report.folder}")
    emit(args.json, report.to_dict(), "\n".join(lines))
    sys.stdout.flush()
    return 0


def run_status(args) -> int:
    """Print the index status; exit 0 when ready, 1 otherwise."""
    from medviewer.services.retrieval import index_status

    with _open_library(args.library) as library:
        status = index_status(library, args.model)
    emit(args.json, status.to_dict(), f"{status.state}: {status.message}\nIndex folder: {status.folder}")
    return 0 if status.ready else 1


def run_remove(args) -> int:
    """Delete the index folder."""
    from medviewer.services.retrieval import remove_index

    with _open_library(args.library) as library:
        removed = remove_index(library, args.model)
    emit(args.json, {"removed": removed}, "Index removed." if removed else "There was no index.")
    return 0
