"""DICOMweb: QIDO-RS queries and WADO-RS retrieves, with the standard library only.

References
----------
DICOM PS3.18 10.6 (QIDO-RS Search: ``/studies``, ``/studies/{uid}/instances``, query
keys by keyword, ``limit``, ``includefield``), 10.4 (WADO-RS Retrieve: instances as
``multipart/related; type="application/dicom"``), F.2 (the DICOM JSON model: tags as
``GGGGEEEE`` keys with ``vr`` and ``Value``; PN values as ``{"Alphabetic": ...}``).

Instances are fetched one by one (after a QIDO-RS listing), so progress is exact,
cancel takes effect between instances and instances the library already holds are
never downloaded.  Credentials come from environment variables (see
:mod:`medviewer.pacs.nodes`).  Call from a worker thread.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode, urlparse

from medviewer.dicom.uids import instance_file_name
from medviewer.errors import TaskCancelled
from medviewer.fileio import resolve_inside
from medviewer.fileio import atomic_write_bytes
from medviewer.pacs.errors import DicomWebError, NodeConfigError
from medviewer.pacs.models import EchoResult, StudyMatch, StudyQuery, StudyTransfer
from medviewer.pacs.nodes import Node
from medviewer.tasks import TaskState, ensure_state

JSON = "application/dicom+json"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'
STUDY_FIELDS = ("00081030", "00201206", "00201208", "00080061", "00080030")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _headers(node: Node, accept: str) -> dict[str, str]:
    headers = {"Accept": accept, "User-Agent": "MedViewer"}
    if node.auth == "basic":
        password = os.environ.get(node.password_env, "") if node.password_env else ""
        token = base64.b64encode(f"{node.username}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    elif node.auth == "bearer":
        token = os.environ.get(node.token_env, "") if node.token_env else ""
        if not token:
            raise NodeConfigError(f"node {node.name!r}: no token in ${node.token_env}",
                                  hint="export the token in that environment variable")
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _open(node: Node, request: urllib.request.Request):
    # Loopback servers are reached directly even when a proxy is configured.
    if urlparse(node.url).hostname in LOOPBACK:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        return opener.open(request, timeout=float(node.timeout))
    return urllib.request.urlopen(request, timeout=float(node.timeout))


def _get(node: Node, path: str, params: list[tuple[str, str]] | None = None,
         accept: str = JSON) -> tuple[str, bytes]:
    url = node.url.rstrip("/") + path + (f"?{urlencode(params)}" if params else "")
    request = urllib.request.Request(url, headers=_headers(node, accept))
    try:
        with _open(node, request) as response:
            return response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        raise DicomWebError(f"{node.name}: HTTP {exc.code} {exc.reason} for {path}",
                            path=node.url, hint="check the URL and credentials") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DicomWebError(f"{node.name}: cannot reach {node.url} ({reason})", path=node.url,
                            hint="check the URL, the network and the server") from exc


def _json(node: Node, path: str, params=None) -> list[dict]:
    _ctype, body = _get(node, path, params)
    if not body.strip():
        return []  # 204 No Content: no match
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise DicomWebError(f"{node.name}: the answer to {path} is not DICOM JSON",
                            path=node.url, hint="is the URL the DICOMweb root?") from exc
    if not isinstance(data, list):
        raise DicomWebError(f"{node.name}: expected a JSON array from {path}", path=node.url)
    return data


def _values(obj: dict, tag: str) -> list:
    entry = obj.get(tag) or {}
    values = entry.get("Value") or []
    if entry.get("vr") == "PN":
        return [v.get("Alphabetic", "") if isinstance(v, dict) else str(v) for v in values]
    return values


def _first(obj: dict, tag: str) -> str:
    values = _values(obj, tag)
    return str(values[0]) if values else ""


def _int(obj: dict, tag: str) -> int | None:
    try:
        return int(_first(obj, tag))
    except ValueError:
        return None


def echo(node: Node) -> EchoResult:
    """Verify a DICOMweb endpoint with a one-result QIDO-RS query (never raises)."""
    start = time.perf_counter()
    try:
        _json(node, "/studies", [("limit", "1")])
    except (DicomWebError, NodeConfigError) as exc:
        return EchoResult(node.name, False, exc.message, time.perf_counter() - start)
    return EchoResult(node.name, True, "success", time.perf_counter() - start)


def find_studies(node: Node, query: StudyQuery) -> list[StudyMatch]:
    """Search studies with QIDO-RS."""
    query.validate()
    params = [(k, v) for k, v in (
        ("PatientID", query.patient_id), ("PatientName", query.patient_name),
        ("StudyDate", query.study_date), ("ModalitiesInStudy", query.modality),
        ("AccessionNumber", query.accession), ("StudyInstanceUID", query.study_uid)) if v]
    params += [("includefield", f) for f in STUDY_FIELDS]
    params.append(("limit", str(int(query.limit))))
    out = []
    for obj in _json(node, "/studies", params):
        out.append(StudyMatch(
            study_uid=_first(obj, "0020000D"), patient_id=_first(obj, "00100020"),
            patient_name=_first(obj, "00100010"), study_date=_first(obj, "00080020"),
            study_time=_first(obj, "00080030"), accession=_first(obj, "00080050"),
            description=_first(obj, "00081030"),
            modalities=tuple(str(m) for m in _values(obj, "00080061")),
            series=_int(obj, "00201206"), instances=_int(obj, "00201208")))
    return out


def list_instances(node: Node, study_uid: str) -> list[tuple[str, str]]:
    """Return ``(series UID, SOP instance UID)`` of every instance of a study (QIDO-RS)."""
    rows = _json(node, f"/studies/{quote(study_uid)}/instances",
                 [("includefield", "0020000E")])
    return [(_first(r, "0020000E"), _first(r, "00080018")) for r in rows]


def _parts(content_type: str, body: bytes) -> list[bytes]:
    """Split a multipart/related body into its parts' contents (RFC 2046 5.1)."""
    match = re.search(r'boundary="?([^";,]+)"?', content_type, flags=re.IGNORECASE)
    if not match:
        raise DicomWebError(f"not a multipart answer ({content_type!r})")
    delimiter = b"--" + match.group(1).strip().encode()
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the close delimiter
        _head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        parts.append(content[:-2] if content.endswith(b"\r\n") else content)
    return parts


