"""Tests of the seeded synthetic-study generator (medviewer.synthetic)."""

from __future__ import annotations

import csv
import filecmp
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import validate_file_meta
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import UID, ExplicitVRLittleEndian

from medviewer.errors import MedViewerError, TaskCancelled
from medviewer.synthetic import (
    CARDIOMEGALY,
    DATA_ENTRY_HEADER,
    EMPHYSEMA,
    FINDINGS,
    LABELS_COLUMNS,
    MISSING_SLICE,
    NO_FINDING,
    OPACITY,
    UNEVEN_SPACING,
    generate_dataset,
    read_labels_csv,
    render_chest,
    sample_anatomy,
)
from medviewer.synthetic.dicom_writer import SOP_CLASSES
from medviewer.tasks import TaskState

SIZE = 512
CT_SIZE = 96
CT_SLICES = 12


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A small dataset at the real radiograph size, with CT geometry defects."""
    out = tmp_path_factory.mktemp("synthetic")
    manifest = generate_dataset(
        out, 10, seed=3, size=SIZE, ct_series=1, ct_size=CT_SIZE, ct_slices=CT_SLICES,
        ct_geometry_defects=True,
    )
    return manifest


@pytest.fixture(scope="module")
def datasets(dataset):
    """Every DICOM file of ``dataset``, read back, keyed by relative path."""
    return {r.path: pydicom.dcmread(dataset.abspath(r.path), force=False)
            for r in dataset.records}


def _display(ds) -> np.ndarray:
    """Return a radiograph in display space [0, 1] the way a viewer computes it."""
    values = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    top = float(2**ds.BitsStored - 1)
    display = values / top
    if ds.PhotometricInterpretation == "MONOCHROME1":
        display = 1.0 - display
    return display


# --- DICOM validity ---------------------------------------------------------------------------


def test_files_are_valid_part10_with_matching_file_meta(dataset, datasets):
    assert len(datasets) == len(dataset.records)
    for rel, ds in datasets.items():
        with open(dataset.abspath(rel), "rb") as fh:
            assert fh.read(132)[128:] == b"DICM", rel
        validate_file_meta(ds.file_meta, enforce_standard=True)
        meta = ds.file_meta
        assert meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert meta.MediaStorageSOPClassUID == ds.SOPClassUID == SOP_CLASSES[ds.Modality]
        assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert UID(meta.ImplementationClassUID).is_valid
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
        assert int(ds.pixel_array.max()) <= 4095


def test_uids_are_valid_and_unique(dataset, datasets):
    sop = [ds.SOPInstanceUID for ds in datasets.values()]
    assert len(set(sop)) == len(sop)
    for ds in datasets.values():
        for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID):
            assert UID(uid).is_valid and len(uid) <= 64
    # One radiograph per series; a CT series shares its UID only among its own slices.
    series_of = defaultdict(set)
    for record in dataset.records:
        series_of[record.series_uid].add(record.kind)
    assert all(len(kinds) == 1 for kinds in series_of.values())
    radiograph_series = [r.series_uid for r in dataset.radiographs]
    assert len(set(radiograph_series)) == len(radiograph_series)
    study_of_series = {ds.SeriesInstanceUID: ds.StudyInstanceUID for ds in datasets.values()}
    assert len(study_of_series) == len(set(radiograph_series)) + len(dataset.ct_series)


def test_patient_study_hierarchy_is_consistent(datasets):
    study_fields = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyDate",
                    "StudyTime", "AccessionNumber", "StudyID", "StudyDescription")
    by_study = defaultdict(set)
    by_patient = defaultdict(set)
    studies_of_patient = defaultdict(set)
    for ds in datasets.values():
        by_study[ds.StudyInstanceUID].add(tuple(str(ds.get(f)) for f in study_fields))
        by_patient[ds.PatientID].add((str(ds.PatientName), ds.PatientBirthDate, ds.PatientSex))
        studies_of_patient[ds.PatientID].add(ds.StudyInstanceUID)
    assert all(len(v) == 1 for v in by_study.values())
    assert all(len(v) == 1 for v in by_patient.values())
    counts = [len(v) for v in studies_of_patient.values()]
    assert max(counts) == 2 and min(counts) == 1  # this seed has follow-ups and single studies
    # A follow-up comes after the first study.
    for pid, uids in studies_of_patient.items():
        dates = sorted((ds.StudyDate, ds.StudyInstanceUID) for ds in datasets.values()
                       if ds.PatientID == pid)
        assert dates[0][0] <= dates[-1][0]


def test_identifying_tags_are_filled_for_deidentification_tests(datasets):
    required = (
        "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
        "PatientWeight", "AccessionNumber", "InstitutionName", "InstitutionAddress",
        "ReferringPhysicianName", "OperatorsName", "PerformingPhysicianName", "StationName",
        "DeviceSerialNumber", "StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "StudyID",
        "StudyDescription", "SeriesDescription", "BodyPartExamined", "Manufacturer",
    )
    for ds in datasets.values():
        for keyword in required:
            assert str(ds.get(keyword, "")).strip(), keyword
        assert str(ds.PatientName).count("^") >= 2
        assert ds.PatientAge.endswith("Y") and len(ds.PatientAge) == 4
        block = ds.private_block(0x0009, "MEDVIEWER SYNTHETIC")
        assert ds.PatientID not in block[0x01].value  # a different, hidden identifier
        assert str(ds.PatientName).split("^")[0] in block[0x01].value
        request = ds.RequestAttributesSequence[0]
        assert request.AccessionNumber == ds.AccessionNumber
        assert request.IssuerOfAccessionNumberSequence[0].LocalNamespaceEntityID
        assert ds.OtherPatientIDsSequence[0].PatientID


# --- Radiographs ------------------------------------------------------------------------------


def test_radiograph_attributes(dataset, datasets):
    photometrics = set()
    for record in dataset.radiographs:
        ds = datasets[record.path]
        assert ds.Modality in ("DX", "CR") and ds.Modality == record.modality
        assert (ds.Rows, ds.Columns) == (SIZE, SIZE)
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (
            16, 12, 11, 0)
        assert ds.pixel_array.dtype == np.uint16
        for spacing in (ds.PixelSpacing, ds.ImagerPixelSpacing):
            assert all(0.3 <= float(v) <= 0.4 for v in spacing)
        assert ds.ViewPosition in ("PA", "AP")
        assert float(ds.WindowWidth) > 0 and 0 < float(ds.WindowCenter) < 4096
        assert ds.PhotometricInterpretation == record.photometric
        assert float(ds.PatientWeight) == pytest.approx(record.weight_kg, abs=0.05)
        photometrics.add(ds.PhotometricInterpretation)
    assert photometrics == {"MONOCHROME1", "MONOCHROME2"}


def test_display_matches_png_for_both_photometric_interpretations(dataset, datasets):
    """After pydicom's VOI LUT (and inversion for MONOCHROME1) every film equals its PNG."""
    for record in dataset.radiographs:
        display = _display(datasets[record.path])
        png = np.asarray(Image.open(dataset.abspath(record.png_path)), dtype=np.float64) / 255
        assert png.shape == display.shape
        assert np.abs(display - png).max() <= 1.0 / 255 + 1e-6, record.path


