"""Does the model fit this image: header facts, the domain check in words, the OOD percentile, study refusal."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medviewer.inference.applicability import (
    Domain,
    ImageFacts,
    check_applicability,
    facts_from_pixels,
    image_facts,
    modality_family,
)
from medviewer.inference.ood import OodReference, percentile_of

CHEST = {"domain": {"modalities": ["CR", "DX"], "body_parts": ["CHEST"], "views": ["AP", "PA"],
                    "photometric": ["MONOCHROME2"], "min_size": 224, "description": "frontal chest radiographs"}}


def _dicom(tmp_path, name, **attrs):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = FileDataset(str(tmp_path / name), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored = 256, 256, 1, 16, 12
    ds.PhotometricInterpretation = "MONOCHROME2"
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.PixelRepresentation, ds.HighBit = 0, 11
    ds.PixelData = np.zeros((256, 256), np.uint16).tobytes()
    ds.save_as(tmp_path / name, enforce_file_format=True)
    return tmp_path / name


@pytest.mark.parametrize("attrs, words", [
    ({"Modality": "CT", "BodyPartExamined": "HEAD"}, "this image is a head CT"),
    ({"Modality": "MR", "StudyDescription": "MRI BRAIN"}, "this image is a head MR"),
    ({"Modality": "DX", "BodyPartExamined": "FOOT"}, "this image is a foot radiograph"),
    ({"Modality": "CR", "BodyPartExamined": "CHEST", "ViewPosition": "LL"}, "a LL view"),
])
def test_out_of_domain_headers_are_refused_in_words(tmp_path, attrs, words):
    verdict = check_applicability(Domain.from_metadata(CHEST), image_facts(_dicom(tmp_path, "x.dcm", **attrs)))
    assert verdict.applicable is False
    assert len(verdict.reasons) == 1 and words in verdict.reasons[0]
    assert verdict.reasons[0].startswith("this model was trained on frontal chest radiographs")
    assert verdict.to_dict()["applicable"] is False and "Does not apply" in verdict.summary()


def test_a_frontal_chest_radiograph_applies(tmp_path):
    path = _dicom(tmp_path, "cxr.dcm", Modality="DX", BodyPartExamined="CHEST", ViewPosition="PA")
    verdict = check_applicability(Domain.from_metadata(CHEST), image_facts(path))
    assert verdict.applicable and verdict.reasons == [] and verdict.notes == []


def test_colour_photo_and_thumbnail_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / "thumb.png")
    photo = check_applicability(Domain.from_metadata(CHEST), image_facts(tmp_path / "photo.png"))
    assert not photo.applicable and any("colour" in r for r in photo.reasons)
    thumb = check_applicability(Domain.from_metadata(CHEST), image_facts(tmp_path / "thumb.png"))
    assert not thumb.applicable and "64x64 px" in thumb.reasons[0] and "224 px" in thumb.reasons[0]
    grey = facts_from_pixels(np.zeros((300, 300, 3), np.uint8))
    assert check_applicability(Domain.from_metadata(CHEST), grey).applicable  # equal channels are grey


def test_png_radiograph_is_assumed_with_a_note(tmp_path):
    Image.fromarray(np.zeros((256, 256), np.uint8)).save(tmp_path / "film.png")
    verdict = check_applicability(Domain.from_metadata(CHEST), image_facts(tmp_path / "film.png"))
    assert verdict.applicable and "no DICOM header" in verdict.notes[0]


def test_bundle_without_domain_applies_with_a_note():
    verdict = check_applicability(None, ImageFacts(source="dicom", modality="CT"))
    assert verdict.applicable and "declares no domain" in verdict.notes[0]


def test_modality_families_group_radiographs():
    assert modality_family("CR") == modality_family("DX") == modality_family(None) == "radiograph"
    assert modality_family("CT") == "CT" and modality_family("MR") == "MR"


def test_ood_percentile_is_the_share_of_held_out_scores_below():
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((200, 16)).astype(np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    held = rng.standard_normal((300, 16)).astype(np.float32)
    ref = OodReference(reference, np.zeros(101), k=3)
    quantiles = np.percentile(ref.scores(held), np.arange(101))
    ref = OodReference(reference, quantiles, k=3, threshold=95)
    near = reference[:5] + 0.01 * rng.standard_normal((5, 16)).astype(np.float32)
    assert (ref.percentiles(near) < 5).all()  # nearly training images: not unusual
    fresh = rng.standard_normal((400, 16)).astype(np.float32)
    share_flagged = (ref.percentiles(fresh) >= 95).mean()
    assert 0.02 <= share_flagged <= 0.09  # held-out-like images flagged at about the 5 % chosen
    assert percentile_of(np.array([quantiles[50]]), quantiles)[0] == pytest.approx(50, abs=1)
    assert percentile_of(np.array([10.0]), quantiles)[0] == 100.0


def test_reader_study_refuses_out_of_domain_queries(tmp_path, tmp_library):
    from medviewer.study.applicability import refusal_message, screen_cases
    from medviewer.store.library import CaseRow

    ct = _dicom(tmp_path, "ct.dcm", Modality="CT", BodyPartExamined="HEAD")
    cxr = _dicom(tmp_path, "cxr.dcm", Modality="DX", BodyPartExamined="CHEST", ViewPosition="PA")
    cases = [CaseRow(1, 1, 0, str(ct), "p1", "CT", "", ()), CaseRow(2, 2, 0, str(cxr), "p2", "DX", "", ())]
    eligible, refused = screen_cases(cases, CHEST)
    assert [c.id for c in eligible] == [2] and list(refused) == [1]
    assert "case 1: this model was trained on frontal chest radiographs; this image is a head CT" in \
        refusal_message(refused)
    assert screen_cases(cases, None) == (cases, {})  # the pixel baseline has no domain


def test_search_keeps_to_the_query_modality_family_unless_asked():
    from medviewer.retrieval.filters import SearchFilter
    from medviewer.services.applicability import family_filter

    radiograph = ImageFacts(source="dicom", modality="CR")
    narrowed, note = family_filter(SearchFilter(), radiograph)
    assert {"CR", "DX"} <= set(narrowed.modalities) and "CT" not in narrowed.modalities
    assert "radiograph" in note
    png, _ = family_filter(SearchFilter(), ImageFacts(source="png"))
    assert set(png.modalities) == set(narrowed.modalities)  # PNG radiographs with CR/DX
    ct, _ = family_filter(SearchFilter(), ImageFacts(source="dicom", modality="CT"))
    assert ct.modalities == ("CT",)
    asked = SearchFilter(modalities=("CT", "MR"))
    assert family_filter(asked, radiograph) == (asked, None)  # the user's several values win
    assert family_filter(SearchFilter(), radiograph, any_modality=True)[0].modalities == ()


def test_relevance_feedback_moves_relevant_results_up():
    from medviewer.retrieval.feedback import rerank, rocchio_query

    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    query = a + b  # halfway between two clusters
    candidates = np.stack([b + 0.1 * rng.standard_normal(16) for _ in range(5)]
                          + [a + 0.1 * rng.standard_normal(16) for _ in range(5)])
    plain = rerank(query, candidates, {})
    marked = rerank(query, candidates, {int(np.flatnonzero(plain.order >= 5)[0] and plain.order[
        np.flatnonzero(plain.order >= 5)[0]]): True})
    assert (marked.order[:5] >= 5).all()  # the relevant cluster now fills the top 5
    rejected = rerank(query, candidates, {0: False})
    assert rejected.order[-1] == 0  # a result marked not relevant goes last
    moved = rocchio_query(query, candidates[5:6], candidates[:1])
    assert np.isclose(np.linalg.norm(moved), 1.0)


def test_cli_explain_refuses_a_multiframe_image_without_a_frame(tmp_path, capsys):
    pytest.importorskip("onnx")
    from pydicom.data import get_testdata_file

    from helpers_demo import DEMO_BUNDLE
    from medviewer.cli.main import main

    multi = get_testdata_file("SC_rgb_rle_2frame.dcm")  # 2 frames, RGB secondary capture
    code = main(["explain", str(DEMO_BUNDLE), multi, "--method", "rollout", "--out", str(tmp_path / "m.npy")])
    err = capsys.readouterr().err
    assert code == 2 and "2 frames" in err and "--frame" in err and not (tmp_path / "m.npy").exists()
    code = main(["explain", str(DEMO_BUNDLE), multi, "--frame", "1", "--out", str(tmp_path / "m.npy"), "--json"])
    out = capsys.readouterr().out
    import json

    payload = json.loads(out)
    assert code == 0 and payload["applicable"] is False  # a colour secondary capture
    assert any("secondary capture" in r for r in payload["reasons"])
    assert any("colour" in r for r in payload["reasons"])
