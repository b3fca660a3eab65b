"""Import the real public DICOM samples in ``../shared/data/dicom-samples`` and check the results.

Skipped where the folder is absent.  Set ``MEDVIEWER_SHARED_RENDER_DIR`` to a folder to keep
the rendered PNGs these tests look at (for a person to check them by eye).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medviewer.dicom.pixels import decode
from medviewer.dicom.sources import FileRef
from medviewer.display.render import render_frame, save_png
from medviewer.services.importer import import_paths
from medviewer.store import Library

pytestmark = pytest.mark.shared_data

KNOWN_REASONS = {"not DICOM", "truncated", "no pixel data", "unsupported transfer syntax",
                 "pixel data could not be decoded", "unreadable", "duplicate",
                 # Listed by name, not scanned (issue 15: every file gets a line).
                 "not an image", "damaged zip", "unsafe zip member", "duplicate zip member",
                 "zip bomb", "too large", "link loop", "broken link", "not a regular file",
                 "link to a folder", "unusable file name", "unreadable folder"}
GE_HEAD = "dcm_qa_ct-GE-head-CT-series/In/GE"


@pytest.fixture(scope="module")
def imported(shared_dicom_samples, tmp_path_factory):
    library = Library(tmp_path_factory.mktemp("shared") / "samples.sqlite")
    report = import_paths(library, [shared_dicom_samples])
    yield library, report, shared_dicom_samples
    library.close()


def skips(imported) -> dict[str, tuple[str, str]]:
    _, report, root = imported
    return {os.path.relpath(s.path, root): (s.reason, s.detail) for s in report.skipped}


def render_and_keep(name: str, path: Path, **kw) -> np.ndarray:
    shown = render_frame(decode(FileRef.for_path(path)), **kw)
    folder = os.environ.get("MEDVIEWER_SHARED_RENDER_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        save_png(shown, os.path.join(folder, f"{name}.png"))
    return shown


def band(pixels: np.ndarray, rows: tuple[float, float], cols: tuple[float, float]) -> float:
    h, w = pixels.shape[:2]
    return float(pixels[int(rows[0] * h):int(rows[1] * h), int(cols[0] * w):int(cols[1] * w)].mean())


# -- the import as a whole -------------------------------------------------------------------

def test_import_completes_with_most_images(imported):
    library, report, _ = imported
    assert report.instances >= 200
    assert library.counts()["instances"] == report.instances
    assert library.counts()["cases"] > 50
    # Compressed files were test-decoded during the import; each family must have made it in.
    from pydicom import uid

    syntaxes = {r[0] for r in library.conn.execute("SELECT DISTINCT transfer_syntax FROM instances")}
    for family in (uid.JPEG2000Lossless, uid.JPEG2000, uid.JPEGLSLossless, uid.RLELossless,
                   uid.JPEGBaseline8Bit, uid.JPEGLosslessSV1, uid.HTJ2KLossless):
        assert family in syntaxes, f"no {family.name} file was imported"


def test_every_skip_has_a_known_reason_and_no_crash_is_disguised_as_one(imported):
    crash = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|error|Warning): ")
    for location, (reason, detail) in skips(imported).items():
        assert reason in KNOWN_REASONS, (location, reason)
        assert detail.strip(), location
        if reason == "unreadable":
            assert not crash.match(detail), f"{location}: a crash reported as a skip: {detail}"


def test_known_bad_files_get_their_true_reason(imported):
    found = skips(imported)
    expected = {
        "broken-not-dicom/test1_html_saved_as.dcm": "not DICOM",
        "pydicom-3.0.2-wheel/test_files/MR_truncated.dcm": "truncated",
        "pydicom-data-1.0.0-wheel/data/emri_small_jpeg_2k_lossless_too_short.dcm": "truncated",
        "pydicom-data-github-extras/liver_deflate.dcm": "unsupported transfer syntax",
        "pydicom-data-github-extras/liver_nonbyte_aligned_deflate.dcm":
            "unsupported transfer syntax",
        "pydicom-3.0.2-wheel/test_files/rtplan.dcm": "no pixel data",
        "dwv-tests-data/DICOMDIR": "no pixel data",
    }
    got = {k: found.get(k, ("imported", ""))[0] for k in expected}
    assert got == expected
    assert "DICOMDIR" in found["dwv-tests-data/DICOMDIR"][1]
    assert "Deflate" in found["pydicom-data-github-extras/liver_deflate.dcm"][1]


def _pydicom_decodes(path: Path) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path)
            return ds.pixel_array.size > 0
        except Exception:  # noqa: BLE001 - any failure means "pydicom cannot either"
            return False


def test_no_file_pydicom_can_decode_is_skipped_as_truncated_or_undecodable(imported):
    """Cross-check against pydicom itself: a false 'truncated' hides a good image."""
    _, _, root = imported
    wrong = [location for location, (reason, detail) in skips(imported).items()
             if reason in ("truncated", "pixel data could not be decoded", "no pixel data")
             and "!" not in location and "DICOMDIR" not in detail
             and _pydicom_decodes(root / location)]
    assert not wrong, f"pydicom decodes these, the import skipped them: {wrong}"


# -- the tilted GE head CT -------------------------------------------------------------------

def test_ge_head_ct_is_one_sorted_series_with_tilt_and_uneven_spacing(imported):
    library, _, root = imported
    folder = str(root / GE_HEAD)
    matches = [s for s in library.series()
               if any(i.path.startswith(folder) for i in library.instances(s.id))]
    assert len(matches) == 1
    series = matches[0]
    rows = library.instances(series.id)
    assert len(rows) == 28 and series.modality == "CT"
    assert series.sorted_by == "position"
    assert [r.slice_index for r in rows] == list(range(28))
    # The files are numbered in table order; position order must agree with it.
    assert [Path(r.path).name for r in rows] == [f"{i:02d}.dcm" for i in range(1, 29)]
    codes = {w.code for w in series.warnings}
    assert {"gantry tilt", "uneven spacing"} <= codes
    assert series.tilt_degrees == pytest.approx(18.5, abs=0.1)
    tilt = next(w.message for w in series.warnings if w.code == "gantry tilt")
    assert "18.5" in tilt


def test_ge_head_ct_renders_brain_in_its_header_window(shared_dicom_samples):
    path = shared_dicom_samples / GE_HEAD / "14.dcm"
    image = decode(FileRef.for_path(path))
    assert image.units == "HU" and image.windows[0].width <= 150  # a brain window
    shown = render_and_keep("ge_head_14", path)
    # Air outside the head is black, the skull is white, brain is mid grey.
    assert band(shown, (0.0, 0.05), (0.0, 0.05)) < 5
    assert (shown == 255).mean() > 0.02
    assert 60 < band(shown, (0.4, 0.6), (0.4, 0.6)) < 200


# -- MONOCHROME1 radiographs -----------------------------------------------------------------

CENTRE = (0.45, 0.55)
LATERAL = ((0.15, 0.30), (0.70, 0.85))
CHEST_ROWS = (0.25, 0.70)


@pytest.mark.parametrize("relative", [
    "dwv-tests-data/gdcm-CR-MONO1-10-chest.dcm",
    "pydicom-data-1.0.0-wheel/data/RG1_UNCR.dcm",
])
def test_monochrome1_chest_shows_dark_lungs_and_a_bright_mediastinum(shared_dicom_samples,
                                                                       relative):
    path = shared_dicom_samples / relative
    if not path.exists():
        pytest.skip(f"{relative} not in this copy of the samples")
    assert decode(FileRef.for_path(path)).photometric == "MONOCHROME1"
    shown = render_and_keep(Path(relative).stem, path)
    centre = band(shown, CHEST_ROWS, CENTRE)
    for cols in LATERAL:
        assert band(shown, CHEST_ROWS, cols) < centre - 30, (relative, cols)


def test_monochrome1_dx_thorax_lungs_darker_than_spine_and_abdomen(shared_dicom_samples):
    """highdicom's dx_image.dcm is a lateral (veterinary) thorax, 169 x 211."""
    path = shared_dicom_samples / "highdicom-test_files" / "dx_image.dcm"
    shown = render_and_keep("highdicom_dx", path)
    assert shown.shape == (169, 211)
    lung = shown[60:95, 100:140].mean()
    spine = shown[35:50, 60:200].mean()
    abdomen = shown[105:130, 165:200].mean()
    air_below = shown[160:169, 0:100].mean()
    assert lung < spine - 40 and lung < abdomen - 40
    assert air_below < 30