def test_display_has_bright_mediastinum_and_dark_lungs(dataset, datasets):
    """In display space the lungs are darker than the mediastinum, whatever the photometric."""
    checked = set()
    for record in dataset.radiographs:
        if OPACITY in record.labels:
            continue  # a consolidation may fill the sampled lung boxes
        d = _display(datasets[record.path])
        n = d.shape[0]
        rows = slice(int(0.3 * n), int(0.42 * n))
        mediastinum = d[rows, int(0.48 * n):int(0.52 * n)].mean()
        right_lung = d[rows, int(0.27 * n):int(0.35 * n)].mean()
        left_lung = d[rows, int(0.65 * n):int(0.73 * n)].mean()
        outside = d[int(0.5 * n):, :int(0.015 * n)].mean()  # air beside the trunk
        assert mediastinum > max(right_lung, left_lung) + 0.2, record.path
        assert outside < min(right_lung, left_lung), record.path
        checked.add(record.photometric)
    assert checked == {"MONOCHROME1", "MONOCHROME2"}


def test_masks_are_nonempty_exactly_for_positive_cases(dataset):
    for record in dataset.radiographs:
        mask = np.asarray(Image.open(dataset.abspath(record.mask_path)))
        assert mask.shape == (SIZE, SIZE) and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255}
        assert bool(mask.any()) == bool(record.labels), record.path
    assert any(r.labels for r in dataset.radiographs)
    assert any(not r.labels for r in dataset.radiographs)


