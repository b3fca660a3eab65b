"""Reading packages: a study for one reader on another machine, and merging results back.

A package is a folder with ``package.json``, ``package.sqlite`` (the study
tables, with the model's ranks, distances and closest/farthest flags blanked
so nothing on the reader's machine reveals them) and ``images/<case>.npz``
(modality values, header windows, spacing and photometric interpretation of
each image, so the reader can window and zoom as at home).  The reader reads
from the package; the results come back as the same folder.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from medviewer.dicom.pixels import DecodedImage, HeaderWindow
from medviewer.errors import MedViewerError
from medviewer.study.session import open_study_db
from medviewer.study.tables import STUDY_SQL

PACKAGE_FORMAT = 1


class PackageError(MedViewerError):
    """A reading package is missing, damaged or belongs to another study."""


@dataclass
class MergeReport:
    """What importing a package's results did."""

    reader: str
    imported: int = 0
    duplicates: int = 0
    conflicts: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Return JSON-able data."""
        return {"reader": self.reader, "imported": self.imported, "duplicates": self.duplicates,
                "conflicts": self.conflicts}


def export_package(library_path: str | Path, study_id: int, reader: str, out_dir: str | Path,
                   image_loader) -> Path:
    """Write a reading package for ``reader``; return its folder.

    Parameters
    ----------
    image_loader : callable
        ``image_loader(case_id) -> (DecodedImage, frame)`` for every case of the study.
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise PackageError("the package folder is not empty", path=out,
                           hint="choose a new folder")
    (out / "images").mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(str(library_path))
    study = source.execute("SELECT id, name, uid, created_at, seed, k, picks_required FROM "
                           "reader_studies WHERE id = ?", (study_id,)).fetchone()
    if study is None:
        raise PackageError(f"no reader study with id {study_id}", path=library_path)
    queries = source.execute("SELECT id, study_ref, position, case_ref FROM study_queries WHERE "
                             "study_ref = ?", (study_id,)).fetchall()
    candidates = source.execute(
        "SELECT c.id, c.query_ref, c.case_ref FROM study_candidates c JOIN study_queries q ON "
        "q.id = c.query_ref WHERE q.study_ref = ?", (study_id,)).fetchall()
    source.close()
    target = open_study_db(out / "package.sqlite")
    for statement in STUDY_SQL.split(";"):
        if statement.strip():
            target.execute(statement)
    target.execute("BEGIN")
    target.execute("INSERT INTO reader_studies (id, name, uid, created_at, seed, k, picks_required) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", study)
    # Modality and label group stay home: they would hint at the answer.
    target.executemany("INSERT INTO study_queries (id, study_ref, position, case_ref) "
                       "VALUES (?, ?, ?, ?)", queries)
    # Blinded: every candidate looks the same to the package (no flag, rank or distance).
    target.executemany("INSERT INTO study_candidates (id, query_ref, case_ref, model_closest, rank, "
                       "distance) VALUES (?, ?, ?, 0, 0, 0)", candidates)
    target.execute("COMMIT")
    target.close()
    cases = sorted({q[3] for q in queries} | {c[2] for c in candidates})
    for case_id in cases:
        image, frame = image_loader(case_id)
        frames = image.frames[frame]
        windows = np.array([[w.center, w.width] for w in image.windows], dtype=np.float64)
        np.savez_compressed(out / "images" / f"{case_id}.npz", pixels=frames,
                            windows=windows.reshape(-1, 2),
                            spacing=np.array(image.pixel_spacing or (0.0, 0.0)),
                            photometric=np.array(image.photometric))
    manifest = {"format": PACKAGE_FORMAT, "study_uid": study[2], "study_name": study[1],
                "reader": reader, "created_at": datetime.now(timezone.utc).isoformat(),
                "queries": len(queries), "images": len(cases)}
    (out / "package.json").write_text(json.dumps(manifest, indent=2))
    return out


def read_manifest(package: str | Path) -> dict:
    """Return a package's manifest, checking its format."""
    path = Path(package) / "package.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PackageError("not a reading package (package.json missing or damaged)",
                           path=package) from exc
    if manifest.get("format") != PACKAGE_FORMAT:
        raise PackageError(f"package format {manifest.get('format')} is not supported", path=package)
    return manifest


