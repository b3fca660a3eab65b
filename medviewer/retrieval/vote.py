"""The label vote of a query's neighbours: "4 of 5 similar cases: Cardiomegaly".

Each neighbour votes once for each of its labels; the label with most votes
wins, ties are reported as ties (never broken silently).  Neighbours without
labels vote for nothing but count in the total, so the sentence never
overstates the agreement.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LabelVote:
    """The outcome of the vote.

    Attributes
    ----------
    label : str or None
        The winning label (the first alphabetically when tied); None when no
        neighbour has a label.
    count : int
        Its votes.
    total : int
        Neighbours that voted (all neighbours).
    counts : dict of str to int
        Votes of every label, most first.
    tied : tuple of str
        Every label sharing the top count (one label when there is no tie).
    """

    label: str | None
    count: int
    total: int
    counts: dict[str, int] = field(default_factory=dict)
    tied: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """Return the vote as a sentence for the results panel."""
        if self.total == 0:
            return "no similar cases"
        if self.label is None:
            return f"none of the {self.total} similar cases is labelled"
        noun = "case" if self.total == 1 else "cases"
        return f"{self.count} of {self.total} similar {noun}: {' / '.join(self.tied)}"

    def to_dict(self) -> dict:
        """Return the vote as JSON-friendly data."""
        return {"label": self.label, "count": self.count, "total": self.total,
                "counts": dict(self.counts), "tied": list(self.tied), "text": self.text}


def label_vote(neighbour_labels: Sequence[Iterable[str]]) -> LabelVote:
    """Count the labels of the neighbours; return the majority and the full tally."""
    counter: Counter[str] = Counter()
    for labels in neighbour_labels:
        counter.update(set(labels))
    total = len(neighbour_labels)
    if not counter:
        return LabelVote(None, 0, total)
    ordered = dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))
    top = next(iter(ordered.values()))
    tied = tuple(name for name, n in ordered.items() if n == top)
    return LabelVote(tied[0], top, total, ordered, tied)
