"""Evaluation that cannot mislead: held-out libraries evaluated whole, p-value warnings, literal Opacity labels."""

from __future__ import annotations

import hashlib
import json

import pytest

import medviewer.cli.main as cli_main
from medviewer.retrieval.catalog import read_catalog
from medviewer.retrieval.evaluate import p_value_warning, task_pool
from medviewer.services.retrieval import split_for_record
from test_retrieval_support import Spec, make_library


def sha16(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_opacity_counts_the_literal_opacity_labels(tmp_path):
    specs = [Spec("a.png", 200, "A", "Opacity"), Spec("b.png", 190, "B", "Lung Opacity"),
             Spec("c.png", 180, "C", "Pneumonia"), Spec("n1.png", 20, "N1"), Spec("n2.png", 30, "N2"),
             Spec("n3.png", 40, "N3")]
    library = make_library(tmp_path, specs)
    pool = task_pool(read_catalog(library).cases, "Opacity", split="all")
    library.close()
    assert pool.available_positives == 3 and pool.available_negatives == 3


@pytest.mark.parametrize(("queries", "smallest", "warned"), [(4, 2, True), (30, 4, True), (19, 9, True),
                                                             (20, 5, False), (200, 100, False)])
def test_p_value_warning_below_20_queries_or_5_per_class(queries, smallest, warned):
    text = p_value_warning(queries, smallest)
    assert bool(text) is warned
    if warned:
        assert f"only {queries} queries" in text and "not evidence" in text


def test_auto_split_is_all_on_a_held_out_library_and_test_on_the_training_one(tmp_path):
    specs = [Spec(f"p{i}.png", 200 + i, f"P{i}", "Cardiomegaly") for i in range(4)]
    specs += [Spec(f"n{i}.png", 20 + i, f"N{i}") for i in range(4)]
    library = make_library(tmp_path, specs)
    catalog = read_catalog(library)
    library.close()
    assert split_for_record(catalog, None)[0] == "test"  # no record: the recipe's split
    other = {"patient_sha256": [sha16("someone-else")], "image_sha256": ["0" * 16]}
    split, reason = split_for_record(catalog, other)
    assert split == "all" and "every case is evaluated" in reason
    seen_patient = {"patient_sha256": [sha16("P2")], "image_sha256": []}
    split, reason = split_for_record(catalog, seen_patient)
    assert split == "test" and reason.startswith("1 of the library's 8 cases")
    from medviewer.fileio import sha256_file

    seen_image = {"patient_sha256": [], "image_sha256": [sha256_file(tmp_path / "images" / "n3.png")[:16]]}
    assert split_for_record(catalog, seen_image)[0] == "test"


def test_eval_retrieval_on_a_held_out_library_uses_every_case_and_warns_on_p(tmp_path, monkeypatch, capsys):
    from medviewer.inference.testing import write_toy_bundle

    specs = [Spec(f"p{i}.png", 200 + i, f"P{i}", "Cardiomegaly") for i in range(4)]
    specs += [Spec(f"n{i}.png", 20 + i, f"N{i}") for i in range(4)]
    library = make_library(tmp_path, specs)
    lib = library.path
    library.close()
    bundle = write_toy_bundle(tmp_path / "toy")
    meta = json.loads((bundle / "metadata.json").read_text())
    meta["training_data"]["trained_on"] = {"patient_sha256": [sha16("elsewhere")], "image_sha256": []}
    (bundle / "metadata.json").write_text(json.dumps(meta))
    monkeypatch.setattr("sys.argv", ["medviewer"])
    code = cli_main.main(["eval", "retrieval", "--library", str(lib), "--model", str(bundle), "--baseline",
                          "pixels", "--task", "Cardiomegaly", "-k", "3"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0].startswith("split: all (none of the library's 8 cases")
    assert "8 queries" in out and "WARNING: only 8 queries" in out
