"""Generate a complete synthetic dataset: DICOM studies, masks, PNGs and label tables.

Layout under ``out_dir``::

    dicom/<PatientID>/ST<nn>/SE<nn>/<name>.dcm   radiographs (one per study) and CT slices
    masks/<name>.png                            lesion mask per radiograph (0/255)
    png/<name>.png                              8-bit radiograph, bright bone
    png/Data_Entry_2017.csv                     ChestX-ray14-style table of the PNGs
    labels.csv                                  one row per DICOM file
    reports.csv                                 path,report of every radiograph

Radiographs are named like ChestX-ray14 images, ``<patient:08d>_<follow-up:03d>``.
Every random choice comes from a generator seeded with ``(seed, stream, index)``,
so the same seed gives byte-identical files, and radiograph ``i`` does not
depend on how many cases were asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from medviewer.errors import MedViewerError
from medviewer.synthetic.chest import (
    MIN_SIZE,
    NO_FINDING,
    render_chest,
    sample_anatomy,
    sample_findings,
)
from medviewer.synthetic.ct import RECONSTRUCTION_DIAMETER_MM, render_ct_volume, sample_body
from medviewer.synthetic.dicom_writer import (
    SeriesInfo,
    ct_slice_dataset,
    radiograph_dataset,
    write_dataset,
)
from medviewer.synthetic.identity import Patient, Study, derive_uid, make_patient, make_study
from medviewer.synthetic.reports import write_report
from medviewer.synthetic.pixels import (
    auto_window,
    density_to_stored,
    hu_to_stored,
    to_monochrome1,
    window_to_uint8,
)
from medviewer.synthetic.tables import (
    DATA_ENTRY_NAME,
    LABELS_NAME,
    REPORTS_NAME,
    write_data_entry_csv,
    write_labels_csv,
    write_reports_csv,
)
from medviewer.tasks import TaskState, ensure_state

RADIOGRAPH = "radiograph"
CT = "ct"
MISSING_SLICE = "missing_slice"
UNEVEN_SPACING = "uneven_spacing"

# Streams of the per-object random generators: (seed, stream, index).
# Reports have their own stream, so adding them changed no pixel of older datasets.
_PLAN_STREAM, _RADIOGRAPH_STREAM, _CT_STREAM, _REPORT_STREAM = 0, 1, 2, 3
# Share of patients with a follow-up study, of films stored as MONOCHROME1, of DX vs CR.
FOLLOW_UP_PROBABILITY = 0.3
MONOCHROME1_PROBABILITY = 0.25
DX_PROBABILITY = 0.6
CT_COVERAGE_MM = 240.0
# A CT series costs about as much time as this many radiographs (for progress).
_CT_WORK_UNITS = 6.0


@dataclass(frozen=True)
class Record:
    """One written DICOM file and what it shows.

    Attributes
    ----------
    path : str
        DICOM file, relative to the dataset folder (POSIX separators).
    patient_id : str
        (0010,0020) Patient ID.
    labels : tuple of str
        Findings; empty for a normal film and for CT.
    mask_path, png_path : str
        Relative paths of the lesion mask and the 8-bit PNG ("" for CT).
    report : str
        The radiology report written for the film ("" for CT), see
        :mod:`medviewer.synthetic.reports`.
    modality : str
        ``DX``, ``CR`` or ``CT``.
    kind : str
        ``radiograph`` or ``ct``.
    photometric : str
        (0028,0004) Photometric Interpretation.
    weight_kg : float
        (0010,1030) Patient's Weight.
    patient_number : int
        Running patient number (``Patient ID`` in ``Data_Entry_2017.csv``).
    study_uid, series_uid, sop_uid : str
    image_index : str
        ChestX-ray14-style PNG name (radiographs only).
    view : str
        ``PA`` or ``AP`` (radiographs only).
    slice_index : int
        Position of a CT slice from the most inferior (0), -1 for radiographs.
    defect : str
        ``""``, ``missing_slice`` or ``uneven_spacing`` (CT geometry defects).
    """

    path: str
    patient_id: str
    labels: tuple[str, ...]
    mask_path: str
    modality: str
    kind: str
    photometric: str
    weight_kg: float
    patient_number: int
    study_uid: str
    series_uid: str
    sop_uid: str
    png_path: str = ""
    image_index: str = ""
    view: str = ""
    slice_index: int = -1
    defect: str = ""
    report: str = ""

    @property
    def label_string(self) -> str:
        """Labels as written to ``labels.csv`` (``No Finding`` for normal films, "" for CT)."""
        if self.kind != RADIOGRAPH:
            return ""
        return "|".join(self.labels) if self.labels else NO_FINDING

    def csv_row(self) -> dict:
        """Return the row of ``labels.csv`` for this file."""
        return {
            "path": self.path,
            "patient_id": self.patient_id,
            "labels": self.label_string,
            "mask_path": self.mask_path,
            "modality": self.modality,
            "kind": self.kind,
            "photometric": self.photometric,
            "weight_kg": f"{self.weight_kg:.1f}",
        }


@dataclass
class Manifest:
    """What :func:`generate_dataset` wrote.

    Attributes
    ----------
    out_dir : Path
        The dataset folder; record paths are relative to it.
    seed : int
    size : int
        Radiograph width and height in pixels.
    records : list of Record
        One per DICOM file: radiographs first, then CT slices by series and position.
    labels_csv : Path
    data_entry_csv : Path or None
        ``png/Data_Entry_2017.csv`` when PNGs were written.
    reports_csv : Path or None
        ``reports.csv``: ``path,report`` of every radiograph.
    """

    out_dir: Path
    seed: int
    size: int
    records: list[Record] = field(default_factory=list)
    labels_csv: Path | None = None
    data_entry_csv: Path | None = None
    reports_csv: Path | None = None

    @property
    def radiographs(self) -> list[Record]:
        """Radiograph records, in generation order."""
        return [r for r in self.records if r.kind == RADIOGRAPH]

    @property
    def ct_series(self) -> dict[str, list[Record]]:
        """CT records grouped by Series Instance UID, each list sorted inferior to superior."""
        series: dict[str, list[Record]] = {}
        for record in self.records:
            if record.kind == CT:
                series.setdefault(record.series_uid, []).append(record)
        return {uid: sorted(recs, key=lambda r: r.slice_index) for uid, recs in series.items()}

    def abspath(self, relative: str) -> Path:
        """Return the absolute path of a record's relative path."""
        return self.out_dir / relative


