"""Reading and validating the tidy picks CSV."""

from __future__ import annotations

import numpy as np
import pytest

from medviewer.errors import MedViewerError
from medviewer.stats.errors import PicksTableError
from medviewer.stats.picks import NO_ROW, NOT_RATED, PicksTable, load_picks, write_picks_csv
from medviewer.stats.simulate import simulate_picks

HEADER = "reader,query,candidate,model_closest,picked\n"


def write(tmp_path, text, name="picks.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def two_readers(rows_b="B,q1,a,1,0\nB,q1,b,0,1\n"):
    return HEADER + "A,q1,a,1,1\nA,q1,b,0,0\n" + rows_b


def test_loads_arrays_ignoring_other_columns(tmp_path):
    text = (
        "Study,Reader,Query,Candidate,Rank,Model_Closest,Picked,Seconds\n"
        "s,A,q1,a,1,1,1,2.5\ns,A,q1,b,2,0,0,2.5\n"
        "s,B,q1,a,1,1,1,3\ns,B,q1,b,2,0,1,3\n"
        "s,A,q2,c,1,1,0,1\ns,A,q2,d,2,0,1,1\n"
    )
    table = load_picks(write(tmp_path, text))
    assert table.readers == ("A", "B")
    assert table.queries == ("q1", "q2")
    assert table.item_candidate == ("a", "b", "c", "d")
    assert table.item_query.tolist() == [0, 0, 1, 1]
    assert table.model.tolist() == [1, 0, 1, 0]
    assert table.ratings.tolist() == [[1, 1], [0, 1], [0, NO_ROW], [1, NO_ROW]]


def test_blank_picked_is_a_skip_and_pandas_values_are_accepted(tmp_path):
    text = "\ufeff" + HEADER + "A,q1,a,1.0,\nA,q1,b,0.0,NA\nB,q1,a,True,1.0\nB,q1,b,False,0\n"
    table = load_picks(write(tmp_path, text))
    assert table.ratings.tolist() == [[NOT_RATED, 1], [NOT_RATED, 0]]
    assert table.rated.tolist() == [[False, True], [False, True]]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (HEADER + "A,q1,a,1,2\n", 2, "picked is '2'"),
        (HEADER + "A,q1,a,yes,1\n", 2, "model_closest is 'yes'"),
        (HEADER + "A,q1,a,1,1\nA,q1,a,1,0\n", 3, "repeats line 2"),
        (two_readers("B,q1,a,0,0\nB,q1,b,0,1\n"), 4, "model_closest is 0"),
        (two_readers("B,q1,a,1,0\nB,q1,c,0,1\n"), 4, "query 'q1': reader 'B'"),
        (HEADER + "A,,a,1,1\n", 2, "query is empty"),
        ("reader,query,candidate,picked\nA,q1,a,1\n", 1, "no column 'model_closest'"),
        (HEADER + "A,q1,a,1\n", 2, "4 fields"),
        (HEADER.replace(",", ";") + "A;q1;a;1;1\n", 1, "semicolons"),
    ],
)
def test_validation_errors_name_file_and_line(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    with pytest.raises(PicksTableError) as info:
        load_picks(path)
    error = info.value
    assert isinstance(error, MedViewerError)
    assert error.line == line
    assert error.path == str(path)
    assert fragment in str(error)
    assert f"line {line}" in str(error)
    assert error.hint


def test_candidate_set_error_says_what_differs(tmp_path):
    text = HEADER + "".join(
        f"{r},q1,{c},{int(c in 'ab')},{int(c in 'ac')}\n" for r in "ABC" for c in "abcd"
    ) + "D,q1,a,1,1\nD,q1,b,1,0\nD,q1,c,0,1\n"
    with pytest.raises(PicksTableError) as info:
        load_picks(write(tmp_path, text))
    assert "reader 'D' lacks 'd'" in str(info.value)
    assert info.value.line == 14


def test_all_problems_are_collected(tmp_path):
    text = HEADER + "A,q1,a,1,7\nA,q1,b,0,8\nA,q1,c,0,1\n"
    with pytest.raises(PicksTableError) as info:
        load_picks(write(tmp_path, text))
    assert len(info.value.problems) == 2
    assert "and 1 more problem" in str(info.value)


def test_empty_file_missing_file_and_header_only(tmp_path):
    with pytest.raises(PicksTableError, match="empty"):
        load_picks(write(tmp_path, ""))
    with pytest.raises(PicksTableError, match="no such file"):
        load_picks(tmp_path / "absent.csv")
    with pytest.raises(PicksTableError, match="no rows"):
        load_picks(write(tmp_path, HEADER))


def test_grouping_column_must_exist_and_be_one_value_per_item(tmp_path):
    text = "reader,query,candidate,model_closest,picked,modality\n"
    with pytest.raises(PicksTableError, match="no column 'label_group'"):
        load_picks(write(tmp_path, text + "A,q1,a,1,1,CT\n"), group_columns=["label_group"])
    with pytest.raises(PicksTableError, match="modality is 'CXR'") as info:
        load_picks(
            write(tmp_path, text + "A,q1,a,1,1,CT\nB,q1,a,1,1,CXR\n"), group_columns=["modality"]
        )
    assert info.value.line == 3
    table = load_picks(write(tmp_path, text + "A,q1,a,1,1,CT\n"), group_columns=["modality"])
    assert table.groups == {"modality": ("CT",)}


def test_write_then_load_round_trips(tmp_path):
    table = simulate_picks(4, 12, skip_rate=0.2, unfinished=[0.5], seed=5)
    back = load_picks(write_picks_csv(table, tmp_path / "rt.csv"), group_columns=["modality"])
    assert back.readers == table.readers
    assert back.queries == table.queries
    assert back.item_candidate == table.item_candidate
    np.testing.assert_array_equal(back.model, table.model)
    np.testing.assert_array_equal(back.ratings, table.ratings)
    assert back.groups == table.groups


def test_from_rows_validates_like_the_csv():
    rows = [
        {"reader": "A", "query": "q", "candidate": "a", "model_closest": 1, "picked": 1},
        {"reader": "A", "query": "q", "candidate": "b", "model_closest": 0, "picked": None},
    ]
    table = PicksTable.from_rows(rows)
    assert table.ratings.tolist() == [[1], [NOT_RATED]]
    with pytest.raises(PicksTableError, match="row 2: picked is '3'"):
        PicksTable.from_rows([rows[0], {**rows[1], "picked": 3}])
    with pytest.raises(PicksTableError, match="row 1: no picked"):
        PicksTable.from_rows([{k: v for k, v in rows[0].items() if k != "picked"}])


def test_subset_keeps_readers_and_renumbers_queries():
    table = simulate_picks(3, 6, seed=1)
    sub = table.subset(np.array(table.groups["modality"]) == "CT")
    assert sub.readers == table.readers
    assert sub.queries == table.queries[1::2]
    assert sub.item_query.tolist() == np.repeat(np.arange(3), 10).tolist()
