"""Window/level maths, presets, rendering to display grey, and the viewport state.

Reference formulas are DICOM PS3.3 C.11.2.1.2.1 (LINEAR), C.11.2.1.3.2 (LINEAR_EXACT) and
C.11.2.1.3.1 (SIGMOID), written out here independently of pydicom.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers_dicom as h
from medviewer.dicom.pixels import DecodedImage, HeaderWindow, decode
from medviewer.dicom.sources import FileRef
from medviewer.display.render import render_frame, resolve_window, save_png
from medviewer.display.windowing import (
    PRESET_KEYS,
    PRESETS,
    Window,
    auto_window,
    default_window,
    linear_levels,
    to_display_uint8,
    window_to_unit,
)


def reference_unit(x: float, c: float, w: float, function: str = "LINEAR") -> float:
    if function == "LINEAR":
        if x <= c - 0.5 - (w - 1) / 2:
            return 0.0
        if x > c - 0.5 + (w - 1) / 2:
            return 1.0
        return (x - (c - 0.5)) / (w - 1) + 0.5
    if function == "LINEAR_EXACT":
        if x <= c - w / 2:
            return 0.0
        if x > c + w / 2:
            return 1.0
        return (x - c) / w + 0.5
    if function == "SIGMOID":
        z = -4.0 * (x - c) / w
        return 0.0 if z > 700 else 1.0 / (1.0 + math.exp(z))
    raise ValueError(function)


finite = st.floats(-5000, 5000, allow_nan=False)


@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")  # pydicom SIGMOID
@settings(max_examples=150, deadline=None)
@given(x=finite, c=st.floats(-2000, 2000), w=st.floats(2, 4000),
       function=st.sampled_from(["LINEAR", "LINEAR_EXACT", "SIGMOID"]))
def test_window_to_unit_matches_the_standard(x, c, w, function):
    got = float(window_to_unit(np.array([x]), Window(c, w, function=function))[0])
    assert got == pytest.approx(reference_unit(x, c, w, function), abs=2e-5)


def test_window_to_unit_range_shape_and_monotonicity():
    values = np.linspace(-3000, 3000, 1001).reshape(7, 143)
    for function in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        out = window_to_unit(values, Window(40, 400, function=function))
        assert out.shape == values.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert np.all(np.diff(out.ravel()) >= 0)
    linear = window_to_unit(values, Window(40, 400))
    assert linear.min() == 0.0 and linear.max() == 1.0


@settings(max_examples=100, deadline=None)
@given(c=st.floats(-2000, 2000), w=st.floats(2, 4000), t=st.floats(0, 1),
       function=st.sampled_from(["LINEAR", "LINEAR_EXACT"]))
def test_linear_levels_agree_with_window_to_unit(c, w, t, function):
    """The viewer hands pyqtgraph these levels; they must show what the CLI renders."""
    window = Window(c, w, function=function)
    low, high = linear_levels(window)
    x = low + t * (high - low)
    assert float(window_to_unit(np.array([x]), window)[0]) == pytest.approx(t, abs=1e-4)
    assert float(window_to_unit(np.array([low - 1]), window)[0]) == 0.0
    assert float(window_to_unit(np.array([high + 1]), window)[0]) == 1.0


def test_linear_levels_known_values():
    assert linear_levels(Window(40, 400)) == pytest.approx((-160.0, 239.0))
    assert linear_levels(Window(40, 400, function="LINEAR_EXACT")) == pytest.approx((-160.0, 240.0))


def test_to_display_uint8_and_inversion():
    values = np.linspace(-500, 500, 257)
    window = Window(0, 800)
    grey = to_display_uint8(values, window)
    inverted = to_display_uint8(values, window, invert=True)
    assert grey.dtype == np.uint8 and grey[0] == 0 and grey[-1] == 255
    assert np.all(np.abs(grey.astype(int) + inverted.astype(int) - 255) <= 1)
    mid = to_display_uint8(np.array([-0.5]), Window(0, 801))  # the centre of a LINEAR window
    assert int(mid[0]) in (127, 128)


def test_presets_are_the_conventional_ct_windows():
    assert set(PRESETS) >= {"lung", "mediastinum", "bone", "brain", "abdomen"}
    assert set(PRESET_KEYS.values()) <= set(PRESETS)
    assert PRESETS["lung"].center < -400 and PRESETS["lung"].width >= 1200
    assert 30 <= PRESETS["mediastinum"].center <= 60 and 300 <= PRESETS["mediastinum"].width <= 500
    assert PRESETS["bone"].center >= 300 and PRESETS["bone"].width >= 1500
    assert (PRESETS["brain"].center, PRESETS["brain"].width) == (40.0, 80.0)
    assert 30 <= PRESETS["abdomen"].center <= 60 and 350 <= PRESETS["abdomen"].width <= 450


def test_auto_window_spans_the_central_percentiles():
    values = np.random.default_rng(0).normal(100, 10, (400, 400))
    values[0, 0], values[1, 1] = -1e6, 1e6  # outliers must not stretch the window
    w = auto_window(values)
    assert 50 < w.center - w.width / 2 < 90 and 110 < w.center + w.width / 2 < 150
    flat = auto_window(np.full((8, 8), 7.0))
    assert flat.width >= 1.0 and flat.center == pytest.approx(7.5)


def test_default_window_prefers_the_header():
    values = np.zeros((4, 4))
    chosen = default_window(values, [HeaderWindow(40, 80, "BRAIN"), HeaderWindow(300, 1500)])
    assert (chosen.center, chosen.width, chosen.name) == (40, 80, "BRAIN")
    assert default_window(values, []).name == "auto"


# -- render ----------------------------------------------------------------------------------

def _grey(values, photometric="MONOCHROME2", windows=()):
    arr = np.asarray(values, dtype=np.float32)
    return DecodedImage(frames=arr[None] if arr.ndim == 2 else arr, photometric=photometric,
                        windows=list(windows))


def test_render_matches_an_independent_windowing_of_ct_small():
    """An approved-image style check: CT_small in a soft-tissue window, pixel for pixel."""
    path = h.pydicom_sample("CT_small.dcm")
    image = decode(FileRef.for_path(path))
    c, w = 40.0, 400.0
    hu = image.frames[0].astype(np.float64)
    expected = np.clip(((hu - (c - 0.5)) / (w - 1) + 0.5), 0, 1)
    expected[hu <= c - 0.5 - (w - 1) / 2] = 0
    expected[hu > c - 0.5 + (w - 1) / 2] = 1
    got = render_frame(image, window=Window(c, w))
    assert got.shape == (128, 128) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - np.round(expected * 255).astype(int)).max() <= 1


def test_monochrome1_renders_inverted(tmp_path):
    path, lungs = h.write_monochrome1(tmp_path / "cr.dcm")
    image = decode(FileRef.for_path(path))
    shown = render_frame(image)
    # Air-filled lungs are dark on a radiograph; MONOCHROME1 stores them high.
    assert shown[lungs].mean() < 80 and shown[~lungs].mean() > 170
    same_values = DecodedImage(frames=image.frames, photometric="MONOCHROME2",
                               windows=image.windows)
    assert np.all(np.abs(shown.astype(int) + render_frame(same_values).astype(int) - 255) <= 1)
    # The viewer's invert key inverts once more.
    assert np.all(np.abs(render_frame(image, invert=True).astype(int)
                         - render_frame(same_values).astype(int)) <= 0)


def test_window_choice_explicit_then_preset_then_header_then_auto():
    image = _grey(np.arange(100).reshape(10, 10), windows=[HeaderWindow(20, 10, "H")])
    explicit = Window(50, 20, "mine")
    assert resolve_window(image, 0, explicit, "lung") is explicit
    assert resolve_window(image, 0, None, "lung") == PRESETS["lung"]
    assert resolve_window(image, 0).name == "H"
    assert resolve_window(image, 0, preset="auto").name == "auto"
    assert resolve_window(_grey(np.arange(100).reshape(10, 10)), 0).name == "auto"
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_window(image, 0, preset="liver")


def test_render_uses_the_chosen_window():
    image = _grey([[-1000, 40, 1000]])
    # LINEAR 40/80: 40 HU maps to (40 - 39.5) / 79 + 0.5 = 0.506 -> 129.
    assert render_frame(image, preset="brain").tolist() == [[0, 129, 255]]
    assert render_frame(image, window=Window(-999, 2)).tolist() == [[0, 255, 255]]


def test_render_colour_and_frames():
    rgb = np.random.default_rng(1).integers(0, 256, (2, 3, 4, 3), dtype=np.uint8)
    image = DecodedImage(frames=rgb, photometric="RGB")
    assert np.array_equal(render_frame(image, 1), rgb[1])
    assert np.array_equal(render_frame(image, 1, invert=True), 255 - rgb[1])
    out = render_frame(image, 0)
    out[...] = 0
    assert rgb[0].any(), "render must not hand out a view the caller can scribble on"
    with pytest.raises(IndexError):
        render_frame(image, 2)
    with pytest.raises(IndexError):
        render_frame(image, -1)


def test_save_png_round_trip(tmp_path):
    from PIL import Image

    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    save_png(pixels, str(tmp_path / "x.png"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x.png")), pixels)


# -- viewer state ----------------------------------------------------------------------------

def _series_rows(frames_per_instance):
    from medviewer.store.library import InstanceRow, SeriesRow

    instances = [InstanceRow(id=i, series_ref=1, location=f"/x/{i}", path=f"/x/{i}", member="",
                             kind="dicom", sop_uid=f"1.{i}", instance_number=i + 1, rows=4,
                             columns=4, frames=n, photometric="MONOCHROME2", transfer_syntax="",
                             pixel_spacing=None, slice_index=i)
                 for i, n in enumerate(frames_per_instance)]
    series = SeriesRow(id=1, study_ref=1, series_uid="1.2", modality="CT", series_number=1,
                       description="", body_part="", instances=len(instances),
                       frames=sum(frames_per_instance), spacing=1.0, tilt_degrees=0.0,
                       sorted_by="position", warnings=[])
    return series, instances


class Recorder:
    def __init__(self, state, *events):
        self.seen = []
        for name in events:
            state.connect(name, lambda _n=name, **kw: self.seen.append((_n, kw)))


def test_viewer_state_planes_expand_frames_and_start_in_the_middle():
    from medviewer.services.viewer_state import ViewerState

    state = ViewerState()
    rec = Recorder(state, "series_changed", "index_changed")
    series, instances = _series_rows([1, 3, 1])
    state.set_window(Window(1, 2))
    state.set_series(series, instances)
    assert [(p.instance.id, p.frame) for p in state.planes] == [(0, 0), (1, 0), (1, 1), (1, 2), (2, 0)]
    assert state.index == 2 and state.current.frame == 1
    assert state.window is None and not state.window_locked
    assert rec.seen == [("series_changed", {}), ("index_changed", {"index": 2})]


def test_viewer_state_stepping_is_clamped_and_quiet_when_nothing_changes():
    from medviewer.services.viewer_state import ViewerState

    state = ViewerState()
    state.step(1)  # no series: nothing to do, no error
    assert state.current is None
    state.set_series(*_series_rows([1] * 5))
    rec = Recorder(state, "index_changed")
    state.step(10)
    state.step(1)
    state.set_index(-3)
    assert state.index == 0
    assert rec.seen == [("index_changed", {"index": 4}), ("index_changed", {"index": 0})]


def test_viewer_state_window_lock_and_transforms():
    from medviewer.services.viewer_state import ViewerState

    state = ViewerState()
    rec = Recorder(state, "window_changed", "transform_changed")
    state.set_window(Window(40, 400), by_user=False)
    assert not state.window_locked
    state.set_window(Window(50, 350))
    state.set_window(Window(60, 300), by_user=False)
    assert state.window_locked and state.window == Window(60, 300)
    state.rotate(90)
    state.rotate(-180)
    assert state.rotation == 270
    state.flip(horizontal=True)
    state.flip(horizontal=False)
    state.toggle_invert()
    assert state.flip_horizontal and state.flip_vertical and state.invert
    state.reset_transform()
    assert (state.rotation, state.flip_horizontal, state.flip_vertical, state.invert) == \
        (0, False, False, False)
    assert [name for name, _ in rec.seen].count("transform_changed") == 6
    assert [kw for name, kw in rec.seen if name == "window_changed"][-1] == {"window": Window(60, 300)}


def test_emitter_disconnect_stops_callbacks():
    from medviewer.events import EventEmitter

    emitter, seen = EventEmitter(), []

    def callback(**kw):
        seen.append(kw)

    emitter.connect("changed", callback)
    emitter.emit("changed", value=1)
    emitter.disconnect("changed", callback)
    emitter.disconnect("changed", callback)  # twice, or never connected: no error
    emitter.emit("changed", value=2)
    emitter.emit("other")
    assert seen == [{"value": 1}]
