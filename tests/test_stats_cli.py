"""``medviewer study stats`` end to end, through the real ``medviewer`` entry point."""

from __future__ import annotations

import json

import pytest

from medviewer.cli import main as cli_main
from medviewer.stats.picks import write_picks_csv
from medviewer.stats.simulate import simulate_picks


@pytest.fixture
def run(monkeypatch, capsys):
    # Until medviewer.cli.main lists this module, register it for the test.
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", ["medviewer.cli.study_cmd"])

    def invoke(*argv):
        code = cli_main.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def picks(tmp_path):
    table = simulate_picks(5, 40, skip_rate=0.05, unfinished=[0.5], seed=21)
    return write_picks_csv(table, tmp_path / "picks.csv")


def test_stats_json(run, picks, tmp_path):
    html, results = tmp_path / "report.html", tmp_path / "results.csv"
    code, out, err = run(
        "study", "stats", "--picks", str(picks), "--json", "--bootstrap", "300", "--seed", "5",
        "--by", "modality", "--html", str(html), "--csv", str(results),
    )
    assert code == 0, err
    data = json.loads(out)
    for key in ("fleiss_kappa", "cohen_kappa_consensus_model",
                "percent_agreement_consensus_model", "gwet_ac1", "krippendorff_alpha"):
        assert isinstance(data[key], float)
        assert isinstance(data[f"{key}_ci"], list) and len(data[f"{key}_ci"]) == 2
    assert sorted(data["readers"]) == ["R1", "R2", "R3", "R4", "R5"]
    assert {"agreement", "cohen_kappa_model"} <= set(data["readers"]["R1"])
    assert data["bootstrap"]["replicates"] == 300 and data["bootstrap"]["seed"] == 5
    assert set(data["groups"]["modality"]) == {"CT", "CXR"}
    assert data["outputs"] == {"html": str(html), "csv": str(results)}
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert results.read_text().startswith("group_column,")


def test_stats_text_defaults(run, picks):
    code, out, _ = run("study", "stats", "--picks", str(picks), "--bootstrap", "100")
    assert code == 0
    assert "Fleiss' kappa (inter-reader)" in out
    assert "Missing ratings:" in out
    assert "100 bootstrap replicates over queries (seed 0)" in out


def test_bad_csv_fails_with_file_and_line(run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("reader,query,candidate,model_closest,picked\nA,q1,a,1,x\n")
    code, out, err = run("study", "stats", "--picks", str(bad), "--json")
    assert code == 2
    assert out == ""
    assert f"{bad}: line 2: picked is 'x'" in err


def test_unknown_grouping_column_fails_cleanly(run, picks):
    code, _, err = run("study", "stats", "--picks", str(picks), "--by", "site")
    assert code == 2
    assert "no column 'site'" in err


def test_study_group_has_room_for_more_subcommands():
    import argparse

    from medviewer.cli import study_cmd

    parser = argparse.ArgumentParser(prog="medviewer")
    study_subparsers = study_cmd.register(parser.add_subparsers(dest="command"))
    # Another module adds its subcommand to the same group.
    extra = study_subparsers.add_parser("audit-trail")
    extra.set_defaults(func=lambda args: 0)
    assert parser.parse_args(["study", "audit-trail"]).func(None) == 0
    args = parser.parse_args(["study", "stats", "--picks", "x.csv"])
    assert args.func is study_cmd.run_stats
    assert args.bootstrap is None and args.by == []
    with pytest.raises(SystemExit):
        parser.parse_args(["study", "stats", "--picks", "x.csv", "--bootstrap", "-1"])
