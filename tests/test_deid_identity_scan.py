"""No identifying value of the input survives de-identification, anywhere in the output.

The inputs are synthetic studies full of fake identity (names, IDs, dates, addresses,
physicians, institutions, device serials, a private block, nested request sequences),
plus, in two files, identity hidden where a naive de-identifier does not look: deeper
sequences, SR text, a private sequence, person names and dates in attributes Table
E.1-1 does not list, an overlay, the File Meta AE title and the preamble.

The list of what counts as identifying is written here, independently of the profile
table (an oracle that reuses the table would only test the table against itself).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID_dictionary

from medviewer.deid import DeidOptions, deidentify_files
from medviewer.synthetic import generate_dataset

# Identity by kind, by keyword (the test's own knowledge of the synthetic files).
PATIENT = {"PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate",
           "PatientAddress", "OtherPatientNames", "PatientComments", "ImageComments",
           "EvaluatorName", "TextValue",
           "PersonName", "CodeValue@PersonIdentificationCodeSequence"}
STUDY = {"AccessionNumber", "StudyID", "RequestedProcedureID", "ScheduledProcedureStepID",
         "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
         "ReasonForTheRequestedProcedure", "SourceApplicationEntityTitle"}
DATES = {"StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "InstanceCreationDate",
         "PatientBirthDate", "DateOfGainCalibration"}
TIMES = {"StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime", "InstanceCreationTime"}
INSTITUTION = {"InstitutionName", "InstitutionAddress", "LocalNamespaceEntityID"}
DEVICE = {"StationName", "DeviceSerialNumber"}
DESCRIPTIONS = {"StudyDescription", "SeriesDescription", "RequestedProcedureDescription"}
CHARACTERISTICS = {"PatientAge", "PatientWeight", "PatientSize"}
NUMERIC_VRS = {"AS", "DS", "IS"}
BINARY_NUMBER_VRS = {"UL", "US", "SL", "SS", "SV", "UV", "FL", "FD"}


def _enrich(path: Path, other_sop_uid: str) -> dict:
    """Hide more identity in one file; return the values planted (for the assertions)."""
    ds = pydicom.dcmread(path)
    name = str(ds.PatientName)
    family = name.split("^")[0]
    planted = {"other_sop_uid": other_sop_uid, "family": family}
    ds.OtherPatientNames = "ROE^RICHARDSON"
    ds.PatientComments = f"{name} seen at {ds.InstitutionName}"
    ds.ImageComments = f"{ds.PatientID} follow-up"
    ds.EvaluatorName = "QUINTERO^ESPERANZA"  # (0014,2006): PN that Table E.1-1 omits
    ds.DateOfGainCalibration = "20190317"  # (0014,3076): DA that Table E.1-1 omits
    ds.MultiFrameSourceSOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[name])  # unlisted
    planted["unlisted_uid"] = ds.MultiFrameSourceSOPInstanceUID
    source = Dataset()
    source.ReferencedSOPClassUID = ds.SOPClassUID
    source.ReferencedSOPInstanceUID = other_sop_uid
    ds.SourceImageSequence = Sequence([source])
    person = Dataset()
    person.CodeValue = "EMP-77431"
    person.CodingSchemeDesignator = "L"
    person.CodeMeaning = f"employee {family}"
    operator = Dataset()
    operator.PersonIdentificationCodeSequence = Sequence([person])
    operator.InstitutionName = str(ds.InstitutionName)
    ds.OperatorIdentificationSequence = Sequence([operator])
    text = Dataset()
    text.ValueType = "TEXT"
    text.TextValue = f"Dictated about {name}, MRN {ds.PatientID}"
    text.PersonName = name
    ds.ContentSequence = Sequence([text])
    nested = Dataset()
    nested.PatientName = name
    nested.PatientBirthDate = ds.PatientBirthDate
    block = ds.private_block(0x0011, "ACME HIDDEN SEQ", create=True)
    block.add_new(0x01, "SQ", Sequence([nested]))
    block.add_new(0x02, "LO", f"{family} private note")
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60004000, "LT", f"overlay for {name}")
    ds.add_new(0x60003000, "OW", bytes(8))
    icon = Dataset()
    icon.Rows, icon.Columns = 2, 2
    icon.PatientName = name  # never legitimate there, but a sequence may carry anything
    ds.IconImageSequence = Sequence([icon])
    ds.file_meta.SourceApplicationEntityTitle = "RGHPACS01"
    ds.preamble = name.encode().ljust(128, b"\x00")
    ds.save_as(path, enforce_file_format=True)
    return planted


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("identity")
    manifest = generate_dataset(root / "in", cases=3, seed=20240607, size=64, ct_series=1,
                                ct_size=32, ct_slices=4, png=False)
    records = manifest.records
    radiograph = next(r for r in records if r.kind == "radiograph")
    ct = [r for r in records if r.kind == "ct"]
    planted = _enrich(root / "in" / radiograph.path, other_sop_uid=ct[0].sop_uid)
    _enrich(root / "in" / ct[1].path, other_sop_uid=ct[0].sop_uid)
    return {"root": root, "inputs": root / "in" / "dicom", "records": records,
            "radiograph": radiograph, "ct": ct, "planted": planted}


# -- walking datasets -------------------------------------------------------------------------
def _walk(ds: Dataset, parent: str = ""):
    """Yield (keyword-with-context, element) for every element, nested ones included."""
    for elem in ds:
        yield (elem.keyword or "private") + (f"@{parent}" if parent else ""), elem
        if elem.VR == "SQ":
            for item in elem.value or []:
                yield from _walk(item, elem.keyword or "private")


def _strings(elem) -> list[str]:
    value = elem.value
    if value is None:
        return []
    if isinstance(value, bytes):
        return [value.decode("latin-1")] if elem.VR in ("UN", "OB") and len(value) < 512 else []
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return [str(v) for v in value]
    return [str(value)]


def _identity(paths: list[Path], kinds: set[str], kept: set[str] = frozenset()) -> dict:
    """Collect the identifying values of the inputs: strings, numbers by tag, UIDs, names.

    Values that also appear in a ``kept`` attribute (an institution name that is both the
    issuer of the patient ID, removed, and the institution, kept by an option) are not
    counted: the option promises to keep them.
    """
    strings, numbers, uids, name_parts, keep = set(), set(), set(), set(), set()
    for path in paths:
        ds = pydicom.dcmread(path)
        elements = list(_walk(ds)) + [(e.keyword, e) for e in ds.file_meta]
        for key, elem in elements:
            bare = key.split("@")[0]
            if elem.VR == "SQ":
                continue
            if bare in kept:
                keep.update(_strings(elem))
            if elem.VR == "PN":
                for value in _strings(elem):
                    strings.add(value)
                    name_parts.update(p for p in re.split(r"[\^ ]", value) if len(p) >= 3)
            elif elem.tag.is_private and not elem.tag.is_private_creator:
                strings.update(v for v in _strings(elem) if len(v) >= 4)
            elif elem.VR == "UI":
                uids.update(v for v in _strings(elem) if v and v not in UID_dictionary)
            elif bare in kinds or key in kinds:
                if elem.VR in NUMERIC_VRS:
                    numbers.update((int(elem.tag), v) for v in _strings(elem))
                else:
                    strings.update(v for v in _strings(elem) if len(v) >= 3)
    # Our own implementation UID names the software that wrote the files, not a patient.
    uids.discard(pydicom.uid.PYDICOM_IMPLEMENTATION_UID)
    strings -= keep
    return {"strings": strings, "numbers": numbers, "uids": uids, "names": name_parts}


def _read_dicom(path: Path):
    try:
        return pydicom.dcmread(path)
    except (pydicom.errors.InvalidDicomError, OSError, ValueError):
        return None


def _leaks(out_dir: Path, identity: dict) -> list[str]:
    """Return every place in an export where an identifying value survives.

    Every file is scanned: DICOM files (whatever their name: a File-set's have none)
    element by element, recursively, file meta included, and as raw bytes; other files
    (HTML, JSON, PNG) as text or bytes; and every file and folder name.
    """
    leaks = []
    texts = {s.upper() for s in identity["strings"]}
    wordy = {s for s in texts if re.search(r"[A-Z]", s)}
    uids = set(identity["uids"])
    name_re = re.compile(r"\b(" + "|".join(re.escape(n.upper()) for n in identity["names"])
                         + r")\b") if identity["names"] else None
    files = sorted(p for p in out_dir.rglob("*") if p.is_file())
    dicom_files = 0
    for path in files:
        rel = path.relative_to(out_dir).as_posix()
        raw = path.read_bytes().upper()
        ds = _read_dicom(path)
        if ds is None:
            text = raw.decode("latin-1")
            for value in wordy | uids:
                if value.upper() in text:
                    leaks.append(f"{rel} contains {value!r}")
            if path.suffix in (".html", ".json") and name_re and name_re.search(text):
                leaks.append(f"{rel} contains a name part {name_re.search(text).group(0)!r}")
            continue
        dicom_files += 1
        for key, elem in list(_walk(ds)) + [(e.keyword, e) for e in ds.file_meta]:
            if elem.VR == "SQ":
                # Its items are walked element by element; printed whole, a sequence shows
                # binary offsets as decimal text whose digits can match an ID by chance.
                continue
            for value in _strings(elem):
                upper = value.upper()
                if elem.VR == "UI":
                    # Digits of a UID can match a date or ID by chance; compare UIDs with UIDs.
                    if value in uids or any(u in value for u in uids):
                        leaks.append(f"{rel}: {key} keeps UID {value}")
                    continue
                # Binary integers (a DICOMDIR's record offsets, sizes) are not text: their
                # digits can contain an ID's by chance; identifying numbers are checked by tag.
                if elem.VR not in BINARY_NUMBER_VRS:
                    for text in texts:
                        if text in upper:
                            leaks.append(f"{rel}: {key} contains {text!r}")
                if name_re and name_re.search(upper):
                    leaks.append(f"{rel}: {key} contains a name part "
                                 f"{name_re.search(upper).group(0)!r}")
                if (int(elem.tag), value) in identity["numbers"]:
                    leaks.append(f"{rel}: {key} keeps {value!r}")
        for text in wordy | uids:
            if len(text) >= 6 and text.upper().encode("latin-1", "ignore") in raw:
                leaks.append(f"{rel}: raw bytes contain {text!r}")
    assert dicom_files, "nothing was exported"
    names = "\n".join(p.relative_to(out_dir).as_posix().upper() for p in out_dir.rglob("*"))
    for text in wordy | uids:
        if text.upper() in names:
            leaks.append(f"a file name contains {text!r}")
    return leaks


# -- the tests --------------------------------------------------------------------------------
def test_basic_profile_leaves_no_identifying_value(studies, tmp_path):
    inputs = sorted(studies["inputs"].rglob("*.dcm"))
    kinds = PATIENT | STUDY | DATES | TIMES | INSTITUTION | DEVICE | DESCRIPTIONS | \
        CHARACTERISTICS
    identity = _identity(inputs, kinds)
    # The oracle must have found the planted identity, or the scan proves nothing.
    assert studies["planted"]["family"] in identity["names"]
    assert "QUINTERO^ESPERANZA" in identity["strings"]
    assert "RGHPACS01" in identity["strings"]
    assert studies["planted"]["unlisted_uid"] in identity["uids"]
    assert any(v.startswith("MRN") for v in identity["strings"])

    report = deidentify_files([studies["inputs"]], tmp_path / "out", DeidOptions())
    assert len(report.written) == len(inputs) and not report.skipped
    assert _leaks(tmp_path / "out", identity) == []


def test_retaining_options_still_remove_names_ids_and_real_dates(studies, tmp_path):
    """With every retain/clean option on, people and IDs still go, and dates move."""
    options = DeidOptions(dates="shift", retain_device_identity=True,
                          retain_institution_identity=True,
                          retain_patient_characteristics=True, clean_descriptors=True,
                          clean_structured_content=True, retain_safe_private=True)
    inputs = sorted(studies["inputs"].rglob("*.dcm"))
    identity = _identity(inputs, PATIENT | STUDY | DATES, kept=INSTITUTION | DEVICE)
    report = deidentify_files([studies["inputs"]], tmp_path / "out", options)
    assert len(report.written) == len(inputs)
    assert _leaks(tmp_path / "out", identity) == []
    # ...and what the options promise to keep is kept.
    first = pydicom.dcmread(report.written[0].output)
    assert first.InstitutionName and first.StationName and first.PatientAge
    assert first.StudyDescription  # cleaned, not removed
    assert first.LongitudinalTemporalInformationModified == "MODIFIED"


def test_uids_are_consistent_across_the_export(studies, tmp_path):
    report = deidentify_files([studies["inputs"]], tmp_path / "out", DeidOptions())
    by_source = {Path(w.source).name: w for w in report.written}
    ct = studies["ct"]
    new = [by_source[Path(r.path).name] for r in ct]
    # One study, one series, one frame of reference in, the same out: but all new.
    assert len({w.study_uid for w in new}) == 1 and len({w.series_uid for w in new}) == 1
    assert new[0].study_uid != ct[0].study_uid and new[0].sop_uid != ct[0].sop_uid
    frames = {str(pydicom.dcmread(w.output).FrameOfReferenceUID) for w in new}
    assert len(frames) == 1 and frames != {pydicom.dcmread(
        studies["inputs"].parent / ct[0].path).FrameOfReferenceUID}
    # The planted Source Image Sequence points at another exported file: it must point at
    # that file's new SOP Instance UID, or the reference is broken.
    enriched = by_source[Path(studies["radiograph"].path).name]
    ref = pydicom.dcmread(enriched.output).SourceImageSequence[0].ReferencedSOPInstanceUID
    assert ref == new[0].sop_uid
    # Distinct patients keep distinct pseudonyms; File Meta follows the new SOP UID.
    assert len({w.patient_id for w in report.written}) == len({r.patient_id for r in
                                                                studies["records"]})
    for w in report.written:
        ds = pydicom.dcmread(w.output)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == w.sop_uid
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.preamble == b"\x00" * 128


def test_a_second_export_with_another_secret_gives_unrelated_uids(studies, tmp_path):
    one = deidentify_files([studies["inputs"]], tmp_path / "a", DeidOptions(), secret=b"a" * 32)
    two = deidentify_files([studies["inputs"]], tmp_path / "b", DeidOptions(), secret=b"b" * 32)
    again = deidentify_files([studies["inputs"]], tmp_path / "c", DeidOptions(),
                             secret=b"a" * 32)
    assert {w.sop_uid for w in one.written}.isdisjoint({w.sop_uid for w in two.written})
    assert [w.sop_uid for w in one.written] == [w.sop_uid for w in again.written]


def test_audit_lists_each_file_and_what_happened(studies, tmp_path):
    report = deidentify_files([studies["inputs"]], tmp_path / "out", DeidOptions())
    audit = json.loads(Path(report.audit_path).read_text())
    assert audit["files_written"] == len(report.written)
    outputs = {f["output"] for f in audit["files"]}
    assert outputs == {Path(w.output).relative_to(tmp_path / "out").as_posix()
                       for w in report.written}
    entry = next(f for f in audit["files"] if f["counts"].get("removed", 0) > 20)
    actions = {a["path"]: a["action"] for a in entry["attributes"]}
    assert actions["PatientName"] == "replaced" and actions["StudyInstanceUID"] == "uid-replaced"
    assert actions["AccessionNumber"] == "emptied" and actions["InstitutionName"] == "removed"
    assert actions["Modality"] == "kept"
    assert any(p.startswith("(0009,1001)") and a == "removed" for p, a in actions.items())
