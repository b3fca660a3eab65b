"""The headless commands ``import``, ``info`` and ``render``, run through ``medviewer.cli.main.main``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import helpers_dicom as h
from medviewer.cli.main import main
from medviewer.dicom.pixels import decode
from medviewer.dicom.sources import FileRef
from medviewer.display.render import render_frame
from medviewer.display.windowing import PRESETS, Window


def run_json(capsys, *argv) -> dict:
    capsys.readouterr()
    code = main([*map(str, argv), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


# -- import ----------------------------------------------------------------------------------

def test_import_json_report(tmp_path, capsys, ct_series):
    h.write_html_as_dcm(ct_series.folder / "page.dcm")
    h.truncated_copy(ct_series.paths[0], ct_series.folder / "zz_cut.dcm", 0.75)
    library = tmp_path / "lib" / "cases.sqlite"
    data = run_json(capsys, "import", ct_series.folder, "--library", library)
    assert (data["patients"], data["studies"], data["series"], data["instances"]) == (1, 1, 1, 8)
    assert sorted((s["path"], s["reason"]) for s in data["skipped"]) == [
        (str(ct_series.folder / "page.dcm"), "not DICOM"),
        (str(ct_series.folder / "zz_cut.dcm"), "truncated"),
    ]
    assert data["library_totals"]["instances"] == 8 and library.is_file()
    again = run_json(capsys, "import", ct_series.folder, "--library", library)
    assert again["instances"] == 0 and again["unchanged"] == 8


def test_import_text_report_and_labels(tmp_path, capsys):
    images = tmp_path / "cxr"
    h.write_png(images / "a.png")
    h.write_junk(images / "b.dcm")
    table = tmp_path / "labels.csv"
    table.write_text("path,labels\ncxr/a.png,Effusion\n")
    assert main(["import", str(images), "--library", str(tmp_path / "l.sqlite"),
                 "--labels", str(table)]) == 0
    out = capsys.readouterr().out
    assert "Imported 1 images" in out and "1 skipped" in out
    assert "Labels applied to 1 cases" in out
    assert f"skipped: {images / 'b.dcm'}: not DICOM" in out


def test_import_of_a_missing_path_is_an_error_message_not_a_traceback(tmp_path, capsys):
    code = main(["import", str(tmp_path / "nowhere"), "--library", str(tmp_path / "l.sqlite")])
    assert code != 0
    assert "nowhere" in capsys.readouterr().err


def test_import_into_a_newer_library_is_refused_cleanly(tmp_path, capsys, ct_series):
    import sqlite3

    library = tmp_path / "future.sqlite"
    conn = sqlite3.connect(library)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    assert main(["import", str(ct_series.folder), "--library", str(library)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medviewer: error:") and "newer" in err


# -- info ------------------------------------------------------------------------------------

def test_info_lists_series_in_spatial_order(capsys, ct_series):
    data = run_json(capsys, "info", ct_series.folder)
    [series] = data["series"]
    assert series["modality"] == "CT" and series["instances"] == 8 and series["frames"] == 8
    assert series["size"] == [16, 16] and series["pixel_spacing"] == [0.7, 0.7]
    assert series["slice_spacing"] == pytest.approx(2.5)
    assert series["sorted_by"] == "position" and series["warnings"] == []
    assert series["files"] == [str(p) for p in ct_series.paths]
    assert data["skipped"] == []


def test_info_reports_warnings_frames_and_skips(tmp_path, capsys):
    tilted = h.write_ct_series(tmp_path / "in" / "head", n=5, tilt_degrees=15, seed=7)
    h.write_multiframe(tmp_path / "in" / "xa.dcm", frames=4)
    h.write_junk(tmp_path / "in" / "junk.dcm")
    data = run_json(capsys, "info", tmp_path / "in")
    by_modality = {s["modality"]: s for s in data["series"]}
    assert any("gantry tilt" in w for w in by_modality["CT"]["warnings"])
    assert by_modality["XA"]["frames"] == 4
    assert [(s["path"], s["reason"]) for s in data["skipped"]] == [
        (str(tmp_path / "in" / "junk.dcm"), "not DICOM")]
    assert by_modality["CT"]["files"] == [str(p) for p in tilted.paths]
    capsys.readouterr()
    assert main(["info", str(tmp_path / "in")]) == 0
    text = capsys.readouterr().out
    assert "warning:" in text and "gantry tilt" in text and "skipped" in text


def test_info_of_a_missing_path_is_an_error_message(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nowhere")]) != 0
    assert "nowhere" in capsys.readouterr().err


# -- render ----------------------------------------------------------------------------------

def test_render_writes_what_the_viewer_shows(tmp_path, capsys, ct_series):
    out = tmp_path / "slice.png"
    data = run_json(capsys, "render", ct_series.paths[2], "--out", out)
    shown = np.asarray(Image.open(out))
    expected = render_frame(decode(FileRef.for_path(ct_series.paths[2])))
    assert np.array_equal(shown, expected)
    assert data["window"] == {"center": 40.0, "width": 400.0, "name": "header"}
    assert data["photometric"] == "MONOCHROME2" and data["frames"] == 1


def test_render_window_and_preset(tmp_path, capsys, ct_series):
    image = decode(FileRef.for_path(ct_series.paths[0]))
    assert main(["render", str(ct_series.paths[0]), "--out", str(tmp_path / "w.png"),
                 "--window=-600,1500"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "w.png")),
                          render_frame(image, window=Window(-600, 1500)))
    assert main(["render", str(ct_series.paths[0]), "--out", str(tmp_path / "p.png"),
                 "--preset", "bone"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "p.png")),
                          render_frame(image, window=PRESETS["bone"]))
    assert "window 400/1800" in capsys.readouterr().out


def test_render_window_with_a_negative_centre_after_a_space(tmp_path, capsys, ct_series):
    """The lung window is written "--window -600,1500" by most people, not "--window=-600,1500"."""
    out = tmp_path / "lung.png"
    assert main(["render", str(ct_series.paths[0]), "--out", str(out), "--window", "-600,1500"]) == 0
    assert out.is_file()


def test_render_frame_of_a_multiframe_image_and_monochrome1(tmp_path, capsys):
    path, data = h.write_multiframe(tmp_path / "mf.dcm", frames=5)
    out = tmp_path / "f3.png"
    assert main(["render", str(path), "--out", str(out), "--frame", "3",
                 "--window", "300,1000"]) == 0
    assert np.array_equal(np.asarray(Image.open(out)),
                          render_frame(decode(FileRef.for_path(path)), 3, Window(300, 1000)))
    mono1, lungs = h.write_monochrome1(tmp_path / "cr.dcm")
    assert main(["render", str(mono1), "--out", str(tmp_path / "cr.png")]) == 0
    shown = np.asarray(Image.open(tmp_path / "cr.png"))
    assert shown[lungs].mean() < shown[~lungs].mean() - 100


def test_render_zip_member(tmp_path, capsys, ct_series):
    archive = h.write_zip(tmp_path / "s.zip", [(ct_series.paths[0], "d/one.dcm")])
    assert main(["render", f"{archive}!d/one.dcm", "--out", str(tmp_path / "z.png")]) == 0
    assert Image.open(tmp_path / "z.png").size == (16, 16)


@pytest.mark.parametrize("extra, message", [
    (["--window", "40"], "CENTER,WIDTH"),
    (["--preset", "liver"], "unknown preset"),
    (["--frame", "4"], "out of range"),
])
def test_render_bad_arguments_are_messages(tmp_path, capsys, ct_series, extra, message):
    code = main(["render", str(ct_series.paths[0]), "--out", str(tmp_path / "x.png"), *extra])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_render_of_a_non_image_is_a_message(tmp_path, capsys):
    code = main(["render", str(h.pydicom_sample("rtplan.dcm")), "--out", str(tmp_path / "x.png")])
    assert code == 2 and "no pixel data" in capsys.readouterr().err


def test_render_of_a_missing_file_is_a_message(tmp_path, capsys):
    code = main(["render", str(tmp_path / "absent.dcm"), "--out", str(tmp_path / "x.png")])
    assert code != 0 and "absent.dcm" in capsys.readouterr().err


def test_the_medviewer_command_runs_as_a_process(tmp_path):
    """The real entry point (argv from the process, not a list) works end to end."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "medviewer", "info", str(tmp_path), "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert '"series": []' in out.stdout