def package_image(package: str | Path, case_id: int) -> DecodedImage:
    """Load one image of a package as a :class:`DecodedImage` (one frame)."""
    with np.load(Path(package) / "images" / f"{case_id}.npz") as data:
        pixels = data["pixels"]
        windows = [HeaderWindow(float(c), float(w)) for c, w in data["windows"]]
        spacing = tuple(float(v) for v in data["spacing"])
        photometric = str(data["photometric"])
    return DecodedImage(frames=pixels[None], photometric=photometric, windows=windows,
                        pixel_spacing=spacing if spacing[0] > 0 else None)


def import_results(library_path: str | Path, package: str | Path,
                   prefer: str = "local") -> MergeReport:
    """Merge a reader's package results into the library's study.

    Identical answers already present count as duplicates; different answers
    are conflicts, kept as they are at home unless ``prefer="package"``.
    Everything imported is also written to the audit trail.
    """
    manifest = read_manifest(package)
    reader = manifest["reader"]
    home = open_study_db(library_path)
    row = home.execute("SELECT id FROM reader_studies WHERE uid = ?",
                       (manifest["study_uid"],)).fetchone()
    if row is None:
        raise PackageError("this package belongs to a study that is not in this library",
                           path=package, hint=f"study {manifest['study_name']!r}")
    study_id = int(row[0])
    remote = sqlite3.connect(str(Path(package) / "package.sqlite"))
    remote_reader = remote.execute("SELECT id, seed, created_at FROM study_readers WHERE name = ?",
                                   (reader,)).fetchone()
    report = MergeReport(reader=reader)
    if remote_reader is None:
        return report
    responses = remote.execute("SELECT query_ref, status, picked, skip_reason, seconds, updated_at "
                               "FROM study_responses WHERE reader_ref = ?",
                               (remote_reader[0],)).fetchall()
    remote.close()
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    home.execute("BEGIN IMMEDIATE")
    try:
        local = home.execute("SELECT id FROM study_readers WHERE study_ref = ? AND name = ?",
                             (study_id, reader)).fetchone()
        if local is None:
            local_id = home.execute(
                "INSERT INTO study_readers (study_ref, name, seed, created_at, origin) "
                "VALUES (?, ?, ?, ?, 'package')",
                (study_id, reader, remote_reader[1], remote_reader[2])).lastrowid
        else:
            local_id = local[0]
        for query_id, status, picked, reason, seconds, updated in responses:
            mine = home.execute("SELECT status, picked, skip_reason FROM study_responses WHERE "
                                "reader_ref = ? AND query_ref = ?", (local_id, query_id)).fetchone()
            if mine is not None and (mine[0], json.loads(mine[1]), mine[2]) == (
                    status, json.loads(picked), reason):
                report.duplicates += 1
                continue
            if mine is not None and mine[0] != "in_progress" and prefer != "package":
                report.conflicts.append({"query": query_id, "home": {"status": mine[0],
                                         "picked": json.loads(mine[1])},
                                         "package": {"status": status, "picked": json.loads(picked)}})
                continue
            home.execute(
                "INSERT INTO study_responses (reader_ref, query_ref, status, picked, skip_reason, "
                "seconds, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(reader_ref, query_ref) "
                "DO UPDATE SET status = excluded.status, picked = excluded.picked, skip_reason = "
                "excluded.skip_reason, seconds = excluded.seconds, updated_at = excluded.updated_at",
                (local_id, query_id, status, picked, reason, seconds, updated))
            home.execute("INSERT INTO study_audit (reader_ref, query_ref, at, action, before, after) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (local_id, query_id, now, f"import from package {Path(package).name}",
                          json.dumps(None if mine is None else {"status": mine[0],
                                                                "picked": json.loads(mine[1])}),
                          json.dumps({"status": status, "picked": json.loads(picked)})))
            report.imported += 1
        home.execute("COMMIT")
    except BaseException:
        home.execute("ROLLBACK")
        raise
    finally:
        pass
    home.close()
    return report


def copy_package(package: str | Path, destination: str | Path) -> Path:
    """Copy a package folder (e.g. to removable media); return the copy."""
    return Path(shutil.copytree(package, destination))
