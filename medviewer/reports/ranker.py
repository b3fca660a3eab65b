"""BM25 over the negation-split report words, with ``bm25s`` (sparse matrices, numpy).

SQLite FTS5 holds the words durably (``report_terms``: affirmed and negated
columns, written with the report), but its ``bm25()`` is computed row by row: a
common word ("cardiomegaly" in half of 100k reports) takes about a second.
``bm25s`` precomputes every (word, report) score into a sparse matrix, so a
query is a few column sums and a partial sort (about a millisecond at 100k;
``benchmarks/bench_text_search.py``).

Tokens: each affirmed word, and each negated word prefixed ``neg:``, lower case,
plural endings stripped (the same normaliser for reports and queries).  The
matrix is built from the FTS5 columns (no re-analysis) and saved beside the
library (``<library>.reports-bm25/``) with the library's report version, and
rebuilt when reports change.  Ranking: Lucene-style BM25, k1 = 1.2, b = 0.75
(Robertson and Zaragoza 2009), as FTS5's.

References
----------
Lu X. BM25S: Orders of magnitude faster lexical search via eager sparse scoring.
arXiv:2407.03618, 2024.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

NEGATED_PREFIX = "neg:"
_PARTS = re.compile(r"[-']")
K1, B = 1.2, 0.75
_BUILT: dict[str, tuple[str, ReportRanker]] = {}
_LOCK = threading.Lock()


def normalise(word: str) -> str:
    """Return the token of a word: lower case, plural ending stripped ("opacities" -> "opacity")."""
    w = word.lower()
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith("es") and w[-3] in "sxz":
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def tokens(affirmed, negated) -> list[str]:
    """Return the tokens of affirmed and negated words ("zebra-stripe" gives two)."""
    out = []
    for prefix, words in (("", affirmed), (NEGATED_PREFIX, negated)):
        for word in words:
            out.extend(prefix + normalise(part) for part in _PARTS.split(word) if part)
    return out


def document_tokens(affirmed: str, negated: str) -> list[str]:
    """Return a report's tokens from its two FTS5 columns."""
    return tokens(affirmed.split(), negated.split())


