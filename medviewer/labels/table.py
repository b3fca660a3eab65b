"""Read label tables: ChestX-ray14's ``Data_Entry_2017`` format or a plain ``path,labels`` CSV.

Both map an image to its findings (``|``-separated, "No Finding" for normals,
as in ChestX-ray14) and optionally to a patient ID and a lesion-mask file.
Rows are matched to imported files by their path relative to the table's
folder, by absolute path, and finally by file name (ChestX-ray14 lists only
file names).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path

from medviewer.errors import LabelTableError

# Accepted column names, first match wins; compared case-insensitively.
PATH_COLUMNS = ("path", "image index", "image_index", "file", "filename")
LABEL_COLUMNS = ("labels", "finding labels", "finding_labels", "label", "findings", "finding")
PATIENT_COLUMNS = ("patient_id", "patient id", "patientid")
MASK_COLUMNS = ("mask_path", "mask")
NO_FINDING = "No Finding"


@dataclass(frozen=True)
class LabelEntry:
    """The labels of one image, as a table gives them."""

    key: str
    labels: tuple[str, ...]
    patient_id: str = ""
    mask_path: str = ""


@dataclass
class LabelTable:
    """A parsed label table with lookups by path and by file name."""

    source: Path
    by_path: dict[str, LabelEntry]
    by_name: dict[str, LabelEntry]

    def __len__(self) -> int:
        return len(self.by_name) if not self.by_path else len(self.by_path)

    def lookup(self, location: str) -> LabelEntry | None:
        """Return the entry for an image location (absolute path or ``zip!member``)."""
        entry = self.by_path.get(os.path.normpath(location))
        if entry is not None:
            return entry
        return self.by_name.get(os.path.basename(location.split("!")[-1]))


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def read_label_table(path: str | os.PathLike) -> LabelTable:
    """Parse a label table (``.csv`` or ``.csv.gz``).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    LabelTable

    Raises
    ------
    LabelTableError
        When the file is missing, has no path or label column, or a row is malformed.
    """
    path = Path(path).expanduser().resolve()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LabelTableError(f"cannot read the label table ({exc.strerror})", path=path) from exc
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig")))
    header = next(reader, None)
    if not header:
        raise LabelTableError("the label table is empty", path=path)
    col_path = _column(header, PATH_COLUMNS)
    col_labels = _column(header, LABEL_COLUMNS)
    if col_path is None or col_labels is None:
        missing = [what for what, col, names in (("path", col_path, PATH_COLUMNS),
                                                  ("labels", col_labels, LABEL_COLUMNS)) if col is None]
        accepted = "; ".join(f"{what}: {', '.join(repr(n) for n in names)}"
                             for what, _, names in (("path", col_path, PATH_COLUMNS),
                                                    ("labels", col_labels, LABEL_COLUMNS)))
        raise LabelTableError(
            f"the label table has no {' and no '.join(missing)} column (its columns: "
            f"{', '.join(h.strip() for h in header)}); accepted (any case): {accepted}", path=path,
            hint="use 'path,labels' headers or ChestX-ray14's 'Image Index,Finding Labels'")
    col_patient = _column(header, PATIENT_COLUMNS)
    col_mask = _column(header, MASK_COLUMNS)
    by_path: dict[str, LabelEntry] = {}
    by_name: dict[str, LabelEntry | None] = {}
    root = path.parent
    for line, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(col_path, col_labels):
            raise LabelTableError(f"line {line} has {len(row)} columns, {len(header)} expected",
                                  path=path)
        key = row[col_path].strip()
        labels = tuple(sorted({x.strip() for x in row[col_labels].split("|") if x.strip()}))
        patient = row[col_patient].strip() if col_patient is not None and col_patient < len(row) else ""
        mask = row[col_mask].strip() if col_mask is not None and col_mask < len(row) else ""
        if mask and not os.path.isabs(mask):
            mask = str(root / mask)
        entry = LabelEntry(key=key, labels=labels, patient_id=patient, mask_path=mask)
        if os.sep in key or "/" in key:
            full = key if os.path.isabs(key) else str(root / key)
            by_path[os.path.normpath(full)] = entry
        name = os.path.basename(key)
        # A file name that several rows share cannot identify an image on its own.
        by_name[name] = None if name in by_name else entry
    by_name = {k: v for k, v in by_name.items() if v is not None}
    return LabelTable(source=path, by_path=by_path, by_name=by_name)
