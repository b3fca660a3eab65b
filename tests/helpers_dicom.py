"""Tiny synthetic DICOM files for the tests, written with pydicom and seeded.

Everything here is deterministic for a given ``seed``: pixel values come from
``numpy.random.default_rng(seed)`` and UIDs from
``pydicom.uid.generate_uid(entropy_srcs=...)``, so a failing test reproduces.

The helpers write real Part 10 files (preamble, file meta, explicit VR little
endian unless asked otherwise) that pydicom, and therefore MedViewer, reads
like files from a scanner.  Samples shipped inside the pydicom package are
reached through :func:`pydicom_sample`, which never downloads anything.
"""

from __future__ import annotations

import math
import shutil
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ComputedRadiographyImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    PYDICOM_IMPLEMENTATION_UID,
    SecondaryCaptureImageStorage,
    generate_uid,
)

UID_PREFIX = "1.2.826.0.1.3680043.8.498."  # pydicom's test/example root
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def uid(*parts) -> str:
    """Return a deterministic UID for the given parts (same parts, same UID)."""
    return generate_uid(prefix=UID_PREFIX, entropy_srcs=[str(p) for p in parts])


def pydicom_sample(name: str) -> Path:
    """Return a sample file shipped inside the installed pydicom package.

    Uses ``download=False`` so a missing file never triggers a (slow, offline)
    download; the calling test is skipped instead.
    """
    import pytest
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not shipped with this pydicom ({pydicom.__version__})")
    return Path(path)


def make_image(
    pixels: np.ndarray,
    *,
    seed: int | str = 0,
    modality: str = "CT",
    sop_class: str = CTImageStorage,
    photometric: str = "MONOCHROME2",
    patient_id: str = "PAT-001",
    patient_name: str = "Doe^Jane",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    series_number: int = 1,
    series_description: str = "synthetic",
    instance_number: int | None = 1,
    position: Sequence[float] | None = None,
    orientation: Sequence[float] | None = None,
    pixel_spacing: Sequence[float] | None = (0.7, 0.7),
    slice_thickness: float | None = None,
    rescale: tuple[float, float] | None = None,
    window: tuple | None = None,
    voi_function: str | None = None,
    signed: bool | None = None,
) -> Dataset:
    """Build an image dataset around ``pixels``.

    ``pixels`` is ``(rows, cols)``, ``(frames, rows, cols)`` for grey images or
    ``(rows, cols, 3)`` uint8 for RGB.  ``rescale`` is ``(slope, intercept)``;
    ``window`` is ``(center, width)`` or ``([centers], [widths])``.
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid or uid("sop", seed, series_uid, instance_number)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study_uid or uid("study", patient_id)
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.StudyDescription = "synthetic study"
    ds.StudyID = "1"
    ds.AccessionNumber = "ACC1"
    ds.SeriesInstanceUID = series_uid or uid("series", seed)
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.Modality = modality
    if instance_number is not None:
        ds.InstanceNumber = instance_number
    if position is not None:
        ds.ImagePositionPatient = [float(v) for v in position]
    if orientation is not None:
        ds.ImageOrientationPatient = [float(v) for v in orientation]
    if pixel_spacing is not None:
        ds.PixelSpacing = [float(v) for v in pixel_spacing]
    if slice_thickness is not None:
        ds.SliceThickness = slice_thickness
    arr = np.asarray(pixels)
    color = photometric in ("RGB", "YBR_FULL")
    if color:
        if arr.ndim == 3:
            ds.Rows, ds.Columns = arr.shape[:2]
        else:
            ds.NumberOfFrames = arr.shape[0]
            ds.Rows, ds.Columns = arr.shape[1:3]
        ds.SamplesPerPixel = 3
        ds.PlanarConfiguration = 0
    else:
        if arr.ndim == 3:
            ds.NumberOfFrames = arr.shape[0]
            ds.Rows, ds.Columns = arr.shape[1:]
        else:
            ds.Rows, ds.Columns = arr.shape
        ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    bits = arr.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    is_signed = arr.dtype.kind == "i" if signed is None else signed
    ds.PixelRepresentation = 1 if is_signed else 0
    if rescale is not None:
        ds.RescaleSlope = rescale[0]
        ds.RescaleIntercept = rescale[1]
        ds.RescaleType = "HU" if modality == "CT" else "US"
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if voi_function is not None:
        ds.VOILUTFunction = voi_function
    ds.PixelData = np.ascontiguousarray(arr).tobytes()
    return ds


def write(ds: Dataset, path: str | Path, transfer_syntax: str = ExplicitVRLittleEndian) -> Path:
    """Write ``ds`` as a Part 10 file (with preamble and file meta) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    implicit = transfer_syntax == ImplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
    return path


