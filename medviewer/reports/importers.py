"""Read reports from DICOM SR documents, a CSV table or a folder of ``.txt`` files.

Each reader returns :class:`Incoming` reports with the key that names their
target (a Study Instance UID, an accession number, an image path, a file
name); :func:`attach_incoming` finds the targets in a library and attaches
them in one transaction, and lists every report it could not place, with the
reason.  Nothing is sent anywhere: reports stay in the library file.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from medviewer.reports.errors import ReportError
from medviewer.reports.models import ImportSummary
from medviewer.reports.store import CASE, STUDY, ReportStore

# SR storage classes whose content tree is a report (not the dose or CAD ones).
SR_TEXT_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR",
    "1.2.840.10008.5.1.4.1.1.88.35": "Extensible SR",
}
KEY_COLUMNS = {
    "path": ("path", "file", "image", "image_path", "location"),
    "study_uid": ("study_uid", "studyinstanceuid", "study_instance_uid", "study"),
    "accession": ("accession", "accession_number", "accessionnumber"),
}
TEXT_COLUMNS = ("report", "text", "report_text")
_MAX_REPORT_CHARS = 200_000


@dataclass(frozen=True)
class Incoming:
    """One report read from outside, not yet attached.

    Attributes
    ----------
    key_kind : str
        ``path``, ``study_uid``, ``accession`` or ``stem`` (a file name without extension).
    key : str
    text : str
    source : str
        ``sr``, ``csv`` or ``txt``.
    detail : str
        The file it came from (and the row of a CSV).
    """

    key_kind: str
    key: str
    text: str
    source: str
    detail: str


# -- DICOM SR ---------------------------------------------------------------------------------
def sr_text(ds) -> str:
    """Return the text content of an SR dataset as ``Heading: text`` lines.

    Walks (0040,A730) Content Sequence: a CONTAINER's (0040,A043) Concept Name
    becomes a heading line; TEXT items give their (0040,A160) Text Value, CODE
    items their code meaning, NUM items value and unit, each after its concept
    name.  Image and coordinate references carry no words and are skipped.
    """
    lines: list[str] = []

    def name_of(item) -> str:
        seq = item.get("ConceptNameCodeSequence")
        return str(seq[0].get("CodeMeaning", "")).strip() if seq else ""

    def walk(items) -> None:
        for item in items:
            kind = str(item.get("ValueType", ""))
            name = name_of(item)
            value = ""
            if kind == "TEXT":
                value = str(item.get("TextValue", "")).strip()
            elif kind == "CODE" and item.get("ConceptCodeSequence"):
                value = str(item.ConceptCodeSequence[0].get("CodeMeaning", "")).strip()
            elif kind == "NUM" and item.get("MeasuredValueSequence"):
                measured = item.MeasuredValueSequence[0]
                unit = measured.get("MeasurementUnitsCodeSequence")
                unit_text = str(unit[0].get("CodeValue", "")) if unit else ""
                value = f"{measured.get('NumericValue', '')} {unit_text}".strip()
            elif kind == "CONTAINER" and name:
                lines.append(f"{name}:")
            if value:
                # A TEXT item's concept name is usually a generic "Finding"; keep it only
                # when it is a section heading the report panel can show.
                labelled = name and (kind != "TEXT" or name.lower() in _SECTION_NAMES)
                lines.append(f"{name}: {value}" if labelled else value)
            if "ContentSequence" in item:
                walk(item.ContentSequence)

    walk(ds.get("ContentSequence", []))
    return "\n".join(lines).strip()


# ("Finding", singular, is the generic concept name of any TEXT item: not a heading.)
_SECTION_NAMES = {"findings", "impression", "impressions", "conclusion", "indication",
                  "clinical history", "history", "comparison", "technique"}


def read_sr(path: str | os.PathLike) -> Incoming:
    """Read one DICOM SR file into an :class:`Incoming` keyed by its Study Instance UID.

    Raises
    ------
    ReportError
        When the file is not DICOM, not a text SR, or has no text.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, force=False)
    except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
        raise ReportError(f"not a readable DICOM file ({exc})", path=path,
                          hint="give DICOM SR documents, a CSV, or a folder of .txt files") from exc
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class not in SR_TEXT_CLASSES:
        raise ReportError(f"not a text structured report (SOP class {sop_class or 'missing'})",
                          path=path, hint="only Basic, Enhanced and Comprehensive SR hold reports")
    text = sr_text(ds)
    if not text:
        raise ReportError("the structured report holds no text", path=path)
    return Incoming("study_uid", str(ds.get("StudyInstanceUID", "")), text, "sr", str(path))


