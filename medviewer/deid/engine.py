"""Apply the Basic Application Level Confidentiality Profile to one dataset.

References
----------
DICOM PS3.15 2024b, Annex E: E.1.1 (the de-identifier's duties: protect every
listed attribute wherever it occurs, nested sequences included; replace UIDs
consistently; record Patient Identity Removed and the method; replace the File
Meta Information), Table E.1-1 (:mod:`medviewer.deid.table`) and the options of
E.3 (:mod:`medviewer.deid.options`).

How each action is carried out
------------------------------
========  ==================================================================
X         the element is deleted
Z         the value is emptied (a sequence loses its items)
D         a dummy value of the VR replaces it; a sequence is kept and its items
          are de-identified recursively (their identifying leaves are replaced)
U         every UID value is replaced through :meth:`DeidSession.uid`
K         kept; a sequence's items are de-identified recursively (E.1.1)
C         dates and date-times are shifted (Modified Dates option); text is
          cleaned (:class:`~medviewer.deid.clean.TextCleaner`); a sequence is
          de-identified recursively (Clean Structured Content)
========  ==================================================================

Combined codes ("X/Z", "X/D", "X/Z/D", "Z/D") take their first action unless
the attribute is Type 1 or 2 where MedViewer's files use it
(:data:`REQUIRED_TYPE`); "X/Z/U*" keeps the reference sequence with its UIDs
replaced, so references between the exported instances stay valid.

Attributes Table E.1-1 does not list are kept, except for these safety nets
(PS3.15 E.1 note 4 recommends handling dates by VR): any person name (PN) and
application entity title (AE) is removed; any date, date-time or time follows
the date policy; any UID that is not a registered DICOM UID is replaced; every
private attribute is removed unless known safe and the option is on; overlay
and curve groups are removed; group lengths are dropped (they would be wrong).
"""

from __future__ import annotations

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID_dictionary

from medviewer import __version__
from medviewer.deid import audit as A
from medviewer.deid.audit import FileAudit
from medviewer.deid.clean import TextCleaner
from medviewer.deid.dates import shift_da, shift_dt
from medviewer.deid.options import (
    CLEAN_DESCRIPTORS,
    CLEAN_STRUCTURED_CONTENT,
    RETAIN_DEVICE_IDENTITY,
    RETAIN_FULL_DATES,
    RETAIN_INSTITUTION_IDENTITY,
    RETAIN_MODIFIED_DATES,
    RETAIN_PATIENT_CHARACTERISTICS,
    RETAIN_SAFE_PRIVATE,
    RETAIN_UIDS,
)
from medviewer.deid.pixel_text import clean_pixel_text
from medviewer.deid.private import is_safe_private
from medviewer.deid.session import DeidSession
from medviewer.deid.table import Rule, repeating_group, rule_for

PATIENT_ID, PATIENT_NAME = 0x00100020, 0x00100010
IMPLEMENTATION_VERSION_NAME = f"MEDVIEWER_{__version__.replace('.', '')}"[:16]
METHOD_TEXT = f"MedViewer {__version__}: PS3.15 E.1 Basic Profile"

# Where a combined action needs a value: Type 1 (D) or Type 2 (Z) in an IOD MedViewer
# reads (CR, DX, MG, CT, MR, US, SC, XA).  Content Date/Time are Type 1 in the DX, MG
# and intra-oral image modules; the Acquisition Context Sequence is Type 2 wherever its
# module is used.
REQUIRED_TYPE = {0x00080023: 1, 0x00080033: 1, 0x00400555: 2}
# Type 1 in the Enhanced General Equipment and enhanced image modules (PS3.3 C.7.5.2).
ENHANCED_TYPE1 = frozenset({0x00181000, 0x0008002A})

# UIDs that name classes and syntaxes, not instances: never replaced.
UID_KEEP_TAGS = frozenset({
    0x00020002, 0x00020010, 0x00020012,  # Media Storage SOP Class, Transfer Syntax, Impl.
    0x00080016, 0x00081150, 0x00041510,  # SOP Class UID and references to SOP classes
    0x0008001A, 0x0008001B, 0x00080062,  # related/original SOP classes, SOP classes in study
    0x0008010C, 0x0008010D, 0x04000510,  # coding scheme, context group extension, syntax
})
DICOM_ROOT = "1.2.840.10008."