def retrieve_study(node: Node, study_uid: str, out_dir: str | Path, *,
                   skip_sops: set[str] | frozenset[str] = frozenset(),
                   state: TaskState | None = None, progress=None) -> StudyTransfer:
    """Retrieve one study with WADO-RS, instance by instance, skipping ``skip_sops``."""
    state = ensure_state(state)
    transfer = StudyTransfer(study_uid)
    instances = list_instances(node, study_uid)
    wanted = [(se, sop) for se, sop in instances if sop not in skip_sops]
    transfer.skipped_instances = len(instances) - len(wanted)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for done, (series_uid, sop) in enumerate(wanted):
        if state.cancel_requested:
            raise TaskCancelled()
        if progress is not None:
            progress(done, len(wanted))
        ctype, body = _get(node, f"/studies/{quote(study_uid)}/series/{quote(series_uid)}/"
                                 f"instances/{quote(sop)}", accept=MULTIPART_DICOM)
        parts = _parts(ctype, body)
        if len(parts) != 1:
            transfer.failed += 1
            transfer.warnings.append(f"instance {sop}: {len(parts)} parts in the answer")
            continue
        name = instance_file_name(sop)
        path = resolve_inside(out, f"{name}.dcm")
        atomic_write_bytes(path, parts[0])
        transfer.files.append(str(path))
    if progress is not None:
        progress(len(wanted), len(wanted))
    return transfer
