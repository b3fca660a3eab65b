"""Pixel decoding to modality values, header windows, and the decoded-image cache."""

from __future__ import annotations

import threading

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

import helpers_dicom as h
from medviewer.dicom.pixels import DecodedImage, HeaderWindow, decode, header_windows, read_header
from medviewer.dicom.sources import FileRef
from medviewer.errors import ImageReadError, NoPixelDataError, PixelDecodeError, TruncatedFileError
from medviewer.services import image_cache
from medviewer.services.image_cache import ImageCache


def ref(path) -> FileRef:
    return FileRef.for_path(path)


def test_ct_rescale_gives_hounsfield_units(ct_series):
    path = ct_series.paths[0]
    ds = pydicom.dcmread(path)
    image = decode(ref(path))
    expected = ds.pixel_array.astype(np.float64) * 1.0 - 1024.0
    assert image.frames.shape == (1, 16, 16) and image.frames.dtype == np.float32
    assert np.array_equal(image.frames[0], expected.astype(np.float32))
    assert image.units == "HU"
    assert image.photometric == "MONOCHROME2" and not image.is_color
    assert image.windows == [HeaderWindow(40.0, 400.0, "", "LINEAR")]
    assert image.pixel_spacing == (0.7, 0.7)
    # Held as 16-bit stored values plus the rescale: half the memory of float32 (issue 19).
    assert image.frame_count == 1 and image.nbytes == 16 * 16 * 2


def test_stored_levels_window_the_stored_values_like_modality_values(tmp_path):
    raw = np.array([[-1000, -200], [40, 3000]], dtype=np.int16)
    ds = h.make_image(raw, modality="CT", rescale=(0.5, -100.0))
    image = decode(ref(h.write(ds, tmp_path / "ct.dcm")))
    stored = image.stored_frame(0)
    assert stored.dtype == np.uint16  # pyqtgraph's one-lookup path
    low, high = image.stored_levels(-300.0, 100.0)
    # A stored value at the black (white) level is the modality value at that level.
    values = image.frames[0]
    slope = (high - low) / 400.0
    assert np.allclose((stored.astype(np.float64) - low) / slope - 300.0, values)
    assert image.modality_value(0, 1, 1) == pytest.approx(3000 * 0.5 - 100.0)


def test_zero_pixel_spacing_is_no_spacing_with_a_note(tmp_path):
    ds = h.make_image(np.zeros((8, 8), np.uint16), modality="CR")
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.PixelSpacing = [0, 0]
    image = decode(ref(h.write(ds, tmp_path / "cr.dcm")))
    assert image.pixel_spacing is None
    assert image.notes and image.notes[0].startswith("Pixel Spacing 0")
    assert "not usable" in image.notes[0]


def test_fractional_rescale_and_signed_pixels(tmp_path):
    raw = np.array([[-100, 0], [7, 32000]], dtype=np.int16)
    ds = h.make_image(raw, modality="PT", rescale=(0.25, 3.0))
    image = decode(ref(h.write(ds, tmp_path / "pt.dcm")))
    assert np.allclose(image.frames[0], raw * 0.25 + 3.0)
    assert image.units == "US"  # (0028,1054) Rescale Type for non-CT


def test_modality_lut_sequence_is_applied(tmp_path):
    raw = np.array([[0, 1], [2, 3]], dtype=np.uint16)
    ds = h.make_image(raw, modality="XA")
    lut = Dataset()
    lut.LUTDescriptor = [4, 0, 16]
    lut.ModalityLUTType = "US"
    lut.LUTData = np.array([10, 20, 40, 80], dtype="<u2").tobytes()
    ds.ModalityLUTSequence = Sequence([lut])
    image = decode(ref(h.write(ds, tmp_path / "mlut.dcm")))
    assert image.frames[0].tolist() == [[10, 20], [40, 80]]


def test_empty_modality_lut_sequence_falls_back_to_rescale(tmp_path):
    raw = np.array([[0, 10], [20, 30]], dtype=np.uint16)
    ds = h.make_image(raw, modality="CT", rescale=(2.0, -5.0))
    ds.ModalityLUTSequence = Sequence([Dataset()])
    image = decode(ref(h.write(ds, tmp_path / "emptylut.dcm")))
    assert image.frames[0].tolist() == [[-5, 15], [35, 55]]


def test_monochrome1_keeps_values_and_photometric(tmp_path):
    path, lungs = h.write_monochrome1(tmp_path / "cr.dcm")
    image = decode(ref(path))
    stored = pydicom.dcmread(path).pixel_array
    assert image.photometric == "MONOCHROME1"
    # Inversion is a display step; modality values are the stored ones.
    assert np.array_equal(image.frames[0], stored.astype(np.float32))
    assert image.frames[0][lungs].mean() > image.frames[0][~lungs].mean()
    assert image.pixel_spacing == (0.2, 0.2)