def test_fake_monochrome1_is_the_exact_inverse_of_its_original(shared_dicom_samples):
    """torchxrayvision's Fake_MONOHR1.dcm is the same pixels as the real chest, only relabelled
    MONOCHROME1: it must show as the negative of the original (lungs white), pixel for pixel."""
    folder = shared_dicom_samples / "torchxrayvision-tests"
    original = folder / "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
    fake = folder / "Fake_MONOHR1.dcm"
    a = render_and_keep("txv_original", original)
    b = render_and_keep("txv_fake_monochrome1", fake)
    assert np.abs(a.astype(int) + b.astype(int) - 255).max() <= 1
    # The original (MONOCHROME2) is a normal chest: lungs darker than the mediastinum.
    centre = band(a, CHEST_ROWS, CENTRE)
    assert all(band(a, CHEST_ROWS, cols) < centre - 30 for cols in LATERAL)


# -- JPEG 2000 and JPEG-LS -------------------------------------------------------------------

TWINS = [
    ("pydicom-data-github-extras/liver_j2k.dcm", "pydicom-data-1.0.0-wheel/data/liver.dcm"),
    ("pydicom-data-github-extras/liver_nonbyte_aligned_j2k.dcm",
     "pydicom-data-github-extras/liver_nonbyte_aligned.dcm"),
    ("pydicom-3.0.2-wheel/test_files/JPEG2000.dcm", "pydicom-data-1.0.0-wheel/data/JPEG2000_UNC.dcm"),
    ("pydicom-data-1.0.0-wheel/data/MR2_J2KR.dcm", "pydicom-data-1.0.0-wheel/data/MR2_UNCR.dcm"),
    ("pydicom-data-1.0.0-wheel/data/RG3_J2KR.dcm", "pydicom-data-1.0.0-wheel/data/RG3_UNCR.dcm"),
    ("pydicom-data-1.0.0-wheel/data/693_J2KR.dcm", "pydicom-data-1.0.0-wheel/data/693_UNCR.dcm"),
    ("pydicom-data-1.0.0-wheel/data/emri_small_jpeg_2k_lossless.dcm",
     "pydicom-data-1.0.0-wheel/data/emri_small.dcm"),
    ("pydicom-data-1.0.0-wheel/data/emri_small_jpeg_ls_lossless.dcm",
     "pydicom-data-1.0.0-wheel/data/emri_small.dcm"),
    ("pydicom-3.0.2-wheel/test_files/MR_small_jpeg_ls_lossless.dcm",
     "pydicom-3.0.2-wheel/test_files/MR_small.dcm"),
    ("dwv-tests-data/nema-nm1_j2kr.dcm", "dwv-tests-data/nema-nm1_jpll.dcm"),
]