_OPTION_CODES = {
    "uid": RETAIN_UIDS, "dev": RETAIN_DEVICE_IDENTITY, "inst": RETAIN_INSTITUTION_IDENTITY,
    "pat": RETAIN_PATIENT_CHARACTERISTICS, "full": RETAIN_FULL_DATES,
    "mod": RETAIN_MODIFIED_DATES, "desc": CLEAN_DESCRIPTORS, "struct": CLEAN_STRUCTURED_CONTENT,
}
_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH",
                         "ST", "TM", "UC", "UI", "UR", "UT"})
_TEXT_VRS = frozenset({"LO", "SH", "LT", "ST", "UT", "UC", "CS", "PN", "AE", "UR"})
_DUMMY = {"DA": "19000101", "TM": "000000", "DT": "19000101000000", "IS": "0", "DS": "0",
          "AS": "000Y", "UR": "urn:deidentified"}
_DUMMY_TEXT = "ANONYMIZED"


class _Context:
    """State of one dataset's de-identification (one thread, one file)."""

    def __init__(self, session: DeidSession, audit: FileAudit, cleaner: TextCleaner,
                 pseudonym: str, enhanced: bool) -> None:
        self.session = session
        self.options = session.options
        self.keys = session.options.option_keys
        self.audit = audit
        self.cleaner = cleaner
        self.pseudonym = pseudonym
        self.enhanced = enhanced


def deidentify_dataset(ds: Dataset, session: DeidSession,
                       audit: FileAudit | None = None) -> FileAudit:
    """De-identify ``ds`` in place and return what was done to each attribute.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A complete dataset (with its file meta, if read from a file).  Pixel values are
        not touched (see :mod:`medviewer.deid.burned_in` for burned-in text), but text
        segments in compressed frames are removed (:mod:`medviewer.deid.pixel_text`).
    session : DeidSession
        The export's keyed mappings; use one session for every file of an export so
        UIDs and pseudonyms agree between files.
    audit : FileAudit, optional
        Receives the entries; a new one by default.

    Returns
    -------
    FileAudit
    """
    audit = audit if audit is not None else FileAudit()
    cleaner = TextCleaner()
    if session.options.clean_descriptors or session.options.retain_patient_characteristics \
            or session.options.clean_structured_content:
        cleaner.collect(ds)  # before anything changes
    key = str(ds.get("PatientID", "") or "") or (
        f"{ds.get('PatientName', '')}|{ds.get('PatientBirthDate', '')}")
    pseudonym = session.pseudonym(key)
    sop_class = str(ds.get("SOPClassUID", ""))
    audit.sop_class = sop_class
    enhanced = "Enhanced" in UID_dictionary.get(sop_class, ("",))[0]
    ctx = _Context(session, audit, cleaner, pseudonym, enhanced)
    # Compressed frames may carry text (JPEG COM/APPn); clean them first, or refuse the file.
    removed = clean_pixel_text(ds)
    _process(ds, ctx, "")
    if removed:
        ctx.audit.add(ds["PixelData"].tag, "PixelData", A.CLEANED,
                      f"E.1.1: {removed} text segment(s) removed from compressed frames")
    _record_method(ds, ctx)
    _replace_file_meta(ds, ctx)
    return audit


