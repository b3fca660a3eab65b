"""PACS node configuration and the DICOMweb parsing, without a server."""

from __future__ import annotations

import json

import pytest

from medviewer.pacs import Node, NodeConfigError, PacsError, StudyQuery
from medviewer.pacs.dicomweb import _headers, _parts, _values
from medviewer.pacs.nodes import add_node, config_path, load_config, remove_node


def test_nodes_round_trip_through_the_config_folder(session_dirs):
    path = config_path()
    assert path.parent == session_dirs["config"]  # tests never touch the user's config
    add_node(Node("pacs", "dimse", ae_title="ORTHANC", host="127.0.0.1", port=4242))
    add_node(Node("web", "dicomweb", url="http://127.0.0.1:8042/dicom-web", auth="bearer",
                  token_env="PACS_TOKEN"))
    config = load_config()
    assert [n.name for n in config.nodes] == ["pacs", "web"]
    assert config.node("pacs").port == 4242 and config.node("web").kind == "dicomweb"
    with pytest.raises(NodeConfigError, match="exists already"):
        add_node(Node("pacs", "dimse", ae_title="OTHER", host="127.0.0.1", port=104))
    add_node(Node("pacs", "dimse", ae_title="OTHER", host="127.0.0.1", port=104),
             replace_existing=True)
    assert load_config().node("pacs").ae_title == "OTHER"
    remove_node("pacs")
    remove_node("web")
    with pytest.raises(NodeConfigError, match="no PACS node named 'pacs'"):
        load_config().node("pacs")


def test_no_secret_is_ever_written(tmp_path, monkeypatch):
    path = tmp_path / "pacs.json"
    monkeypatch.setenv("PACS_PASSWORD", "s3cret-value")
    node = Node("web", "dicomweb", url="https://pacs.example/dicom-web", auth="basic",
                username="reader", password_env="PACS_PASSWORD")
    add_node(node, path=path)
    assert "s3cret-value" not in path.read_text()
    assert _headers(node, "application/dicom+json")["Authorization"].startswith("Basic ")


@pytest.mark.parametrize("node, message", [
    (Node("a", "dimse", ae_title="THIS AE TITLE IS TOO LONG", host="h", port=104), "AE title"),
    (Node("a", "dimse", ae_title="BACK\\SLASH", host="h", port=104), "AE title"),
    (Node("a", "dimse", ae_title="OK", host="", port=104), "no host"),
    (Node("a", "dimse", ae_title="OK", host="h", port=70000), "port"),
    (Node("a", "dicomweb", url="ftp://x/dicom-web"), "URL"),
    (Node("a", "dimse", ae_title="OK", host="h", port=104, retrieve="push"), "retrieve"),
])
def test_invalid_nodes_are_refused_with_the_reason(node, message):
    with pytest.raises(NodeConfigError, match=message):
        node.validate()


def test_a_damaged_config_file_is_reported_with_its_path(tmp_path):
    path = tmp_path / "pacs.json"
    path.write_text("{not json")
    with pytest.raises(NodeConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_study_query_checks_dates():
    assert StudyQuery(study_date="20200101-20201231").validate()
    assert StudyQuery(study_date="-20201231").validate()
    with pytest.raises(PacsError, match="YYYYMMDD"):
        StudyQuery(study_date="2020-01-01").validate()
    assert StudyQuery().is_empty and not StudyQuery(modality="CT").is_empty


def test_multipart_parts_keep_binary_content_intact():
    payload = b"\x00\x01\r\n--notaboundary\r\n\xff" * 10
    body = (b"--abc123\r\nContent-Type: application/dicom\r\n\r\n" + payload +
            b"\r\n--abc123\r\nContent-Type: application/dicom\r\n\r\nSECOND\r\n--abc123--\r\n")
    parts = _parts('multipart/related; type="application/dicom"; boundary="abc123"', body)
    assert parts == [payload, b"SECOND"]
    with pytest.raises(PacsError, match="multipart"):
        _parts("application/dicom+json", b"[]")


def test_dicom_json_values():
    obj = json.loads('{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]},'
                     ' "00080061": {"vr": "CS", "Value": ["CT", "SR"]}, "00080050": {"vr": "SH"}}')
    assert _values(obj, "00100010") == ["DOE^JANE"]
    assert _values(obj, "00080061") == ["CT", "SR"]
    assert _values(obj, "00080050") == [] and _values(obj, "00200010") == []
