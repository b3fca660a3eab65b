"""Split report text into words said to be present and words said to be absent.

A NegEx-style rule set (Chapman et al. 2001): a *pre-negation* cue ("no",
"without", "negative for", "no evidence of") negates the words after it, a
*post-negation* cue ("is not seen", "has resolved", "ruled out") the words
before it, up to a *termination* cue ("but", "however", "although", "except")
or the end of the clause (``;``, ``:`` or the sentence).  *Pseudo-negations*
("no change", "not only", "no interval change") look like cues but negate
nothing; so do NegEx's uncertainty phrases ("cannot exclude", "cannot be
excluded", "not ruled out"): a finding that cannot be excluded is possible,
not absent.  At each word the longest cue of any kind wins, so "no longer
seen" (post) beats "no" (pre) and "not be excluded" (pseudo) beats "not".
Commas do not end a scope, so lists stay negated: "no focal consolidation,
effusion, or pneumothorax".

References
----------
Chapman WW, Bridewell W, Hanbury P, Cooper GF, Buchanan BG. A simple algorithm
for identifying negated findings and diseases in discharge summaries.
J Biomed Inform 2001;34(5):301-10.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Bumped whenever a rule changes: libraries re-split their stored report words
# (:meth:`medviewer.reports.store.ReportStore.refresh_terms`).
RULES_VERSION = 2

# Cues are matched on lower-case word sequences; longer cues first.
PRE_NEGATION = (
    "no evidence of", "no signs of", "no sign of", "no radiographic evidence of",
    "negative for", "free of", "absence of", "rule out", "ruled out", "no", "not", "without",
    "never", "nor", "neither", "denies", "resolution of",
)
POST_NEGATION = (
    "is not seen", "are not seen", "not seen", "no longer seen", "no longer visible",
    "no longer present", "no longer identified", "not clearly seen", "not visualized",
    "not visualised", "not demonstrated", "is not identified", "are not identified",
    "not identified", "is absent", "are absent", "absent", "has resolved", "have resolved",
    "resolved", "was ruled out", "is excluded", "excluded", "is not present", "are not present",
)
PSEUDO_NEGATION = (
    "no change", "no interval change", "no significant change", "no new change", "not only",
    "not necessarily", "without change", "no increase", "no decrease", "not changed",
    "gram negative",
    # Uncertainty, not negation (NegEx "possible" phrases): the finding stays affirmed.
    "cannot exclude", "cannot be excluded", "can not be excluded", "can't exclude",
    "can't be excluded", "not be excluded", "not excluded", "cannot rule out",
    "cannot be ruled out", "not be ruled out", "not ruled out", "not been ruled out",
    "not entirely excluded", "may not be excluded", "difficult to exclude", "to be excluded",
)
TERMINATION = (
    "but", "however", "although", "though", "except", "apart from", "aside from", "yet",
    "which", "whereas", "otherwise", "nevertheless", "still",
)
# Words a negation's scope reaches at most (NegEx uses 5; radiology lists run longer).
MAX_SCOPE = 8

_WORD = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*|[;:]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+|(?<=[a-z])\.(?=[A-Z])")


@dataclass(frozen=True)
class Sentence:
    """One sentence of a report with its words split by negation.

    Attributes
    ----------
    text : str
        The sentence as written (stripped).
    affirmed : tuple of str
        Lower-case words outside every negation scope (cue words excluded).
    negated : tuple of str
        Lower-case words inside a negation scope.
    """

    text: str
    affirmed: tuple[str, ...]
    negated: tuple[str, ...]

    @property
    def is_negated(self) -> bool:
        """Return True when the sentence negates something and affirms nothing but filler."""
        return bool(self.negated) and not (set(self.affirmed) - STOP_WORDS)


# Words that carry no finding; dropped from queries so "cardiomegaly with effusion"
# does not require the report to contain "with".
STOP_WORDS = frozenset(
    "a an and are as at be been by for from has have in is it its of on or the there this to "
    "was were with seen noted present identified evidence demonstrated again".split())


def split_sentences(text: str) -> list[str]:
    """Split report text into sentences (periods inside numbers, "2.5 cm", do not split)."""
    parts = (p.strip() for p in _SENTENCE_END.split(text or ""))
    return [p for p in parts if p and _WORD.search(p)]


def _by_first_word(cues: tuple[str, ...]) -> dict[str, list[list[str]]]:
    table: dict[str, list[list[str]]] = {}
    for cue in sorted(cues, key=lambda c: -len(c.split())):  # longest first
        parts = cue.split()
        table.setdefault(parts[0], []).append(parts)
    return table


_PSEUDO, _PRE, _POST, _TERMINATION = (_by_first_word(c) for c in (
    PSEUDO_NEGATION, PRE_NEGATION, POST_NEGATION, TERMINATION))


def _match(words: list[str], i: int, table: dict[str, list[list[str]]]) -> int:
    """Return the length in words of the cue (from ``table``) starting at ``words[i]``, else 0."""
    for parts in table.get(words[i], ()):
        if words[i:i + len(parts)] == parts:
            return len(parts)
    return 0


def analyse_sentence(text: str) -> Sentence:
    """Split one sentence's words into affirmed and negated."""
    words = [w.lower() for w in _WORD.findall(text)]
    negated = [False] * len(words)
    cue = [False] * len(words)
    i = 0
    while i < len(words):
        # The longest cue starting here, of any kind (ties: pseudo, then pre, then post).
        kind, n = max(((k, _match(words, i, t)) for k, t in
                       (("pseudo", _PSEUDO), ("pre", _PRE), ("post", _POST))),
                      key=lambda kn: kn[1])
        if not n:
            i += 1
            continue
        for j in range(i, i + n):
            cue[j] = True
        if kind == "pre":
            j, reach = i + n, 0
            while j < len(words) and reach < MAX_SCOPE and words[j] not in (";", ":") \
                    and not _match(words, j, _TERMINATION):
                negated[j] = True
                j += 1
                reach += 1
        elif kind == "post":
            j, reach = i - 1, 0
            while j >= 0 and reach < MAX_SCOPE and words[j] not in (";", ":") \
                    and not _match(words, j, _TERMINATION) and not cue[j]:
                negated[j] = True
                j -= 1
                reach += 1
        i += n
    affirmed = tuple(w for w, neg, c in zip(words, negated, cue) if not neg and not c
                     and w not in (";", ":"))
    negs = tuple(w for w, neg, c in zip(words, negated, cue) if neg and not c)
    return Sentence(text.strip(), affirmed, negs)


def analyse(text: str) -> list[Sentence]:
    """Split a report into sentences, each with its words split by negation."""
    return [analyse_sentence(s) for s in split_sentences(text)]
