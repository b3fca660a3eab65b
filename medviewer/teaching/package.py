"""Export a collection as a self-contained, de-identified teaching package.

Layout under ``out_dir``::

    index.html                    the collection: one row per teaching case
    cases/case-001.html           a case: history, images, hidden answer, exemplars, notes
    images/case-001-1.png         key images rendered with the stored window (and overlay)
    dicom/DICOMDIR                the de-identified DICOM File-set, openable by any viewer,
    dicom/PT000000/ST000000/...   with one "For Teaching" KOS per study
    deid_audit.json               what de-identification did, per file (no original values)
    manifest.json                 the package's contents (no original identifiers)

The DICOM files go through :class:`medviewer.deid.Exporter` (one session, so UIDs
agree across cases); PNGs are rendered from the de-identified files, so blackout
rectangles show in them too.  Notes, captions, tags and the collection
description are scrubbed of the names, IDs and dates found in the exported
images' headers and of every patient of the library, and of titled names,
labelled IDs, dates and contacts (:class:`medviewer.deid.free_text.FreeTextCleaner`),
keeping the medical words (the library's label names are never removed).  What was
removed is counted per case in :attr:`TeachingExport.removed` and listed in the
warnings, because only the author can tell whether a note still identifies someone
in other words.
The case's report (its own, else its study's) goes with the answer, cleaned the same way.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from medviewer import __version__
from medviewer.deid import DeidOptions, DeidReport, Exporter, Region
from medviewer.deid.free_text import FreeTextCleaner, describe_removed
from medviewer.dicom.sources import RASTER_SUFFIXES, FileRef
from medviewer.errors import TaskCancelled
from medviewer.tasks import TaskState, ensure_state
from medviewer.teaching.html import CasePage, FigureView, case_page, index_page
from medviewer.teaching.kos import ImageReference, build_kos
from medviewer.teaching.models import CollectionItem, KeyImage
from medviewer.teaching.store import TeachingStore

_log = logging.getLogger(__name__)

#: ``overlay(key_image, display_pixels, decoded_image) -> display_pixels or None``: draws the
#: named overlay (a saliency map, a mask) onto the rendered key image, or returns None when
#: it has nothing to draw for it (then the overlay is listed, not drawn, with a warning).
OverlayRenderer = Callable[[KeyImage, np.ndarray, object], np.ndarray]


@dataclass(frozen=True)
class ExportedImage:
    """One key image in the package.

    Attributes
    ----------
    png : str
        Path of the PNG, relative to the package.
    dicom : str
        Path of the de-identified DICOM file in the File-set ("" for PNG-only images).
    sop_uid : str
        Its new SOP Instance UID ("" for PNG-only images).
    frame : int
    """

    png: str
    dicom: str
    sop_uid: str
    frame: int


@dataclass
class ExportedCase:
    """A teaching case in the package (``case_id`` is for the caller, not in the package)."""

    case_id: int
    number: int
    page: str
    images: list[ExportedImage] = field(default_factory=list)
    exemplars: dict[str, list[ExportedImage]] = field(default_factory=dict)


@dataclass
class TeachingExport:
    """What a teaching export wrote.

    Attributes
    ----------
    out_dir, index : str
    cases : list of ExportedCase
    kos : dict
        KOS file (relative path) -> SOP Instance UIDs it references.
    skipped : list of (int, str)
        (case id, reason) of images left out (burned-in text, unreadable, ...).
    warnings : list of str
    removed : dict
        What the identity cleaner removed from the teaching text: ``{"total": {kind:
        count}, "texts": {"case 1 history": {kind: count}, ...}}`` (no removed value).
    deid : DeidReport
    """

    out_dir: str
    index: str
    cases: list[ExportedCase] = field(default_factory=list)
    kos: dict[str, list[str]] = field(default_factory=dict)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    removed: dict = field(default_factory=lambda: {"total": {}, "texts": {}})
    deid: DeidReport | None = None

    def removed_summary(self) -> str:
        """Return what was removed from the teaching text, in words."""
        from collections import Counter

        total = describe_removed(Counter(self.removed.get("total", {})))
        if not total:
            return "No names or identifiers were found in the notes, captions or titles."
        where = ", ".join(self.removed.get("texts", {}))
        return f"Removed from the teaching text: {total} (in {where})."

    def as_dict(self) -> dict:
        """Return the export as JSON-able data (the CLI's ``--json`` output)."""
        return {"out_dir": self.out_dir, "index": self.index,
                "cases": [{"case": c.case_id, "number": c.number, "page": c.page,
                           "images": [vars(i) for i in c.images],
                           "exemplars": {k: [vars(i) for i in v] for k, v in c.exemplars.items()}}
                          for c in self.cases],
                "kos": self.kos,
                "skipped": [{"case": c, "reason": r} for c, r in self.skipped],
                "warnings": self.warnings, "removed": self.removed,
                "dicom_files": len(self.deid.written) if self.deid else 0}


def export_collection(store: TeachingStore, collection: str | int, out_dir: str | Path, *,
                      options: DeidOptions | None = None, secret: bytes | None = None,
                      include_exemplars: bool = True, burned_in: str = "skip",
                      overlay: OverlayRenderer | None = None,
                      state: TaskState | None = None) -> TeachingExport:
    """Export a collection as a teaching package (see the module docstring).

    Parameters
    ----------
    store : TeachingStore
    collection : str or int
        Name or id.
    out_dir : path-like
        The package folder; must be empty or absent (an export never mixes with old files).
    options : DeidOptions, optional
        De-identification options; the Basic Profile alone by default.
    secret : bytes, optional
        Key of the UID mapping (random by default).
    include_exemplars : bool
        Also export similar/dissimilar exemplars.
    burned_in : {"skip", "export"}
        Images flagged for burned-in text without blackout rectangles are left out
        (default) or exported anyway.
    overlay : callable, optional
        Draws named overlays on the PNGs (see :data:`OverlayRenderer`).
    state : TaskState, optional
        Progress and cancellation (between images).

    Returns
    -------
    TeachingExport
    """
    state = ensure_state(state)
    coll = store.collection(collection)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        from medviewer.teaching.errors import TeachingError

        raise TeachingError("the package folder is not empty", path=out,
                            hint="choose a new folder; an export never mixes with old files")
    items = store.items(coll.id)
    if not include_exemplars:
        items = [i for i in items if i.role == "case"]
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "cases").mkdir(exist_ok=True)
    staging = out / ".staging"
    exporter = Exporter(staging, options or DeidOptions(), secret=secret, burned_in=burned_in)
    result = TeachingExport(out_dir=str(out), index=str(out / "index.html"))
    cleaner = _cleaner(store)
    numbers = {i.id: n for n, i in enumerate((i for i in items if i.role == "case"), start=1)}

    # 1. De-identify every shown image once (an instance may serve several key images).
    plan: list[tuple[CollectionItem, KeyImage]] = [
        (item, key) for item in items for key in store.shown_images(item)]
    written: dict[int, object] = {}
    try:
        for done, (item, key) in enumerate(plan):
            state.check()
            state.set_progress(0.8 * done / max(1, len(plan)),
                               f"De-identifying image {done + 1} of {len(plan)}")
            if key.instance_id in written:
                continue
            ref = FileRef.from_display(key.location)
            if ref.suffix in RASTER_SUFFIXES:
                written[key.instance_id] = None
                continue
            _collect_identity(cleaner, ref)
            regions = [Region(*r) for r in key.blackout]
            written[key.instance_id] = exporter.add(ref, regions)
            if written[key.instance_id] is None:
                reason = exporter.report.skipped[-1]
                result.skipped.append((item.case_id, f"{reason.reason}: {reason.detail}"))
    except TaskCancelled:
        shutil.rmtree(out, ignore_errors=True)
        raise

    # 2. One "For Teaching" KOS per exported study, then the DICOM File-set.
    state.set_progress(0.82, "Writing key object selections and DICOMDIR")
    kos_files = _write_kos(exporter, written, plan, staging)
    files = [w.output for w in exporter.report.written] + list(kos_files)
    location = {}
    if files:
        from medviewer.teaching.dicomdir import write_fileset

        location = write_fileset(files, out / "dicom")
    # The staging folder goes away: point the report and the audit at the File-set.
    exporter.report.written = [replace(w, output=str(location[w.sop_uid]))
                               for w in exporter.report.written]
    for file_audit in exporter.audit.files:
        file_audit.output = _rel(location.get(Path(file_audit.output).stem), out)
    exporter.report.out_dir = str(out / "dicom")
    exporter.report.audit_path = str(exporter.audit.write(out / "deid_audit.json"))
    result.deid = exporter.report
    written = {k: (replace(v, output=str(location[v.sop_uid])) if v is not None else None)
               for k, v in written.items()}
    for kos_path, uids in kos_files.items():
        kos_uid = Path(kos_path).stem
        result.kos[_rel(location.get(kos_uid), out)] = uids

    # 3. PNGs and pages.
    state.set_progress(0.9, "Rendering images and pages")
    pages: list[CasePage] = []
    exported_by_item: dict[int, list[tuple[ExportedImage, KeyImage]]] = {}
    for n, (item, key) in enumerate(plan):
        w = written.get(key.instance_id)
        if w is None and not FileRef.from_display(key.location).suffix in RASTER_SUFFIXES:
            continue  # skipped: burned-in or unreadable
        number = numbers.get(item.id) or numbers.get(item.exemplar_of, 0)
        png = f"images/case-{number:03d}-{n + 1}.png"
        source = FileRef.for_path(w.output) if w is not None else FileRef.from_display(
            key.location)
        warning = _render(source, key, out / png, overlay)
        if warning:
            result.warnings.append(f"case {number}: {warning}")
        if w is None:
            result.warnings.append(f"case {number}: a PNG/JPEG image was copied as is; it has "
                                   "no header to de-identify and its pixels were not checked")
        image = ExportedImage(png, _rel(location.get(w.sop_uid), out) if w else "",
                              w.sop_uid if w else "", key.frame)
        exported_by_item.setdefault(item.id, []).append((image, key))
    title = _clean(cleaner, coll.name, "collection title", result) or "Teaching file"
    for item in (i for i in items if i.role == "case"):
        number = numbers[item.id]
        page, case = _case(store, cleaner, item, number, items, exported_by_item, result)
        pages.append(page)
        result.cases.append(case)
        (out / page.file).write_text(case_page(page, title), encoding="utf-8")
    description = _clean(cleaner, coll.description, "collection description", result)
    (out / "index.html").write_text(index_page(title, description, pages), encoding="utf-8")
    _manifest(out, title, result, exporter)
    _teaching_json(out, title, description, pages, result)
    shutil.rmtree(staging, ignore_errors=True)
    state.set_progress(1.0, f"Exported {len(pages)} cases")
    return result


