"""``medviewer model check`` and ``medviewer classify``."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnx")

from medviewer.cli import main as cli_main
from medviewer.inference.testing import write_toy_bundle


@pytest.fixture
def cli(monkeypatch):
    """Run the real ``medviewer`` entry point with the model commands registered."""
    modules = list(cli_main.COMMAND_MODULES)
    for name in ("medviewer.cli.model_cmd", "medviewer.cli.classify_cmd"):
        if name not in modules:
            modules.append(name)
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", modules)
    return cli_main.main


@pytest.fixture
def bundle(tmp_path):
    return write_toy_bundle(tmp_path / "toy")


def test_model_check_ok_json(cli, bundle, capsys):
    assert cli(["model", "check", str(bundle), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True
    assert out["provider"] == "CPU" or out["provider"] in ("CUDA", "TensorRT", "CoreML", "DirectML")
    assert len(out["sha256"]) == 64 and out["labels"] == ["Cardiomegaly", "Emphysema", "Opacity"]
    assert out["message"].endswith(f"running on {out['provider']}")


def test_model_check_text(cli, bundle, capsys):
    assert cli(["model", "check", str(bundle)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("OK  toy") and "sha256" in text and "running on" in text


def test_model_check_fails_when_one_byte_changed(cli, bundle, capsys):
    data = bytearray((bundle / "model.onnx").read_bytes())
    data[100] ^= 0x01
    (bundle / "model.onnx").write_bytes(bytes(data))
    assert cli(["model", "check", str(bundle), "--json"]) != 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ok"] is False
    assert "changed since export" in captured.err and str(bundle) in captured.err


def test_model_check_not_a_bundle(cli, tmp_path, capsys):
    assert cli(["model", "check", str(tmp_path)]) == 2
    assert "not a model bundle" in capsys.readouterr().err


def test_model_card(cli, bundle, capsys):
    assert cli(["model", "card", str(bundle)]) == 0
    assert "Toy model" in capsys.readouterr().out


def test_classify_png_and_dicom(cli, bundle, tmp_path, capsys):
    from PIL import Image
    from pydicom.data import get_testdata_file

    png = tmp_path / "a.png"
    Image.fromarray(np.full((40, 40), 200, np.uint8)).save(png)
    dicom = get_testdata_file("CT_small.dcm")
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"<html>not dicom</html>")
    assert cli(["classify", str(bundle), str(png), dicom, str(junk), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in out["results"]] == [str(png), dicom]
    for row in out["results"]:
        assert set(row["probabilities"]) == {"Cardiomegaly", "Emphysema", "Opacity"}
        assert all(0 <= p <= 1 for p in row["probabilities"].values())
    assert out["skipped"][0]["path"] == str(junk)
    assert out["sha256"] == json.loads((bundle / "metadata.json").read_text())["model_sha256"]


def test_classify_text_output(cli, bundle, tmp_path, capsys):
    from PIL import Image

    png = tmp_path / "b.png"
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(png)
    assert cli(["classify", str(bundle), str(png)]) == 0
    text = capsys.readouterr().out
    assert "probability per label" in text and "Cardiomegaly" in text


def test_classify_without_readable_images_fails(cli, bundle, tmp_path, capsys):
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"nothing")
    assert cli(["classify", str(bundle), str(junk)]) == 2
    assert "no readable image" in capsys.readouterr().err


def test_monochrome1_is_inverted_before_classification(tmp_path):
    """The loader gives what the viewer shows: MONOCHROME1 inverted."""
    import pydicom
    from pydicom.data import get_testdata_file

    from medviewer.cli.classify_cmd import load_display_image

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    normal = load_display_image(get_testdata_file("CT_small.dcm")).astype(int)
    ds.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "mono1.dcm"
    ds.save_as(path)
    inverted = load_display_image(path).astype(int)
    np.testing.assert_array_equal(inverted, 255 - normal)


def test_unknown_provider_is_a_clear_error(cli, bundle, capsys):
    assert cli(["model", "check", str(bundle), "--provider", "tpu"]) == 2
    assert "unknown execution provider 'tpu'" in capsys.readouterr().err
