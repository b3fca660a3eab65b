"""Query-side synonyms of common chest findings, so a phrase finds reports that say it otherwise.

Reports name one finding in several ways ("cardiomegaly", "the heart is
enlarged", "enlarged cardiac silhouette"); BM25 over words cannot bridge them.
A query word or phrase listed here becomes a *concept* with every variant of its
group as an alternative; a report matches the concept when it holds all the
words of one variant (in any order, anywhere in the report: BM25 is a bag of
words).  Only the query is expanded, so the stored index does not change.

Polarity: in each variant the *finding* words (not in :data:`CONTEXT_WORDS`)
carry the polarity the query asks for ("no cardiomegaly" needs "enlarged"
negated, as in "the heart is not enlarged"); context words ("heart", "cardiac",
"silhouette") may appear either way.

The list is small and hand-made from common radiology usage (Fleischner
Society glossary terms and their everyday variants), not learned from any
test set.  Words are matched after :func:`medviewer.reports.ranker.normalise`
(plural endings stripped), so only one form of each noun is listed.

References
----------
Hansell DM, Bankier AA, MacMahon H, et al. Fleischner Society: glossary of
terms for thoracic imaging. Radiology 2008;246(3):697-722.
"""

from __future__ import annotations

from medviewer.reports.ranker import normalise

# One group per finding; the first entry names it.  Adjective and noun forms are both
# listed because the normaliser strips plurals only ("hyperinflated" != "hyperinflation").
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("cardiomegaly", "enlarged heart", "cardiac enlargement", "enlarged cardiac silhouette",
     "enlarged cardiomediastinal silhouette"),
    ("emphysema", "emphysematous", "hyperinflation", "hyperinflated", "hyperexpanded",
     "hyperexpansion", "hyperlucent"),
    ("opacity", "consolidation", "airspace disease", "infiltrate",
     "opacification"),
    ("effusion", "pleural fluid"),
    ("atelectasis", "atelectatic", "collapse"),
    ("pneumothorax", "pneumothoraces"),
)

# Words that say where, not what: they may be negated or not in a matching report.
CONTEXT_WORDS = frozenset(
    "heart cardiac silhouette cardiomediastinal airspace pleural lung".split())


def _build():
    variants: dict[tuple[str, ...], int] = {}
    groups: list[tuple[tuple[str, ...], ...]] = []
    for index, group in enumerate(SYNONYM_GROUPS):
        forms = []
        for variant in group:
            words = tuple(normalise(w) for w in variant.split())
            forms.append(words)
            variants[words] = index
        groups.append(tuple(forms))
    # Longest variants first, so "enlarged cardiac silhouette" wins over nothing shorter.
    ordered = sorted(variants, key=lambda v: -len(v))
    return ordered, variants, groups


_ORDERED, _GROUP_OF, _GROUPS = _build()


def split_variant(words: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return (finding words, context words) of a variant; all words count as finding if none is."""
    finding = tuple(w for w in words if w not in CONTEXT_WORDS)
    context = tuple(w for w in words if w in CONTEXT_WORDS)
    return (finding, context) if finding else (words, ())


def concepts(tokens: list[str]) -> list[tuple[str, tuple[tuple[str, ...], ...]]]:
    """Group normalised query tokens into concepts: ``(name, alternatives)``.

    Tokens that spell a listed variant (in any order, anywhere in the query) become
    one concept whose alternatives are every variant of its group; each other token is
    a concept of its own with itself as the only alternative.  Order follows the
    query.
    """
    remaining = list(dict.fromkeys(tokens))
    found: list[tuple[int, str, tuple[tuple[str, ...], ...]]] = []
    groups: set[int] = set()
    for variant in _ORDERED:
        if all(w in remaining for w in variant):
            position = min(remaining.index(w) for w in variant)
            group = _GROUP_OF[variant]
            if group not in groups:  # "cardiomegaly, enlarged heart": one concept
                groups.add(group)
                found.append((position, " ".join(_GROUPS[group][0]), _GROUPS[group]))
            for w in variant:
                remaining[remaining.index(w)] = "\0"  # keep positions of the others
    order = {w: i for i, w in enumerate(dict.fromkeys(tokens))}
    found += [(order[w], w, ((w,),)) for w in remaining if w != "\0"]
    return [(name, alts) for _, name, alts in sorted(found, key=lambda f: f[0])]
