"""Hostile inputs end every command in one line and exit code 2, create nothing, and read
only what they must: garbage headers stop early, oversized images are refused in words."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile

import helpers_dicom as h
import numpy as np
import pytest

from medviewer.cli.main import main
from medviewer.cli.output import emit
from medviewer.dicom.scan import scan
from medviewer.dicom.sources import FileRef
from medviewer.errors import NotDicomError, PixelDataTooLargeError


def _one_line_error(capsys, argv) -> str:
    code = main(argv)
    out = capsys.readouterr()
    assert code == 2, (code, out)
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medviewer: error:"), out.err
    assert "Traceback" not in out.err + out.out
    return lines[0]


def test_a_garbage_header_stops_early(tmp_path, monkeypatch):
    zeros = tmp_path / "zeros.dcm"
    with open(zeros, "wb") as handle:
        handle.truncate(1 << 30)  # 1 GiB of zeros (sparse: costs no disk)
    read = []

    class Counting(io.FileIO):
        def readinto(self, buffer):
            count = super().readinto(buffer)
            read.append(count or 0)
            return count

    monkeypatch.setattr(FileRef, "open", lambda self: io.BufferedReader(Counting(self.path)))
    with pytest.raises(NotDicomError):
        scan(FileRef.for_path(zeros))
    assert sum(read) < 1 << 20, f"read {sum(read)} bytes of zeros"


def test_pixel_data_over_the_limit_is_refused_with_a_reason(tmp_path, monkeypatch):
    ds = h.make_image(np.zeros((8, 8), np.uint16), seed="huge")
    ds.Rows = ds.Columns = 30000  # a header that promises 1.7 GB of pixels
    path = h.write(ds, tmp_path / "huge.dcm")
    with pytest.raises(PixelDataTooLargeError, match="over the limit"):
        scan(FileRef.for_path(path))
    small = h.write(h.make_image(np.zeros((1024, 1024), np.uint16), seed="2mb"),
                    tmp_path / "two.dcm")
    scan(FileRef.for_path(small))
    monkeypatch.setenv("MEDVIEWER_MAX_PIXEL_MB", "1")  # configurable
    with pytest.raises(PixelDataTooLargeError) as info:
        scan(FileRef.for_path(small))
    assert info.value.reason == "too large"


def test_render_of_a_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "medviewer", "render", str(fifo), "--out",
                           str(tmp_path / "x.png")], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"), check=False)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "regular file" in proc.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("kind", ["folder", "zip", "dicomdir", "loop", "junk", "empty"])
def test_info_and_render_end_in_one_line(tmp_path, capsys, kind):
    target = tmp_path / "in"
    if kind == "folder":
        target.mkdir()
    elif kind == "zip":
        target = h.write_zip(tmp_path / "a.zip", [(h.write_junk(tmp_path / "j.bin"), "j.dcm")])
    elif kind == "dicomdir":
        import pydicom
        from pydicom.fileset import FileSet

        fs = FileSet()
        fs.add(pydicom.dcmread(h.write(h.make_image(np.zeros((4, 4), np.uint16), seed="dd"),
                                       tmp_path / "dd.dcm")))
        fs.write(tmp_path / "media")
        target = tmp_path / "media" / "DICOMDIR"
    elif kind == "loop":
        os.symlink(target, target)
    elif kind == "junk":
        target = h.write_junk(tmp_path / "junk.dcm")
    else:
        target.write_bytes(b"")
    out = tmp_path / "out.png"
    _one_line_error(capsys, ["render", str(target), "--out", str(out)])
    assert not out.exists()
    code = main(["info", str(target)])
    captured = capsys.readouterr()
    assert code in (0, 2) and "Traceback" not in captured.err + captured.out


@pytest.mark.parametrize("change", ["resize", "nested"])
def test_model_check_refuses_absurd_metadata_in_one_line(tmp_path, capsys, change):
    pytest.importorskip("onnx")
    from medviewer.inference.testing import write_toy_bundle

    folder = write_toy_bundle(tmp_path / "toy")
    meta_path = folder / "metadata.json"
    if change == "resize":
        meta = json.loads(meta_path.read_text())
        meta["preprocessing"]["resize"] = 1_000_000
        meta_path.write_text(json.dumps(meta))
    else:
        meta_path.write_text('{"card": ' + "[" * 100_000 + "]" * 100_000 + "}")
    for argv in (["model", "check", str(folder)],
                 ["classify", str(folder), str(h.write_junk(tmp_path / "x.dcm"))]):
        line = _one_line_error(capsys, argv)
        assert "metadata" in line or "resize" in line


@pytest.mark.parametrize("damage", ["no-db", "garbage-db", "no-manifest", "bad-manifest"])
def test_study_import_of_a_malformed_package_ends_in_one_line_and_creates_nothing(
        tmp_path, capsys, damage):
    package = tmp_path / "pkg"
    package.mkdir()
    manifest = {"format": 1, "study_uid": "1.2.3", "study_name": "x", "reader": "carol"}
    if damage != "no-manifest":
        (package / "package.json").write_text(
            "[1, 2" if damage == "bad-manifest" else json.dumps(manifest))
    if damage == "garbage-db":
        (package / "package.sqlite").write_bytes(b"not a database at all" * 100)
    before = sorted(p.name for p in package.iterdir())
    library = tmp_path / "lib.sqlite"
    _one_line_error(capsys, ["study", "import", str(package), "--library", str(library)])
    assert sorted(p.name for p in package.iterdir()) == before
    assert not library.exists()


def test_json_output_never_holds_nan(capsys):
    emit(True, {"kappa": float("nan"), "ci": [float("-inf"), 0.5],
                "values": np.array([np.nan, 1.0])}, "")
    text = capsys.readouterr().out
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert data == {"kappa": None, "ci": [None, 0.5], "values": [None, 1.0]}


def test_a_zip_member_larger_than_declared_is_refused(tmp_path):
    from medviewer.dicom.sources import ZipMemberError, read_member

    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.dcm", b"x" * 1000)
    assert read_member(str(archive), "a.dcm") == b"x" * 1000
    data = bytearray(archive.read_bytes())
    # Shrink the declared size (local header and central directory) below the real one.
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        data[at + offset:at + offset + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(ZipMemberError):
        read_member(str(archive), "a.dcm")


def test_a_zip_member_over_the_read_limit_is_refused(tmp_path, monkeypatch):
    from medviewer.dicom import sources

    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("big.dcm", b"x" * 4096)
    monkeypatch.setattr(sources, "MAX_MEMBER_BYTES", 1024)
    with pytest.raises(sources.ZipMemberError) as info:
        sources.read_member(str(archive), "big.dcm")
    assert info.value.reason == "too large" and "unpack" in info.value.hint
