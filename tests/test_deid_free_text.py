"""The free-text identity cleaner: names and identifiers go, the medical words stay."""

from __future__ import annotations

import pydicom
import pytest

from medviewer.deid.free_text import FreeTextCleaner, describe_removed


@pytest.fixture
def cleaner():
    c = FreeTextCleaner(keep=["Emphysema", "Cardiomegaly", "Mass"])
    c.add_names(["DOE^JANE", "Mass^Peter"])
    c.add_identifiers(["PAT-0042", "Riverside General Hospital"])
    return c


def test_names_next_to_diagnoses_go_and_the_diagnosis_stays(cleaner):
    out = cleaner.clean("Jane Doe (PAT-0042): Emphysema, seen by Dr Quintero at Riverside "
                        "General Hospital on 2021-03-04; Mrs. Roe agrees. Mass in the RUL.")
    text = out.text
    for gone in ("Jane", "Doe", "PAT-0042", "Quintero", "Riverside", "2021", "Roe"):
        assert gone.lower() not in text.lower(), gone
    # The diagnosis and the finding survive, even a finding that is also a patient's name.
    assert "Emphysema" in text and "Mass in the RUL" in text
    assert "Dr [name]" in text and "[date]" in text
    assert out.removed["name"] >= 3 and out.removed["identifier"] == 2
    assert out.removed["date"] == 1


@pytest.mark.parametrize("planted", [
    "MRN 7734512", "MRN: A-99812", "Acc# 4471-22", "ID P0042X9", "DOB 12/03/1961",
    "3 March 2021", "March 3, 2021", "20210304", "jane.roe@example.org", "+1 555 123 4567",
    "(020) 7946 0958",
])
def test_identifiers_dates_and_contacts_go(planted):
    cleaner = FreeTextCleaner()
    out = cleaner.clean(f"Cardiomegaly. {planted}. Follow up.")
    value = planted.split()[-1] if planted.split()[0] in ("MRN", "MRN:", "Acc#", "ID", "DOB") \
        else planted
    assert value not in out.text
    assert out.text.startswith("Cardiomegaly.") and out.text.endswith("Follow up.")
    assert out.changed


def test_medical_text_is_left_as_written():
    cleaner = FreeTextCleaner()
    cleaner.add_names(["SMITH^JOHN"])
    text = ("Hyperinflated lungs with flattened hemidiaphragms; W 1500 / L -600. Centrilobular "
            "emphysema, upper lobe predominant (Fleischner 2015 guidelines, ref 3).")
    out = cleaner.clean(text)
    assert out.text == text and not out.changed


def test_dataset_private_labels_are_not_collected_but_private_ids_are():
    ds = pydicom.Dataset()
    ds.PatientName = "ROE^RICHARD"
    ds.PatientID = "MX-0091"
    block = ds.private_block(0x0009, "SYNTH", create=True)
    block.add_new(0x10, "LO", "Emphysema")
    block.add_new(0x01, "LO", "HIS-88123-ROE")
    cleaner = FreeTextCleaner()
    cleaner.collect(ds)
    out = cleaner.clean("Emphysema in Richard Roe, MX-0091 (HIS-88123-ROE)")
    assert out.text.startswith("Emphysema in [name]")
    assert "MX-0091" not in out.text and "88123" not in out.text
    assert describe_removed(out.removed).startswith("1 name")


def test_nothing_removed_counts_nothing(cleaner):
    out = cleaner.clean("Hyperinflated lungs.")
    assert not out.changed and dict(out.removed) == {} and describe_removed(out.removed) == ""
