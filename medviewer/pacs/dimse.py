"""DICOM network services with pynetdicom: C-ECHO, C-FIND, C-GET and C-MOVE (SCU).

References
----------
DICOM PS3.4 Annex A (Verification), Annex C (Query/Retrieve: the Study Root
information model, C-FIND, C-MOVE, C-GET, pending statuses and their
sub-operation counts); PS3.7 9.1 (DIMSE-C); pynetdicom's "Query/Retrieve (Get)
SCU" and "(Move) SCU" examples.

Every call opens one association with bounded timeouts (the node's), checks the
task state between responses, and aborts the association when the user cancels.
Received instances are written as they arrive, byte for byte as sent (no
decoding), to ``<out_dir>/<SOP Instance UID>.dcm``.  Call from a worker thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from medviewer.dicom.uids import instance_file_name
from medviewer.errors import TaskCancelled
from medviewer.fileio import resolve_inside
from medviewer.fileio import atomic_write_bytes
from medviewer.pacs.errors import AssociationError, PacsError, RetrieveError
from medviewer.pacs.models import EchoResult, StudyMatch, StudyQuery, StudyTransfer
from medviewer.pacs.nodes import LocalAE, Node
from medviewer.tasks import TaskState, ensure_state

# Storage SOP classes offered for C-GET (one presentation context each; an association
# holds at most 128, PS3.8 9.3.2.2): the image, document and presentation objects a
# radiology viewer reads.
GET_STORAGE_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.1",       # CR
    "1.2.840.10008.5.1.4.1.1.1.1",     # DX for presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",   # DX for processing
    "1.2.840.10008.5.1.4.1.1.1.2",     # MG for presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",   # MG for processing
    "1.2.840.10008.5.1.4.1.1.1.3",     # IO for presentation
    "1.2.840.10008.5.1.4.1.1.2",       # CT
    "1.2.840.10008.5.1.4.1.1.2.1",     # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",       # MR
    "1.2.840.10008.5.1.4.1.1.4.1",     # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.6.1",     # US
    "1.2.840.10008.5.1.4.1.1.3.1",     # US multi-frame
    "1.2.840.10008.5.1.4.1.1.7",       # Secondary capture
    "1.2.840.10008.5.1.4.1.1.7.2",     # Multi-frame grayscale byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",     # Multi-frame grayscale word SC
    "1.2.840.10008.5.1.4.1.1.7.4",     # Multi-frame true colour SC
    "1.2.840.10008.5.1.4.1.1.12.1",    # XA
    "1.2.840.10008.5.1.4.1.1.12.2",    # RF
    "1.2.840.10008.5.1.4.1.1.13.1.3",  # Breast tomosynthesis
    "1.2.840.10008.5.1.4.1.1.20",      # NM
    "1.2.840.10008.5.1.4.1.1.128",     # PET
    "1.2.840.10008.5.1.4.1.1.130",     # Enhanced PET
    "1.2.840.10008.5.1.4.1.1.66.4",    # Segmentation
    "1.2.840.10008.5.1.4.1.1.88.11",   # Basic text SR
    "1.2.840.10008.5.1.4.1.1.88.22",   # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",   # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.59",   # Key Object Selection
    "1.2.840.10008.5.1.4.1.1.11.1",    # Grayscale softcopy presentation state
    "1.2.840.10008.5.1.4.1.1.104.1",   # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.481.1",   # RT image
)
# Transfer syntaxes we accept for received objects: uncompressed, deflated, and the
# compressed syntaxes whose decoders MedViewer installs (pylibjpeg, pyjpegls).
ACCEPTED_SYNTAXES = (
    "1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5",
)
STUDY_RETURN_KEYS = ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "StudyTime",
                     "AccessionNumber", "StudyDescription", "ModalitiesInStudy",
                     "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances")
PENDING = (0xFF00, 0xFF01)

Progress = Callable[[int, int], None]  # (completed, total) of the current study


def _ae(local: LocalAE, node: Node):
    from pynetdicom import AE

    ae = AE(ae_title=local.ae_title)
    for name in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
        setattr(ae, name, float(node.timeout))
    return ae


def _associate(ae, node: Node, **kwargs):
    assoc = ae.associate(node.host, int(node.port), ae_title=node.ae_title, **kwargs)
    if not assoc.is_established:
        why = ("rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else
               "no answer")
        raise AssociationError(
            f"no association with {node.ae_title}@{node.host}:{node.port} ({why})",
            path=node.name, hint="check host, port and AE title, and that the PACS knows our "
            "AE title")
    return assoc


def echo(node: Node, local: LocalAE | None = None) -> EchoResult:
    """Verify a node with C-ECHO; never raises for a network failure (``ok`` is False)."""
    from pynetdicom.sop_class import Verification

    local = local or LocalAE()
    ae = _ae(local, node)
    ae.add_requested_context(Verification)
    start = time.perf_counter()
    try:
        assoc = _associate(ae, node)
    except AssociationError as exc:
        return EchoResult(node.name, False, exc.message, time.perf_counter() - start)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    ok = bool(status) and int(status.Status) == 0x0000
    text = f"0x{int(status.Status):04X}" if status else "no response"
    return EchoResult(node.name, ok, "success" if ok else text, time.perf_counter() - start)


def _study_identifier(query: StudyQuery):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for keyword in STUDY_RETURN_KEYS:
        setattr(ds, keyword, "")
    ds.PatientID = query.patient_id
    ds.PatientName = query.patient_name
    ds.StudyDate = query.study_date
    ds.AccessionNumber = query.accession
    ds.ModalitiesInStudy = query.modality
    ds.StudyInstanceUID = query.study_uid
    return ds


def find_studies(node: Node, query: StudyQuery, local: LocalAE | None = None,
                 state: TaskState | None = None) -> list[StudyMatch]:
    """Query a node at study level (Study Root C-FIND)."""
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as Find

    state = ensure_state(state)
    query.validate()
    ae = _ae(local or LocalAE(), node)
    ae.add_requested_context(Find)
    assoc = _associate(ae, node)
    matches: list[StudyMatch] = []
    try:
        for status, identifier in assoc.send_c_find(_study_identifier(query), Find):
            if state.cancel_requested:
                assoc.abort()
                raise TaskCancelled()
            if not status:
                raise PacsError(f"{node.name}: the query timed out or the association broke",
                                hint="raise the node's timeout or narrow the query")
            code = int(status.Status)
            if code in PENDING and identifier is not None:
                matches.append(_match(identifier))
            elif code not in PENDING and code != 0x0000:
                raise PacsError(f"{node.name}: C-FIND failed with status 0x{code:04X}",
                                hint="the PACS refused the query; check its logs")
    finally:
        if assoc.is_established:
            assoc.release()
    return matches[:query.limit]


def _match(ds) -> StudyMatch:
    def text(keyword: str) -> str:
        value = ds.get(keyword, "")
        return "" if value is None else str(value)

    def number(keyword: str) -> int | None:
        try:
            return int(ds.get(keyword))
        except (TypeError, ValueError):
            return None

    modalities = ds.get("ModalitiesInStudy", "") or ""
    modalities = [modalities] if isinstance(modalities, str) else list(modalities)
    return StudyMatch(
        study_uid=text("StudyInstanceUID"), patient_id=text("PatientID"),
        patient_name=text("PatientName"), study_date=text("StudyDate"),
        study_time=text("StudyTime"), accession=text("AccessionNumber"),
        description=text("StudyDescription"),
        modalities=tuple(str(m) for m in modalities if m),
        series=number("NumberOfStudyRelatedSeries"),
        instances=number("NumberOfStudyRelatedInstances"))


class _Receiver:
    """C-STORE handler: writes each instance as received, skipping known SOP UIDs."""

    def __init__(self, out_dir: Path, skip: set[str], transfer: StudyTransfer) -> None:
        self.out_dir = out_dir
        self.skip = skip
        self.transfer = transfer
        self.lock = threading.Lock()

    def __call__(self, event) -> int:
        sop = str(event.request.AffectedSOPInstanceUID)
        if sop in self.skip:
            with self.lock:
                self.transfer.skipped_instances += 1
            return 0x0000
        name = instance_file_name(sop)
        path = resolve_inside(self.out_dir, f"{name}.dcm")
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, event.encoded_dataset())
        except OSError:
            return 0xA700  # Out of resources
        with self.lock:
            self.transfer.files.append(str(path))
        return 0x0000


def _retrieve_identifier(study_uid: str):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    return ds


def _follow(responses, assoc, node: Node, transfer: StudyTransfer, state: TaskState,
            progress: Progress | None) -> None:
    """Consume C-GET/C-MOVE responses: progress, cancel, final status."""
    final = None
    for status, _identifier in responses:
        if state.cancel_requested:
            assoc.abort()
            raise TaskCancelled()
        if not status:
            raise RetrieveError(f"{node.name}: the retrieve timed out or the association broke",
                                hint="raise the node's timeout and retry")
        done = int(status.get("NumberOfCompletedSuboperations", 0) or 0)
        left = int(status.get("NumberOfRemainingSuboperations", 0) or 0)
        failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
        warned = int(status.get("NumberOfWarningSuboperations", 0) or 0)
        if progress is not None:
            progress(done + failed + warned, done + failed + warned + left)
        final = status
    if final is None:
        raise RetrieveError(f"{node.name}: no response to the retrieve")
    code = int(final.Status)
    transfer.failed = int(final.get("NumberOfFailedSuboperations", 0) or 0)
    if code == 0xB000 or transfer.failed:
        transfer.warnings.append(f"{transfer.failed} instance(s) failed to transfer "
                                 f"(status 0x{code:04X})")
    elif code not in (0x0000,) + PENDING:
        raise RetrieveError(f"{node.name}: retrieve failed with status 0x{code:04X}",
                            hint="for C-MOVE the PACS must know our AE title, host and port; "
                            "for C-GET it must support C-GET")


def get_study(node: Node, study_uid: str, out_dir: str | Path, *, local: LocalAE | None = None,
              skip_sops: set[str] | frozenset[str] = frozenset(),
              state: TaskState | None = None, progress: Progress | None = None
              ) -> StudyTransfer:
    """Retrieve one study with C-GET (the instances come back on the same association)."""
    from pynetdicom import build_role, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as Get

    state = ensure_state(state)
    transfer = StudyTransfer(study_uid)
    receiver = _Receiver(Path(out_dir), set(skip_sops), transfer)
    ae = _ae(local or LocalAE(), node)
    ae.add_requested_context(Get)
    for uid in GET_STORAGE_CLASSES:
        ae.add_requested_context(uid, list(ACCEPTED_SYNTAXES))
    roles = [build_role(uid, scp_role=True) for uid in GET_STORAGE_CLASSES]
    assoc = _associate(ae, node, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, receiver)])
    try:
        _follow(assoc.send_c_get(_retrieve_identifier(study_uid), Get), assoc, node, transfer,
                state, progress)
    finally:
        if assoc.is_established:
            assoc.release()
    return transfer


def move_study(node: Node, study_uid: str, out_dir: str | Path, *, local: LocalAE,
               skip_sops: set[str] | frozenset[str] = frozenset(),
               state: TaskState | None = None, progress: Progress | None = None
               ) -> StudyTransfer:
    """Retrieve one study with C-MOVE to a storage SCP started here for the transfer.

    The PACS must know ``local.ae_title`` with our host and ``local.storage_port``.
    """
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as Move

    state = ensure_state(state)
    transfer = StudyTransfer(study_uid)
    receiver = _Receiver(Path(out_dir), set(skip_sops), transfer)
    scp = AE(ae_title=local.ae_title)
    scp.network_timeout = scp.acse_timeout = scp.dimse_timeout = float(node.timeout)
    for uid in GET_STORAGE_CLASSES:
        scp.add_supported_context(uid, list(ACCEPTED_SYNTAXES))
    try:
        server = scp.start_server((local.storage_host, int(local.storage_port)), block=False,
                                  evt_handlers=[(evt.EVT_C_STORE, receiver)])
    except OSError as exc:
        raise RetrieveError(f"cannot listen on {local.storage_host}:{local.storage_port} "
                            f"({exc})", hint="choose another storage port, or use C-GET") from exc
    try:
        ae = _ae(local, node)
        ae.add_requested_context(Move)
        assoc = _associate(ae, node)
        try:
            _follow(assoc.send_c_move(_retrieve_identifier(study_uid), local.ae_title, Move),
                    assoc, node, transfer, state, progress)
        finally:
            if assoc.is_established:
                assoc.release()
    finally:
        server.shutdown()
    return transfer