# -- the recursion --------------------------------------------------------------------------
def _process(ds: Dataset, ctx: _Context, prefix: str) -> None:
    """Apply the profile to every element of ``ds`` (one nesting level), recursing into items."""
    creators = {}
    for elem in list(ds):
        tag = elem.tag
        path = prefix + (elem.keyword or _tag_text(tag))
        if tag.element == 0x0000:
            del ds[tag]
            ctx.audit.add(tag, path, A.REMOVED, "group length")
        elif tag.is_private:
            if tag.is_private_creator:
                creators[tag] = path
            else:
                _private(ds, elem, path, ctx)
        elif repeating_group(tag):
            del ds[tag]
            ctx.audit.add(tag, path, A.REMOVED, repeating_group(tag))
        else:
            rule = rule_for(tag)
            if rule is not None:
                action, why = _resolve(rule, ctx, int(tag))
                _apply(ds, elem, action, why, path, ctx)
            else:
                _unlisted(ds, elem, path, ctx)
    # A private creator stays only while some element of its block stays.
    for tag, path in creators.items():
        block = (tag.element & 0xFF) << 8
        if not any(t.group == tag.group and (t.element & 0xFF00) == block and
                   t.element > 0xFF for t in (e.tag for e in ds)):
            del ds[tag]
            ctx.audit.add(tag, path, A.REMOVED, "private creator")
        else:
            ctx.audit.add(tag, path, A.KEPT, "private creator of a safe attribute")


def _resolve(rule: Rule, ctx: _Context, tag: int) -> tuple[str, str]:
    """Return (single action, reason) for a rule under the options in force."""
    chosen = [(rule.options[k], k) for k in rule.options if k in ctx.keys]
    if chosen:
        # Several options may speak (Allergies: patient characteristics C, descriptors C);
        # keeping wins over cleaning, cleaning over anything else.
        chosen.sort(key=lambda pair: "KCX".find(pair[0]) if pair[0] in "KCX" else 9)
        action, key = chosen[0]
        return action, f"option {_OPTION_CODES[key][0]} {key}={action}"
    basic = rule.basic
    why = f"{rule.source} {basic}"
    if basic == "X/Z/U*":
        return "U*", why
    if "/" not in basic:
        return basic, why
    required = REQUIRED_TYPE.get(tag, 3)
    if ctx.enhanced and tag in ENHANCED_TYPE1:
        required = 1
    choices = basic.split("/")
    if required == 1 and "D" in choices:
        return "D", why + " (Type 1)"
    if required <= 2 and "Z" in choices:
        return "Z", why + " (Type 2)"
    return choices[0], why


def _apply(ds: Dataset, elem: DataElement, action: str, why: str, path: str,
           ctx: _Context) -> None:
    tag, vr = elem.tag, elem.VR
    if action == "X":
        del ds[tag]
        ctx.audit.add(tag, path, A.REMOVED, why)
    elif action in ("Z", "D") and int(tag) in (PATIENT_ID, PATIENT_NAME):
        # PS3.15 E.1.1 note 2: a dummy may be meaningful; one pseudonym per patient keeps
        # the exported studies grouped without naming anyone.
        elem.value = ctx.pseudonym if int(tag) == PATIENT_ID else f"{ctx.pseudonym}^"
        ctx.audit.add(tag, path, A.DUMMY, why + " (pseudonym)")
    elif action == "Z":
        elem.value = (Sequence([]) if vr == "SQ" else b"" if _is_bytes(vr) else
                      "" if vr in _STRING_VRS else None)
        ctx.audit.add(tag, path, A.EMPTIED, why)
    elif action == "D":
        if vr == "SQ":
            ctx.audit.add(tag, path, A.CLEANED, why + " (items de-identified)")
            _recurse(elem, path, ctx)
        else:
            elem.value = _dummy(elem, ctx)
            ctx.audit.add(tag, path, A.UID_REPLACED if vr == "UI" else A.DUMMY, why)
    elif action == "U":
        if vr == "UI":
            elem.value = _map_uids(elem.value, ctx)
            ctx.audit.add(tag, path, A.UID_REPLACED, why)
        else:  # never in Table E.1-1; be safe
            del ds[tag]
            ctx.audit.add(tag, path, A.REMOVED, why + " (not a UI element)")
    elif action in ("K", "U*"):
        ctx.audit.add(tag, path, A.KEPT, why)
        if vr == "SQ":
            _recurse(elem, path, ctx)
    elif action == "C":
        _clean(ds, elem, why, path, ctx)
    else:  # pragma: no cover - the table parser rejects unknown actions
        raise ValueError(f"unknown action {action!r} for {path}")


