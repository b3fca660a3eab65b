"""Training data: label tables, tasks, the patient split and per-task balancing.

Inputs
------
- a ChestX-ray14 ``Data_Entry_2017`` table (``Image Index``, ``Finding Labels``,
  ``Patient ID``) with an image folder searched by file name;
- a ``path,labels`` CSV (labels ``|``-separated as in ChestX-ray14; optional
  ``patient_id``; other columns ignored), such as the synthetic ``labels.csv``
  or ``cxr14-nih1000-64px/labels.csv`` (``finding_labels``);
- an ``.npz`` with ``{train,val,test}_images`` / ``_labels`` (MedMNIST style,
  split given).

- a MedViewer case library (:mod:`models.library_data`).

The retrieval paper's protocol: each finding is its own binary task, positive
vs "No Finding"; negatives are undersampled to balance each task; the split is
60/30/10 (train/validation/test) **by patient**, seeded.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NO_FINDING = "No Finding"
# "Opacity" in the retrieval paper (and the shared data MANIFEST).
PAPER_OPACITY = (
    "Atelectasis", "Effusion", "Infiltration", "Pneumonia",
    "Consolidation", "Edema", "Fibrosis", "Pleural_Thickening",
)
PRESETS = {
    "cxr14-paper": {
        "findings": ["Cardiomegaly", "Emphysema", "Opacity"],
        "groups": {"Opacity": list(PAPER_OPACITY)},
    },
}
TASKS = ("multilabel", "multiclass", "regression")
LABEL_COLUMNS = ("labels", "finding_labels", "Finding Labels", "label", "findings", "finding")
PATH_COLUMNS = ("path", "Image Index", "image_index", "file")
PATIENT_COLUMNS = ("patient_id", "Patient ID", "PatientID")


@dataclass
class Record:
    """One training image.

    Attributes
    ----------
    path : str
        Image file (absolute), or a name for in-memory images.
    patient_id : str
        Splits never put one patient in two sets.
    labels : tuple of str
        Raw findings; empty (or ``No Finding``) means a normal image.
    target : float, optional
        Regression target.
    image : np.ndarray, optional
        The pixels, for datasets held in memory (npz, a library).
    pixel_spacing : float, optional
        Millimetres per pixel, where the file says ((0028,0030) Pixel Spacing).
    """

    path: str
    patient_id: str
    labels: tuple[str, ...] = ()
    target: float | None = None
    image: np.ndarray | None = field(default=None, repr=False)
    pixel_spacing: float | None = None

    @property
    def is_normal(self) -> bool:
        """Return whether the image has no finding."""
        return not self.labels or set(self.labels) == {NO_FINDING}


@dataclass
class TaskSpec:
    """What the model predicts and which images count as positive or negative.

    Attributes
    ----------
    task : str
        ``multilabel``, ``multiclass`` or ``regression``.
    names : list of str
        Output names (findings, classes, or regression target names).
    groups : dict
        Output name -> raw labels that make it positive (default: itself).
    negatives : str
        Multi-label only: ``no-finding`` (paper: negatives are normal images)
        or ``rest`` (any image without the finding).
    """

    task: str
    names: list[str]
    groups: dict[str, list[str]] = field(default_factory=dict)
    negatives: str = "no-finding"

    def targets(self, record: Record) -> tuple[np.ndarray, np.ndarray]:
        """Return (y, mask) for a record; mask 0 means "not part of this task"."""
        k = len(self.names)
        y = np.zeros(k, np.float32)
        mask = np.zeros(k, np.float32)
        if self.task == "regression":
            if record.target is not None and np.isfinite(record.target):
                y[0], mask[0] = record.target, 1.0
            return y, mask
        labels = set(record.labels)
        if self.task == "multiclass":
            hits = [i for i, n in enumerate(self.names) if labels & set(self.groups.get(n, [n]))]
            if len(hits) == 1:
                y[hits[0]] = 1.0
                mask[:] = 1.0
            return y, mask
        for i, name in enumerate(self.names):
            if labels & set(self.groups.get(name, [name])):
                y[i], mask[i] = 1.0, 1.0
            elif self.negatives == "rest" or record.is_normal:
                mask[i] = 1.0
        return y, mask

    def to_dict(self) -> dict:
        """Return a JSON-friendly dict."""
        return {"task": self.task, "names": list(self.names), "groups": dict(self.groups),
                "negatives": self.negatives}


def read_label_table(
    table: str | Path,
    images_root: str | Path | None = None,
    *,
    fmt: str = "auto",
    label_column: str | None = None,
    target_column: str | None = None,
) -> list[Record]:
    """Read a ChestX-ray14 table or a ``path,labels`` CSV into records.

    Parameters
    ----------
    table : path
        The CSV (``.csv`` or ``.csv.gz``).
    images_root : path, optional
        Folder the image paths are relative to (default: the table's folder).
        For ChestX-ray14 tables, images are found by file name anywhere below it.
    fmt : str
        ``auto``, ``cxr14`` or ``csv``.
    label_column, target_column : str, optional
        Column names overriding the defaults; ``target_column`` holds a
        regression target.

    Raises
    ------
    ValueError
        Required columns are missing, or no image file was found.
    """
    table = Path(table)
    root = Path(images_root) if images_root else table.parent
    rows = _read_csv(table)
    if not rows:
        raise ValueError(f"{table}: the table is empty")
    columns = set(rows[0])
    if fmt == "auto":
        fmt = "cxr14" if {"Image Index", "Finding Labels"} <= columns else "csv"
    path_col = "Image Index" if fmt == "cxr14" else _pick(columns, PATH_COLUMNS, table, "image path")
    label_col = label_column or ("Finding Labels" if fmt == "cxr14" else _pick(
        columns, LABEL_COLUMNS, table, "labels", required=target_column is None))
    patient_col = next((c for c in PATIENT_COLUMNS if c in columns), None)
    by_name = _index_by_name(root) if fmt == "cxr14" else {}
    records, missing = [], 0
    for row in rows:
        name = row[path_col]
        path = by_name.get(Path(name).name) if fmt == "cxr14" else _resolve(root, name)
        if path is None or not os.path.isfile(path):
            missing += 1
            continue
        labels = _split_labels(row.get(label_col, "")) if label_col else ()
        target = float(row[target_column]) if target_column and row.get(target_column) else None
        patient = row.get(patient_col) if patient_col else None
        records.append(Record(str(path), str(patient or Path(name).stem), labels, target))
    if not records:
        raise ValueError(f"{table}: none of the {len(rows)} images was found under {root}")
    return records


def trained_on_record(records: Sequence[Record]) -> dict:
    """Return what a bundle records of the images a model saw (training and validation).

    sha256 prefixes (16 hex digits) of the patient IDs and of the image files,
    so ``eval retrieval`` can tell a held-out library from the training one
    without the bundle carrying patient IDs.
    """
    import hashlib

    from medviewer.fileio import sha256_file

    patients = sorted({hashlib.sha256(r.patient_id.encode("utf-8")).hexdigest()[:16] for r in records})
    images = sorted({sha256_file(r.path)[:16] for r in records if r.image is None and os.path.isfile(r.path)})
    return {"patient_sha256": patients, "image_sha256": images,
            "note": "sha256 prefixes of the patient IDs and image files used for training and validation"}


def read_npz(path: str | Path) -> dict[str, list[Record]]:
    """Read a MedMNIST-style npz into {train, val, test} records (labels are class indices as text)."""
    data = np.load(path)
    splits = {}
    for split in ("train", "val", "test"):
        images, labels = data[f"{split}_images"], data[f"{split}_labels"].reshape(-1)
        splits[split] = [
            Record(f"{Path(path).name}:{split}:{i}", f"{split}-{i}", (str(int(lab)),), image=img)
            for i, (img, lab) in enumerate(zip(images, labels))
        ]
    return splits


def split_by_patient(
    records: Sequence[Record], fractions: Sequence[float] = (0.6, 0.3, 0.1), seed: int = 0
) -> tuple[list[Record], list[Record], list[Record]]:
    """Split records into train, validation and test sets by patient (seeded).

    Patients are shuffled and assigned in order until each set holds its
    fraction of the patients; all images of a patient go to one set.
    """
    fractions = np.asarray(fractions, dtype=float)
    if len(fractions) != 3 or np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, not {fractions}")
    by_patient: dict[str, list[Record]] = defaultdict(list)
    for rec in records:
        by_patient[rec.patient_id].append(rec)
    patients = sorted(by_patient)
    np.random.default_rng(seed).shuffle(patients)
    bounds = np.round(np.cumsum(fractions) * len(patients)).astype(int)
    parts = np.split(np.asarray(patients, dtype=object), bounds[:2])
    return tuple([r for p in part for r in by_patient[p]] for part in parts)  # type: ignore[return-value]


def balance(
    targets: np.ndarray, masks: np.ndarray, task: str, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Undersample the majority side of each task; return (kept row indices, new masks).

    Multi-label: per finding, the larger of positives and negatives is cut to
    the size of the smaller one (rows outside a finding's sample get mask 0
    for it; rows in no sample are dropped).  Multi-class: every class is cut
    to the size of the smallest.  Regression: unchanged.
    """
    rng = np.random.default_rng(seed)
    masks = masks.copy()
    if task == "multilabel":
        for k in range(targets.shape[1]):
            pos = np.flatnonzero((masks[:, k] > 0) & (targets[:, k] > 0.5))
            neg = np.flatnonzero((masks[:, k] > 0) & (targets[:, k] <= 0.5))
            n = min(len(pos), len(neg))
            for group in (pos, neg):
                drop = rng.permutation(group)[n:]
                masks[drop, k] = 0.0
    elif task == "multiclass":
        valid = masks[:, 0] > 0
        classes = targets.argmax(axis=1)
        counts = [np.flatnonzero(valid & (classes == c)) for c in range(targets.shape[1])]
        n = min((len(c) for c in counts if len(c)), default=0)
        for group in counts:
            masks[rng.permutation(group)[n:], :] = 0.0
    keep = np.flatnonzero(masks.sum(axis=1) > 0)
    return keep, masks[keep]


def task_counts(spec: TaskSpec, targets: np.ndarray, masks: np.ndarray) -> dict[str, dict[str, int]]:
    """Return positives/negatives per output (classes per count for multi-class)."""
    if spec.task == "regression":
        return {spec.names[0]: {"n": int(masks[:, 0].sum())}}
    if spec.task == "multiclass":
        valid = masks[:, 0] > 0
        return {n: {"n": int(((targets[:, i] > 0.5) & valid).sum())} for i, n in enumerate(spec.names)}
    return {
        n: {"pos": int(((targets[:, i] > 0.5) & (masks[:, i] > 0)).sum()),
            "neg": int(((targets[:, i] <= 0.5) & (masks[:, i] > 0)).sum())}
        for i, n in enumerate(spec.names)
    }


def _read_csv(path: Path) -> list[dict[str, str]]:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _pick(columns: set[str], candidates: Sequence[str], table: Path, what: str,
          required: bool = True) -> str | None:
    for name in candidates:
        if name in columns:
            return name
    if required:
        raise ValueError(f"{table}: no {what} column (expected one of {', '.join(candidates)})")
    return None


def _split_labels(text: str) -> tuple[str, ...]:
    parts = [p.strip() for p in text.replace(";", "|").split("|")]
    return tuple(p for p in parts if p and p != NO_FINDING)


def _resolve(root: Path, name: str) -> str:
    path = Path(name)
    return str(path if path.is_absolute() else root / path)


def _index_by_name(root: Path) -> dict[str, str]:
    index = {}
    for folder, _, files in os.walk(root):
        for name in files:
            index.setdefault(name, os.path.join(folder, name))
    return index
