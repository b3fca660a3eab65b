"""What the user chooses: the profile options of PS3.15 E.3 and how they are recorded.

References
----------
DICOM PS3.15 2024b, section E.3 "Basic Application Level Confidentiality Options"
and section E.1.1 item 6 (Patient Identity Removed, De-identification Method).
DICOM PS3.16, CID 7050 "De-identification Method" (coding scheme DCM).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from medviewer.deid.errors import DeidOptionsError

# CID 7050 codes, (code value, code meaning), coding scheme designator "DCM".
BASIC_PROFILE = ("113100", "Basic Application Confidentiality Profile")
CLEAN_PIXEL_DATA = ("113101", "Clean Pixel Data Option")
CLEAN_DESCRIPTORS = ("113105", "Clean Descriptors Option")
RETAIN_FULL_DATES = ("113106", "Retain Longitudinal Temporal Information Full Dates Option")
RETAIN_MODIFIED_DATES = ("113107",
                         "Retain Longitudinal Temporal Information Modified Dates Option")
RETAIN_PATIENT_CHARACTERISTICS = ("113108", "Retain Patient Characteristics Option")
RETAIN_DEVICE_IDENTITY = ("113109", "Retain Device Identity Option")
RETAIN_UIDS = ("113110", "Retain UIDs Option")
RETAIN_SAFE_PRIVATE = ("113111", "Retain Safe Private Option")
RETAIN_INSTITUTION_IDENTITY = ("113112", "Retain Institution Identity Option")
CLEAN_STRUCTURED_CONTENT = ("113104", "Clean Structured Content Option")

DATE_POLICIES = ("remove", "shift", "keep")


@dataclass(frozen=True)
class DeidOptions:
    """The options of one de-identification run (all off: the Basic Profile alone).

    Attributes
    ----------
    dates : {"remove", "shift", "keep"}
        ``"remove"``: dates and times follow the Basic Profile (removed or emptied).
        ``"shift"``: Retain Longitudinal Temporal Information with Modified Dates
        (113107): every date moves by the same number of days, so intervals between
        studies survive; times of day are kept.  ``"keep"``: Full Dates (113106).
    date_shift_days : int, optional
        The shift for ``dates="shift"``; by default drawn from the export's secret
        (between -3650 and -1 days, never 0).
    retain_device_identity : bool
        113109: keep station names, serial numbers, detector IDs.
    retain_institution_identity : bool
        113112: keep institution name, address and department.
    retain_patient_characteristics : bool
        113108: keep age, sex, size, weight, smoking and pregnancy status.
    clean_descriptors : bool
        113105: keep study/series/protocol descriptions and comments after removing
        names, identifiers and dates found in the same file (instead of removing them).
    clean_structured_content : bool
        113104: keep SR content and acquisition context, cleaned recursively.
    retain_uids : bool
        113110: keep the original UIDs.  Off by default: UIDs are replaced.
    retain_safe_private : bool
        113111: keep private attributes known to be safe (PS3.15 Table E.3.10-1).
    patient_id : str, optional
        Replacement Patient ID (and Name); by default a pseudonym derived from the
        original Patient ID and the export's secret (``ANON`` + 8 characters).
    """

    dates: str = "remove"
    date_shift_days: int | None = None
    retain_device_identity: bool = False
    retain_institution_identity: bool = False
    retain_patient_characteristics: bool = False
    clean_descriptors: bool = False
    clean_structured_content: bool = False
    retain_uids: bool = False
    retain_safe_private: bool = False
    patient_id: str | None = None

    def __post_init__(self) -> None:
        if self.dates not in DATE_POLICIES:
            raise DeidOptionsError(f"dates must be one of {DATE_POLICIES}, not {self.dates!r}",
                                   hint="use remove, shift or keep")
        if self.date_shift_days is not None and self.dates != "shift":
            raise DeidOptionsError("a date shift was given but dates are not shifted",
                                   hint="pass dates='shift' (--dates shift)")
        if self.date_shift_days == 0:
            raise DeidOptionsError("a date shift of 0 days keeps the real dates",
                                   hint="use dates='keep' to keep them, or a non-zero shift")

    @property
    def option_keys(self) -> frozenset[str]:
        """Return the Table E.1-1 option columns in force (see :mod:`medviewer.deid.table`)."""
        keys = set()
        if self.retain_uids:
            keys.add("uid")
        if self.retain_device_identity:
            keys.add("dev")
        if self.retain_institution_identity:
            keys.add("inst")
        if self.retain_patient_characteristics:
            keys.add("pat")
        if self.dates == "keep":
            keys.add("full")
        if self.dates == "shift":
            keys.add("mod")
        if self.clean_descriptors:
            keys.add("desc")
        if self.clean_structured_content:
            keys.add("struct")
        return frozenset(keys)

    def method_codes(self, pixels_cleaned: bool = False) -> list[tuple[str, str]]:
        """Return the CID 7050 codes to record in (0012,0064), profile first."""
        codes = [BASIC_PROFILE]
        if pixels_cleaned:
            codes.append(CLEAN_PIXEL_DATA)
        if self.clean_structured_content:
            codes.append(CLEAN_STRUCTURED_CONTENT)
        if self.clean_descriptors:
            codes.append(CLEAN_DESCRIPTORS)
        if self.dates == "keep":
            codes.append(RETAIN_FULL_DATES)
        if self.dates == "shift":
            codes.append(RETAIN_MODIFIED_DATES)
        if self.retain_patient_characteristics:
            codes.append(RETAIN_PATIENT_CHARACTERISTICS)
        if self.retain_device_identity:
            codes.append(RETAIN_DEVICE_IDENTITY)
        if self.retain_uids:
            codes.append(RETAIN_UIDS)
        if self.retain_safe_private:
            codes.append(RETAIN_SAFE_PRIVATE)
        if self.retain_institution_identity:
            codes.append(RETAIN_INSTITUTION_IDENTITY)
        return codes

    def as_dict(self) -> dict:
        """Return the options as JSON-able data (for the audit)."""
        data = asdict(self)
        data.pop("patient_id")  # a chosen replacement ID is not for the audit file
        return data

    @classmethod
    def field_names(cls) -> list[str]:
        """Return the option names (for the CLI and settings)."""
        return [f.name for f in fields(cls)]
