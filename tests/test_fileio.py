"""Atomic writes, file hashes and contained paths (medviewer.fileio)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from medviewer.fileio import (
    PathOutsideRootError,
    atomic_write_bytes,
    atomic_write_json,
    resolve_inside,
    sha256_file,
)


def test_atomic_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "settings.json"
    target.write_text("old")
    atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]


def test_atomic_write_failure_keeps_old_content(tmp_path, monkeypatch):
    target = tmp_path / "picks.bin"
    target.write_bytes(b"saved")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"saved"
    assert [p.name for p in tmp_path.iterdir()] == ["picks.bin"]


def test_atomic_write_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        atomic_write_json(tmp_path / "x.json", {"v": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_sha256_file_matches_hashlib(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "parts",
    [("../../../../tmp/x",), ("/tmp/y",), ("a", "..", "..", "b"), ("",), ("a\x00b",)],
)
def test_resolve_inside_refuses_escapes(tmp_path, parts):
    with pytest.raises(PathOutsideRootError) as caught:
        resolve_inside(tmp_path, *parts)
    assert str(tmp_path.resolve()) in str(caught.value)


def test_resolve_inside_refuses_symlink_out(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(PathOutsideRootError):
        resolve_inside(root, "link", "file.dcm")


def test_resolve_inside_accepts_uid_folder(tmp_path):
    path = resolve_inside(tmp_path, "1.2.840.113619.2.55", "image.dcm")
    assert path == tmp_path.resolve() / "1.2.840.113619.2.55" / "image.dcm"


def test_a_child_task_fills_its_span_and_shares_the_cancel_flag():
    from medviewer.errors import TaskCancelled
    from medviewer.tasks import TaskState

    state = TaskState()
    step = state.child(0.25, 0.75)
    step.set_progress(0.5, "half of the middle step")
    assert state.progress == pytest.approx(0.5) and state.status == "half of the middle step"
    step.set_progress(2.0)  # clamped to the step's end, never past the span
    assert state.progress == pytest.approx(0.75) and step.progress == 1.0
    grandchild = step.child(0.0, 0.5)
    grandchild.set_progress(1.0)
    assert state.progress == pytest.approx(0.5)
    state.request_cancel()
    assert step.cancel_requested and grandchild.cancel_requested
    with pytest.raises(TaskCancelled):
        grandchild.check()
    other = TaskState()
    other.child(0, 1).request_cancel()  # cancelling a step cancels the task
    assert other.cancel_requested
