"""De-identified export of a series, a study or a whole library (what the export dialog calls).

The library says which files belong to a series or study; :mod:`medviewer.deid`
does the de-identification and writes the audit.  This module adds what a
user-facing export needs around that: the choices of what to export with their
image counts, the refusal of output folders that would mix de-identified copies
with the originals, and a cancellation that still reports what is on disk.

Typical use (worker thread for :func:`plan_export` and :func:`export_files`)::

    plan = plan_export(library_path, series_ids=[3])
    scope = plan.scopes[0]                                   # "This series", 48 images
    check_output_folder(out, plan.protected_folders)         # raises MedViewerError
    report = export_files(scope.files, out, options_from_defaults(defaults),
                          protected=plan.protected_folders, state=state)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from medviewer.deid import DeidOptions, DeidReport, Exporter
from medviewer.dicom.sources import FileRef
from medviewer.errors import LibraryError, MedViewerError, TaskCancelled
from medviewer.services.settings import DEID_DEFAULTS
from medviewer.store.library import Library
from medviewer.tasks import TaskState, ensure_state

SCOPE_KINDS = ("series", "study", "library")


@dataclass(frozen=True)
class ExportScope:
    """One choice of what to export.

    Attributes
    ----------
    kind : {"series", "study", "library"}
    title : str
        What the choice is called ("This series", "The 3 selected series", ...).
    files : tuple of FileRef
        The image files, in the library's order.
    series : int
        Number of series the files belong to.
    patients : int
        Number of patients the files belong to.
    """

    kind: str
    title: str
    files: tuple[FileRef, ...]
    series: int
    patients: int

    @property
    def images(self) -> int:
        """Return the number of image files."""
        return len(self.files)

    def describe(self) -> str:
        """Return the choice with its counts, e.g. "This study: 3 series, 49 images"."""
        parts = []
        if self.kind == "library":
            parts.append(_plural(self.patients, "patient"))
        if self.kind != "series" or self.series > 1:
            parts.append(_plural(self.series, "series", "series"))
        parts.append(_plural(self.images, "image"))
        return f"{self.title}: {', '.join(parts)}"


@dataclass(frozen=True)
class ExportPlan:
    """The export choices of a library, and the folders an export must stay out of.

    Attributes
    ----------
    library_path : Path
        The library file.
    scopes : list of ExportScope
        Narrowest first.
    protected_folders : tuple of Path
        The library's folder, every folder holding its images and every folder
        imported into it: de-identified copies written there would sit beside the
        originals, and a re-import would bring them into the library as new patients.
    """

    library_path: Path
    scopes: list[ExportScope]
    protected_folders: tuple[Path, ...]


def plan_export(library_path: str | os.PathLike, *, series_ids: Sequence[int] | None = None,
                study_id: int | None = None) -> ExportPlan:
    """Return what can be exported: the given series, their (or the given) study, or all.

    Parameters
    ----------
    library_path : path-like
        The library file.
    series_ids : sequence of int, optional
        Series the user selected; their study is offered too when they share one.
    study_id : int, optional
        The study the user selected.  With neither, the whole library is offered.

    Raises
    ------
    LibraryError
        The library file is missing or unreadable, or a series or study is not in it.
    """
    path = Path(library_path).expanduser().resolve()
    if not path.is_file():
        # Library() would create an empty library here; an export wants the existing one.
        raise LibraryError("the library file does not exist", path=path,
                           hint="open the library again from File > Recent")
    series_ids = list(series_ids or [])
    with Library(path) as library:
        scopes = []
        if series_ids:
            rows = library.export_instances(series_ids=series_ids)
            found = {r["series_ref"] for r in rows}
            missing = [s for s in series_ids if s not in found]
            if missing:
                raise LibraryError(f"series {missing} not found or empty", path=path,
                                   hint="refresh the library browser and select again")
            title = ("This series" if len(series_ids) == 1
                     else f"The {len(series_ids)} selected series")
            scopes.append(_scope("series", title, rows))
            studies = {r["study_ref"] for r in rows}
            if study_id is None and len(studies) == 1:
                study_id = studies.pop()
        if study_id is not None:
            rows = library.export_instances(study_ids=[study_id])
            if not rows:
                raise LibraryError(f"study {study_id} not found or empty", path=path,
                                   hint="refresh the library browser and select again")
            scopes.append(_scope("study", "This study", rows))
        if not scopes:
            scopes.append(_scope("library", "Whole library", library.export_instances()))
        folders = {path.parent}
        for file in library.source_files():
            folders.add(Path(file).resolve().parent)
        for inputs in library.import_inputs():
            # Relative inputs were relative to a working folder we no longer know.
            folders.update(Path(p).resolve() for p in inputs
                           if Path(p).is_absolute() and Path(p).is_dir())
    return ExportPlan(path, scopes, tuple(sorted(folders)))


def check_output_folder(out_dir: str | os.PathLike, protected: Iterable[Path]) -> Path:
    """Return the resolved export folder, or say why it cannot be used.

    The folder must be new or empty (an export folder holds one export and its
    audit, nothing else) and lie outside the ``protected`` folders
    (:attr:`ExportPlan.protected_folders`).

    Raises
    ------
    MedViewerError
        With a hint naming what to choose instead.
    """
    if not str(out_dir).strip():
        raise MedViewerError("no output folder chosen",
                             hint="choose a new or empty folder for the export")
    out = Path(out_dir).expanduser().resolve()
    for folder in protected:
        if out == folder or folder in out.parents:
            raise MedViewerError(
                f"the folder is inside {folder}, which holds the library or its original "
                "images", path=out, hint="choose a folder outside the library, so the "
                "de-identified copies never mix with the originals")
    if out.exists() and not out.is_dir():
        raise MedViewerError("is a file, not a folder", path=out,
                             hint="choose a new or empty folder")
    if out.is_dir() and any(out.iterdir()):
        raise MedViewerError("the folder is not empty", path=out,
                             hint="choose a new or empty folder: an export folder holds only "
                             "the de-identified files and their audit")
    return out


def options_from_defaults(values: Mapping[str, object]) -> DeidOptions:
    """Return the :class:`DeidOptions` of a ``deid_defaults`` dict (missing keys: the defaults).

    Raises
    ------
    DeidOptionsError
        An unknown date policy.
    """
    chosen = {**DEID_DEFAULTS, **{k: v for k, v in values.items() if k in DEID_DEFAULTS}}
    return DeidOptions(**chosen)


def export_files(files: Sequence[FileRef], out_dir: str | os.PathLike,
                 options: DeidOptions, *, protected: Iterable[Path] = (),
                 include_burned_in: bool = False, state: TaskState | None = None) -> DeidReport:
    """De-identify ``files`` into ``out_dir`` and write its audit.

    Parameters
    ----------
    files : sequence of FileRef
        The files (an :attr:`ExportScope.files`).
    out_dir : path-like
        A new or empty folder outside ``protected`` (checked again here).
    options : DeidOptions
    protected : iterable of Path
        Folders the export must stay out of (:attr:`ExportPlan.protected_folders`).
    include_burned_in : bool
        Export images flagged for burned-in text (listed in the report) instead of
        refusing them, as ``medviewer deid --allow-burned-in`` does.
    state : TaskState, optional
        Progress; a cancel stops between files.

    Returns
    -------
    DeidReport
        Unlike :func:`medviewer.deid.deidentify_files`, a cancelled export returns
        its report (``cancelled`` set) instead of raising: the caller must tell the
        user which files and audit are already on disk.

    Raises
    ------
    MedViewerError
        The folder is refused or cannot be created.
    """
    state = ensure_state(state)
    out = check_output_folder(out_dir, protected)
    try:
        exporter = Exporter(out, options, burned_in="export" if include_burned_in else "skip")
    except OSError as exc:
        raise MedViewerError(f"cannot create the folder ({exc.strerror or exc})", path=out,
                             hint="choose a folder you can write to") from exc
    total = len(files)
    try:
        for done, ref in enumerate(files):
            state.check()
            state.set_progress(done / max(1, total), f"De-identifying {done + 1} of {total}")
            exporter.add(ref)
    except TaskCancelled:
        return exporter.finish(cancelled=True)
    report = exporter.finish()
    state.set_progress(1.0, f"De-identified {len(report.written)} files, "
                            f"refused {len(report.skipped)}")
    return report


def _scope(kind: str, title: str, rows: list) -> ExportScope:
    files = tuple(FileRef(r["path"], r["member"] or "", r["size"] or 0, r["mtime"] or 0.0)
                  for r in rows)
    return ExportScope(kind, title, files, series=len({r["series_ref"] for r in rows}),
                       patients=len({r["patient_ref"] for r in rows}))


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"
