"""Training data: label tables, task targets, the patient split and per-task balancing."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from models.data import (
    Record,
    TaskSpec,
    balance,
    read_label_table,
    split_by_patient,
)


def _records(n_patients=50, per_patient=3):
    return [Record(f"img{p}_{i}.png", f"P{p}", ()) for p in range(n_patients) for i in range(per_patient)]


def test_split_by_patient_never_shares_a_patient_and_is_seeded():
    records = _records()
    train, val, test = split_by_patient(records, (0.6, 0.3, 0.1), seed=3)
    ids = [{r.patient_id for r in part} for part in (train, val, test)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert [len(s) for s in ids] == [30, 15, 5]
    again = split_by_patient(records, (0.6, 0.3, 0.1), seed=3)
    assert [r.path for r in again[0]] == [r.path for r in train]
    other = split_by_patient(records, (0.6, 0.3, 0.1), seed=4)
    assert [r.path for r in other[0]] != [r.path for r in train]


def test_split_fractions_are_checked():
    with pytest.raises(ValueError):
        split_by_patient(_records(), (0.5, 0.5, 0.5))


def test_multilabel_targets_use_no_finding_as_negatives():
    spec = TaskSpec("multilabel", ["Cardiomegaly", "Opacity"], {"Opacity": ["Effusion", "Edema"]})
    y, m = spec.targets(Record("a", "1", ("Cardiomegaly", "Effusion")))
    assert y.tolist() == [1, 1] and m.tolist() == [1, 1]
    y, m = spec.targets(Record("b", "2", ("Emphysema",)))  # neither positive nor normal
    assert m.tolist() == [0, 0]
    y, m = spec.targets(Record("c", "3", ()))
    assert y.tolist() == [0, 0] and m.tolist() == [1, 1]
    rest = TaskSpec("multilabel", ["Cardiomegaly"], negatives="rest")
    assert rest.targets(Record("b", "2", ("Emphysema",)))[1].tolist() == [1]


def test_multiclass_and_regression_targets():
    mc = TaskSpec("multiclass", ["normal", "pneumonia"])
    y, m = mc.targets(Record("a", "1", ("pneumonia",)))
    assert y.tolist() == [0, 1] and m.tolist() == [1, 1]
    reg = TaskSpec("regression", ["weight_kg"])
    y, m = reg.targets(Record("a", "1", (), target=72.5))
    assert y.tolist() == [72.5] and m.tolist() == [1]


def test_balance_undersamples_each_task_to_its_minority():
    targets = np.array([[1, 0]] * 10 + [[0, 1]] * 3 + [[0, 0]] * 30, np.float32)
    masks = np.ones_like(targets)
    rows, new_masks = balance(targets, masks, "multilabel", seed=0)
    kept_t = targets[rows]
    for k, n_pos in ((0, 10), (1, 3)):
        use = new_masks[:, k] > 0
        assert (kept_t[use, k] == 1).sum() == n_pos
        assert (kept_t[use, k] == 0).sum() == n_pos


def test_balance_multiclass():
    targets = np.eye(2, dtype=np.float32)[[0] * 20 + [1] * 5]
    rows, _ = balance(targets, np.ones_like(targets), "multiclass", seed=0)
    assert np.bincount(targets[rows].argmax(1)).tolist() == [5, 5]


def test_read_cxr14_table_finds_images_by_name(tmp_path):
    (tmp_path / "imgs" / "sub").mkdir(parents=True)
    for name in ("00000001_000.png", "00000002_000.png"):
        (tmp_path / "imgs" / "sub" / name).write_bytes(b"x")
    table = tmp_path / "Data_Entry_2017.csv"
    table.write_text(
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
        "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
        "00000001_000.png,Cardiomegaly|Emphysema,0,1,57,M,PA,2682,2749,0.143,0.143\n"
        "00000002_000.png,No Finding,0,2,50,F,PA,2500,2048,0.168,0.168\n"
        "00000003_000.png,No Finding,0,3,50,F,PA,2500,2048,0.168,0.168\n"
    )
    records = read_label_table(table, tmp_path / "imgs")
    assert [r.labels for r in records] == [("Cardiomegaly", "Emphysema"), ()]
    assert records[0].patient_id == "1" and records[1].is_normal


def test_read_path_labels_csv(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "patient_id", "labels", "weight_kg"])
        w.writerow(["a.png", "P1", "Opacity", "70"])
    (rec,) = read_label_table(tmp_path / "labels.csv", target_column="weight_kg")
    assert rec.labels == ("Opacity",) and rec.target == 70.0 and rec.patient_id == "P1"


def test_missing_images_are_reported(tmp_path):
    (tmp_path / "labels.csv").write_text("path,labels\nnothere.png,Opacity\n")
    with pytest.raises(ValueError, match="none of the 1 images"):
        read_label_table(tmp_path / "labels.csv")
