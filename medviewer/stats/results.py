"""Result objects of a reader-study analysis and their JSON-able form.

Frozen dataclasses: each statistic is an :class:`Estimate` (estimate, interval,
n and how it was computed), gathered in a :class:`ReaderStudyReport`.
``to_dict`` gives plain Python (NaN becomes ``None``) ready for ``json.dump``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from medviewer.stats import registry

SCHEMA = "medviewer.reader-study-stats/1"

#: Headline coefficients, in report order, with their display names (the registry's).
COEFFICIENT_NAMES = registry.COEFFICIENT_NAMES


def _number(value: float | None) -> float | None:
    """Return ``value`` as a float, or ``None`` when missing or not finite (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Estimate:
    """One statistic with its bootstrap interval.

    Attributes
    ----------
    name : str
        Key of the statistic (e.g. ``fleiss_kappa``).
    estimate : float
        Point estimate on all the data; NaN when undefined.
    ci : tuple of float
        (low, high) percentile interval over query resamples; NaN without bootstrap.
    n : int
        Items the estimate uses.
    n_queries : int
        Queries those items come from (the resampling unit).
    method : str
        How it was computed, including how missing ratings were treated.
    n_undefined : int
        Bootstrap replicates in which the statistic was undefined (left out of the interval).
    """

    name: str
    estimate: float
    ci: tuple[float, float]
    n: int
    n_queries: int
    method: str = ""
    n_undefined: int = 0

    def to_dict(self) -> dict:
        """Return the estimate as JSON-able values."""
        return {
            "estimate": _number(self.estimate),
            "ci": [_number(self.ci[0]), _number(self.ci[1])],
            "n": self.n,
            "n_queries": self.n_queries,
            "method": self.method,
            "bootstrap_undefined": self.n_undefined,
        }


@dataclass(frozen=True)
class ReaderResult:
    """Agreement of one reader with the model and with the other readers.

    Attributes
    ----------
    reader : str
    agreement : Estimate
        Share of the reader's rated items where reader and model agree.
    cohen_kappa_model : Estimate
        Cohen's kappa, reader vs model.
    kappa_vs_others : Estimate
        Cohen's kappa, reader vs the consensus of the other readers.
    queries_rated, queries_partial, queries_skipped, queries_not_read : int
        Queries with every, some, none (rows with blank ``picked``) and no rows.
    """

    reader: str
    agreement: Estimate
    cohen_kappa_model: Estimate
    kappa_vs_others: Estimate
    queries_rated: int
    queries_partial: int
    queries_skipped: int
    queries_not_read: int

    def to_dict(self) -> dict:
        """Return the reader's results as JSON-able values."""
        out: dict = {}
        for key, est in (
            ("agreement", self.agreement),
            ("cohen_kappa_model", self.cohen_kappa_model),
            ("kappa_vs_other_readers", self.kappa_vs_others),
        ):
            out[key] = _number(est.estimate)
            out[f"{key}_ci"] = [_number(est.ci[0]), _number(est.ci[1])]
        out.update(
            n_items=self.agreement.n,
            n_queries=self.agreement.n_queries,
            queries_rated=self.queries_rated,
            queries_partial=self.queries_partial,
            queries_skipped=self.queries_skipped,
            queries_not_read=self.queries_not_read,
        )
        return out


@dataclass(frozen=True)
class HumanVariability:
    """Whether the model agrees with the readers' consensus as well as a reader does.

    Attributes
    ----------
    model_kappa : float
        Cohen's kappa, consensus of all readers vs model.
    reader_kappas : mapping of str to float
        Cohen's kappa of each reader vs the consensus of the other readers.
    low, high : float
        Range of ``reader_kappas`` (NaN with fewer than two readers).
    position : str
        ``"within"``, ``"above"``, ``"below"`` the range, or ``"undetermined"``.
    method : str
    """

    model_kappa: float
    reader_kappas: Mapping[str, float]
    low: float
    high: float
    position: str
    method: str = ""

    @property
    def model_within(self) -> bool | None:
        """True when the model's kappa lies within the readers' range; None if undetermined."""
        return None if self.position == "undetermined" else self.position == "within"

    def to_dict(self) -> dict:
        """Return the comparison as JSON-able values."""
        return {
            "model_kappa": _number(self.model_kappa),
            "reader_kappas": {k: _number(v) for k, v in self.reader_kappas.items()},
            "range": [_number(self.low), _number(self.high)],
            "model_within": self.model_within,
            "position": self.position,
            "method": self.method,
        }


@dataclass(frozen=True)
class MissingRatings:
    """How complete the ratings are and how each statistic handles the gaps.

    Attributes
    ----------
    ratings_expected : int
        Items x readers.
    ratings_present : int
        Ratings given (0 or 1).
    ratings_skipped : int
        Rows with blank ``picked`` (the reader skipped the query).
    ratings_not_read : int
        Reader-item pairs without a row (unfinished readers, unread queries).
    items_complete : int
        Items every reader rated.
    items_unrated : int
        Items nobody rated (left out of every statistic).
    queries_complete : int
        Queries every reader rated completely.
    raters_per_item : mapping of int to int
        How many items have k ratings.
    policy : mapping of str to str
        Statistic -> how missing ratings are handled.
    summary : str
        One paragraph for reports.
    """

    ratings_expected: int
    ratings_present: int
    ratings_skipped: int
    ratings_not_read: int
    items_complete: int
    items_unrated: int
    queries_complete: int
    raters_per_item: Mapping[int, int]
    policy: Mapping[str, str]
    summary: str

    def to_dict(self) -> dict:
        """Return the missing-data account as JSON-able values."""
        return {
            "ratings_expected": self.ratings_expected,
            "ratings_present": self.ratings_present,
            "ratings_skipped": self.ratings_skipped,
            "ratings_not_read": self.ratings_not_read,
            "items_complete": self.items_complete,
            "items_unrated": self.items_unrated,
            "queries_complete": self.queries_complete,
            "raters_per_item": {str(k): v for k, v in self.raters_per_item.items()},
            "policy": dict(self.policy),
            "summary": self.summary,
        }


@dataclass(frozen=True)
class BootstrapSettings:
    """How the intervals were obtained."""

    replicates: int
    seed: int | None
    confidence: float
    unit: str = "query"
    method: str = "percentile"

    def to_dict(self) -> dict:
        """Return the settings as JSON-able values."""
        return {
            "replicates": self.replicates,
            "seed": self.seed,
            "confidence": self.confidence,
            "unit": self.unit,
            "method": self.method,
        }


@dataclass(frozen=True)
class GroupBreakdown:
    """The full analysis restricted to the items of one value of a grouping column."""

    column: str
    value: str
    report: ReaderStudyReport


def _coefficient(name: str) -> property:
    """Return a read-only attribute giving one headline coefficient of the report."""
    return property(lambda self: self.coefficients[name], doc=f"{COEFFICIENT_NAMES[name]}.")


@dataclass(frozen=True)
class ReaderStudyReport:
    """Agreement statistics of a reader study (see DESIGN.md, "Reader study").

    Attributes
    ----------
    source : str
        Where the picks came from.
    n_readers, n_queries, n_items : int
    coefficients : mapping of str to Estimate
        Keys of :data:`COEFFICIENT_NAMES`.
    readers : tuple of ReaderResult
    human_variability : HumanVariability
    ties : int
        Items whose available readers split evenly (consensus counts them as not picked).
    missing : MissingRatings
    bootstrap : BootstrapSettings
    groups : tuple of GroupBreakdown
        Breakdowns by grouping columns, in column then value order.
    warnings : tuple of str
        Things a reader of the report should know (e.g. picks not 5 of 10).
    """

    source: str
    n_readers: int
    n_queries: int
    n_items: int
    coefficients: Mapping[str, Estimate]
    readers: tuple[ReaderResult, ...]
    human_variability: HumanVariability
    ties: int
    missing: MissingRatings
    bootstrap: BootstrapSettings
    groups: tuple[GroupBreakdown, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    fleiss_kappa = _coefficient("fleiss_kappa")
    gwet_ac1 = _coefficient("gwet_ac1")
    krippendorff_alpha = _coefficient("krippendorff_alpha")
    fleiss_kappa_complete = _coefficient("fleiss_kappa_complete")
    cohen_kappa_consensus_model = _coefficient("cohen_kappa_consensus_model")
    percent_agreement_consensus_model = _coefficient("percent_agreement_consensus_model")
    gwet_ac1_consensus_model = _coefficient("gwet_ac1_consensus_model")
    krippendorff_alpha_consensus_model = _coefficient("krippendorff_alpha_consensus_model")

    def reader(self, name: str) -> ReaderResult:
        """Return the results of one reader."""
        for result in self.readers:
            if result.reader == name:
                return result
        raise KeyError(name)

    def to_dict(self) -> dict:
        """Return the report as JSON-able values (schema ``medviewer.reader-study-stats/1``)."""
        out: dict = {
            "schema": SCHEMA,
            "source": self.source,
            "n_readers": self.n_readers,
            "n_queries": self.n_queries,
            "n_items": self.n_items,
        }
        for name, est in self.coefficients.items():
            out[name] = _number(est.estimate)
            out[f"{name}_ci"] = [_number(est.ci[0]), _number(est.ci[1])]
        out["coefficients"] = {name: est.to_dict() for name, est in self.coefficients.items()}
        out["readers"] = {r.reader: r.to_dict() for r in self.readers}
        out["human_variability"] = self.human_variability.to_dict()
        out["consensus"] = {
            "rule": "majority of the readers who rated the item; a tie counts as not picked",
            "ties": self.ties,
        }
        out["missing"] = self.missing.to_dict()
        out["bootstrap"] = self.bootstrap.to_dict()
        groups: dict[str, dict] = {}
        for group in self.groups:
            groups.setdefault(group.column, {})[group.value] = group.report.to_dict()
        out["groups"] = groups
        out["warnings"] = list(self.warnings)
        return out