# -- CSV ----------------------------------------------------------------------------------------
def read_csv(path: str | os.PathLike) -> tuple[list[Incoming], list[tuple[str, str]]]:
    """Read a table of reports: a key column (``path``, ``study_uid`` or ``accession``) and ``report``.

    Relative paths are taken from the table's folder.  Returns the reports and
    the rows skipped with reasons.

    Raises
    ------
    ReportError
        When the file cannot be read or has no key or report column.
    """
    path = Path(path)
    csv.field_size_limit(max(_MAX_REPORT_CHARS * 2, 131072))
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = {c.strip().lower(): c for c in reader.fieldnames or []}
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ReportError(f"cannot read the report table ({exc})", path=path,
                          hint="save it as UTF-8 CSV with a header row") from exc
    key_kind = key_col = None
    for kind, names in KEY_COLUMNS.items():
        found = next((columns[n] for n in names if n in columns), None)
        if found:
            key_kind, key_col = kind, found
            break
    text_col = next((columns[n] for n in TEXT_COLUMNS if n in columns), None)
    if key_col is None or text_col is None:
        raise ReportError(f"the table needs a key column ({', '.join(KEY_COLUMNS)}) and a 'report' "
                          f"column; it has {sorted(columns)}", path=path,
                          hint="rename the columns, e.g. 'path,report'")
    out, skipped = [], []
    for number, row in enumerate(rows, start=2):
        key = (row.get(key_col) or "").strip()
        text = (row.get(text_col) or "").strip()
        where = f"{path.name}:{number}"
        if not key or not text:
            skipped.append((where, "empty key or report"))
            continue
        if len(text) > _MAX_REPORT_CHARS:
            skipped.append((where, f"report longer than {_MAX_REPORT_CHARS} characters"))
            continue
        if key_kind == "path" and not os.path.isabs(key):
            key = os.path.normpath(os.path.join(path.parent.resolve(), key))
        out.append(Incoming(key_kind, key, text, "csv", where))
    return out, skipped


# -- folder of text files ---------------------------------------------------------------------
def read_text_folder(folder: str | os.PathLike) -> tuple[list[Incoming], list[tuple[str, str]]]:
    """Read every ``*.txt`` of a folder (not recursive), keyed by file name without extension.

    The name is matched against study UIDs, accession numbers and image file names.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError("is not a folder", path=folder, hint="give a folder of .txt reports")
    out, skipped = [], []
    for file in sorted(folder.glob("*.txt")):
        try:
            text = file.read_text(encoding="utf-8-sig").strip()
        except (OSError, UnicodeDecodeError) as exc:
            skipped.append((str(file), f"unreadable ({exc.__class__.__name__})"))
            continue
        if not text:
            skipped.append((str(file), "empty"))
            continue
        out.append(Incoming("stem", file.stem, text[:_MAX_REPORT_CHARS], "txt", str(file)))
    return out, skipped


def read_sources(paths) -> tuple[list[Incoming], list[tuple[str, str]]]:
    """Read reports from each path: a ``.csv``, a folder (``.txt`` files, and SR ``.dcm`` in it), or SR files."""
    incoming: list[Incoming] = []
    skipped: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.suffix.lower() == ".csv":
            got, bad = read_csv(path)
        elif path.is_dir():
            got, bad = read_text_folder(path)
            for file in sorted(path.rglob("*.dcm")):
                try:
                    got.append(read_sr(file))
                except ReportError as exc:
                    bad.append((str(file), exc.message))
        else:
            try:
                got, bad = [read_sr(path)], []
            except ReportError as exc:
                got, bad = [], [(str(path), exc.message)]
        incoming += got
        skipped += bad
    return incoming, skipped


# -- attaching ----------------------------------------------------------------------------------
def resolve_targets(store: ReportStore, incoming: list[Incoming]):
    """Return ``([(kind, id, text, source, detail)], skipped)`` for reports read from outside."""
    study_keys = store.study_keys()
    stems = None
    items, skipped = [], []
    for item in incoming:
        targets: list[tuple[str, int]] = []
        if item.key_kind == "study_uid":
            sid = store.study_by_uid(item.key)
            targets = [(STUDY, sid)] if sid is not None else []
        elif item.key_kind == "accession":
            found = store.studies_by_accession(item.key)
            if len(found) > 1:
                skipped.append((item.detail, f"accession {item.key} names {len(found)} studies"))
                continue
            targets = [(STUDY, s) for s in found]
        elif item.key_kind == "path":
            targets = [(CASE, c) for c in store.cases_by_path(item.key)]
        else:  # a file name: a study UID, an accession, or an image's name
            if item.key in study_keys:
                targets = [(STUDY, study_keys[item.key])]
            else:
                stems = store.cases_by_stem() if stems is None else stems
                targets = [(CASE, c) for c in stems.get(item.key, [])]
        if not targets:
            skipped.append((item.detail, f"no {item.key_kind.replace('_', ' ')} {item.key!r} in the library"))
            continue
        items += [(kind, tid, item.text, item.source, item.detail) for kind, tid in targets]
    return items, skipped


def attach_incoming(store: ReportStore, incoming: list[Incoming],
                    skipped: list[tuple[str, str]] | None = None) -> ImportSummary:
    """Attach reports read from outside to their studies or cases (one transaction)."""
    items, not_found = resolve_targets(store, incoming)
    summary = ImportSummary(skipped=list(skipped or []) + not_found)
    for _rid, replaced in store.attach_many(items):
        summary.attached += 1
        summary.replaced += int(replaced)
    return summary


def import_reports(store: ReportStore, paths) -> ImportSummary:
    """Read reports from ``paths`` (CSV, folders, SR files) and attach them to the library."""
    incoming, skipped = read_sources(paths)
    if not incoming and not skipped:
        raise ReportError("no reports found", path=", ".join(map(str, paths)),
                          hint="give DICOM SR files, a CSV (path|study_uid|accession,report) or "
                          "a folder of .txt files")
    return attach_incoming(store, incoming, skipped)
