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
from medviewer.study import store

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
    study = store.package_study(source, study_id)
    if study is None:
        raise PackageError(f"no reader study with id {study_id}", path=library_path)
    # Modality and label group stay home: they would hint at the answer.
    queries = store.package_queries(source, study_id)
    candidates = store.package_candidates(source, study_id)
    source.close()
    target = store.open_study_db(out / "package.sqlite")
    # Blinded: every candidate looks the same to the package (no flag, rank or distance).
    store.write_package_tables(target, study, queries, candidates)
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
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PackageError("not a reading package (package.json missing or damaged)",
                           path=package) from exc
    if not isinstance(manifest, dict):
        raise PackageError("not a reading package (package.json is not an object)",
                           path=package)
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

    Every response row of the package is checked against the home study first (its
    query is one of the study's, its status known, its picks candidates of that query,
    as many as the status allows); one bad row refuses the whole package and nothing of
    it is stored.  Identical answers already present count as duplicates; a different
    home answer, finished or still in progress, is a conflict and stays as it is at
    home unless ``prefer="package"``.  Everything imported is written to the audit trail.

    Raises
    ------
    PackageError
        The package is missing, damaged, of another study, or holds invalid answers.
    """
    manifest = read_manifest(package)
    reader = manifest.get("reader")
    if not isinstance(reader, str) or not reader.strip() or not isinstance(
            manifest.get("study_uid"), str):
        raise PackageError("package.json names no reader or study", path=package,
                           hint="export the package again")
    remote_reader, responses = _read_package_rows(Path(package), reader, manifest["study_uid"])
    if not Path(library_path).is_file():
        raise PackageError("no such library", path=library_path,
                           hint="give the library the study was designed in")
    home = store.open_study_db(library_path)
    try:
        return _merge(home, Path(package), manifest, remote_reader, responses, prefer)
    finally:
        home.close()


def _read_package_rows(package: Path, reader: str, study_uid: str):
    """Return the reader row and response rows of a package, opened read-only."""
    db = package / "package.sqlite"
    if not db.is_file():
        raise PackageError("package.sqlite is missing", path=package,
                           hint="copy the whole package folder back")
    try:
        # Read-only: a damaged package is never modified (or created) by importing it.
        remote = store.open_read_only(db)
        try:
            if store.study_uids(remote) != [study_uid]:
                raise PackageError("package.sqlite holds another study than package.json names",
                                   path=package, hint="export the package again")
            remote_reader = store.reader_named(remote, reader)
            responses = [] if remote_reader is None else store.reader_responses(
                remote, remote_reader[0])
        finally:
            remote.close()
    except sqlite3.DatabaseError as exc:
        raise PackageError(f"package.sqlite is damaged or not a reading package ({exc})",
                           path=package, hint="copy the package again from the reader") from exc
    return remote_reader, responses


def _row_problems(rows, queries: dict[int, set[int]], picks_required: int) -> list[str]:
    """Return what is wrong with the package's response rows (empty: all valid)."""
    problems = []
    seen = set()
    for query_id, status, picked, reason, seconds, _updated in rows:
        where = f"the answer to query {query_id}"
        if not isinstance(query_id, int) or query_id not in queries:
            problems.append(f"{where}: query {query_id} is not part of this study")
            continue
        if query_id in seen:
            problems.append(f"{where}: answered twice")
        seen.add(query_id)
        if status not in ("in_progress", "answered", "skipped"):
            problems.append(f"{where}: unknown status {status!r}")
            continue
        try:
            picks = json.loads(picked)
        except (TypeError, ValueError):
            picks = None
        if not isinstance(picks, list) or not all(
                isinstance(p, int) and not isinstance(p, bool) for p in picks):
            problems.append(f"{where}: the picks are not a list of candidate ids")
            continue
        strangers = sorted(set(picks) - queries[query_id])
        if strangers:
            problems.append(f"{where}: {strangers[0]} is not a candidate of that query")
        if len(set(picks)) != len(picks):
            problems.append(f"{where}: a candidate is picked twice")
        if status == "answered" and len(picks) != picks_required:
            problems.append(f"{where}: answered with {len(picks)} picks, not {picks_required}")
        elif len(picks) > picks_required:
            problems.append(f"{where}: {len(picks)} picks, more than {picks_required}")
        if status == "skipped" and not (isinstance(reason, str) and reason.strip()):
            problems.append(f"{where}: skipped without a reason")
        if not isinstance(seconds, (int, float)) or not np.isfinite(seconds) or seconds < 0:
            problems.append(f"{where}: the time spent is not a number of seconds")
    return problems


def _merge(home, package: Path, manifest: dict, remote_reader, responses,
           prefer: str) -> MergeReport:
    reader = manifest["reader"]
    found = store.study_by_uid(home, manifest["study_uid"])
    if found is None:
        raise PackageError("this package belongs to a study that is not in this library",
                           path=package, hint=f"study {manifest.get('study_name')!r}")
    study_id, picks_required = found
    queries = store.candidates_by_query(home, study_id)
    problems = _row_problems(responses, queries, picks_required)
    if problems:
        more = f" (and {len(problems) - 3} more problems)" if len(problems) > 3 else ""
        raise PackageError("the package holds invalid answers, so nothing of it was imported: "
                           + "; ".join(problems[:3]) + more, path=package,
                           hint="ask the reader for the package as their program wrote it")
    report = MergeReport(reader=reader)
    if remote_reader is None:
        return report
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    # One write transaction from reading the home rows to the last write: a reader busy
    # at home at the same moment never has a pick overwritten from a stale read.
    with store.write_transaction(home):
        local = store.reader_row(home, study_id, reader)
        if local is None:
            local_id = store.insert_package_reader(home, study_id, reader, remote_reader[1],
                                                   remote_reader[2])
        else:
            local_id = local[0]
        for query_id, status, picked, reason, seconds, updated in responses:
            mine = store.response_row(home, local_id, query_id)
            if mine is not None and (mine[0], json.loads(mine[1]), mine[2]) == (
                    status, json.loads(picked), reason):
                report.duplicates += 1
                continue
            # Home work counts, finished or not; only an untouched home row gives way.
            untouched = mine is not None and mine[0] == "in_progress" and not json.loads(mine[1])
            if mine is not None and not untouched and prefer != "package":
                report.conflicts.append({"query": query_id, "home": {"status": mine[0],
                                         "picked": json.loads(mine[1])},
                                         "package": {"status": status, "picked": json.loads(picked)}})
                continue
            store.upsert_response(home, local_id, query_id, status, picked, reason, seconds,
                                  updated)
            store.insert_audit(home, local_id, query_id, now, f"import from package {package.name}",
                               json.dumps(None if mine is None else {
                                   "status": mine[0], "picked": json.loads(mine[1])}),
                               json.dumps({"status": status, "picked": json.loads(picked)}))
            report.imported += 1
    return report


def copy_package(package: str | Path, destination: str | Path) -> Path:
    """Copy a package folder (e.g. to removable media); return the copy."""
    return Path(shutil.copytree(package, destination))
