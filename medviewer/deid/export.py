"""De-identify files and folders into an export folder, with its audit.

Output layout under ``out_dir``::

    <pseudonym>/<study uid>/<series uid>/<sop uid>.dcm    de-identified files
    deid_audit.json                                        what was done, per file

Output names come from replaced identifiers only: input file and folder names
often carry patient IDs, so they appear nowhere in the export (the audit names
inputs by a keyed digest).  Call from a worker thread; ``state`` reports
progress and stops the export between files.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from medviewer import __version__
from medviewer.deid.audit import ExportAudit, FileAudit
from medviewer.deid.burned_in import Region, assess_burned_in, blackout
from medviewer.deid.engine import deidentify_dataset
from medviewer.deid.errors import BurnedInTextError, DeidError
from medviewer.deid.options import DeidOptions
from medviewer.deid.session import DeidSession
from medviewer.dicom.sources import RASTER_SUFFIXES, FileRef, iter_files
from medviewer.errors import TaskCancelled
from medviewer.fileio import atomic_write_bytes
from medviewer.tasks import TaskState, ensure_state

AUDIT_NAME = "deid_audit.json"
BURNED_IN_POLICIES = ("skip", "export")


@dataclass(frozen=True)
class WrittenFile:
    """One de-identified file and the identifiers it now carries.

    Attributes
    ----------
    source : str
        The input location (a path, or ``archive.zip!member``); kept in memory for the
        caller, never written to the export.
    output : str
        The written file.
    original_sop_uid : str
        (0008,0018) before de-identification (in memory only, like ``source``).
    sop_uid, study_uid, series_uid, sop_class : str
        The new SOP Instance, Study and Series Instance UIDs and the SOP Class UID.
    patient_id : str
        The pseudonymous Patient ID.
    burned_in_reasons : tuple of str
        Why the image was flagged for burned-in text (empty if not flagged).
    regions : int
        Number of blackout regions applied.
    """

    source: str
    output: str
    original_sop_uid: str
    sop_uid: str
    study_uid: str
    series_uid: str
    sop_class: str
    patient_id: str
    burned_in_reasons: tuple[str, ...] = ()
    regions: int = 0


@dataclass(frozen=True)
class SkippedInput:
    """An input that was not exported, and why."""

    source: str
    reason: str
    detail: str = ""


@dataclass
class DeidReport:
    """What an export did."""

    out_dir: str = ""
    audit_path: str = ""
    written: list[WrittenFile] = field(default_factory=list)
    skipped: list[SkippedInput] = field(default_factory=list)
    cancelled: bool = False

    @property
    def flagged(self) -> list[WrittenFile]:
        """Files exported although flagged for burned-in text."""
        return [w for w in self.written if w.burned_in_reasons and not w.regions]

    def as_dict(self) -> dict:
        """Return the report as JSON-able data (the CLI's ``--json`` output)."""
        return {
            "out_dir": self.out_dir, "audit": self.audit_path, "cancelled": self.cancelled,
            "written": [{"source": w.source, "output": w.output, "sop_uid": w.sop_uid,
                         "study_uid": w.study_uid, "patient_id": w.patient_id,
                         "burned_in_reasons": list(w.burned_in_reasons), "regions": w.regions}
                        for w in self.written],
            "skipped": [{"source": s.source, "reason": s.reason, "detail": s.detail}
                        for s in self.skipped],
        }


class Exporter:
    """De-identify files one by one into a folder, sharing one session and one audit.

    Parameters
    ----------
    out_dir : path-like
        The export folder (created).
    options : DeidOptions, optional
    secret : bytes, optional
        Session key (see :class:`DeidSession`); random by default.
    burned_in : {"skip", "export"}
        What to do with an image flagged for burned-in text that has no blackout
        region: skip it (default) or export it anyway (listed in the report).
    """

    def __init__(self, out_dir: str | os.PathLike, options: DeidOptions | None = None, *,
                 secret: bytes | None = None, burned_in: str = "skip") -> None:
        if burned_in not in BURNED_IN_POLICIES:
            raise ValueError(f"burned_in must be one of {BURNED_IN_POLICIES}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.options = options or DeidOptions()
        self.session = DeidSession(self.options, secret)
        self.burned_in = burned_in
        self.report = DeidReport(out_dir=str(self.out_dir))
        self.audit = ExportAudit(
            options=self.options.as_dict(),
            method=[f"{v} {m}" for v, m in self.options.method_codes()],
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            software=f"MedViewer {__version__}")

    def add(self, ref: FileRef | str | os.PathLike,
            regions: list[Region] | None = None) -> WrittenFile | None:
        """De-identify one file; return what was written, or ``None`` if it was skipped."""
        if not isinstance(ref, FileRef):
            ref = FileRef.for_path(ref)
        try:
            return self._add(ref, regions or [])
        except DeidError as exc:
            self._skip(ref, type(exc).__name__, exc.message + (f" ({exc.hint})" if exc.hint
                                                                 else ""))
        except Exception as exc:  # noqa: BLE001 - one bad file never stops an export
            from medviewer.errors import unexpected_words

            self._skip(ref, "unreadable", unexpected_words(exc))
        return None

    def _add(self, ref: FileRef, regions: list[Region]) -> WrittenFile:
        from pydicom import dcmread
        from pydicom.errors import InvalidDicomError

        if ref.suffix in RASTER_SUFFIXES:
            raise DeidError("not a DICOM file", path=ref.display,
                            hint="PNG/JPEG images carry no header to de-identify; check "
                            "their pixels and file names yourself")
        try:
            with ref.open() as fh, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = dcmread(fh, force=True)
        except (InvalidDicomError, OSError, EOFError, ValueError, TypeError) as exc:
            raise DeidError(f"not a readable DICOM file ({exc})", path=ref.display) from exc
        if "SOPInstanceUID" not in ds or "SOPClassUID" not in ds:
            raise DeidError("not a DICOM instance (no SOP Class/Instance UID)", path=ref.display,
                            hint="DICOMDIRs and fragments are not exported")
        _ensure_transfer_syntax(ds)
        original_sop = str(ds.SOPInstanceUID)
        assessment = assess_burned_in(ds)
        if assessment.flagged and not regions and self.burned_in == "skip":
            raise BurnedInTextError(
                "may show identifying text in its pixels: " + "; ".join(assessment.reasons),
                path=ref.display, hint="give blackout regions for it, or export burned-in "
                "images anyway after checking them")
        audit = FileAudit(input_ref=self.session.reference(ref.display),
                          burned_in_flagged=assessment.flagged,
                          burned_in_reasons=list(assessment.reasons))
        if regions:
            blackout(ds, regions)
            audit.regions_blacked_out = len(regions)
        deidentify_dataset(ds, self.session, audit)
        out = (self.out_dir / _safe(str(ds.PatientID)) / _safe(str(ds.StudyInstanceUID)) /
               _safe(str(ds.SeriesInstanceUID)) / f"{_safe(str(ds.SOPInstanceUID))}.dcm")
        out.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        atomic_write_bytes(out, buffer.getvalue())
        audit.output = out.relative_to(self.out_dir).as_posix()
        self.audit.files.append(audit)
        written = WrittenFile(
            source=ref.display, output=str(out), original_sop_uid=original_sop,
            sop_uid=str(ds.SOPInstanceUID), study_uid=str(ds.StudyInstanceUID),
            series_uid=str(ds.SeriesInstanceUID), sop_class=str(ds.SOPClassUID),
            patient_id=str(ds.PatientID), burned_in_reasons=assessment.reasons,
            regions=len(regions))
        self.report.written.append(written)
        return written

    def skip_listed(self, name: str, reason: str, detail: str) -> None:
        """Record an input that listing did not hand over (a link, an unsafe member, ...)."""
        self.report.skipped.append(SkippedInput(name, reason, detail))
        self.audit.skipped.append({"input_ref": self.session.reference(name), "reason": reason})

    def _skip(self, ref: FileRef, reason: str, detail: str) -> None:
        self.report.skipped.append(SkippedInput(ref.display, reason, detail))
        # The audit file names the input by digest, and drops the detail: it may quote the
        # path, and paths carry patient IDs.
        self.audit.skipped.append({"input_ref": self.session.reference(ref.display),
                                   "reason": reason})

    def finish(self, cancelled: bool = False) -> DeidReport:
        """Write the audit; return the report."""
        self.report.cancelled = cancelled
        self.report.audit_path = str(self.audit.write(self.out_dir / AUDIT_NAME))
        return self.report


def deidentify_files(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike,
                     options: DeidOptions | None = None, *, secret: bytes | None = None,
                     regions: Mapping[str, list[Region]] | None = None,
                     burned_in: str = "skip", state: TaskState | None = None) -> DeidReport:
    """De-identify every DICOM file under ``inputs`` into ``out_dir``.

    Parameters
    ----------
    inputs : iterable of path-like
        Files, folders (recursive), zip archives, DICOMDIRs.
    out_dir : path-like
        The export folder.
    options : DeidOptions, optional
        Profile options; the Basic Profile alone by default.
    secret : bytes, optional
        Key of the UID and pseudonym mappings; random per export by default.
    regions : mapping, optional
        Blackout rectangles per input, keyed by input location (path or
        ``archive.zip!member``) or by original SOP Instance UID.
    burned_in : {"skip", "export"}
        Images flagged for burned-in text without regions are skipped (default)
        or exported and listed.
    state : TaskState, optional
        Progress and cancellation.

    Returns
    -------
    DeidReport
        On cancellation the audit of the files written so far is still written and
        :class:`~medviewer.errors.TaskCancelled` is raised.
    """
    state = ensure_state(state)
    regions = dict(regions or {})
    exporter = Exporter(out_dir, options, secret=secret, burned_in=burned_in)
    state.set_progress(0.0, "Listing files")
    refs = list(iter_files([os.fspath(p) for p in inputs], on_skip=exporter.skip_listed))
    by_uid = {k: v for k, v in regions.items() if _UID.match(k)}
    try:
        for done, ref in enumerate(refs):
            state.check()
            state.set_progress(done / max(1, len(refs)),
                               f"De-identifying {done + 1} of {len(refs)}")
            chosen = regions.get(ref.display) or regions.get(ref.path)
            if chosen is None and by_uid:
                chosen = _regions_by_uid(ref, by_uid)
            exporter.add(ref, chosen)
    except TaskCancelled:
        exporter.finish(cancelled=True)
        raise
    report = exporter.finish()
    state.set_progress(1.0, f"De-identified {len(report.written)} files, "
                            f"skipped {len(report.skipped)}")
    return report


def _regions_by_uid(ref: FileRef, by_uid: Mapping[str, list[Region]]) -> list[Region] | None:
    from pydicom import dcmread

    try:
        with ref.open() as fh:
            uid = str(dcmread(fh, stop_before_pixels=True, force=True).get("SOPInstanceUID", ""))
    except Exception:  # noqa: BLE001 - the export itself reports unreadable files
        return None
    return by_uid.get(uid)


def _ensure_transfer_syntax(ds) -> None:
    """Give a file read without File Meta Information the syntax it was read in."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit, little = getattr(ds, "original_encoding", (False, True))
        meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                  ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


_UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")


def _safe(name: str) -> str:
    """Return ``name`` usable as a file name (UIDs and pseudonyms already are)."""
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in name) or "_"
