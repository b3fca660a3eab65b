"""The Table E.1-1 transcription and how its actions and options are carried out."""

from __future__ import annotations

import re

import pytest
from pydicom.datadict import dictionary_description, dictionary_has_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
)

from medviewer.deid import DeidOptions, DeidOptionsError, DeidSession, deidentify_dataset
from medviewer.deid.dates import shift_da, shift_dt
from medviewer.deid.table import ADDITIONS, RULES


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def test_every_row_names_the_attribute_its_tag_has_in_the_data_dictionary():
    # A mistyped tag (0008,0090 for 0008,0092) would protect the wrong attribute silently.
    wrong = {f"{t:08X}": (r.name, dictionary_description(t)) for t, r in RULES.items()
             if not dictionary_has_tag(t) or _norm(r.name) != _norm(dictionary_description(t))}
    assert wrong == {}
    assert len(RULES) > 500


@pytest.mark.parametrize("tag, basic, options", [
    (0x00100010, "Z", {}),                               # Patient's Name
    (0x00100020, "Z", {}),                               # Patient ID
    (0x00100030, "Z", {}),                               # Patient's Birth Date: no option
    (0x00080018, "U", {"uid": "K"}),                     # SOP Instance UID
    (0x00080020, "Z", {"full": "K", "mod": "C"}),         # Study Date
    (0x00080080, "X/Z/D", {"inst": "K"}),                # Institution Name
    (0x00181000, "X/Z/D", {"dev": "K"}),                 # Device Serial Number
    (0x00101010, "X", {"pat": "K"}),                     # Patient's Age
    (0x00081030, "X", {"desc": "C"}),                    # Study Description
    (0x00081120, "X", {"uid": "X"}),                     # Referenced Patient Sequence
    (0x00081140, "X/Z/U*", {"uid": "K"}),                # Referenced Image Sequence
])
def test_spot_checked_rows_match_the_standard(tag, basic, options):
    assert RULES[tag].basic == basic and RULES[tag].options == options


def test_additions_are_not_table_rows_and_say_so():
    assert ADDITIONS and all(r.source == "MedViewer" for r in ADDITIONS.values())
    assert 0x0040A160 in ADDITIONS  # Text Value


