"""Remove identity from text a person wrote (teaching notes, captions, report text).

A note an author writes about a case is not a DICOM descriptor: its medical
words ("Emphysema", "right lower lobe consolidation") are the teaching content
and must survive; only what identifies someone goes.  :class:`FreeTextCleaner`
therefore removes

- the names and identifiers of the people in the case's own headers (every
  person-name component, patient/accession/study IDs, institution names) and
  any other names or identifiers the caller adds (e.g. every patient of the library);
- a capitalised name after a title ("Dr Quintero", "Mrs. Jane Roe");
- an identifier after its label ("MRN 12345", "Acc# A-77", "ID: P0042");
- dates (ISO, DICOM ``YYYYMMDD``, ``DD/MM/YYYY``, "3 March 2021"), long numbers,
  e-mail addresses and telephone numbers;

and replaces each with a bracketed placeholder (``[name]``, ``[ID]``, ``[date]``,
``[number]``, ``[contact]``) so the sentence still reads.  Unlike the DICOM
descriptor cleaner (:mod:`medviewer.deid.clean`) it never collects the value of a
private attribute that has no digit: private blocks often hold the finding labels,
and removing those would remove the diagnosis.  Words in ``keep`` (e.g. the
library's label names) are never removed.

This is a rule-based cleaner, not a clinical named-entity model: a bare name that
is in no header, no list and has no title ("saw John yesterday") survives.  The
counts it returns say what was removed, so an export summary can tell the author.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from medviewer.deid.clean import IDENTIFIER_TAGS

KINDS = ("name", "identifier", "date", "number", "contact")
PLACEHOLDER = {"name": "[name]", "identifier": "[ID]", "date": "[date]", "number": "[number]",
               "contact": "[contact]"}

_MONTHS = ("jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|"
           "june|july|august|september|october|november|december")
_DATES = [
    re.compile(r"\b(?:19|20)\d{2}[-./](?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12]\d|3[01])\b"),
    re.compile(r"\b(?:0?[1-9]|[12]\d|3[01])[-./](?:0?[1-9]|1[0-2])[-./](?:19|20)?\d{2}\b"),
    re.compile(r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b"),
    re.compile(rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})\.?,?\s+(?:19|20)\d{{2}}|"
               rf"(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}})\b",
               re.IGNORECASE),
]
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(r"(?<!\w)(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{3,4}[\s.-]\d{3,4}"
                    r"(?:[\s.-]\d{2,4})?(?!\w)")
_LABELLED_ID = re.compile(
    r"\b(?P<label>MRN|MR\s?#|MR\s?No\.?|medical record(?: number)?|patient id|PID|ID|"
    r"accession(?: number)?|acc\.?\s?#?|NHS(?: number)?|SSN|DOB)\s*(?:[:#=]|no\.?|number)?\s*"
    r"(?P<value>(?=[A-Z./-]*\d)[A-Z0-9][A-Z0-9./-]{1,})", re.IGNORECASE)
_TITLE_NAME = re.compile(
    r"\b(?P<title>Dr|Mr|Mrs|Ms|Miss|Mx|Prof|Professor|Sister|Nurse)\.?\s+"
    r"(?P<name>[A-Z][a-zA-Z'\-]+(?:\s+[A-Z][a-zA-Z'\-]+)?)")
_DIGITS = re.compile(r"\b\d{5,}\b")
_TOKEN_SPLIT = re.compile(r"[\^=\s,.]+")


@dataclass
class CleanedText:
    """Text after cleaning, with what was removed.

    Attributes
    ----------
    text : str
    removed : Counter
        Number of removals by kind (``"name"``, ``"identifier"``, ``"date"``,
        ``"number"``, ``"contact"``).
    """

    text: str
    removed: Counter = field(default_factory=Counter)

    @property
    def changed(self) -> bool:
        """Whether anything was removed."""
        return sum(self.removed.values()) > 0


def describe_removed(removed: Counter) -> str:
    """Return counts in words, e.g. ``"2 names, 1 identifier"`` ("" for none)."""
    parts = []
    for kind in KINDS:
        n = removed.get(kind, 0)
        if n:
            parts.append(f"{n} {kind}{'s' if n != 1 else ''}")
    return ", ".join(parts)


class FreeTextCleaner:
    """Remove names, identifiers, dates and contacts from free text; keep its medical words.

    Parameters
    ----------
    keep : iterable of str
        Words and phrases never removed (compared case-insensitively), e.g. the
        library's label names, so a patient called "Mass" cannot erase the finding.
    """

    def __init__(self, keep: Iterable[str] = ()) -> None:
        self.name_tokens: set[str] = set()
        self.identifiers: set[str] = set()
        self.keep: set[str] = {k.strip().upper() for k in keep if k and k.strip()}

    # -- what identifies ----------------------------------------------------------------------
    def add_names(self, names: Iterable[str]) -> None:
        """Add person names (DICOM ``FAMILY^GIVEN`` or plain ``Given Family``)."""
        for name in names:
            for part in _TOKEN_SPLIT.split(str(name or "")):
                if len(part) >= 2 and part.upper() not in self.keep:
                    self.name_tokens.add(part.upper())

    def add_identifiers(self, values: Iterable[str]) -> None:
        """Add identifiers (patient IDs, accession numbers, institution names)."""
        for value in values:
            text = str(value or "").strip()
            if len(text) >= 3 and text.upper() not in self.keep:
                self.identifiers.add(text.upper())

    def collect(self, dataset) -> None:
        """Gather the names and identifiers of a DICOM dataset (and its sequences).

        Private attributes count as identifiers only when their value has a digit
        (an internal ID); a private value of plain words (a finding label) is kept.
        """
        for elem in dataset.iterall():
            if elem.VR == "SQ" or elem.value in (None, ""):
                continue
            values = elem.value if elem.VM > 1 else [elem.value]
            if elem.VR == "PN":
                self.add_names(str(v) for v in values)
            elif int(elem.tag) in IDENTIFIER_TAGS:
                self.add_identifiers(str(v) for v in values)
            elif elem.tag.is_private and elem.VR in ("LO", "SH", "LT", "ST", "UT", "CS", "UC"):
                self.add_identifiers(str(v) for v in values if re.search(r"\d", str(v)))

    # -- cleaning -----------------------------------------------------------------------------
    def clean(self, text: str) -> CleanedText:
        """Return ``text`` with identity replaced by placeholders, and the counts removed."""
        out = str(text or "")
        removed: Counter = Counter()

        def sub(pattern, kind: str, source: str, replace=None) -> str:
            def repl(match: re.Match) -> str:
                if match.group(0).strip().upper() in self.keep:
                    return match.group(0)
                removed[kind] += 1
                return replace(match) if replace else PLACEHOLDER[kind]
            return pattern.sub(repl, source)

        # Longest first, so "RIVERSIDE GENERAL HOSPITAL" goes before a shorter overlap.
        for value in sorted(self.identifiers, key=len, reverse=True):
            out = sub(re.compile(rf"(?<!\w){re.escape(value)}(?!\w)", re.IGNORECASE),
                      "identifier", out)
        out = sub(_EMAIL, "contact", out)
        out = sub(_LABELLED_ID, "identifier", out,
                  lambda m: f"{m.group('label')} {PLACEHOLDER['identifier']}")
        out = sub(_TITLE_NAME, "name", out,
                  lambda m: f"{m.group('title')} {PLACEHOLDER['name']}")
        for pattern in _DATES:
            out = sub(pattern, "date", out)
        out = sub(_PHONE, "contact", out)
        out = sub(_DIGITS, "number", out)
        if self.name_tokens:
            before = out.count(PLACEHOLDER["name"])
            words = re.split(r"([^\w'\-]+)", out)
            for i, word in enumerate(words):
                if self._is_name(word):
                    words[i] = PLACEHOLDER["name"]
            out = "".join(words)
            # "[name] [name]" (given and family name) reads, and counts, as one name.
            out = re.sub(r"\[name\](?:[ ^]+\[name\])+", "[name]", out)
            removed["name"] += max(0, out.count(PLACEHOLDER["name"]) - before)
        return CleanedText(out, +removed)  # unary + drops the kinds counted zero

    def _is_name(self, word: str) -> bool:
        """Whether a word is a collected name: as is, possessive ("Roe's") or hyphen part."""
        upper = re.sub(r"['\u2019]S$", "", word.upper())
        if not upper or upper in self.keep:
            return False
        return upper in self.name_tokens or any(
            part in self.name_tokens for part in upper.split("-") if len(part) >= 2)

    def clean_text(self, text: str) -> str:
        """Return only the cleaned text."""
        return self.clean(text).text