def _cleaner(store: TeachingStore) -> FreeTextCleaner:
    """A cleaner that knows every patient of the library and keeps its label names."""
    from medviewer.teaching.identity import library_cleaner

    return library_cleaner(store.library)


def _clean(cleaner: FreeTextCleaner, text: str, where: str, result: TeachingExport) -> str:
    """Clean one text line by line (paragraphs survive); count what went, under ``where``."""
    from collections import Counter

    lines, removed = [], Counter()
    for line in str(text or "").splitlines() or [""]:
        cleaned = cleaner.clean(line)
        lines.append(cleaned.text)
        removed.update(cleaned.removed)
    removed = +removed
    if removed:
        texts = result.removed.setdefault("texts", {})
        texts[where] = dict(Counter(texts.get(where, {})) + removed)
        total = Counter(result.removed.get("total", {})) + removed
        result.removed["total"] = dict(total)
    return "\n".join(lines).strip()


def _collect_identity(cleaner: FreeTextCleaner, ref: FileRef) -> None:
    from pydicom import dcmread

    try:
        with ref.open() as fh:
            cleaner.collect(dcmread(fh, stop_before_pixels=True, force=True))
    except Exception as exc:  # noqa: BLE001 - the exporter reports unreadable files itself
        _log.debug("no identity collected from %s: %s", ref.display, exc)


