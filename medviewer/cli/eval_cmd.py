"""``medviewer eval``: evaluations on a library's labelled cases (``eval retrieval``).

Other evaluations join the group by appending their ``add_<name>_parser``
to :data:`EVAL_SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from medviewer.cli.output import emit


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` group and its subcommands."""
    parser = subparsers.add_parser("eval", help="evaluate models on a library's labelled cases")
    parser.set_defaults(func=lambda _args: (parser.print_help(), 0)[1])
    sub = parser.add_subparsers(dest="eval_command", metavar="SUBCOMMAND")
    for add in EVAL_SUBCOMMANDS:
        add(sub)


def add_retrieval_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``eval retrieval``: the retrieval paper's protocol (mAP@k, nDCG@k, t-test vs random)."""
    parser = sub.add_parser(
        "retrieval", help="retrieval mAP@k / nDCG@k / P@k for one finding vs No Finding",
        description="Each task is a finding (Opacity: any of Atelectasis, Effusion, Infiltration, "
        "Pneumonia, Consolidation, Edema, Fibrosis, Pleural_Thickening) vs 'No Finding', the larger "
        "class undersampled to balance. Queries from the test split of the model's patient split (on a "
        "library holding none of the patients or images the model records as trained on: every case) "
        "search the same cases, the query and its patient excluded; a result is relevant when it "
        "has the query's class. The p-value is a paired t-test of per-query AP@k against random "
        "retrieval.")
    parser.add_argument("--library", required=True, metavar="LIB")
    parser.add_argument("--model", metavar="BUNDLE",
                        help="model bundle folder (its recipe gives the patient split)")
    parser.add_argument("--task", required=True, help="Cardiomegaly, Emphysema, Opacity or a label")
    parser.add_argument("-k", type=int, default=5, help="cut-off (default 5)")
    parser.add_argument("--baseline", choices=["pixels"],
                        help="also evaluate downsampled raw pixels as the embedding")
    parser.add_argument("--split", default="auto", choices=["auto", "test", "val", "train", "heldout", "all"],
                        help="part of the patient split to query and search (default auto: every case "
                        "of a library that holds none of the patients and images the model records "
                        "as trained on, else test; heldout = val + test; all includes training images)")
    parser.add_argument("--seed", type=int, help="split seed (default: the model's recipe seed, else 0)")
    parser.add_argument("--per-query", action="store_true", help="include every query's results (JSON)")
    parser.add_argument("--provider", default="auto")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run_retrieval)
    return parser


EVAL_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], argparse.ArgumentParser]] = [
    add_retrieval_parser,
]


def run_retrieval(args) -> int:
    """Evaluate the model (and the baseline) and print the metrics."""
    from medviewer.cli.index_cmd import _open_library
    from medviewer.errors import MedViewerError
    from medviewer.services.retrieval import PIXELS, evaluate_retrieval

    if not args.model and not args.baseline:
        raise MedViewerError("give --model BUNDLE, --baseline pixels, or both")
    with _open_library(args.library) as library:
        main = args.model or PIXELS
        result = evaluate_retrieval(library, main, args.task, k=args.k, split=args.split, seed=args.seed,
                                    provider=args.provider)
        payload = result.to_dict(per_query=args.per_query)
        lines = [f"split: {result.split} ({result.split_reason})", _line(result)]
        if args.baseline and args.model:
            base = evaluate_retrieval(library, args.baseline, args.task, k=args.k, split=result.split,
                                      seed=args.seed, split_from=args.model)
            payload["baseline"] = base.to_dict(per_query=args.per_query)
            lines.append(_line(base))
    emit(args.json, _finite(payload), "\n".join(lines))
    return 0


def _line(r) -> str:
    return (f"{r.task} ({r.embedder}, {r.split} split, {r.queries} queries: {r.positives}+/{r.negatives}-): "
            f"mAP@{r.k} {r.map_at_k:.3f} [{r.map_ci95[0]:.3f}, {r.map_ci95[1]:.3f}], "
            f"nDCG@{r.k} {r.ndcg_at_k:.3f}, P@{r.k} {r.precision_at_k:.3f}; random mAP@{r.k} "
            f"{r.random_map_at_k:.3f}; t-test p = {r.p_value:.3g}"
            + (f" (WARNING: {r.p_value_warning})" if r.p_value_warning else ""))


def _finite(value):
    """Replace NaN/inf by None so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
