"""A hostile DICOMweb server cannot make a retrieve write outside its folder.

The server is a real HTTP server on loopback (``http.server``) that answers QIDO-RS and
WADO-RS the way a damaged or malicious PACS might: Study, Series or SOP Instance UIDs
that are paths (``../../x``, ``/tmp/y``) instead of UIDs.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import helpers_dicom as hd
import numpy as np
import pytest

from medviewer.dicom.uids import is_valid_uid
from medviewer.pacs import Node
from medviewer.services import pacs
from medviewer.store import Library

BOUNDARY = "medviewer-boundary"


def _instance_bytes(tmp_path: Path) -> bytes:
    ds = hd.make_image(np.zeros((4, 4), np.uint16), seed="pacs-hostile")
    return hd.write(ds, tmp_path / "one.dcm").read_bytes()


class _Hostile(BaseHTTPRequestHandler):
    study_uid = ""
    series_uid = ""
    sop_uid = ""
    body = b""

    def log_message(self, *args):  # keep the test output quiet
        pass

    def do_GET(self):
        cls = type(self)
        path = self.path.split("?")[0]
        if path.endswith("/studies"):
            payload = json.dumps([{"0020000D": {"vr": "UI", "Value": [cls.study_uid]}}])
            self._send("application/dicom+json", payload.encode())
        elif path.endswith("/instances"):
            payload = json.dumps([{"0020000E": {"vr": "UI", "Value": [cls.series_uid]},
                                   "00080018": {"vr": "UI", "Value": [cls.sop_uid]}}])
            self._send("application/dicom+json", payload.encode())
        else:
            body = (f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                    + cls.body + f"\r\n--{BOUNDARY}--\r\n".encode())
            self._send(f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
                       body)

    def _send(self, ctype: str, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hostile_server(tmp_path):
    _Hostile.body = _instance_bytes(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = tmp_path / "nodes.json"
    pacs.add_node(Node("evil", "dicomweb", url=f"http://127.0.0.1:{server.server_port}/dw",
                       timeout=5), config_path=config)
    yield config
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("study_uid,series_uid,sop_uid", [
    ("../../escape/x", "1.2.3", "1.2.3.4"),
    ("{escape}/y", "1.2.3", "1.2.3.4"),
    ("1.2.3", "../../escape", "../../../escape/z"),
])
def test_retrieve_refuses_uids_that_are_paths(hostile_server, tmp_path, study_uid, series_uid,
                                              sop_uid):
    escape = tmp_path / "escape"
    escape.mkdir()
    _Hostile.study_uid = study_uid.format(escape=escape)
    _Hostile.series_uid = series_uid
    _Hostile.sop_uid = sop_uid.format(escape=escape)
    root = tmp_path / "pacs" / "inbox"
    root.mkdir(parents=True)
    library = Library(tmp_path / "lib.sqlite")
    try:
        matches = pacs.query("evil", pacs.StudyQuery(), config_path=hostile_server)
        report = pacs.retrieve("evil", [m.study_uid for m in matches], library, folder=root,
                               config_path=hostile_server)
    finally:
        library.close()
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".dcm", ".part")]
    assert all(root in p.parents for p in written if p.name != "one.dcm"), written
    assert not any(escape.rglob("*")), list(escape.rglob("*"))
    if _Hostile.study_uid != "1.2.3":
        # The refusal is reported in words, not silently dropped.
        warnings = [w for t in report.transfers for w in t.warnings]
        assert any("not a valid UID" in w for w in warnings), report.as_dict()
        assert not report.files
    else:
        # An instance UID that is not a UID is stored under a safe name inside the folder.
        assert len(report.files) == 1 and root in Path(report.files[0]).parents


@pytest.mark.parametrize("value,ok", [
    ("1.2.840.10008.1.2", True), ("0", True), ("1.2.3", True),
    ("", False), ("1..2", False), ("01.2", False), ("1.2.", False), ("../x", False),
    ("/tmp/y", False), ("1." + "1" * 63, False), ("1.2.3\x00", False),
])
def test_uid_grammar(value, ok):
    assert is_valid_uid(value) is ok