def phantom(rows: int, cols: int, seed: int = 0, *, low: int = -1000,
            high: int = 1000) -> np.ndarray:
    """Return an int16 CT-like slice in HU: air outside an elliptic body with a bright 'bone'."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    cy, cx = (rows - 1) / 2, (cols - 1) / 2
    body = ((y - cy) / (0.42 * rows)) ** 2 + ((x - cx) / (0.45 * cols)) ** 2 <= 1
    bone = ((y - cy - rows * 0.2) / (0.08 * rows)) ** 2 + ((x - cx) / (0.08 * cols)) ** 2 <= 1
    img = np.full((rows, cols), low, dtype=np.float64)
    img[body] = 40
    img[bone] = high
    img += rng.normal(0, 10, size=img.shape)
    return np.clip(np.round(img), -32768, 32767).astype(np.int16)


@dataclass
class SeriesFiles:
    """A written series: its folder, files in spatial order and the truth about it."""

    folder: Path
    paths: list[Path]          # in spatial order (increasing position along the normal)
    series_uid: str
    study_uid: str
    patient_id: str
    positions: list[float]     # along the slice normal, in spatial order
    sop_uids: list[str]


def write_ct_series(
    folder: str | Path,
    n: int = 8,
    *,
    rows: int = 16,
    cols: int = 16,
    spacing: float | Sequence[float] = 2.5,
    tilt_degrees: float = 0.0,
    orientation: Sequence[float] = AXIAL,
    seed: int = 0,
    patient_id: str = "PAT-CT",
    series_description: str = "CT axial",
    shuffle: bool = True,
    start: float = -50.0,
    rescale: tuple[float, float] = (1.0, -1024.0),
    window: tuple | None = (40.0, 400.0),
    instance_numbers: Sequence[int] | None = None,
    drop: Iterable[int] = (),
    name_prefix: str = "IM",
) -> SeriesFiles:
    """Write an axial CT-like series; file names are shuffled so order must come from geometry.

    ``spacing`` is a gap (mm) or a list of ``n - 1`` gaps.  ``tilt_degrees``
    shears the stack along y (a gantry tilt): positions step along the normal
    by the gap and sideways by ``gap * tan(tilt)``.  ``drop`` removes slices by
    index (to simulate missing slices).  Instance numbers run 1..n in spatial
    order unless given.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gaps = [float(spacing)] * (n - 1) if np.isscalar(spacing) else [float(g) for g in spacing]
    assert len(gaps) == n - 1
    series_uid = uid("series", seed, series_description)
    study_uid = uid("study", seed, patient_id)
    row = np.asarray(orientation[:3], float)
    col = np.asarray(orientation[3:], float)
    normal = np.cross(row, col)
    along = np.concatenate([[start], start + np.cumsum(gaps)])
    shear = math.tan(math.radians(tilt_degrees))
    order = list(range(n))
    rng = np.random.default_rng(seed)
    names = [f"{name_prefix}{i:04d}.dcm" for i in rng.permutation(n)] if shuffle else \
        [f"{name_prefix}{i:04d}.dcm" for i in range(n)]
    numbers = list(instance_numbers) if instance_numbers is not None else [i + 1 for i in order]
    dropped = set(drop)
    paths, positions, sops = [], [], []
    for i in order:
        if i in dropped:
            continue
        offset = along[i] - start
        point = along[i] * normal + offset * shear * col
        raw = (phantom(rows, cols, seed * 1000 + i).astype(np.int32) - int(rescale[1]))
        raw = np.clip(np.round(raw / rescale[0]), 0, 65535).astype(np.uint16)
        ds = make_image(
            raw, seed=seed, modality="CT", patient_id=patient_id,
            study_uid=study_uid, series_uid=series_uid, series_description=series_description,
            instance_number=numbers[i], position=point, orientation=orientation,
            slice_thickness=float(gaps[0]) if gaps else 1.0, rescale=rescale, window=window,
            sop_uid=uid("sop", seed, series_description, i),
        )
        path = write(ds, folder / names[i])
        paths.append(path)
        positions.append(float(along[i]))
        sops.append(ds.SOPInstanceUID)
    return SeriesFiles(folder, paths, series_uid, study_uid, patient_id, positions, sops)


