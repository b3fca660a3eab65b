"""Studies from a PACS for the GUI and the CLI: nodes, verify, query, retrieve into a library.

Plain functions returning dataclasses; the long ones (:func:`query`, :func:`retrieve`)
take a :class:`~medviewer.tasks.TaskState` for progress and cancel and must run on a
worker thread that owns the library connection.

"Already present" is decided from the library: a study whose every instance (by the
PACS's own count) is in the library is not fetched at all; otherwise only the
instances the library lacks are stored (DICOMweb does not even download the others;
DIMSE C-GET/C-MOVE transfer the study and the known instances are dropped on
arrival).  Retrieved files land in ``<data_dir>/pacs/<node>/<study UID>/`` (or a
folder given) and are imported with :func:`medviewer.services.importer.import_paths`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from medviewer.dicom.uids import is_valid_uid
from medviewer.fileio import resolve_inside
from medviewer.pacs import dicomweb, dimse
from medviewer.pacs.errors import NodeConfigError
from medviewer.pacs.models import EchoResult, StudyMatch, StudyQuery, StudyTransfer
from medviewer.pacs.nodes import LocalAE, Node, PacsConfig, load_config
from medviewer.pacs.nodes import add_node as _add_node
from medviewer.pacs.nodes import remove_node as _remove_node
from medviewer.pacs.nodes import set_local as _set_local
from medviewer.services.importer import ImportReport, import_paths
from medviewer.store.library import Library
from medviewer.tasks import TaskState, ensure_state

ConfigPath = str | os.PathLike | None


@dataclass
class RetrieveReport:
    """What a retrieve did.

    Attributes
    ----------
    node : str
    transfers : list of StudyTransfer
        One per study fetched (fully or partly).
    already_present : list of str
        Study UIDs not fetched because the library has all their instances.
    folder : str
        Where the files were written.
    imported : ImportReport or None
    """

    node: str
    transfers: list[StudyTransfer] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    folder: str = ""
    imported: ImportReport | None = None

    @property
    def files(self) -> list[str]:
        """Every file written."""
        return [f for t in self.transfers for f in t.files]

    def as_dict(self) -> dict:
        """Return the report as JSON-able data (the CLI's ``--json`` output)."""
        return {"node": self.node, "folder": self.folder,
                "already_present": self.already_present,
                "studies": [{"study_uid": t.study_uid, "files": len(t.files),
                             "skipped_instances": t.skipped_instances, "failed": t.failed,
                             "warnings": t.warnings} for t in self.transfers],
                "files": len(self.files),
                "imported": self.imported.as_dict() if self.imported else None}


# -- nodes ------------------------------------------------------------------------------------
def list_nodes(config_path: ConfigPath = None) -> PacsConfig:
    """Return the configured nodes and our local AE."""
    return load_config(config_path)


def add_node(node: Node, *, replace: bool = False, config_path: ConfigPath = None) -> PacsConfig:
    """Add (or replace) a DICOM node or DICOMweb endpoint."""
    return _add_node(node, replace_existing=replace, path=config_path)


def remove_node(name: str, config_path: ConfigPath = None) -> PacsConfig:
    """Remove a node."""
    return _remove_node(name, path=config_path)


def set_local_ae(local: LocalAE, config_path: ConfigPath = None) -> PacsConfig:
    """Set our AE title and the storage SCP address used for C-MOVE."""
    return _set_local(local, path=config_path)


def echo(name: str, config_path: ConfigPath = None) -> EchoResult:
    """Verify a node: C-ECHO for DICOM nodes, a one-result QIDO-RS query for DICOMweb."""
    config = load_config(config_path)
    node = config.node(name)
    if node.kind == "dimse":
        return dimse.echo(node, config.local)
    return dicomweb.echo(node)


# -- query ------------------------------------------------------------------------------------
def library_instances(library: Library, study_uid: str) -> set[str]:
    """Return the SOP Instance UIDs the library holds for a study."""
    return library.study_sop_uids(study_uid)


def query(name: str, study_query: StudyQuery, *, library: Library | None = None,
          config_path: ConfigPath = None, state: TaskState | None = None) -> list[StudyMatch]:
    """Find studies on a node; with ``library``, say how many instances it already has."""
    from dataclasses import replace

    state = ensure_state(state)
    config = load_config(config_path)
    node = config.node(name)
    state.set_progress(0.0, f"Querying {node.name}")
    if node.kind == "dimse":
        matches = dimse.find_studies(node, study_query, config.local, state)
    else:
        matches = dicomweb.find_studies(node, study_query)
    if library is not None:
        matches = [replace(m, in_library=len(library_instances(library, m.study_uid)))
                   for m in matches]
    state.set_progress(1.0, f"{len(matches)} studies found")
    return matches


# -- retrieve ---------------------------------------------------------------------------------
def default_folder(node_name: str) -> Path:
    """Return where retrieved studies of a node are written by default."""
    from medviewer.paths import data_dir

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in node_name) or "node"
    return data_dir() / "pacs" / safe