def _write_kos(exporter: Exporter, written: dict, plan, staging: Path) -> dict[str, list[str]]:
    """Write one KOS per study into ``staging``; return {path: referenced SOP UIDs}."""
    from pydicom import dcmread

    by_study: dict[str, list[tuple[object, KeyImage]]] = {}
    seen: set[tuple[str, int]] = set()
    for _item, key in plan:
        w = written.get(key.instance_id)
        if w is None or (w.sop_uid, key.frame) in seen:
            continue
        seen.add((w.sop_uid, key.frame))
        by_study.setdefault(w.study_uid, []).append((w, key))
    out: dict[str, list[str]] = {}
    for study_uid, entries in by_study.items():
        source = dcmread(entries[0][0].output, stop_before_pixels=True)
        refs: dict[str, ImageReference] = {}
        for w, key in entries:
            frames_n = int(dcmread(w.output, stop_before_pixels=True).get("NumberOfFrames", 1)
                           or 1)
            old = refs.get(w.sop_uid)
            frames = (old.frames if old else ()) + ((key.frame + 1,) if frames_n > 1 else ())
            refs[w.sop_uid] = ImageReference(w.sop_class, w.sop_uid, w.series_uid, study_uid,
                                             frames)
        session = exporter.session
        kos_uid = session.uid(f"kos:{study_uid}")
        kos = build_kos(source, list(refs.values()), sop_uid=kos_uid,
                        series_uid=session.uid(f"kos-series:{study_uid}"),
                        description="MedViewer teaching file", when=datetime.now())
        path = staging / "kos" / f"{kos_uid}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        kos.save_as(path, enforce_file_format=True)
        out[str(path)] = list(refs)
    return out