def write_monochrome1(path: str | Path, *, rows: int = 64, cols: int = 64, seed: int = 1,
                      patient_id: str = "PAT-CR") -> tuple[Path, np.ndarray]:
    """Write a CR-like MONOCHROME1 chest: stored values are HIGH where the film is dark.

    Returns the path and a boolean mask of the "lung" regions (dark on display,
    so high stored values in MONOCHROME1).
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    lungs = (((x - cols * 0.28) / (cols * 0.14)) ** 2 + ((y - rows * 0.5) / (rows * 0.3)) ** 2 <= 1) | \
            (((x - cols * 0.72) / (cols * 0.14)) ** 2 + ((y - rows * 0.5) / (rows * 0.3)) ** 2 <= 1)
    # MONOCHROME1: the minimum value is white.  Dense mediastinum -> low; air-filled lung -> high.
    stored = np.full((rows, cols), 300.0)
    stored[lungs] = 3000.0
    stored += rng.normal(0, 20, size=stored.shape)
    stored = np.clip(stored, 0, 4095).astype(np.uint16)
    ds = make_image(stored, seed=seed, modality="CR", sop_class=ComputedRadiographyImageStorage,
                    photometric="MONOCHROME1", patient_id=patient_id, series_description="chest PA",
                    window=(2048.0, 4096.0), pixel_spacing=None)
    ds.ImagerPixelSpacing = [0.2, 0.2]
    ds.BitsStored = 12
    ds.HighBit = 11
    return write(ds, path), lungs


def write_multiframe(path: str | Path, *, frames: int = 5, rows: int = 12, cols: int = 10,
                     seed: int = 2) -> tuple[Path, np.ndarray]:
    """Write a multi-frame MONOCHROME2 image whose frame ``k`` holds values around ``100 * k``."""
    rng = np.random.default_rng(seed)
    data = np.stack([np.full((rows, cols), 100 * k) + rng.integers(0, 10, (rows, cols))
                     for k in range(frames)]).astype(np.uint16)
    ds = make_image(data, seed=seed, modality="XA", sop_class=SecondaryCaptureImageStorage,
                    series_description="multi-frame", pixel_spacing=None)
    return write(ds, path), data


def write_rgb(path: str | Path, *, rows: int = 8, cols: int = 9, seed: int = 3) -> tuple[Path, np.ndarray]:
    """Write an 8-bit RGB secondary capture; returns the path and the pixels."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (rows, cols, 3), dtype=np.uint8)
    ds = make_image(data, seed=seed, modality="OT", sop_class=SecondaryCaptureImageStorage,
                    photometric="RGB", series_description="colour", pixel_spacing=None)
    return write(ds, path), data


def write_compressed(src: str | Path, dst: str | Path, transfer_syntax: str) -> Path | None:
    """Write a compressed copy of ``src`` with ``ds.compress``; ``None`` if no encoder is installed.

    The copy keeps the SOP Instance UID (it is the same image, only encoded differently).
    """
    ds = pydicom.dcmread(src)
    try:
        ds.compress(transfer_syntax, generate_instance_uid=False)
    except (RuntimeError, NotImplementedError, ValueError, ImportError):
        return None
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(dst, enforce_file_format=True)
    return dst


def truncated_copy(src: str | Path, dst: str | Path, keep: int | float) -> Path:
    """Copy the first ``keep`` bytes (or that fraction of the file) of ``src`` to ``dst``."""
    data = Path(src).read_bytes()
    count = int(len(data) * keep) if isinstance(keep, float) else int(keep)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[:count])
    return dst


def pixel_data_offset(path: str | Path) -> int:
    """Return the byte offset where the (7FE0,0010) Pixel Data value starts."""
    ds = pydicom.dcmread(path, defer_size=1)
    return int(ds.get_item(0x7FE00010, keep_deferred=True).value_tell)


def write_junk(path: str | Path, size: int = 2048, seed: int = 9) -> Path:
    """Write random bytes (not DICOM, not an image)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def write_html_as_dcm(path: str | Path) -> Path:
    """Write an HTML page saved under a .dcm name, as found in many public repositories."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<!DOCTYPE html>\n<html><head><title>Not Found</title></head>"
                    "<body><h1>404</h1><p>" + "x" * 400 + "</p></body></html>\n")
    return path


def write_zip(zip_path: str | Path, files: Iterable[tuple[str | Path, str]]) -> Path:
    """Write a zip archive holding ``(file, name in archive)`` pairs."""
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for src, arcname in files:
            zf.write(src, arcname)
    return zip_path


def write_png(path: str | Path, *, size: int = 32, seed: int = 4, mode: str = "L") -> Path:
    """Write a small grey (or RGB) PNG radiograph-like image."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size, size), dtype=np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(arr)
    (img.convert(mode) if mode != "L" else img).save(path)
    return path


def copy_pydicom_sample(name: str, dst_folder: str | Path) -> Path:
    """Copy a pydicom package sample into ``dst_folder`` (the source is read-only)."""
    dst = Path(dst_folder) / name
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pydicom_sample(name), dst)
    return dst