def retrieve(name: str, study_uids: Iterable[str], library: Library, *,
             folder: str | os.PathLike | None = None, method: str | None = None,
             config_path: ConfigPath = None, verify: str = "compressed",
             state: TaskState | None = None) -> RetrieveReport:
    """Retrieve studies from a node into ``folder`` and import them into ``library``.

    Parameters
    ----------
    name : str
        The node.
    study_uids : iterable of str
        Study Instance UIDs (from :func:`query`).
    library : Library
    folder : path-like, optional
        Where files go; :func:`default_folder` by default.
    method : {"get", "move"}, optional
        For DICOM nodes, overrides the node's retrieve method.
    verify : str
        Passed to :func:`import_paths`.
    state : TaskState, optional
        Progress over all studies; cancel stops between instances (the files written
        so far stay and are imported next time).

    Returns
    -------
    RetrieveReport
    """
    state = ensure_state(state)
    config = load_config(config_path)
    node = config.node(name)
    method = method or node.retrieve
    if node.kind == "dimse" and method not in ("get", "move"):
        raise NodeConfigError(f"retrieve method must be get or move, not {method!r}")
    uids = list(dict.fromkeys(u.strip() for u in study_uids if u and u.strip()))
    root = Path(folder) if folder is not None else default_folder(node.name)
    report = RetrieveReport(node.name, folder=str(root))
    for index, study_uid in enumerate(uids):
        state.check()
        known = library_instances(library, study_uid)
        span = 0.9 / max(1, len(uids))
        step = state.child(index * span, (index + 1) * span)

        def progress(done: int, total: int, step=step, index=index) -> None:
            step.set_progress(done / total if total else 1.0,
                              f"Retrieving study {index + 1} of {len(uids)}: {done} of "
                              f"{total} instances")

        if not is_valid_uid(study_uid):
            # The UID names a folder: a server answering "../../x" or "/tmp/y" must not
            # choose where files land.
            reason = (f"refused study {study_uid!r}: not a valid UID (PS3.5 9.1), so it "
                      "cannot name a folder; the server that sent it is damaged or hostile")
            report.transfers.append(StudyTransfer(study_uid, failed=1, warnings=[reason]))
            continue
        if known and _complete(node, config.local, study_uid, len(known), state):
            report.already_present.append(study_uid)
            continue
        out = resolve_inside(root, study_uid)
        if node.kind == "dicomweb":
            transfer = dicomweb.retrieve_study(node, study_uid, out, skip_sops=known,
                                               state=state, progress=progress)
            if not transfer.files and transfer.skipped_instances and not transfer.failed:
                report.already_present.append(study_uid)
                continue
        elif method == "get":
            transfer = dimse.get_study(node, study_uid, out, local=config.local, skip_sops=known,
                                       state=state, progress=progress)
        else:
            transfer = dimse.move_study(node, study_uid, out, local=config.local,
                                        skip_sops=known, state=state, progress=progress)
        report.transfers.append(transfer)
    if report.files:
        state.set_progress(0.9, f"Importing {len(report.files)} files")
        report.imported = import_paths(library, report.files, verify=verify,
                                       state=state.child(0.9, 1.0))
    state.set_progress(1.0, f"Retrieved {len(report.files)} files; "
                            f"{len(report.already_present)} studies already present")
    return report


def _complete(node: Node, local: LocalAE, study_uid: str, known: int, state: TaskState) -> bool:
    """Whether the library holds every instance the node reports for a study."""
    if node.kind == "dicomweb":
        return False  # the WADO-RS path lists instances and skips the known ones anyway
    matches = dimse.find_studies(node, StudyQuery(study_uid=study_uid), local, state)
    counts = [m.instances for m in matches if m.study_uid == study_uid]
    return bool(counts) and counts[0] is not None and known >= counts[0]