def _render(source: FileRef, key: KeyImage, path: Path,
            overlay: OverlayRenderer | None) -> str:
    """Render one key image to PNG with its stored window; return a warning or ""."""
    from medviewer.dicom.pixels import decode
    from medviewer.display.render import render_frame, save_png
    from medviewer.display.windowing import Window

    image = decode(source)
    window = (Window(key.window_center, key.window_width, "as shown")
              if key.window_center is not None and key.window_width else None)
    frame = min(key.frame, image.frame_count - 1)
    pixels = render_frame(image, frame, window=window)
    warning = ""
    if key.overlay:
        drawn = overlay(key, pixels, image) if overlay is not None else None
        if drawn is not None:
            pixels = drawn
        else:
            warning = (f"overlay {key.overlay!r} was not drawn (no overlay renderer)"
                       if overlay is None else
                       f"overlay {key.overlay!r} was not drawn (no map stored with the image)")
    save_png(pixels, str(path))
    return warning


def _case(store: TeachingStore, cleaner: FreeTextCleaner, item: CollectionItem, number: int,
          items: list[CollectionItem], exported: dict, result: TeachingExport):
    from collections import Counter

    note = store.note(item.case_id)
    scrubbed, lost = {}, []
    for name in ("history", "findings", "diagnosis", "discussion", "citations", "free_text"):
        before = Counter(result.removed.get("texts", {}).get(f"case {number} {name}", {}))
        scrubbed[name] = _clean(cleaner, getattr(note, name), f"case {number} {name}", result)
        after = Counter(result.removed.get("texts", {}).get(f"case {number} {name}", {}))
        if after != before:
            lost.append(f"{name}: {describe_removed(after - before)}")
    report_text = _report_text(store, item.case_id)
    before = Counter(result.removed.get("texts", {}).get(f"case {number} report", {}))
    report_text = _clean(cleaner, report_text, f"case {number} report", result) if report_text else ""
    after = Counter(result.removed.get("texts", {}).get(f"case {number} report", {}))
    if after != before:
        lost.append(f"report: {describe_removed(after - before)}")
    if lost:
        result.warnings.append(f"case {number}: identifying values removed from the note "
                               f"({'; '.join(lost)}); check the wording")
    figures, images = [], []
    for image, key in exported.get(item.id, []):
        caption = [_clean(cleaner, key.caption, f"case {number} caption", result)] \
            if key.caption else []
        if key.window_center is not None:
            caption.append(f"W {key.window_width:g} / L {key.window_center:g}")
        if key.overlay:
            caption.append(f"overlay: {key.overlay}")
        figures.append(FigureView(image.png, caption))
        images.append(image)
    warnings = []
    if any(c == item.case_id for c, _ in result.skipped):
        warnings.append("Some images were withheld: they may show identifying text.")
    exemplars: dict[str, list[FigureView]] = {"similar": [], "dissimilar": []}
    case = ExportedCase(item.case_id, number, f"cases/case-{number:03d}.html", images)
    for ex in (i for i in items if i.exemplar_of == item.id):
        for image, _key in exported.get(ex.id, []):
            labels = ", ".join(ex.labels) or "no label"
            score = f" (distance {ex.score:.3f})" if ex.score is not None else ""
            exemplars[ex.role].append(FigureView(image.png, [labels + score]))
            case.exemplars.setdefault(ex.role, []).append(image)
    page = CasePage(
        number=number, file=case.page, title=item.modality or "Case", modality=item.modality,
        labels=list(item.labels),
        tags=[t for t in (_clean(cleaner, t, f"case {number} tags", result)
                          for t in store.tags(item.case_id)) if t],
        history=scrubbed["history"], findings=scrubbed["findings"],
        diagnosis=scrubbed["diagnosis"], discussion=scrubbed["discussion"],
        citations=scrubbed["citations"], free_text=scrubbed["free_text"], figures=figures,
        similar=exemplars["similar"], dissimilar=exemplars["dissimilar"], warnings=warnings,
        report=report_text)
    return page, case