def _dx(**extra) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = "1.2.3.4.5.6.7"
    ds.StudyInstanceUID = "1.2.3.4.5"
    ds.SeriesInstanceUID = "1.2.3.4.5.6"
    ds.PatientName = "DOE^JANE"
    ds.PatientID = "MRN0001"
    ds.PatientBirthDate = "19600101"
    ds.PatientAge = "061Y"
    ds.PatientSex = "F"
    ds.StudyDate = "20210305"
    ds.StudyTime = "101500"
    ds.ContentDate = "20210305"
    ds.ContentTime = "101700"
    ds.AcquisitionDateTime = "20210305101600.5+0100"
    ds.StudyDescription = "XR CHEST PA for DOE MRN0001"
    ds.InstitutionName = "Riverside General Hospital"
    ds.DeviceSerialNumber = "SN123456"
    ds.Modality = "DX"
    for key, value in extra.items():
        setattr(ds, key, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def test_basic_profile_actions_on_a_radiograph():
    ds = _dx()
    audit = deidentify_dataset(ds, DeidSession(DeidOptions(), secret=b"k" * 32))
    assert ds.PatientID.startswith("ANON") and str(ds.PatientName).startswith(ds.PatientID)
    assert ds.PatientBirthDate == "" and ds.StudyDate == "" and ds.PatientSex == ""
    assert "PatientAge" not in ds and "InstitutionName" not in ds and "StudyDescription" not in ds
    assert "AcquisitionDateTime" not in ds and "DeviceSerialNumber" not in ds
    # Content Date/Time are Type 1 in the DX image module: a dummy, not a removal.
    assert ds.ContentDate == "19000101" and ds.ContentTime == "000000"
    assert ds.SOPInstanceUID.startswith("2.25.") and ds.SOPInstanceUID != "1.2.3.4.5.6.7"
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100"]
    assert audit.actions_for("ContentDate") == ["replaced"]


def test_enhanced_objects_get_dummies_for_their_type_1_equipment_attributes():
    ds = _dx(SOPClassUID=EnhancedCTImageStorage)
    deidentify_dataset(ds, DeidSession(DeidOptions()))
    assert ds.DeviceSerialNumber == "ANONYMIZED"
    assert ds.AcquisitionDateTime == "19000101000000"


def test_shifted_dates_keep_intervals_and_times_but_not_the_birth_date():
    session = DeidSession(DeidOptions(dates="shift", date_shift_days=-100))
    first, second = _dx(), _dx(StudyDate="20210405", SOPInstanceUID="1.2.3.9")
    deidentify_dataset(first, session)
    deidentify_dataset(second, session)
    assert first.StudyDate == "20201125" and second.StudyDate == "20201226"  # 31 days apart
    assert first.StudyTime == "101500"  # time of day kept
    assert first.AcquisitionDateTime == "20201125101600.5+0100"
    assert first.PatientBirthDate == ""  # Z in every option
    assert first.LongitudinalTemporalInformationModified == "MODIFIED"
    assert "113107" in [c.CodeValue for c in first.DeidentificationMethodCodeSequence]


def test_default_shift_is_secret_negative_and_stable_per_session():
    one = DeidSession(DeidOptions(dates="shift"), secret=b"s" * 32)
    two = DeidSession(DeidOptions(dates="shift"), secret=b"s" * 32)
    assert one.shift_days == two.shift_days and -3650 <= one.shift_days <= -1


def test_options_that_retain_keep_what_they_promise():
    ds = _dx()
    options = DeidOptions(dates="keep", retain_device_identity=True,
                          retain_institution_identity=True,
                          retain_patient_characteristics=True, retain_uids=True)
    deidentify_dataset(ds, DeidSession(options))
    assert ds.StudyDate == "20210305" and ds.PatientAge == "061Y" and ds.PatientSex == "F"
    assert ds.InstitutionName == "Riverside General Hospital" and ds.DeviceSerialNumber
    assert ds.SOPInstanceUID == "1.2.3.4.5.6.7"
    assert ds.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4.5.6.7"
    assert ds.PatientBirthDate == "" and ds.PatientID != "MRN0001"  # never retained
    codes = {c.CodeValue for c in ds.DeidentificationMethodCodeSequence}
    assert codes == {"113100", "113106", "113108", "113109", "113110", "113112"}


def test_clean_descriptors_removes_names_and_ids_but_keeps_the_meaning():
    ds = _dx()
    deidentify_dataset(ds, DeidSession(DeidOptions(clean_descriptors=True)))
    assert ds.StudyDescription == "XR CHEST PA for"


def test_referenced_patient_sequence_goes_even_when_uids_are_retained():
    ref = Dataset()
    ref.ReferencedSOPInstanceUID = "1.2.3.77"
    ds = _dx(ReferencedPatientSequence=Sequence([ref]))
    deidentify_dataset(ds, DeidSession(DeidOptions(retain_uids=True)))
    assert "ReferencedPatientSequence" not in ds


def test_safe_private_attributes_stay_only_with_the_option():
    def with_private() -> Dataset:
        ds = _dx(SOPClassUID=CTImageStorage)
        ge = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
        ge.add_new(0x23, "DS", "1.5")   # listed safe (table speed)
        ge.add_new(0x01, "LO", "DOE")   # not listed
        return ds

    kept = with_private()
    deidentify_dataset(kept, DeidSession(DeidOptions(retain_safe_private=True)))
    block = kept.private_block(0x0019, "GEMS_ACQU_01")
    assert block[0x23].value == "1.5" and 0x01 not in block
    removed = with_private()
    deidentify_dataset(removed, DeidSession(DeidOptions()))
    assert not any(e.tag.is_private for e in removed)


def test_group_lengths_overlays_and_unlisted_person_names_are_removed():
    ds = _dx()
    ds.add_new(0x00080000, "UL", 120)
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60003000, "OW", bytes(2))
    ds.SecondaryReviewerName = "ROE^RICHARD"  # (0014,0104), not in Table E.1-1
    deidentify_dataset(ds, DeidSession(DeidOptions()))
    assert 0x00080000 not in ds and 0x60000010 not in ds and 0x60003000 not in ds
    assert "SecondaryReviewerName" not in ds


def test_registered_uids_are_kept_and_private_instance_uids_replaced():
    code = Dataset()
    code.CodingSchemeUID = "2.16.840.1.113883.6.96"  # SNOMED CT: a class, kept by tag
    ds = _dx(SOPClassesInStudy=[CTImageStorage], CodingSchemeIdentificationSequence=Sequence(
        [code]), MultiFrameSourceSOPInstanceUID="1.2.3.4.5.6.7")
    session = DeidSession(DeidOptions())
    deidentify_dataset(ds, session)
    assert ds.SOPClassesInStudy == CTImageStorage
    assert ds.CodingSchemeIdentificationSequence[0].CodingSchemeUID == "2.16.840.1.113883.6.96"
    # The unlisted instance UID maps like the SOP Instance UID it equals.
    assert ds.MultiFrameSourceSOPInstanceUID == ds.SOPInstanceUID


def test_contradictory_options_are_refused_with_a_hint():
    with pytest.raises(DeidOptionsError, match="shift"):
        DeidOptions(date_shift_days=-5)
    with pytest.raises(DeidOptionsError, match="keeps the real dates"):
        DeidOptions(dates="shift", date_shift_days=0)
    with pytest.raises(DeidOptionsError):
        DeidOptions(dates="blur")


@pytest.mark.parametrize("value, days, expected", [
    ("20210305", -10, "20210223"), ("20210301-20210331", -1, "20210228-20210330"),
    ("-20210331", 1, "-20210401"), ("garbage", 3, ""), ("", 3, "")])
def test_shift_da(value, days, expected):
    assert shift_da(value, days) == expected


@pytest.mark.parametrize("value, days, expected", [
    ("20210305101500.123+0100", -10, "20210223101500.123+0100"),
    ("20210305-0500", -1, "20210304-0500"),          # a UTC offset, not a range
    ("202103", -20, "202102"), ("2021", -400, "2020"),
    ("20210305101500-20210306", -1, "20210304101500-20210305"), ("x", 1, "")])
def test_shift_dt(value, days, expected):
    assert shift_dt(value, days) == expected
