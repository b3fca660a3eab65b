"""Report outputs: JSON-able dict, tidy results CSV, standalone HTML."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser

import pytest

from medviewer.stats import analyse_reader_study, render_html, write_results_csv
from medviewer.stats.report_csv import RESULT_COLUMNS
from medviewer.stats.simulate import simulate_picks


@pytest.fixture(scope="module")
def report():
    table = simulate_picks(4, 30, skip_rate=0.1, unfinished=[0.5], seed=8)
    return analyse_reader_study(table, n_bootstrap=200, seed=3, by=["modality"])


def test_dict_is_strict_json_with_the_documented_keys(report):
    data = report.to_dict()
    text = json.dumps(data, allow_nan=False)  # NaN must have become null
    back = json.loads(text)
    for key in ("fleiss_kappa", "cohen_kappa_consensus_model",
                "percent_agreement_consensus_model", "gwet_ac1", "krippendorff_alpha"):
        assert isinstance(back[key], float)
        assert len(back[f"{key}_ci"]) == 2
        assert back[f"{key}_ci"][0] <= back[key] <= back[f"{key}_ci"][1]
    assert set(back["readers"]) == {"R1", "R2", "R3", "R4"}
    for reader in back["readers"].values():
        assert {"agreement", "cohen_kappa_model", "agreement_ci",
                "cohen_kappa_model_ci"} <= set(reader)
    assert back["bootstrap"] == {"replicates": 200, "seed": 3, "confidence": 0.95,
                                 "unit": "query", "method": "percentile"}
    assert set(back["groups"]["modality"]) == {"CT", "CXR"}
    assert back["groups"]["modality"]["CT"]["groups"] == {}
    assert back["missing"]["policy"]["fleiss_kappa"]
    assert back["human_variability"]["position"] in {"within", "above", "below"}


def test_nan_becomes_null():
    single = analyse_reader_study(simulate_picks(1, 5, seed=0), n_bootstrap=20)
    data = json.loads(json.dumps(single.to_dict(), allow_nan=False))
    assert data["fleiss_kappa"] is None
    assert data["fleiss_kappa_ci"] == [None, None]
    assert data["human_variability"]["model_within"] is None


def test_results_csv_is_tidy(report, tmp_path):
    path = write_results_csv(report, tmp_path / "results.csv")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == RESULT_COLUMNS
    overall = [r for r in rows if r["group_column"] == ""]
    assert {r["statistic"] for r in overall if r["reader"] == ""} == set(report.coefficients)
    fleiss = next(r for r in overall if r["statistic"] == "fleiss_kappa")
    assert float(fleiss["estimate"]) == pytest.approx(report.fleiss_kappa.estimate)
    per_reader = [r for r in overall if r["reader"] == "R2"]
    assert {r["statistic"] for r in per_reader} == {"agreement", "cohen_kappa_model",
                                                    "kappa_vs_other_readers"}
    ct = [r for r in rows if r["group_value"] == "CT"]
    assert len(ct) == len(overall)


def test_html_is_standalone_and_explains_missing_ratings(report):
    page = render_html(report)

    class Collector(HTMLParser):
        tags: list[str] = []
        external: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            for name, value in attrs:
                if name in {"src", "href"}:
                    self.external.append(value)

    parser = Collector()
    parser.feed(page)
    assert parser.tags.count("table") >= 4
    assert not parser.external  # nothing to fetch: attachable as one file
    assert "How missing ratings were handled" in page
    assert report.missing.summary.split(".")[0] in page
    assert "Definitions" in page and "Krippendorff" in page
    assert "By modality" in page
    assert "<svg" in page
    assert f"{report.fleiss_kappa.estimate:.3f}" in page