def _clean(ds: Dataset, elem: DataElement, why: str, path: str, ctx: _Context) -> None:
    tag, vr = elem.tag, elem.VR
    if vr == "SQ":
        ctx.audit.add(tag, path, A.CLEANED, why + " (items de-identified)")
        _recurse(elem, path, ctx)
    elif vr in ("DA", "DT", "TM"):
        _date(ds, elem, path, ctx, why)
    elif "mod=" in why:
        # A non-date attribute under the dates option (Timezone Offset From UTC): there is
        # no shifted equivalent, so it goes.
        del ds[tag]
        ctx.audit.add(tag, path, A.REMOVED, why + " (not a date)")
    elif vr in _TEXT_VRS and vr != "PN":
        values = _values(elem)
        cleaned = [ctx.cleaner.clean(v) for v in values]
        cleaned = [c for c in cleaned if c]
        if not cleaned:
            del ds[tag]
            ctx.audit.add(tag, path, A.REMOVED, why + " (nothing left after cleaning)")
        else:
            elem.value = cleaned if len(cleaned) > 1 else cleaned[0]
            ctx.audit.add(tag, path, A.CLEANED, why)
    else:
        # No cleaner for this VR (person names, binary): remove rather than guess.
        del ds[tag]
        ctx.audit.add(tag, path, A.REMOVED, why + f" (no cleaner for {vr})")


def _date(ds: Dataset, elem: DataElement, path: str, ctx: _Context, why: str) -> None:
    """Apply the date policy to a DA, DT or TM element."""
    tag, vr = elem.tag, elem.VR
    policy = ctx.options.dates
    if policy == "keep":
        ctx.audit.add(tag, path, A.KEPT, why)
    elif policy == "shift":
        if vr == "TM":
            ctx.audit.add(tag, path, A.KEPT, why + " (time of day)")
            return
        shift = shift_da if vr == "DA" else shift_dt
        values = [shift(v, ctx.session.shift_days) for v in _values(elem)]
        elem.value = values if len(values) > 1 else (values[0] if values else None)
        ctx.audit.add(tag, path, A.SHIFTED, why)
    else:
        del ds[tag]
        ctx.audit.add(tag, path, A.REMOVED, why)


def _unlisted(ds: Dataset, elem: DataElement, path: str, ctx: _Context) -> None:
    """Handle a standard attribute that Table E.1-1 does not list (the safety nets)."""
    tag, vr = elem.tag, elem.VR
    if vr == "SQ":
        ctx.audit.add(tag, path, A.KEPT, "not in Table E.1-1 (items de-identified)")
        _recurse(elem, path, ctx)
    elif vr in ("PN", "AE"):
        del ds[tag]
        ctx.audit.add(tag, path, A.REMOVED, f"safety net {vr}")
    elif vr in ("DA", "DT", "TM"):
        _date(ds, elem, path, ctx, f"safety net {vr}")
    elif vr == "UI" and int(tag) not in UID_KEEP_TAGS and not ctx.options.retain_uids:
        values = _values(elem)
        if all(_well_known(v) for v in values):
            ctx.audit.add(tag, path, A.KEPT, "registered DICOM UID")
        else:
            elem.value = _map_uids(elem.value, ctx)
            ctx.audit.add(tag, path, A.UID_REPLACED, "safety net UI")
    elif tag.group == 0x0010 and not _in_dictionary(tag):
        # An attribute of the Patient group that no dictionary knows may hold anything
        # about the patient: E.1.1 asks that nothing identifying survive.
        del ds[tag]
        ctx.audit.add(tag, path, A.REMOVED, "unknown attribute in the Patient group")
    else:
        ctx.audit.add(tag, path, A.KEPT, "not in Table E.1-1")


def _in_dictionary(tag) -> bool:
    from pydicom.datadict import dictionary_has_tag

    return dictionary_has_tag(tag)


def _private(ds: Dataset, elem: DataElement, path: str, ctx: _Context) -> None:
    tag = elem.tag
    creator_tag = (tag.group << 16) | (tag.element >> 8)
    creator = ds[creator_tag].value if creator_tag in ds else None
    if ctx.options.retain_safe_private and is_safe_private(creator, tag.group, tag.element):
        # The creator matched our own safe list, so naming it quotes the list, not the file.
        label = f"{path}[{str(creator).strip()}]"
        ctx.audit.add(tag, label, A.KEPT, f"option {RETAIN_SAFE_PRIVATE[0]} safe private")
        return
    del ds[tag]
    # The audit holds no original values: a removed block's creator string is one.
    ctx.audit.add(tag, path, A.REMOVED, "E.1-1 X private")


