"""Query and retrieve against a real Orthanc on loopback, through DIMSE and DICOMweb.

The fixture starts its own Orthanc (``apt-get install orthanc orthanc-dicomweb``) with a
config in a temporary folder: its own HTTP and DICOM ports on 127.0.0.1, no remote access,
no authentication, our storage SCP registered for C-MOVE, storage in the temporary
folder.  It uploads synthetic studies over REST and stops Orthanc afterwards.  Tests skip
with a clear message where the Orthanc binary (or its DICOMweb plugin) is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pydicom
import pytest

from medviewer.errors import TaskCancelled
from medviewer.pacs import Node, StudyQuery
from medviewer.pacs.nodes import LocalAE, set_local
from medviewer.services import pacs
from medviewer.store import Library
from medviewer.synthetic import generate_dataset
from medviewer.tasks import TaskState

ORTHANC = shutil.which("Orthanc")
DICOMWEB_PLUGINS = [Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so"),
                    Path("/usr/lib/orthanc/libOrthancDicomWeb.so")]
pytestmark = pytest.mark.skipif(
    ORTHANC is None, reason="Orthanc is not installed (apt-get install orthanc "
    "orthanc-dicomweb); the PACS tests need a real server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, data: bytes | None = None, timeout: float = 5.0) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    with opener.open(request, timeout=timeout) as response:
        return response.read()


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    root = tmp_path_factory.mktemp("orthanc")
    http_port, dicom_port, storage_port = _free_port(), _free_port(), _free_port()
    plugin = next((p for p in DICOMWEB_PLUGINS if p.exists()), None)
    config = {
        "Name": "MedViewerTest", "StorageDirectory": str(root / "db"),
        "IndexDirectory": str(root / "db"), "HttpPort": http_port, "DicomPort": dicom_port,
        "DicomAet": "ORTHANC", "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomModalities": {"medviewer": ["MEDVIEWER", "127.0.0.1", storage_port]},
        "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True,
        "DicomAlwaysAllowMove": True, "DicomCheckCalledAet": False,
        "DicomScuTimeout": 10, "DicomScpTimeout": 10, "DicomAssociationCloseDelay": 0,
        "StableAge": 1, "SaveJobs": False, "ConcurrentJobs": 1, "HttpThreadsCount": 4,
        "DicomThreadsCount": 2, "StorageCompression": False, "HttpTimeout": 10,
        "Plugins": [str(plugin)] if plugin else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "StudiesMetadata": "MainDicomTags"},
    }
    (root / "orthanc.json").write_text(json.dumps(config))
    log = open(root / "orthanc.log", "wb")  # noqa: SIM115 - the server's lifetime; closed below
    process = subprocess.Popen([ORTHANC, str(root / "orthanc.json")], stdout=log,
                               stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _http(f"{base}/system", timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("Orthanc did not start:\n" +
                                (root / "orthanc.log").read_text()[-3000:])
                time.sleep(0.2)
        manifest = generate_dataset(root / "ds", cases=3, seed=31, size=64, ct_series=1,
                                    ct_size=32, ct_slices=4, png=False)
        for path in sorted((root / "ds" / "dicom").rglob("*.dcm")):
            _http(f"{base}/instances", data=path.read_bytes())
        dicomweb = plugin is not None and _http(f"{base}/dicom-web/studies", timeout=5) is not None
        config_path = root / "pacs.json"
        pacs.add_node(Node("orthanc", "dimse", ae_title="ORTHANC", host="127.0.0.1",
                           port=dicom_port, timeout=10), config_path=config_path)
        pacs.add_node(Node("orthanc-move", "dimse", ae_title="ORTHANC", host="127.0.0.1",
                           port=dicom_port, retrieve="move", timeout=10),
                      config_path=config_path)
        pacs.add_node(Node("web", "dicomweb", url=f"{base}/dicom-web", timeout=10),
                      config_path=config_path)
        set_local(LocalAE("MEDVIEWER", "127.0.0.1", storage_port), config_path)
        yield {"root": root, "config": config_path, "records": manifest.records,
               "dicomweb": dicomweb, "base": base,
               "files": sorted((root / "ds" / "dicom").rglob("*.dcm"))}
    finally:
        # Orthanc takes seconds to shut down cleanly; its database is a throwaway here.
        process.terminate()
        try:
            process.wait(0.5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def _study(orthanc, kind: str):
    record = next(r for r in orthanc["records"] if r.kind == kind)
    ds = pydicom.dcmread(orthanc["root"] / "ds" / record.path, stop_before_pixels=True)
    count = sum(r.study_uid == record.study_uid for r in orthanc["records"])
    return record, ds, count


def _web(orthanc):
    if not orthanc["dicomweb"]:
        pytest.skip("Orthanc's DICOMweb plugin is missing (apt-get install orthanc-dicomweb)")


@pytest.mark.parametrize("node", ["orthanc", "web"])
def test_echo(orthanc, node):
    if node == "web":
        _web(orthanc)
    result = pacs.echo(node, orthanc["config"])
    assert result.ok and result.status == "success"


def test_echo_of_a_closed_port_fails_quickly_with_a_reason(orthanc, tmp_path):
    config = tmp_path / "pacs.json"
    pacs.add_node(Node("nowhere", "dimse", ae_title="X", host="127.0.0.1", port=_free_port(),
                       timeout=3), config_path=config)
    start = time.monotonic()
    result = pacs.echo("nowhere", config)
    assert not result.ok and "no association" in result.status
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("node", ["orthanc", "web"])
def test_query_by_patient_date_modality_and_accession(orthanc, node):
    if node == "web":
        _web(orthanc)
    radiograph, ds, _count = _study(orthanc, "radiograph")
    ct, ct_ds, ct_count = _study(orthanc, "ct")
    config = orthanc["config"]

    by_patient = pacs.query(node, StudyQuery(patient_id=radiograph.patient_id), config_path=config)
    assert {m.study_uid for m in by_patient} == {
        r.study_uid for r in orthanc["records"] if r.patient_id == radiograph.patient_id}
    [by_accession] = pacs.query(node, StudyQuery(accession=ds.AccessionNumber), config_path=config)
    assert by_accession.study_uid == radiograph.study_uid
    assert by_accession.patient_name == str(ds.PatientName)
    by_modality = pacs.query(node, StudyQuery(modality="CT"), config_path=config)
    assert [m.study_uid for m in by_modality] == [ct.study_uid]
    assert by_modality[0].instances == ct_count and "CT" in by_modality[0].modalities
    day = ct_ds.StudyDate
    by_date = pacs.query(node, StudyQuery(study_date=f"{day}-{day}"), config_path=config)
    assert ct.study_uid in {m.study_uid for m in by_date}
    assert all(m.study_date == day for m in by_date)
    assert pacs.query(node, StudyQuery(patient_id="NOBODY"), config_path=config) == []


@pytest.mark.parametrize("node, method", [("orthanc", "get"), ("orthanc-move", "move"),
                                          ("web", "wado")])
def test_retrieve_imports_and_is_not_repeated(orthanc, tmp_path, node, method):
    if node == "web":
        _web(orthanc)
    ct, _ds, count = _study(orthanc, "ct")
    seen = []
    state = TaskState()
    original = state.set_progress
    state.set_progress = lambda f, s=None: (seen.append(f), original(f, s))  # type: ignore
    with Library(tmp_path / "lib.sqlite") as library:
        [match] = pacs.query(node, StudyQuery(modality="CT"), library=library,
                             config_path=orthanc["config"])
        assert match.in_library == 0
        report = pacs.retrieve(node, [ct.study_uid], library, folder=tmp_path / "files",
                               config_path=orthanc["config"], state=state)
        assert len(report.files) == count and report.imported.instances == count
        assert report.already_present == []
        assert library.counts()["instances"] == count
        assert seen == sorted(seen) and seen[-1] == 1.0  # progress only moves forward
        received = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
                    for f in report.files}
        assert received == {r.sop_uid for r in orthanc["records"] if r.study_uid == ct.study_uid}
        again = pacs.retrieve(node, [ct.study_uid], library, folder=tmp_path / "files2",
                              config_path=orthanc["config"])
        assert again.already_present == [ct.study_uid] and again.files == []
        [match] = pacs.query(node, StudyQuery(modality="CT"), library=library,
                             config_path=orthanc["config"])
        assert match.in_library == count and match.complete_in_library


def test_only_missing_instances_are_fetched(orthanc, tmp_path):
    _web(orthanc)
    ct, _ds, count = _study(orthanc, "ct")
    with Library(tmp_path / "lib.sqlite") as library:
        pacs.retrieve("web", [ct.study_uid], library, folder=tmp_path / "a",
                      config_path=orthanc["config"])
        victim = library.conn.execute("SELECT location FROM instances LIMIT 1").fetchone()[0]
        with library.transaction():
            library.remove_locations([victim])
        report = pacs.retrieve("web", [ct.study_uid], library, folder=tmp_path / "b",
                               config_path=orthanc["config"])
        [transfer] = report.transfers
        assert len(report.files) == 1 and transfer.skipped_instances == count - 1
        assert library.counts()["instances"] == count


class _CancelAfterFirst(TaskState):
    """Requests cancellation once a retrieve reports its first progress."""

    def set_progress(self, fraction, status=None):
        super().set_progress(fraction, status)
        if status and status.startswith("Retrieving") and fraction > 0:
            self.request_cancel()


@pytest.mark.parametrize("node", ["orthanc", "web"])
def test_retrieve_can_be_cancelled(orthanc, tmp_path, node):
    if node == "web":
        _web(orthanc)
    ct, _ds, _count = _study(orthanc, "ct")
    with Library(tmp_path / "lib.sqlite") as library:
        with pytest.raises(TaskCancelled):
            pacs.retrieve(node, [ct.study_uid], library, folder=tmp_path / "f",
                          config_path=orthanc["config"], state=_CancelAfterFirst())
        assert library.counts()["instances"] == 0  # nothing half-imported


def _cli(argv):
    from medviewer.cli import pacs_cmd

    parser = argparse.ArgumentParser(prog="medviewer")
    pacs_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_nodes_echo_query_retrieve(orthanc, tmp_path, capsys):
    config = tmp_path / "pacs.json"
    shutil.copy(orthanc["config"], config)
    port = pacs.list_nodes(config).node("orthanc").port
    assert _cli(["pacs", "--config", str(config), "nodes", "add", "second", "--ae", "ORTHANC",
                 "--host", "127.0.0.1", "--port", str(port), "--timeout", "10"]) == 0
    capsys.readouterr()
    _cli(["pacs", "--config", str(config), "nodes", "list", "--json"])
    assert "second" in {n["name"] for n in json.loads(capsys.readouterr().out)["nodes"]}
    assert _cli(["pacs", "--config", str(config), "echo", "second"]) == 0
    radiograph, ds, _count = _study(orthanc, "radiograph")
    capsys.readouterr()
    _cli(["pacs", "--config", str(config), "query", "second", "--accession",
          str(ds.AccessionNumber), "--json"])
    [match] = json.loads(capsys.readouterr().out)
    assert match["study_uid"] == radiograph.study_uid
    _cli(["pacs", "--config", str(config), "retrieve", "second", "--accession",
          str(ds.AccessionNumber), "--library", str(tmp_path / "lib.sqlite"), "--out",
          str(tmp_path / "files"), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == 1 and report["imported"]["instances"] == 1
