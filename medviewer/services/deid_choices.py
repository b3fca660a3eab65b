"""The one list of de-identification choices a user makes: dates and the retain/clean options.

The export dialog's form, the settings' defaults and the ``--dates``/``--retain-*`` flags
of ``medviewer deid`` and ``medviewer teach export`` all read :data:`DATE_CHOICES` and
:data:`OPTION_CHOICES`.  They map one-to-one onto the fields of
:class:`medviewer.deid.DeidOptions` (PS3.15 E.3 options); tests/test_settings.py ties the
two.  Plain data, so start-up and the CLI's parser do not import pydicom for it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DateChoice:
    """One date policy: its key, the form's label and explanation."""

    policy: str
    label: str
    hint: str


@dataclass(frozen=True)
class OptionChoice:
    """One retain/clean option: the DeidOptions field, its CLI flag, words for form and help."""

    field: str
    flag: str
    label: str
    hint: str
    help: str


# See docs/deidentification.md.
DATE_CHOICES: tuple[DateChoice, ...] = (
    DateChoice("remove", "Remove dates",
               "Dates and times are removed. Safest; the time between studies is lost."),
    DateChoice("shift", "Shift dates",
               "Every date moves back by the same secret number of days, so the time between "
               "studies stays true."),
    DateChoice("keep", "Keep dates",
               "Real dates and times are kept. Dates can help someone identify the patient."),
)
DATES_HELP = ("remove dates (default), shift them by whole days (Modified Dates option) or keep "
              "them (Full Dates option)")

# In the order of the docs and the form.
OPTION_CHOICES: tuple[OptionChoice, ...] = (
    OptionChoice("retain_patient_characteristics", "--retain-patient-characteristics",
                 "Keep patient characteristics",
                 "Age, sex, height, weight, smoking and pregnancy status are kept.",
                 "keep age, sex, size, weight (Retain Patient Characteristics)"),
    OptionChoice("retain_device_identity", "--retain-device", "Keep device identity",
                 "Scanner station names and serial numbers are kept.",
                 "keep station names, serial numbers (Retain Device Identity)"),
    OptionChoice("retain_institution_identity", "--retain-institution",
                 "Keep institution identity",
                 "The hospital's name, address and department are kept.",
                 "keep institution name and address (Retain Institution Identity)"),
    OptionChoice("clean_descriptors", "--clean-descriptors", "Clean descriptions",
                 "Study and series descriptions are kept with the names, IDs and dates found "
                 "elsewhere in the file taken out. A name typed only there can survive.",
                 "keep descriptions after removing names, IDs and dates from them"),
    OptionChoice("clean_structured_content", "--clean-structured-content",
                 "Clean structured reports",
                 "Structured report content is kept, de-identified item by item.",
                 "keep SR content, de-identified recursively"),
    OptionChoice("retain_uids", "--retain-uids", "Keep original UIDs",
                 "Study, series and image UIDs stay as they are; they can be traced back to "
                 "the hospital's archive.",
                 "keep the original UIDs (off by default)"),
    OptionChoice("retain_safe_private", "--retain-safe-private", "Keep safe private attributes",
                 "Vendor-specific attributes that DICOM lists as safe are kept; all others are "
                 "removed.",
                 "keep private attributes listed as safe in PS3.15 E.3.10"),
)

# The defaults a user may change in the settings: every choice, all off, dates removed.
# (A date shift and a replacement patient ID belong to one export, not to the settings.)
DEID_DEFAULTS: dict[str, object] = {"dates": "remove",
                                    **{choice.field: False for choice in OPTION_CHOICES}}