def test_multiframe_frames_in_order(tmp_path):
    path, data = h.write_multiframe(tmp_path / "mf.dcm", frames=5)
    image = decode(ref(path))
    assert image.frame_count == 5 and image.frames.shape == (5, 12, 10)
    assert np.array_equal(image.frames, data.astype(np.float32))


def test_rgb_frames(tmp_path):
    path, data = h.write_rgb(tmp_path / "rgb.dcm")
    image = decode(ref(path))
    assert image.is_color and image.photometric == "RGB"
    assert image.frames.shape == (1, 8, 9, 3) and image.frames.dtype == np.uint8
    assert np.array_equal(image.frames[0], data)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless, JPEGLSLossless],
                         ids=lambda s: s.name)
def test_lossless_compressed_copy_decodes_to_the_same_values(tmp_path, syntax):
    series = h.write_ct_series(tmp_path / "ct", n=1, rows=32, cols=32, seed=5)
    original = series.paths[0]
    copy = h.write_compressed(original, tmp_path / "copy.dcm", syntax)
    if copy is None:
        pytest.skip(f"no encoder for {syntax.name} installed")
    assert pydicom.dcmread(copy).file_meta.TransferSyntaxUID == syntax
    a, b = decode(ref(original)), decode(ref(copy))
    assert np.array_equal(a.frames, b.frames)
    assert b.units == "HU" and b.windows == a.windows


@pytest.mark.parametrize("twin", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
                                  "MR_small_jpeg_ls_lossless.dcm", "MR_small_bigendian.dcm",
                                  "MR_small_implicit.dcm", "MR_small_expb.dcm"])
def test_pydicom_mr_small_twins_decode_identically(twin):
    reference = decode(ref(h.pydicom_sample("MR_small.dcm")))
    other = decode(ref(h.pydicom_sample(twin)))
    assert other.frames.shape == reference.frames.shape == (1, 64, 64)
    assert np.array_equal(other.frames, reference.frames)


def test_jpeg2000_nm_sample_has_plausible_values():
    image = decode(ref(h.pydicom_sample("JPEG2000.dcm")))
    assert image.frames.shape == (1, 1024, 256)
    values = image.frames[0]
    # Same values as pydicom's own pipeline (decoder + modality LUT).
    ds = pydicom.dcmread(h.pydicom_sample("JPEG2000.dcm"))
    from pydicom.pixels import apply_modality_lut

    assert np.array_equal(values, apply_modality_lut(ds.pixel_array, ds).astype(np.float32))
    assert values.std() > 1.0


def test_multiframe_rle_sample():
    path = h.pydicom_sample("rtdose_rle.dcm")
    ds = pydicom.dcmread(path)
    image = decode(ref(path))
    assert image.frame_count == int(ds.NumberOfFrames) > 1
    # RT Dose uses (3004,000E) Dose Grid Scaling, not rescale: values are the stored ones.
    assert np.array_equal(image.frames, ds.pixel_array.astype(np.float32))


def test_ybr_and_palette_samples_become_rgb():
    for name in ("SC_rgb_rle.dcm", "examples_ybr_color.dcm", "examples_palette.dcm"):
        path = h.pydicom_sample(name)
        image = decode(ref(path))
        assert image.is_color and image.photometric == "RGB", name
        assert image.frames.dtype == np.uint8 and image.frames.shape[-1] == 3
    # pydicom's own YBR -> RGB conversion, unchanged.
    path = h.pydicom_sample("examples_ybr_color.dcm")
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array
    expected = expected if expected.ndim == 4 else expected[None]
    assert np.array_equal(decode(ref(path)).frames, expected)


def test_decode_errors_are_image_errors(tmp_path):
    with pytest.raises(NoPixelDataError):
        decode(ref(h.pydicom_sample("rtplan.dcm")))
    # Cut short inside its pixel data: said as such (issue 15), not "cannot be decoded".
    with pytest.raises(TruncatedFileError):
        decode(ref(h.pydicom_sample("MR_truncated.dcm")))
    with pytest.raises(ImageReadError):
        decode(ref(h.write_junk(tmp_path / "junk.dcm")))


def test_decode_of_any_cut_raises_an_image_error(tmp_path):
    """The viewer decodes files imported earlier that may have been damaged since."""
    src = h.pydicom_sample("JPEG2000.dcm")
    failures = []
    for offset in range(0, src.stat().st_size, 17):
        cut = h.truncated_copy(src, tmp_path / "cut.dcm", offset)
        try:
            decode(ref(cut))
        except ImageReadError:
            continue
        except Exception as exc:  # noqa: BLE001 - that is what this test looks for
            failures.append((offset, f"{type(exc).__name__}: {str(exc)[:60]}"))
    assert not failures, f"raw exceptions: {failures[:5]}"