def _recurse(elem: DataElement, path: str, ctx: _Context) -> None:
    for i, item in enumerate(elem.value or []):
        _process(item, ctx, f"{path}[{i}].")


# -- values -----------------------------------------------------------------------------------
def _values(elem: DataElement) -> list[str]:
    value = elem.value
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return [str(v) for v in value]
    return [str(value)]


def _is_bytes(vr: str) -> bool:
    return vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN")


def _well_known(uid: str) -> bool:
    uid = str(uid).strip()
    return uid in UID_dictionary or uid.startswith(DICOM_ROOT)


def _map_uids(value, ctx: _Context):
    if ctx.options.retain_uids:
        return value
    if isinstance(value, (list, tuple, MultiValue)):
        return [ctx.session.uid(v) for v in value]
    return ctx.session.uid(value) if value else value


def _dummy(elem: DataElement, ctx: _Context):
    vr = elem.VR
    if vr == "UI":
        return ctx.session.uid(elem.value) if elem.value else ctx.session.uid(str(elem.tag))
    if _is_bytes(vr):
        return b"\x00\x00"
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"):
        return 0
    if vr in _DUMMY:
        return _DUMMY[vr]
    return _DUMMY_TEXT


# -- what is added ------------------------------------------------------------------------------
def _record_method(ds: Dataset, ctx: _Context) -> None:
    """Add (0012,0062), (0012,0063), (0012,0064) and (0028,0303) (PS3.15 E.1.1 item 6)."""
    pixels_cleaned = ctx.audit.regions_blacked_out > 0
    codes = ctx.options.method_codes(pixels_cleaned=pixels_cleaned)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = [METHOD_TEXT[:64]] + [meaning[:64] for _, meaning in codes[1:]]
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = {
        "remove": "REMOVED", "shift": "MODIFIED", "keep": "UNMODIFIED"}[ctx.options.dates]
    for keyword in ("PatientIdentityRemoved", "DeidentificationMethod",
                    "DeidentificationMethodCodeSequence",
                    "LongitudinalTemporalInformationModified"):
        ctx.audit.add(ds[keyword].tag, keyword, A.ADDED, "E.1.1 item 6")


def _replace_file_meta(ds: Dataset, ctx: _Context) -> None:
    """Replace the File Meta Information and preamble (PS3.15 E.1.1 item 7)."""
    old = getattr(ds, "file_meta", None) or FileMetaDataset()
    for elem in old:
        path = elem.keyword or _tag_text(elem.tag)
        if int(elem.tag) == 0x00020003:
            ctx.audit.add(elem.tag, path, A.UID_REPLACED, "E.1-1 U (= SOP Instance UID)")
        elif int(elem.tag) in (0x00020001, 0x00020002, 0x00020010):
            ctx.audit.add(elem.tag, path, A.KEPT, "E.1.1 item 7")
        elif int(elem.tag) in (0x00020012, 0x00020013):
            ctx.audit.add(elem.tag, path, A.DUMMY, "E.1.1 item 7 (de-identifying application)")
        elif int(elem.tag) != 0x00020000:
            ctx.audit.add(elem.tag, path, A.REMOVED, "E.1.1 item 7")
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", old.get("MediaStorageSOPClassUID"))
    meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID")
    transfer = old.get("TransferSyntaxUID")
    if transfer is None:
        # A dataset read without File Meta: record the syntax it was read in.
        from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

        implicit, little = getattr(ds, "original_encoding", (False, True))
        transfer = (ImplicitVRLittleEndian if implicit else
                    ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    meta.TransferSyntaxUID = transfer
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    # A preamble may hold anything (TIFF headers with names have been seen): zero it.
    ds.preamble = b"\x00" * 128


def _tag_text(tag) -> str:
    value = int(tag)
    return f"({value >> 16:04X},{value & 0xFFFF:04X})"