@dataclass(frozen=True)
class _PlannedRadiograph:
    index: int
    study: Study
    name: str


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """Return the generator of one object, independent of every other object."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(seed) >> 32, stream, index])


def _plan_radiographs(rng: np.random.Generator, seed: int, cases: int) -> list[_PlannedRadiograph]:
    """Assign ``cases`` radiographs to patients with one or two studies each."""
    planned: list[_PlannedRadiograph] = []
    number = 0
    while len(planned) < cases:
        number += 1
        patient = make_patient(rng, number)
        remaining = cases - len(planned)
        n_studies = 2 if remaining >= 2 and rng.random() < FOLLOW_UP_PROBABILITY else 1
        previous = None
        for follow_up in range(n_studies):
            study = make_study(rng, seed, patient, follow_up, ct=False, after=previous)
            previous = study.date
            name = f"{patient.number:08d}_{follow_up:03d}"
            planned.append(_PlannedRadiograph(len(planned), study, name))
    return planned


def _study_dir(study: Study) -> str:
    """Folder of a study below ``dicom/``."""
    return f"dicom/{study.patient.patient_id}/ST{study.follow_up + 1:02d}"


def _write_radiograph(
    out_dir: Path, plan: _PlannedRadiograph, seed: int, size: int, png: bool
) -> tuple[Record, tuple | None]:
    """Render, write and describe one radiograph; return its record and Data_Entry row."""
    rng = _rng(seed, _RADIOGRAPH_STREAM, plan.index)
    study, patient = plan.study, plan.study.patient
    findings = sample_findings(rng)
    modality = "DX" if rng.random() < DX_PROBABILITY else "CR"
    photometric = "MONOCHROME1" if rng.random() < MONOCHROME1_PROBABILITY else "MONOCHROME2"
    spacing = round(float(rng.uniform(0.3, 0.4)), 3)
    kvp = float(rng.uniform(110.0, 125.0))
    mas = float(rng.uniform(1.5, 4.0) * (1.0 + patient.fatness))
    anatomy = sample_anatomy(rng, findings, fatness=patient.fatness, female=patient.female)
    image = render_chest(anatomy, size, rng)

    stored = density_to_stored(image.density)
    window = auto_window(stored)
    display = window_to_uint8(stored, window) if png else None
    if photometric == "MONOCHROME1":
        stored, window = to_monochrome1(stored, window)

    series = SeriesInfo(
        uid=derive_uid(seed, "series", RADIOGRAPH, plan.index),
        number=1,
        modality=modality,
        description=f"CHEST {anatomy.view}",
    )
    sop_uid = derive_uid(seed, "instance", RADIOGRAPH, plan.index)
    labels = image.label_string
    ds = radiograph_dataset(
        study, series, sop_uid, stored,
        photometric=photometric, window=window, view=anatomy.view,
        pixel_spacing_mm=spacing, labels=labels, kvp=kvp, exposure_mas=mas,
    )
    dicom_rel = f"{_study_dir(study)}/SE{series.number:02d}/{plan.name}.dcm"
    write_dataset(ds, out_dir / dicom_rel)

    mask_rel = f"masks/{plan.name}.png"
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(image.mask).save(out_dir / mask_rel, compress_level=1)
    png_rel, entry = "", None
    if display is not None:
        png_rel = f"png/{plan.name}.png"
        (out_dir / "png").mkdir(parents=True, exist_ok=True)
        Image.fromarray(display).save(out_dir / png_rel, compress_level=1)
        entry = (
            f"{plan.name}.png", labels, study.follow_up, patient.number, study.age,
            patient.sex, anatomy.view, size, size, spacing, spacing,
        )
    record = Record(
        path=dicom_rel, patient_id=patient.patient_id, labels=findings, mask_path=mask_rel,
        modality=modality, kind=RADIOGRAPH, photometric=photometric,
        weight_kg=patient.weight_kg, patient_number=patient.number,
        study_uid=study.study_uid, series_uid=series.uid, sop_uid=sop_uid,
        png_path=png_rel, image_index=f"{plan.name}.png", view=anatomy.view,
        report=write_report(image, _rng(seed, _REPORT_STREAM, plan.index)),
    )
    return record, entry


def write_ct_series(
    out_dir: Path,
    study: Study,
    seed: int,
    index: int,
    *,
    size: int = 256,
    slices: int = 48,
    defect: str = "",
) -> list[Record]:
    """Render and write one axial CT series of ``study``'s patient.

    Parameters
    ----------
    out_dir : Path
        Dataset folder.
    study : Study
        The CT study (its patient's weight and height shape the body).
    seed, index : int
        Dataset seed and the series' running number (for randomness and UIDs).
    size, slices : int
        Pixels per side and number of slices; coverage is always 240 mm.
    defect : {"", "missing_slice", "uneven_spacing"}
        Geometry defect for loader tests: drop the middle slice, or move the
        upper half of the slices up by half a spacing (one 1.5x gap).

    Returns
    -------
    list of Record
        One per written slice, sorted from inferior to superior.
    """
    if defect not in ("", MISSING_SLICE, UNEVEN_SPACING):
        raise ValueError(f"unknown CT defect {defect!r}")
    rng = _rng(seed, _CT_STREAM, index)
    patient = study.patient
    body = sample_body(rng, patient.weight_kg, patient.height_m, patient.fatness)
    volume = render_ct_volume(body, rng, size=size, slices=slices)
    pixel_spacing = RECONSTRUCTION_DIAMETER_MM / size
    step = round(CT_COVERAGE_MM / slices, 3)
    z0 = -round(float(rng.uniform(100.0, 200.0)), 1)
    origin_xy = -(size - 1) / 2.0 * pixel_spacing
    kept = [k for k in range(slices) if not (defect == MISSING_SLICE and k == slices // 2)]
    # File names are a random permutation, so a loader must sort by position.
    names = rng.permutation(len(kept)) + 1

    series = SeriesInfo(
        uid=derive_uid(seed, "series", CT, index),
        number=2,
        modality="CT",
        description="AXIAL 5MM STANDARD" if abs(step - 5.0) < 1e-6 else f"AXIAL {step:g}MM",
    )
    frame_uid = derive_uid(seed, "frame", CT, index)
    series_dir = f"{_study_dir(study)}/SE{series.number:02d}"
    records = []
    for name, k in sorted(zip(names, kept)):
        z = z0 + k * step + (0.5 * step if defect == UNEVEN_SPACING and k >= slices // 2 else 0.0)
        sop_uid = derive_uid(seed, "instance", CT, index, k)
        ds = ct_slice_dataset(
            study, series, sop_uid, hu_to_stored(volume[k]),
            frame_of_reference_uid=frame_uid,
            # Scanned head first: the most superior slice is acquired first.
            instance_number=slices - k,
            position=(origin_xy, origin_xy, round(z, 3)),
            pixel_spacing_mm=pixel_spacing,
            slice_thickness_mm=step,
            spacing_between_slices_mm=step,
        )
        rel = f"{series_dir}/IM{int(name):04d}.dcm"
        write_dataset(ds, out_dir / rel)
        records.append(Record(
            path=rel, patient_id=patient.patient_id, labels=(), mask_path="",
            modality="CT", kind=CT, photometric="MONOCHROME2", weight_kg=patient.weight_kg,
            patient_number=patient.number, study_uid=study.study_uid, series_uid=series.uid,
            sop_uid=sop_uid, slice_index=k, defect=defect,
        ))
    return sorted(records, key=lambda r: r.slice_index)


def generate_dataset(
    out_dir: str | Path,
    cases: int,
    seed: int,
    *,
    size: int = 512,
    ct_series: int | None = None,
    png: bool = True,
    ct_size: int = 256,
    ct_slices: int = 48,
    ct_geometry_defects: bool = False,
    state: TaskState | None = None,
) -> Manifest:
    """Write a seeded synthetic dataset of chest radiographs and CT series.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write into (created; existing files of the same names are replaced).
    cases : int
        Number of chest radiographs (DX or CR, one per study).  Patients get
        one study, or two (a follow-up) with probability 0.3.
    seed : int
        Same seed, same files (byte-identical pixels, same UIDs and labels).
    size : int
        Radiograph width and height in pixels; 512 or more for realistic
        films, down to 64 for quick tests.
    ct_series : int, optional
        Number of CT series, each of its own patient; default
        ``max(1, cases // 10)``; 0 for none.
    png : bool
        Also write 8-bit PNGs and ``png/Data_Entry_2017.csv``.
    ct_size, ct_slices : int
        CT matrix size and slice count (default 256 x 256 x 48, 5 mm slices).
    ct_geometry_defects : bool
        Add two more CT series: one with a missing slice, one with uneven
        spacing (see :func:`write_ct_series`).
    state : TaskState, optional
        Receives progress; cancelling stops before the next file and leaves
        the files written so far, without ``labels.csv``.

    Returns
    -------
    Manifest

    Raises
    ------
    MedViewerError
        If an argument is out of range or ``out_dir`` is not a writable folder.
    TaskCancelled
        If cancellation was requested through ``state``.
    """
    state = ensure_state(state)
    out = Path(out_dir)
    if cases < 0:
        raise MedViewerError(f"cases must be 0 or more, got {cases}", hint="pass --cases N")
    if size < MIN_SIZE:
        raise MedViewerError(f"size must be at least {MIN_SIZE} pixels, got {size}",
                             hint="use --size 512 for realistic films")
    if ct_series is None:
        ct_series = max(1, cases // 10)
    if ct_series < 0 or ct_size < 32 or ct_slices < 4:
        raise MedViewerError(
            f"invalid CT settings: {ct_series} series of {ct_slices} slices of {ct_size} px",
            hint="use at least 4 slices of 32 x 32 pixels, and 0 or more series",
        )
    if out.exists() and not out.is_dir():
        raise MedViewerError("is not a folder", path=out, hint="choose a new or empty folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MedViewerError(f"cannot create the folder: {exc.strerror}", path=out,
                             hint="choose a writable location") from exc

    plan_rng = _rng(seed, _PLAN_STREAM, 0)
    planned = _plan_radiographs(plan_rng, seed, cases)
    defects = [""] * ct_series + ([MISSING_SLICE, UNEVEN_SPACING] if ct_geometry_defects else [])
    next_number = (planned[-1].study.patient.number if planned else 0) + 1
    ct_studies = []
    for offset in range(len(defects)):
        patient: Patient = make_patient(plan_rng, next_number + offset)
        ct_studies.append(make_study(plan_rng, seed, patient, 0, ct=True))

    manifest = Manifest(out_dir=out, seed=seed, size=size)
    entries = []
    total = len(planned) + _CT_WORK_UNITS * len(defects)
    done = 0.0
    state.set_progress(0.0, "generating synthetic studies")
    for plan in planned:
        state.check()
        record, entry = _write_radiograph(out, plan, seed, size, png)
        manifest.records.append(record)
        if entry is not None:
            entries.append(entry)
        done += 1
        state.set_progress(done / max(total, 1), f"radiograph {plan.index + 1} of {len(planned)}")
    for index, (study, defect) in enumerate(zip(ct_studies, defects)):
        state.check()
        manifest.records.extend(
            write_ct_series(out, study, seed, index, size=ct_size, slices=ct_slices,
                            defect=defect)
        )
        done += _CT_WORK_UNITS
        state.set_progress(done / max(total, 1), f"CT series {index + 1} of {len(defects)}")

    manifest.labels_csv = out / LABELS_NAME
    write_labels_csv(manifest.labels_csv, (r.csv_row() for r in manifest.records))
    manifest.reports_csv = out / REPORTS_NAME
    write_reports_csv(manifest.reports_csv, ((r.path, r.report) for r in manifest.radiographs))
    if png:
        manifest.data_entry_csv = out / "png" / DATA_ENTRY_NAME
        write_data_entry_csv(manifest.data_entry_csv, entries)
    state.set_progress(1.0, f"wrote {len(manifest.records)} files")
    return manifest