class ReportRanker:
    """A BM25 index of reports (ids in ``report_ids``, rows of the bm25s matrix)."""

    def __init__(self, retriever, report_ids: np.ndarray) -> None:
        self.retriever = retriever
        self.report_ids = np.asarray(report_ids, dtype=np.int64)

    @classmethod
    def build(cls, rows) -> ReportRanker:
        """Index ``(report id, affirmed, negated)`` rows."""
        import bm25s
        from bm25s.tokenization import Tokenized

        ids, docs, vocab = [], [], {"": 0}  # id 0: the empty token, so an empty report indexes
        for report_id, affirmed, negated in rows:
            ids.append(int(report_id))
            docs.append([vocab.setdefault(t, len(vocab)) for t in document_tokens(affirmed, negated)] or [0])
        retriever = bm25s.BM25(k1=K1, b=B)
        if docs:
            retriever.index(Tokenized(ids=docs, vocab=vocab), show_progress=False)
        return cls(retriever, np.array(ids, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.report_ids)

    def search(self, affirmed, negated, k: int
               ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """Return (reports with every query concept, reports with some), ``(id, score)`` best first.

        At most ``k`` of each.  The query words are grouped into concepts with their
        synonyms (:mod:`medviewer.reports.synonyms`); a concept matches a report when
        one of its variants does, in the query's polarity, and scores the BM25 sum of
        that variant's words (the best variant when several match).  A report with only
        some of the concepts is left out when it says the opposite of one of them.
        """
        query = self.concepts(affirmed, negated)
        n = len(self.report_ids)
        if not n or not query:
            return [], []
        scores = _TokenScores(self.retriever)
        matched = np.zeros(n, dtype=np.int16)
        total = np.zeros(n, dtype=np.float64)
        denied = np.zeros(n, dtype=bool)
        for polarity, alternatives in query:
            best = np.full(n, -1.0)
            for finding, context in alternatives:
                hit, score = scores.variant(finding, context, polarity)
                best = np.where(hit & (score > best), score, best)
                # The report says the opposite ("the heart is not enlarged" for "enlarged heart").
                opposite, _ = scores.variant(finding, context, not polarity)
                denied |= opposite & ~hit
            found = best >= 0
            matched += found
            total += np.where(found, best, 0.0)
        partial = (matched > 0) & (matched < len(query)) & ~denied
        return self._top(total, matched >= len(query), k), self._top(total, partial, k)

    @staticmethod
    def concepts(affirmed, negated) -> list[tuple[bool, list[tuple[tuple, tuple]]]]:
        """Return the query as ``(affirmed?, [(finding tokens, context tokens), ...])`` concepts."""
        from medviewer.reports.synonyms import concepts, split_variant

        out = []
        for polarity, words in ((True, affirmed), (False, negated)):
            toks = [t for t in tokens(words, ()) if t]
            out += [(polarity, [split_variant(v) for v in alts]) for _, alts in concepts(toks)]
        return out

    def _top(self, total: np.ndarray, mask: np.ndarray, k: int) -> list[tuple[int, float]]:
        rows = np.flatnonzero(mask)
        if rows.size == 0 or k <= 0:
            return []
        if rows.size > k:
            rows = rows[np.argpartition(-total[rows], k - 1)[:k]]
        # Best first; ties by report id, so results are reproducible.
        rows = rows[np.lexsort((self.report_ids[rows], -total[rows]))]
        return [(int(self.report_ids[r]), float(total[r])) for r in rows]

    # -- persistence ----------------------------------------------------------------------------
    def save(self, folder: Path, version: str) -> None:
        """Write the index to ``folder`` atomically (temporary folder, then rename)."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            if len(self):
                self.retriever.save(str(tmp), show_progress=False)
            np.save(tmp / "report_ids.npy", self.report_ids)
            (tmp / "version.json").write_text(json.dumps({"reports_version": version}))
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, folder: Path, version: str) -> ReportRanker | None:
        """Return the saved index when it is of ``version``; None when absent, stale or damaged."""
        import bm25s

        try:
            saved = json.loads((folder / "version.json").read_text())["reports_version"]
            if saved != version:
                return None
            ids = np.load(folder / "report_ids.npy")
            retriever = bm25s.BM25.load(str(folder), show_progress=False) if len(ids) else bm25s.BM25()
        except (OSError, ValueError, KeyError):
            return None
        return cls(retriever, ids)


class _TokenScores:
    """Per-query cache of each token's BM25 scores over all reports (zeros when unknown)."""

    def __init__(self, retriever) -> None:
        self.retriever = retriever
        self.vocab = retriever.vocab_dict
        self.cache: dict[str, np.ndarray] = {}
        self.n = int(retriever.scores["num_docs"])

    def of(self, token: str) -> np.ndarray:
        """Return the token's score per report."""
        got = self.cache.get(token)
        if got is None:
            got = (self.retriever.get_scores([token]).astype(np.float64) if token in self.vocab
                   else np.zeros(self.n))
            self.cache[token] = got
        return got

    def variant(self, finding, context, affirmed: bool) -> tuple[np.ndarray, np.ndarray]:
        """Return (reports holding the variant in this polarity, its BM25 score there)."""
        prefix = "" if affirmed else NEGATED_PREFIX
        hit = np.ones(self.n, dtype=bool)
        score = np.zeros(self.n)
        for token in finding:
            s = self.of(prefix + token)
            hit &= s > 0
            score += s
        for token in context:  # either polarity
            s = np.maximum(self.of(token), self.of(NEGATED_PREFIX + token))
            hit &= s > 0
            score += s
        return hit, score


def ranker_folder(library_path: str | os.PathLike) -> Path:
    """Return where a library's BM25 index is kept (beside the library file)."""
    path = Path(library_path)
    return path.with_name(path.name + ".reports-bm25")


def ranker_for(store) -> ReportRanker:
    """Return the library's BM25 index: cached, loaded from disk, or built (and saved).

    Thread-safe; the first search of a large library after its reports changed pays
    the build (seconds at 100k reports).
    """
    store.refresh_terms()  # words split by older negation rules are split again first
    version = store.reports_version()
    key = str(store.library.path)
    with _LOCK:
        cached = _BUILT.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        folder = ranker_folder(store.library.path)
        ranker = ReportRanker.load(folder, version)
        if ranker is None:
            ranker = ReportRanker.build(store.index_rows())
            try:
                ranker.save(folder, version)
            except OSError:
                pass  # a read-only folder: search works from memory
        _BUILT[key] = (version, ranker)
        return ranker