@pytest.mark.parametrize("compressed, twin", TWINS, ids=[Path(c).name for c, _ in TWINS])
def test_lossless_files_match_their_uncompressed_twin(shared_dicom_samples, compressed, twin):
    a_path, b_path = shared_dicom_samples / compressed, shared_dicom_samples / twin
    if not (a_path.exists() and b_path.exists()):
        pytest.skip("twin not in this copy of the samples")
    a, b = decode(FileRef.for_path(a_path)), decode(FileRef.for_path(b_path))
    assert a.frames.shape == b.frames.shape
    assert np.array_equal(a.frames, b.frames)
    assert a.photometric == b.photometric


@pytest.mark.parametrize("name, low, high", [("JLSL_16_15_1_1F.dcm", -16384, 16383),
                                             ("JLSL_08_07_0_1F.dcm", 0, 127)])
def test_jpeg_ls_samples_are_ct_small_at_another_bit_depth(shared_dicom_samples, name, low, high):
    """pydicom-data's JLSL files hold CT_small rescaled to 15-bit signed and 7-bit unsigned."""
    path = shared_dicom_samples / "pydicom-data-github-extras" / name
    ct_small = shared_dicom_samples / "pydicom-3.0.2-wheel" / "test_files" / "CT_small.dcm"
    image = decode(FileRef.for_path(path))
    values = image.frames[0]
    assert values.shape == (128, 128)
    assert (values.min(), values.max()) == (low, high)
    reference = decode(FileRef.for_path(ct_small)).frames[0]
    assert np.corrcoef(values.ravel(), reference.ravel())[0, 1] > 0.999
    render_and_keep(Path(name).stem, path)


def test_lossy_jpeg2000_ct_is_close_to_the_lossless_copy(shared_dicom_samples):
    folder = shared_dicom_samples / "dwv-tests-data"
    lossy = decode(FileRef.for_path(folder / "nema-ct1_j2ki.dcm")).frames[0]
    lossless = decode(FileRef.for_path(folder / "nema-ct1_jpll.dcm")).frames[0]
    body = lossless > -900  # ignore the padding outside the scan circle
    # 69:1 irreversible compression: about 28 HU mean error, same anatomy.
    assert np.abs(lossy - lossless)[body].mean() < 40  # HU
    assert np.corrcoef(lossy[body], lossless[body])[0, 1] > 0.99
    render_and_keep("nema_ct1_j2ki", folder / "nema-ct1_j2ki.dcm", preset="mediastinum")