def test_read_header_has_no_pixels(ct_series):
    ds = read_header(ref(ct_series.paths[0]))
    assert ds.SOPInstanceUID == ct_series.sop_uids[0]
    assert "PixelData" not in ds


# -- rasters ---------------------------------------------------------------------------------

def test_grey_png(tmp_path):
    from PIL import Image

    path = h.write_png(tmp_path / "g.png", size=20)
    image = decode(ref(path))
    assert image.frames.shape == (1, 20, 20) and image.photometric == "MONOCHROME2"
    assert np.array_equal(image.frames[0], np.asarray(Image.open(path), dtype=np.float32))
    assert image.windows and image.windows[0].width == 256


def test_rgb_png_with_equal_channels_is_grey_and_colour_png_is_rgb(tmp_path):
    from PIL import Image

    grey_rgb = h.write_png(tmp_path / "grey_rgb.png", mode="RGB")
    assert decode(ref(grey_rgb)).photometric == "MONOCHROME2"
    colour = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    Image.fromarray(colour).save(tmp_path / "c.png")
    image = decode(ref(tmp_path / "c.png"))
    assert image.is_color and np.array_equal(image.frames[0], colour)


def test_16_bit_png_keeps_its_values(tmp_path):
    from PIL import Image

    values = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(values).save(tmp_path / "deep.png")
    image = decode(ref(tmp_path / "deep.png"))
    assert np.array_equal(image.frames[0], values.astype(np.float32))


# -- header windows --------------------------------------------------------------------------

def _voi(**kw) -> Dataset:
    ds = Dataset()
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # lower case on purpose
def test_header_windows_multi_valued_with_explanations():
    ds = _voi(WindowCenter=[40, -600], WindowWidth=[400, 1500],
              WindowCenterWidthExplanation=["SOFT", "LUNG"], VOILUTFunction="sigmoid")
    assert header_windows(ds) == [HeaderWindow(40.0, 400.0, "SOFT", "SIGMOID"),
                                  HeaderWindow(-600.0, 1500.0, "LUNG", "SIGMOID")]


def test_header_windows_single_and_missing():
    assert header_windows(_voi(WindowCenter=50, WindowWidth=350)) == [HeaderWindow(50.0, 350.0)]
    assert header_windows(_voi(WindowCenter=50)) == []
    assert header_windows(Dataset()) == []
    ds = _voi(WindowCenter=50, WindowWidth=350, WindowCenterWidthExplanation="BRAIN")
    assert header_windows(ds)[0].explanation == "BRAIN"


def test_header_windows_skip_unusable_pairs():
    ds = _voi(WindowCenter=[40, 10, 30], WindowWidth=[0, -5, 80])
    assert header_windows(ds) == [HeaderWindow(30.0, 80.0)]


# -- the decoded-image cache -----------------------------------------------------------------

def _fake_image(nbytes: int) -> DecodedImage:
    return DecodedImage(frames=np.zeros(nbytes // 4, np.float32).reshape(1, 1, -1),
                        photometric="MONOCHROME2")


def test_cache_decodes_once_and_peek_never_decodes(monkeypatch, ct_series):
    calls = []

    def counting(r):
        calls.append(r.display)
        return _fake_image(400)

    monkeypatch.setattr(image_cache, "decode", counting)
    cache = ImageCache(budget_bytes=10_000)
    r = ref(ct_series.paths[0])
    assert cache.peek(r.display) is None and calls == []
    first = cache.get(r)
    assert cache.get(r) is first and cache.peek(r.display) is first
    assert calls == [r.display]


def test_cache_evicts_least_recently_used_by_bytes(monkeypatch, ct_series):
    monkeypatch.setattr(image_cache, "decode", lambda r: _fake_image(400))
    cache = ImageCache(budget_bytes=1000)
    a, b, c = (ref(p) for p in ct_series.paths[:3])
    cache.get(a)
    cache.get(b)
    cache.peek(a.display)  # a is now the most recently used
    cache.get(c)           # 1200 bytes > 1000: evict b, not a
    assert cache.peek(b.display) is None
    assert cache.peek(a.display) is not None and cache.peek(c.display) is not None
    cache.clear()
    assert cache.peek(a.display) is None


def test_cache_keeps_one_image_larger_than_the_budget(monkeypatch, ct_series):
    monkeypatch.setattr(image_cache, "decode", lambda r: _fake_image(4000))
    cache = ImageCache(budget_bytes=1000)
    r = ref(ct_series.paths[0])
    assert cache.get(r) is cache.peek(r.display)


def test_cache_is_safe_across_threads(ct_series):
    cache = ImageCache()
    refs = [ref(p) for p in ct_series.paths]
    errors = []

    def work():
        try:
            for r in refs * 3:
                assert cache.get(r).frames.shape == (1, 16, 16)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(cache.peek(r.display) is not None for r in refs)
    assert cache._bytes == sum(cache.peek(r.display).nbytes for r in refs)
