"""Find cases by a phrase in their reports: BM25 over the negation-split words.

The phrase goes through the same negation rules as the reports
(:mod:`medviewer.reports.negation`): its affirmed words must appear in a
report's *affirmed* column and its negated words in the *negated* column, so
"effusion" finds "small left effusion" but not "no effusion", and "no effusion"
finds the reports that say there is none.  Findings are matched with their
synonyms (:mod:`medviewer.reports.synonyms`: "cardiomegaly" finds "the cardiac
silhouette is enlarged", "no cardiomegaly" finds "the heart is not enlarged").
Ranking is BM25 (bm25s, see :mod:`medviewer.reports.ranker`; plural endings
stripped, "effusions" matches "effusion").  A report of a study ranks every case of that study.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from medviewer.reports.errors import TextQueryError
from medviewer.reports.models import TextHit
from medviewer.reports.negation import STOP_WORDS, analyse_sentence, split_sentences
from medviewer.reports.ranker import ReportRanker, ranker_for, tokens
from medviewer.reports.sections import searchable_text
from medviewer.reports.store import ReportStore


@dataclass(frozen=True)
class TextQuery:
    """A phrase split into the words it wants present and the words it wants absent."""

    phrase: str
    affirmed: tuple[str, ...]
    negated: tuple[str, ...]


def parse_query(phrase: str) -> TextQuery:
    """Split a search phrase by negation and drop filler words.

    Raises
    ------
    TextQueryError
        When nothing searchable is left ("the", "no").
    """
    affirmed: list[str] = []
    negated: list[str] = []
    for sentence in split_sentences(phrase) or [phrase]:
        s = analyse_sentence(sentence)
        affirmed += [w for w in s.affirmed if w not in STOP_WORDS and w not in affirmed]
        negated += [w for w in s.negated if w not in STOP_WORDS and w not in negated]
    if not affirmed and not negated:
        raise TextQueryError(f"{phrase!r} has no words to search for",
                             hint="type a finding, e.g. 'cardiomegaly' or 'no effusion'")
    return TextQuery(phrase.strip(), tuple(affirmed), tuple(negated))


def search_reports(store: ReportStore, phrase: str, k: int = 10) -> list[TextHit]:
    """Return the ``k`` best cases for ``phrase`` by BM25 over their reports.

    Reports with every word of the phrase (in its polarity) come first; when
    fewer than ``k`` cases have them, reports with some of the words follow
    (BM25 over any word), so "right lower lobe consolidation" still lists the
    left lower lobe ones after the exact ones.  Cases of one study share its
    report and its score.
    """
    query = parse_query(phrase)
    limit = max(k, 1) * 4
    full, partial = ranker_for(store).search(query.affirmed, query.negated, limit)
    shift = full[-1][1] - partial[0][1] - 1e-3 if full and partial else 0.0
    # Partial matches rank below every full match, in their own BM25 order; the raw
    # score is kept beside the shifted one.
    matches = [(rid, s, s, "all") for rid, s in full] + \
        [(rid, s + shift, s, "some") for rid, s in partial]
    matches = matches[:limit]
    cases = store.cases_of_reports([m[0] for m in matches])
    hits: list[TextHit] = []
    seen: set[int] = set()
    for report_id, score, raw, words in matches:
        for case_id, location, labels in cases.get(report_id, []):
            if case_id in seen:
                continue
            seen.add(case_id)
            rank = len(hits) + 1
            hits.append(TextHit(rank, case_id, report_id, score, location, labels, rankers={
                "bm25": {"rank": rank, "score": raw, "words": words}}))
            if len(hits) >= k:
                break
        if len(hits) >= k:
            break
    return [_with_snippet(store, h, query) for h in hits]


def best_sentence(text: str, query: TextQuery) -> str:
    """Return the report sentence that holds most of the query's concepts, in their polarity.

    Synonyms count ("the heart is enlarged" for "cardiomegaly"), as in the ranking.
    """
    concepts = ReportRanker.concepts(query.affirmed, query.negated)
    best, best_score = "", 0
    for sentence in split_sentences(text):
        s = analyse_sentence(sentence)
        aff, neg = set(tokens(s.affirmed, ())), set(tokens(s.negated, ()))
        score = 0
        for polarity, alternatives in concepts:
            wanted = aff if polarity else neg
            score += any(all(w in wanted for w in finding) and all(w in aff | neg for w in context)
                         for finding, context in alternatives)
        if score > best_score:
            best, best_score = sentence, score
    return best


def _with_snippet(store: ReportStore, hit: TextHit, query: TextQuery) -> TextHit:
    report = store.report(hit.report_id)
    return replace(hit, snippet=best_sentence(searchable_text(report.sections), query))
