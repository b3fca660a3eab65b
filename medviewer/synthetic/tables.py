"""Write and read the label tables of a synthetic dataset.

Two tables are written:

- ``labels.csv``: one row per DICOM file, columns :data:`LABELS_COLUMNS`;
  labels are ``|``-separated finding names, or ``No Finding``, as in
  ChestX-ray14; CT rows have empty labels and mask paths.
- ``png/Data_Entry_2017.csv``: the radiograph PNGs described in the layout of
  the NIH ChestX-ray14 table ``Data_Entry_2017_v2020.csv``, whose header has
  two bracketed names that each span two columns (11 columns in all).

and ``reports.csv`` (``path,report``), the report of each radiograph.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable

# The first four are the columns every label-table reader of the project understands.
LABELS_COLUMNS = (
    "path", "patient_id", "labels", "mask_path", "modality", "kind", "photometric", "weight_kg",
)
# Verbatim header of the NIH file: unquoted, so "OriginalImage[Width,Height]" is split
# over two columns by any CSV reader, exactly as in the original.
DATA_ENTRY_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
    "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
DATA_ENTRY_NAME = "Data_Entry_2017.csv"
LABELS_NAME = "labels.csv"
# ``path,report``: the radiograph's DICOM path (as in labels.csv) and its report text.
REPORTS_NAME = "reports.csv"


def write_labels_csv(path: Path, rows: Iterable[dict]) -> None:
    """Write ``labels.csv`` from dictionaries keyed by :data:`LABELS_COLUMNS`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=LABELS_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key, "") for key in LABELS_COLUMNS})


def write_data_entry_csv(path: Path, rows: Iterable[tuple]) -> None:
    """Write a ChestX-ray14-style ``Data_Entry_2017.csv``.

    Parameters
    ----------
    path : Path
    rows : iterable of tuple
        ``(image_index, finding_labels, follow_up, patient_number, age, sex,
        view, width, height, spacing_x, spacing_y)``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        fh.write(DATA_ENTRY_HEADER + "\n")
        writer = csv.writer(fh, lineterminator="\n")
        for row in rows:
            writer.writerow(row)


def write_reports_csv(path: Path, rows: Iterable[tuple[str, str]]) -> None:
    """Write ``reports.csv`` (columns ``path,report``; reports span lines, quoted)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("path", "report"))
        writer.writerows(rows)


def read_labels_csv(path: Path) -> list[dict]:
    """Read ``labels.csv`` back as a list of dictionaries (values are strings)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
