"""``medviewer index``, ``search`` and ``eval retrieval``: exit codes and JSON shapes."""

from __future__ import annotations

import json

import pytest

import medviewer.cli.main as cli_main

from test_retrieval_support import FLAT_SPECS, Spec, make_library, write_image

RETRIEVAL_COMMANDS = ["medviewer.cli.index_cmd", "medviewer.cli.search_cmd", "medviewer.cli.eval_cmd"]


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run ``medviewer`` with the retrieval commands registered; return (exit code, stdout, stderr)."""
    modules = cli_main.COMMAND_MODULES + [m for m in RETRIEVAL_COMMANDS if m not in cli_main.COMMAND_MODULES]
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", modules)

    def run(*argv):
        code = cli_main.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def cli_library(tmp_path):
    library = make_library(tmp_path, FLAT_SPECS)
    path = library.path
    library.close()
    return path, tmp_path / "images"


def test_index_build_status_and_search_json(run_cli, cli_library):
    lib, images = cli_library
    code, out, err = run_cli("search", "--library", lib, "--model", "pixels", images / "c.png", "--json")
    assert code == 2 and "index build" in err  # no index yet: told how to make one
    code, out, _ = run_cli("index", "build", "--library", lib, "--model", "pixels", "--json")
    report = json.loads(out)
    assert code == 0 and report["count"] == 10 and report["kind"] == "exact" and report["metric"] == "l2"
    code, out, _ = run_cli("index", "status", "--library", lib, "--model", "pixels", "--json")
    assert code == 0 and json.loads(out)["state"] == "ready"

    code, out, _ = run_cli("search", "--library", lib, "--model", "pixels", images / "c.png", "-k", "3",
                           "--farthest", "2", "--json")
    result = json.loads(out)
    assert code == 0 and set(result) >= {"nearest", "farthest"}
    assert [len(result["nearest"]), len(result["farthest"])] == [3, 2]
    for hit in result["nearest"] + result["farthest"]:
        assert set(hit) >= {"case", "path", "distance", "labels"}
        assert isinstance(hit["case"], int) and isinstance(hit["labels"], list)
    assert result["nearest"][0]["path"].endswith("b.png")  # 20 vs 30: nearest
    assert result["farthest"][0]["path"].endswith("j.png")
    assert result["vote"]["total"] == 3

    code, out, _ = run_cli("search", "--library", lib, "--model", "pixels", images / "c.png", "-k", "2",
                           "--label", "Emphysema", "--label", "Effusion", "--region", "0,0,8,8", "--json")
    result = json.loads(out)
    assert [h["path"].rsplit("/", 1)[1] for h in result["nearest"]] == ["g.png", "j.png"]
    assert result["region"] == {"x": 0, "y": 0, "width": 8, "height": 8}


def test_stale_index_is_reported_by_status_and_refused_by_search(run_cli, cli_library):
    lib, images = cli_library
    run_cli("index", "build", "--library", lib, "--model", "pixels")
    run_cli("import", "--library", lib, images)  # the same files again: the index stays ready
    code, out, _ = run_cli("index", "status", "--library", lib, "--model", "pixels", "--json")
    assert code == 0 and json.loads(out)["state"] == "ready"
    write_image(images / "new.png", Spec("new.png", 33))
    run_cli("import", "--library", lib, images)
    code, out, _ = run_cli("index", "status", "--library", lib, "--model", "pixels", "--json")
    status = json.loads(out)
    assert code == 1 and status["state"] == "stale" and status["added"] == 1 and status["action"] == "update"
    code, _, err = run_cli("search", "--library", lib, "--model", "pixels", images / "c.png")
    assert code == 2 and "changed since indexing" in err
    code, out, _ = run_cli("index", "build", "--library", lib, "--model", "pixels", "--json")
    assert json.loads(out)["embedded"] == 1


def test_index_build_kind_hnsw_reports_recall(run_cli, cli_library):
    lib, _ = cli_library
    code, out, _ = run_cli("index", "build", "--library", lib, "--model", "pixels", "--kind", "hnsw", "--json")
    report = json.loads(out)
    assert code == 0 and report["kind"] == "hnsw" and report["recall"]["recall"] >= 0.95
    code, out, _ = run_cli("index", "build", "--library", lib, "--model", "pixels", "--kind", "hnsw")
    assert "up to date" in out


def test_eval_retrieval_json_keys_and_baseline(run_cli, tmp_path):
    specs = [Spec(f"p{i:02d}.png", 200 + i, f"P{i}", "Cardiomegaly") for i in range(8)]
    specs += [Spec(f"n{i:02d}.png", 20 + i, f"Q{i}", "No Finding") for i in range(10)]
    specs += [Spec("x.png", 120, "X", "Nodule")]
    library = make_library(tmp_path, specs)
    lib = library.path
    library.close()
    code, out, _ = run_cli("eval", "retrieval", "--library", lib, "--baseline", "pixels", "--task",
                           "Cardiomegaly", "--split", "all", "-k", "3", "--json")
    result = json.loads(out)
    assert code == 0
    assert set(result) >= {"task", "k", "queries", "map_at_k", "ndcg_at_k", "precision_at_k", "p_value"}
    assert (result["task"], result["k"], result["queries"]) == ("Cardiomegaly", 3, 16)
    # Bright positives, dark negatives: raw pixels separate them perfectly.
    assert result["map_at_k"] == 1.0 and result["ndcg_at_k"] == 1.0 and result["p_value"] < 0.001
    code, _, err = run_cli("eval", "retrieval", "--library", lib, "--baseline", "pixels", "--task",
                           "Emphysema", "--split", "all")
    assert code == 2 and "too few" in err