def _report_text(store: TeachingStore, case_id: int) -> str:
    """Return the case's report text (its own, else its study's), not yet de-identified."""
    from medviewer.reports.store import ReportStore

    reports = ReportStore(store.library).reports_for_case(case_id)
    return reports[0].text if reports else ""


def _rel(path: Path | None, root: Path) -> str:
    if path is None:
        return ""
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _manifest(out: Path, title: str, result: TeachingExport, exporter: Exporter) -> None:
    data = {
        "title": title, "software": f"MedViewer {__version__}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "deidentification": {"options": exporter.options.as_dict(),
                             "method": [f"{v} {m}" for v, m in exporter.options.method_codes()],
                             "audit": "deid_audit.json"},
        "cases": [{"number": c.number, "page": c.page,
                   "images": [{"png": i.png, "dicom": i.dicom, "frame": i.frame}
                              for i in c.images],
                   "exemplars": {k: [i.png for i in v] for k, v in c.exemplars.items()}}
                  for c in result.cases],
        "kos": sorted(result.kos), "withheld_images": len(result.skipped),
        "teaching": "teaching.json", "removed_from_text": result.removed.get("total", {})}
    (out / "manifest.json").write_text(json.dumps(data, indent=1), encoding="utf-8")


def _teaching_json(out: Path, title: str, description: str, pages: list[CasePage],
                   result: TeachingExport) -> None:
    """Write the cleaned teaching content in a form another MedViewer opens (browse, quiz)."""
    from medviewer.teaching.package_reader import FORMAT, write_teaching_json

    data = {"format": FORMAT, "title": title, "description": description,
            "cases": [{"number": p.number, "title": p.title, "modality": p.modality,
                       "labels": p.labels, "tags": p.tags, "history": p.history,
                       "findings": p.findings, "diagnosis": p.diagnosis,
                       "discussion": p.discussion, "citations": p.citations,
                       "free_text": p.free_text, "page": p.file,
                       "images": [{"png": f.png, "caption": f.caption} for f in p.figures],
                       "similar": [{"png": f.png, "caption": f.caption} for f in p.similar],
                       "dissimilar": [{"png": f.png, "caption": f.caption}
                                      for f in p.dissimilar]}
                      for p in pages]}
    write_teaching_json(out, data)
