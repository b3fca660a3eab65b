"""Smoke tests of the experiment commands (tiny settings), and their skip when data is absent."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")


def _npz(path, n=32, size=28):
    rng = np.random.default_rng(0)
    out = {}
    for split, count in (("train", n), ("val", n // 2), ("test", n // 2)):
        labels = np.arange(count) % 2
        images = rng.integers(0, 120, (count, size, size)).astype(np.uint8)
        images[labels == 1, :8, :8] = 250
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels[:, None]
    np.savez(path, **out)
    return path


def test_pe_compare_writes_its_card(tmp_path, capsys):
    from models.experiments.pe_compare import main

    code = main(["--npz", str(_npz(tmp_path / "p.npz")), "--seeds", "0", "--epochs", "1",
                 "--dim", "16", "--depth", "1", "--heads", "2", "--threads", "1",
                 "--work", str(tmp_path / "work"), "--cards", str(tmp_path / "cards")])
    assert code == 0
    result = json.loads((tmp_path / "cards" / "similarity-pe-pneumoniamnist.json").read_text())
    assert set(result["results"]) == {"learned", "similarity"}
    card = (tmp_path / "cards" / "similarity-pe-pneumoniamnist.md").read_text()
    assert "85.89" in card and "91.18" in card


def test_experiments_skip_without_shared_data(tmp_path, capsys):
    from models.experiments import cxr14, pe_compare

    assert pe_compare.main(["--npz", str(tmp_path / "absent.npz"), "--cards", str(tmp_path)]) == 0
    assert cxr14.main(["--labels", str(tmp_path / "absent.csv"), "--cards", str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("skipped") == 2
    assert not list(tmp_path.iterdir())


def test_portable_writes_paths_beside_the_repo_relative_to_it():
    from models.experiments import REPO, portable

    assert portable(str(REPO.parent / "shared" / "data" / "t.csv")) == "../shared/data/t.csv"
    assert portable(REPO / "models" / "cards") == "models/cards"
    assert portable("/elsewhere/t.csv") == "/elsewhere/t.csv"  # outside: kept, so it still names the file
    assert portable(40) == 40


def test_committed_cards_name_no_path_of_the_machine_they_were_made_on():
    from models.experiments import REPO

    def strings(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)
        elif isinstance(value, str):
            yield value

    folders = [REPO / "models" / "cards", *(p.parent for p in (REPO / "models").glob("*/metadata.json"))]
    found = [(path.name, s) for folder in folders for path in sorted(folder.glob("*.json"))
             for s in strings(json.loads(path.read_text())) if s.startswith(str(REPO.parent) + "/")]
    assert found == []