def _anatomies(finding: tuple, n: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        anatomy = sample_anatomy(rng, finding, view="PA")
        yield render_chest(anatomy, 128, rng)


def _width(mask: np.ndarray) -> int:
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[-1] - cols[0] + 1)


def test_findings_change_the_anatomy_as_described():
    normal = list(_anatomies((), 8, 1))
    cardio = list(_anatomies((CARDIOMEGALY,), 8, 2))
    emphysema = list(_anatomies((EMPHYSEMA,), 8, 3))
    opacity = list(_anatomies((OPACITY,), 8, 4))

    def ctr(image):
        return _width(image.heart) / _width(image.lungs | image.heart)

    assert all(ctr(im) < 0.5 for im in normal)
    assert all(ctr(im) > 0.55 for im in cardio)
    for im in cardio:
        assert np.array_equal(im.mask > 0, im.heart)
    # Emphysema: larger, darker lung fields, and the mask is the lungs.
    assert np.mean([im.lungs.sum() for im in emphysema]) > 1.15 * np.mean(
        [im.lungs.sum() for im in normal])
    assert np.mean([im.density[im.lungs].mean() for im in emphysema]) < np.mean(
        [im.density[im.lungs].mean() for im in normal]) - 0.03
    for im in emphysema:
        assert np.array_equal(im.mask > 0, im.lungs)
    # Opacity: blobs inside the lungs that raise the density there.
    for im in opacity:
        mask = im.mask > 0
        assert mask.any() and not (mask & ~im.lungs).any()
        assert im.density[mask].mean() > im.density[im.lungs & ~mask].mean() + 0.1
    for im in normal:
        assert not im.mask.any() and im.label_string == NO_FINDING


# --- CT ---------------------------------------------------------------------------------------


def _series(dataset, datasets, defect=""):
    for uid, records in dataset.ct_series.items():
        if records[0].defect == defect:
            slices = [datasets[r.path] for r in records]
            return records, sorted(slices, key=lambda ds: float(ds.ImagePositionPatient[2]))
    raise AssertionError(f"no CT series with defect {defect!r}")


def test_ct_geometry_and_file_order(dataset, datasets):
    records, slices = _series(dataset, datasets)
    assert len(slices) == CT_SLICES
    z = np.array([float(ds.ImagePositionPatient[2]) for ds in slices])
    steps = np.diff(z)
    assert np.all(steps > 0)
    assert np.allclose(steps, float(slices[0].SpacingBetweenSlices))
    for ds in slices:
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
        assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (40.0, 400.0)
        assert ds.FrameOfReferenceUID == slices[0].FrameOfReferenceUID
        assert float(ds.SliceThickness) > 0 and len(ds.PixelSpacing) == 2
    # Names are shuffled: sorting the files by name does not sort them by position.
    by_name = sorted(records, key=lambda r: r.path)
    assert [r.slice_index for r in by_name] != sorted(r.slice_index for r in by_name)
    # Instance numbers follow a head-first acquisition: superior slices first.
    numbers = [int(ds.InstanceNumber) for ds in slices]
    assert numbers == sorted(numbers, reverse=True)


def test_ct_hounsfield_units(dataset, datasets):
    _, slices = _series(dataset, datasets)
    upper = apply_modality_lut(slices[int(0.7 * len(slices))].pixel_array,
                               slices[0]).astype(float)
    body = upper > -500
    assert upper[0, 0] < -950  # air in the corner
    lung = (upper < -700) & (upper > -950)
    assert lung.sum() > 0.05 * body.sum()
    assert upper[lung].mean() < -700
    # Mediastinum / heart at the centre of a mid-chest slice is soft tissue.
    mid = apply_modality_lut(slices[int(0.55 * len(slices))].pixel_array, slices[0])
    c = CT_SIZE // 2
    assert 0 <= np.median(mid[c - 1:c + 2, c - 1:c + 2]) <= 100
    assert upper.max() > 500  # bone


