"""Seeded, bounded fuzzing of import, render and de-identification.

A few real files (native grey, MONOCHROME1, multi-frame, RGB, RLE, JPEG-LS, JPEG 2000
and a PNG) are mutated 300 times with a fixed seed: bytes flipped, runs zeroed or
filled, cuts, insertions, lengths of header elements rewritten.  Every mutant must give
either a result or a domain error with a reason in words: no other exception, no hang,
and an import of all of them together finishes with every file accounted for.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import helpers_dicom as h
import numpy as np
import pytest
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from medviewer.deid.export import Exporter
from medviewer.dicom.pixels import decode
from medviewer.dicom.scan import scan
from medviewer.dicom.sources import FileRef
from medviewer.display.render import render_frame
from medviewer.errors import ImageReadError, MedViewerError
from medviewer.services.importer import import_paths
from medviewer.store import Library

SEED = 20260515
MUTANTS = 300
RAW_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception): ")


def _seeds(folder):
    folder.mkdir()
    grey = h.write(h.make_image(h.phantom(24, 20, seed=1), seed="fz-grey"), folder / "grey.dcm")
    files = [grey, h.write_monochrome1(folder / "mono1.dcm", rows=16, cols=16)[0],
             h.write_multiframe(folder / "multi.dcm", frames=3, rows=8, cols=8)[0],
             h.write_rgb(folder / "rgb.dcm")[0], h.write_png(folder / "x.png", size=16)]
    for syntax, name in ((RLELossless, "rle"), (JPEGLSLossless, "jls"),
                         (JPEG2000Lossless, "j2k")):
        out = h.write_compressed(grey, folder / f"{name}.dcm", syntax)
        if out is not None:
            files.append(out)
    return files


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    n = len(buf)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(0, 7))
        at = int(rng.integers(0, max(1, n)))
        if kind == 0:  # flip bits
            for i in rng.integers(0, n, size=int(rng.integers(1, 16))):
                buf[int(i)] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:  # cut
            del buf[at:]
        elif kind == 2:  # zero a run
            size = len(buf[at:at + int(rng.integers(1, 512))])
            buf[at:at + size] = bytes(size)
        elif kind == 3:  # insert random bytes
            buf[at:at] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        elif kind == 4:  # an element length becomes huge or odd (after a VR in the header)
            vr = buf.find(b"US", 132 + at % max(1, min(n, 2048)))
            if vr > 0 and vr + 4 <= len(buf):
                buf[vr + 2:vr + 4] = int(rng.choice([0xFFFF, 1, 3, 0x8000])).to_bytes(2, "little")
        elif kind == 5:  # duplicate a chunk
            chunk = buf[at:at + int(rng.integers(1, 256))]
            buf[at:at] = chunk
        else:  # 0xFF runs (markers, undefined lengths)
            buf[at:at + 8] = b"\xff" * len(buf[at:at + 8])
        n = len(buf)
    return bytes(buf)


@pytest.fixture(scope="module")
def mutants(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    seeds = _seeds(root / "seeds")
    rng = np.random.default_rng(SEED)
    out = root / "mutants"
    out.mkdir()
    paths = []
    for i in range(MUTANTS):
        src = seeds[i % len(seeds)]
        path = out / f"m{i:03d}{src.suffix}"
        path.write_bytes(_mutate(src.read_bytes(), rng))
        paths.append(path)
    return root, paths


def _only_domain_errors(call, *args):
    """Run ``call``; a MedViewerError is an answer, anything else is a bug."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call(*args)
    except MedViewerError:
        return None


def test_scan_decode_and_render_give_results_or_domain_errors(mutants):
    _root, paths = mutants
    bugs = []
    for path in paths:
        ref = FileRef.for_path(path)
        try:
            try:
                scan(ref)
            except ImageReadError:
                continue
            image = _only_domain_errors(decode, ref)
            if image is not None:
                for frame in range(min(image.frame_count, 2)):
                    render_frame(image, frame)
        except Exception as exc:  # noqa: BLE001 - what this test looks for
            bugs.append(f"{path.name}: {type(exc).__name__}: {str(exc)[:80]}")
    assert not bugs, "\n".join(bugs)


def test_deidentification_never_raises_and_never_keeps_the_patient(mutants, tmp_path):
    _root, paths = mutants
    exporter = Exporter(tmp_path / "out")
    bugs = []
    for path in paths:
        try:
            written = exporter.add(path)
        except Exception as exc:  # noqa: BLE001 - what this test looks for
            bugs.append(f"{path.name}: {type(exc).__name__}: {exc}")
            continue
        if written is not None:
            data = Path(written.output).read_bytes()
            assert b"Doe^Jane" not in data and b"PAT-001" not in data, path.name
    report = exporter.finish()
    assert not bugs, "\n".join(bugs)
    assert len(report.written) + len(report.skipped) == len(paths)


def test_import_of_every_mutant_accounts_for_each_file_in_words(mutants, tmp_path):
    root, paths = mutants
    with Library(tmp_path / "lib.sqlite") as library:
        report = import_paths(library, [root / "mutants"])
        imported = library.conn.execute("SELECT COUNT(*) FROM instances").fetchone()[0]
    skipped = {s.path for s in report.skipped}
    assert imported + len(skipped) == len(paths)
    raw = [f"{s.path}: {s.detail}" for s in report.skipped if RAW_EXCEPTION.match(s.detail)]
    assert not raw, "\n".join(raw[:10])
