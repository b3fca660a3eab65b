"""Training straight from a MedViewer library: ``python -m models.train --library LIB``."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

from models.library_data import LibraryDataError, read_library  # noqa: E402
from test_retrieval_support import Spec, make_library  # noqa: E402


def labelled_specs(n: int = 6) -> list[Spec]:
    specs = [Spec(f"c{i}.png", 200 + i, f"C{i}", "Cardiomegaly") for i in range(n)]
    specs += [Spec(f"n{i}.png", 30 + i, f"N{i}", "No Finding") for i in range(n)]
    return specs


def test_read_library_gives_pixels_patients_and_labels(tmp_path):
    library = make_library(tmp_path, labelled_specs(2) + [Spec("u.png", 90, "U", "")])
    path = library.path
    library.close()
    records = read_library(path)
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in records}
    assert "u.png" not in by_name  # unlabelled: not known to be normal, so not a negative
    assert by_name["c0.png"].labels == ("Cardiomegaly",) and by_name["c0.png"].patient_id == "C0"
    assert by_name["n1.png"].is_normal and by_name["n1.png"].image.shape[:2] == (16, 16)
    assert int(by_name["c1.png"].image.mean()) == 201  # the pixels as displayed
    assert len(read_library(path, require_labels=False)) == 5


def test_an_unlabelled_library_is_a_clear_error(tmp_path):
    library = make_library(tmp_path, [Spec("u.png", 90, "U", "")])
    path = library.path
    library.close()
    with pytest.raises(LibraryDataError, match="none of its 1 cases has a label.*models.pretrain"):
        read_library(path)


def test_a_missing_library_is_an_error_and_is_not_created(tmp_path):
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(LibraryDataError, match="no such library"):
        read_library(missing)
    assert not missing.exists()


def test_models_train_from_a_library(tmp_path, capsys):
    from models.train import main

    library = make_library(tmp_path, labelled_specs(6))
    path = library.path
    library.close()
    out = tmp_path / "run"
    code = main(["--library", str(path), "--findings", "Cardiomegaly", "--model", "custom", "--patch-size", "8",
                 "--embed-dim", "16", "--depth", "1", "--num-heads", "2", "--input-size", "16", "--resize", "16",
                 "--epochs", "1", "--split", "0.5,0.25,0.25", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["source"].startswith("library ")
    assert summary["data"]["patients"]["train"] + summary["data"]["patients"]["val"] + \
        summary["data"]["patients"]["test"] == 12
    trained = summary["data"]["trained_on"]
    assert len(trained["patient_sha256"]) == summary["data"]["patients"]["train"] + summary["data"]["patients"]["val"]


def test_models_train_on_an_unlabelled_library_exits_2(tmp_path, capsys):
    from models.train import main

    library = make_library(tmp_path, [Spec("u.png", 90, "U", "")])
    path = library.path
    library.close()
    assert main(["--library", str(path), "--out", str(tmp_path / "r")]) == 2
    assert "has a label" in capsys.readouterr().err
