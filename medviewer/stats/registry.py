"""The one list of reader-study statistics: keys, names, how each is computed, missing ratings.

The analysis, the JSON/CSV/HTML reports and the CLI all read these tables, so a statistic is
added (or renamed) in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: How each statistic treats missing ratings (skipped queries, unfinished readers).
MISSING_POLICY = {
    "fleiss_kappa": (
        "All items with at least two ratings. With unequal numbers of ratings per item, "
        "Gwet's (2014) form of Fleiss' kappa: observed agreement averaged over items with "
        "two or more ratings, category shares averaged over items with one or more. It "
        "equals Fleiss' (1971) kappa when every item has the same number of ratings."
    ),
    "gwet_ac1": "As Fleiss' kappa: Gwet's AC1 for many raters with missing ratings (Gwet 2014).",
    "krippendorff_alpha": (
        "Every pairable rating: all items with at least two ratings, whoever rated them; "
        "items with a single rating are not pairable."
    ),
    "fleiss_kappa_complete": (
        "Items every reader rated only (Fleiss 1971 on the complete cases), as a "
        "sensitivity check on the handling above."
    ),
    "consensus": (
        "Majority of the readers who rated the item (a tie counts as not picked); items "
        "nobody rated are left out. The number of readers behind each item is in "
        "raters_per_item."
    ),
    "reader": (
        "Each reader's agreement and kappa with the model use that reader's rated items "
        "only; kappa against the other readers uses items the reader and at least one "
        "other reader rated."
    ),
    "bootstrap": (
        "Whole queries are resampled with their missing pattern; replicates in which a "
        "statistic is undefined are left out of its interval and counted."
    ),
}


@dataclass(frozen=True)
class Statistic:
    """One headline coefficient of a reader study.

    Attributes
    ----------
    key : str
        Its key in results, JSON and CSV.
    name : str
        Its name in reports.
    method : str
        How it is computed, with its missing-ratings policy, in words.
    items : str
        The per-query column that counts the items it uses.
    """

    key: str
    name: str
    method: str
    items: str


#: Headline coefficients, in report order.
STATISTICS: tuple[Statistic, ...] = (
    Statistic("fleiss_kappa", "Fleiss' kappa (inter-reader)",
              "Fleiss' kappa across readers, categories {0,1}. " + MISSING_POLICY["fleiss_kappa"],
              "n_pairable"),
    Statistic("gwet_ac1", "Gwet's AC1 (inter-reader)",
              "Gwet's AC1 across readers (Gwet 2008). " + MISSING_POLICY["gwet_ac1"],
              "n_pairable"),
    Statistic("krippendorff_alpha", "Krippendorff's alpha (inter-reader)",
              "Krippendorff's alpha across readers, nominal. "
              + MISSING_POLICY["krippendorff_alpha"], "n_pairable"),
    Statistic("fleiss_kappa_complete", "Fleiss' kappa, items every reader rated",
              "Fleiss' kappa across readers. " + MISSING_POLICY["fleiss_kappa_complete"], "c_n"),
    Statistic("cohen_kappa_consensus_model", "Cohen's kappa, consensus vs model",
              "Cohen's kappa, reader consensus vs model. " + MISSING_POLICY["consensus"],
              "n_rated"),
    Statistic("percent_agreement_consensus_model", "Percent agreement, consensus vs model",
              "Share of items where consensus and model agree. " + MISSING_POLICY["consensus"],
              "n_rated"),
    Statistic("gwet_ac1_consensus_model", "Gwet's AC1, consensus vs model",
              "Gwet's AC1 for two raters, consensus vs model. " + MISSING_POLICY["consensus"],
              "n_rated"),
    Statistic("krippendorff_alpha_consensus_model", "Krippendorff's alpha, consensus vs model",
              "Krippendorff's alpha, consensus vs model. " + MISSING_POLICY["consensus"],
              "n_rated"),
)

#: Per-reader statistics and how each is computed.
READER_METHODS: Mapping[str, str] = {
    "reader_agreement": "Share of the reader's rated items where reader and model agree.",
    "reader_cohen_kappa_model": "Cohen's kappa, reader vs model, on the reader's rated items.",
    "reader_kappa_vs_others": (
        "Cohen's kappa, reader vs the majority of the other readers who rated the item "
        "(tie = not picked), on items the reader and another reader rated."
    ),
}

#: The missing-ratings notes of a report: (key in the report, heading, key of MISSING_POLICY).
POLICY_SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("fleiss_kappa", "Fleiss' kappa", "fleiss_kappa"),
    ("gwet_ac1", "Gwet's AC1", "gwet_ac1"),
    ("krippendorff_alpha", "Krippendorff's alpha", "krippendorff_alpha"),
    ("fleiss_kappa_complete", "Fleiss' kappa, complete items", "fleiss_kappa_complete"),
    ("consensus_vs_model", "Consensus vs model", "consensus"),
    ("per_reader", "Per reader", "reader"),
    ("bootstrap", "Intervals", "bootstrap"),
)

#: The statistics compared across groups (modality, label group), in the table's order.
GROUP_TABLE = ("fleiss_kappa", "cohen_kappa_consensus_model", "percent_agreement_consensus_model",
               "gwet_ac1", "krippendorff_alpha")

COEFFICIENT_NAMES: Mapping[str, str] = {s.key: s.name for s in STATISTICS}
METHODS: Mapping[str, str] = {**{s.key: s.method for s in STATISTICS}, **READER_METHODS}
ITEM_COUNT: Mapping[str, str] = {s.key: s.items for s in STATISTICS}