def test_ct_geometry_defects(dataset, datasets):
    _, normal = _series(dataset, datasets)
    step = float(normal[0].SpacingBetweenSlices)
    _, missing = _series(dataset, datasets, MISSING_SLICE)
    assert len(missing) == CT_SLICES - 1
    gaps = np.diff([float(ds.ImagePositionPatient[2]) for ds in missing])
    assert np.isclose(gaps.max(), 2 * step) and np.sum(~np.isclose(gaps, step)) == 1
    _, uneven = _series(dataset, datasets, UNEVEN_SPACING)
    assert len(uneven) == CT_SLICES
    gaps = np.diff([float(ds.ImagePositionPatient[2]) for ds in uneven])
    assert np.isclose(gaps.max(), 1.5 * step) and np.sum(~np.isclose(gaps, step)) == 1


def test_ct_patient_weight_follows_body_cross_section(tmp_path):
    manifest = generate_dataset(tmp_path, 0, seed=5, ct_series=8, ct_size=64, ct_slices=6,
                                png=False)
    weights, areas = [], []
    for records in manifest.ct_series.values():
        ds = pydicom.dcmread(manifest.abspath(records[len(records) // 2].path))
        hu = apply_modality_lut(ds.pixel_array, ds)
        areas.append((hu > -500).sum() * float(ds.PixelSpacing[0]) ** 2)
        weights.append(float(ds.PatientWeight))
        assert float(ds.PatientSize) > 1.0
    assert len(weights) == 8
    assert np.corrcoef(weights, areas)[0, 1] > 0.8


# --- Tables -----------------------------------------------------------------------------------


def test_labels_csv_and_data_entry_agree(dataset, datasets):
    with open(dataset.labels_csv, newline="") as fh:
        header = fh.readline().strip()
    assert header == ",".join(LABELS_COLUMNS)
    assert LABELS_COLUMNS[:4] == ("path", "patient_id", "labels", "mask_path")
    rows = read_labels_csv(dataset.labels_csv)
    assert len(rows) == len(dataset.records)
    allowed = set(FINDINGS)
    by_name = {}
    for row in rows:
        assert (dataset.out_dir / row["path"]).is_file()
        ds = datasets[row["path"]]
        assert row["patient_id"] == ds.PatientID and row["modality"] == ds.Modality
        assert row["photometric"] == ds.PhotometricInterpretation
        assert float(row["weight_kg"]) == pytest.approx(float(ds.PatientWeight), abs=0.05)
        if row["kind"] == "ct":
            assert row["labels"] == "" and row["mask_path"] == ""
            continue
        assert row["kind"] == "radiograph"
        labels = row["labels"].split("|")
        if labels != [NO_FINDING]:
            assert set(labels) <= allowed and len(set(labels)) == len(labels)
        assert ds.private_block(0x0009, "MEDVIEWER SYNTHETIC")[0x10].value == row["labels"]
        by_name[Path(row["mask_path"]).name] = (row, ds)

    with open(dataset.data_entry_csv, newline="") as fh:
        assert fh.readline().rstrip("\n") == DATA_ENTRY_HEADER
        entries = list(csv.reader(fh))
    assert len(entries) == len(by_name)
    patient_map = {}
    for entry in entries:
        assert len(entry) == 11  # the bracketed header names span two columns each
        name, labels, follow_up, patient, age, sex, view, w, h, sx, sy = entry
        row, ds = by_name[name]
        assert labels == row["labels"]
        assert (dataset.out_dir / "png" / name).is_file()
        assert int(age) == int(ds.PatientAge[:3]) and sex == ds.PatientSex
        assert view == ds.ViewPosition and (int(w), int(h)) == (ds.Columns, ds.Rows)
        assert float(sx) == pytest.approx(float(ds.PixelSpacing[1]))
        assert name.startswith(f"{int(patient):08d}_{int(follow_up):03d}")
        patient_map.setdefault(patient, set()).add(row["patient_id"])
    assert all(len(ids) == 1 for ids in patient_map.values())
    assert len({next(iter(v)) for v in patient_map.values()}) == len(patient_map)


# --- Determinism, progress, errors, CLI -------------------------------------------------------


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    kwargs = dict(size=128, ct_series=1, ct_size=48, ct_slices=5)
    a = generate_dataset(tmp_path / "a", 4, 21, **kwargs)
    b = generate_dataset(tmp_path / "b", 4, 21, **kwargs)
    c = generate_dataset(tmp_path / "c", 4, 22, **kwargs)
    files = _tree(a.out_dir)
    assert files == _tree(b.out_dir)
    match, mismatch, errors = filecmp.cmpfiles(a.out_dir, b.out_dir, files, shallow=False)
    assert mismatch == [] and errors == []
    assert [r.sop_uid for r in a.records] == [r.sop_uid for r in b.records]
    assert not {r.sop_uid for r in a.records} & {r.sop_uid for r in c.records}
    pixels_a = [pydicom.dcmread(a.abspath(r.path)).PixelData for r in a.radiographs]
    pixels_c = [pydicom.dcmread(c.abspath(r.path)).PixelData for r in c.radiographs]
    assert all(pa != pc for pa, pc in zip(pixels_a, pixels_c))


def test_progress_is_reported_and_cancel_stops(tmp_path):
    state = TaskState()
    generate_dataset(tmp_path / "ok", 2, 1, size=64, ct_series=0, png=False, state=state)
    assert state.progress == 1.0 and state.status
    cancelled = TaskState()
    cancelled.request_cancel()
    with pytest.raises(TaskCancelled):
        generate_dataset(tmp_path / "no", 2, 1, size=64, ct_series=0, state=cancelled)
    assert not (tmp_path / "no" / "labels.csv").exists()


def test_bad_arguments_raise_domain_errors(tmp_path):
    with pytest.raises(MedViewerError):
        generate_dataset(tmp_path, -1, 0)
    with pytest.raises(MedViewerError):
        generate_dataset(tmp_path, 1, 0, size=16)
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    with pytest.raises(MedViewerError) as info:
        generate_dataset(not_a_folder, 1, 0, size=64)
    assert info.value.path == str(not_a_folder) and info.value.hint


def test_cli_writes_the_dataset_and_json_summary(tmp_path, capsys):
    from medviewer.cli.main import main

    out = tmp_path / "cli"
    rc = main(["synthetic", str(out), "--cases", "3", "--seed", "1", "--size", "96",
               "--ct-series", "1", "--ct-size", "48", "--ct-slices", "4", "--json"])
    assert rc == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["radiographs"] == 3 and payload["ct_series"] == 1
    assert payload["ct_slices"] == 4
    assert sum(payload["findings"].values()) >= 3
    rows = read_labels_csv(out / "labels.csv")
    assert len(rows) == 3 + 4
    assert (out / "png" / "Data_Entry_2017.csv").is_file()
    assert len(list((out / "masks").glob("*.png"))) == 3
    assert len(list((out / "dicom").rglob("*.dcm"))) == 7

    rc = main(["synthetic", str(tmp_path / "text"), "--cases", "1", "--seed", "2",
               "--size", "64", "--ct-series", "0", "--no-png"])
    assert rc == 0 and "wrote 1 radiographs" in capsys.readouterr().out
    assert not (tmp_path / "text" / "png").exists()


# --- Learnability -----------------------------------------------------------------------------


def test_findings_are_learnable_from_32px_pixels(tmp_path):
    """A logistic regression on 32 x 32 PNG pixels separates each finding (CV AUC >= 0.85).

    Films are generated at 128 px to keep the test fast; the phantom is drawn
    in normalised coordinates, so 512 px films downsample to the same pictures.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    manifest = generate_dataset(tmp_path, 200, seed=12, size=128, ct_series=0)
    features, targets = [], []
    for record in manifest.radiographs:
        image = Image.open(manifest.abspath(record.png_path)).resize((32, 32), Image.BILINEAR)
        x = np.asarray(image, dtype=np.float32).ravel()
        features.append((x - x.mean()) / x.std())  # per-image normalisation, as for a ViT
        targets.append([name in record.labels for name in FINDINGS])
    x, y = np.array(features), np.array(targets)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    for j, name in enumerate(FINDINGS):
        assert 20 <= y[:, j].sum() <= len(y) - 20, name
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, solver="liblinear"))
        auc = cross_val_score(model, x, y[:, j], cv=folds, scoring="roc_auc").mean()
        assert auc >= 0.85, f"{name}: AUC {auc:.3f}"
