"""Remove identity from report text before it leaves the library (teaching exports).

A minimal rule-based cleaner, written here because the shared free-text
cleaner of the de-identification package was not yet available: it removes

- names after a title ("Dr. Quintero", "Mrs Jane Roe") and after a label
  ("Patient: Jane Roe", "Reported by: ...", "Signed: ...");
- identifiers after their label ("MRN 12345", "Accession: A-77", "ID: P0042");
- dates (ISO, ``YYYYMMDD``, ``DD/MM/YYYY``, "3 March 2021"), times, e-mail
  addresses, telephone numbers and long digit runs;
- the names, IDs and institution names of the exported images' own headers
  (through :class:`medviewer.deid.clean.TextCleaner`, when one is given);

and leaves a bracketed placeholder so the sentence still reads.  Medical
words stay ("right lower lobe consolidation"); a bare name that is in no
header and has no title survives, which is why an export lists the reports it
changed.
"""

from __future__ import annotations

import re

_MONTHS = ("jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|"
           "june|july|august|september|october|november|december")
_RULES = [
    ("[name]", re.compile(r"\b(?:Dr|Mr|Mrs|Ms|Miss|Prof|Professor)\.?\s+[A-Z][a-zA-Z'\-]+"
                          r"(?:\s+[A-Z][a-zA-Z'\-]+)?")),
    # A label is kept (group "label"); what follows it goes.
    ("[name]", re.compile(r"(?P<label>\b(?i:Patient|Name|Reported by|Dictated by|Signed by|Signed|"
                          r"Radiologist|Referring physician|Referrer)\s?:\s*)[A-Z][a-zA-Z'\-]+"
                          r"(?:[ ,^]?\s?[A-Z][a-z'\-]+){0,2}")),
    ("[ID]", re.compile(r"(?P<label>\b(?:MRN|Patient ID|ID|Accession|Acc|NHS|SSN)\b\s*(?:[:#=]|no\.?)?"
                        r"\s*)(?=[A-Z./-]*\d)[A-Z0-9][A-Z0-9./-]+", re.IGNORECASE)),
    ("[date]", re.compile(r"\b(?:19|20)\d{2}[-./](?:0?[1-9]|1[0-2])[-./](?:0?[1-9]|[12]\d|3[01])\b")),
    ("[date]", re.compile(r"\b(?:0?[1-9]|[12]\d|3[01])[-./](?:0?[1-9]|1[0-2])[-./](?:19|20)?\d{2}\b")),
    ("[date]", re.compile(r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b")),
    ("[date]", re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})\.?,?\s+(?:19|20)\d{{2}}\b|"
                          rf"\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}\b",
                          re.IGNORECASE)),
    ("[time]", re.compile(r"\b(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?\b")),
    ("[contact]", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("[contact]", re.compile(r"(?<!\w)(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{3,4}[\s.-]\d{3,4}"
                             r"(?:[\s.-]\d{2,4})?(?!\w)")),
    ("[number]", re.compile(r"\b\d{6,}\b")),
]


def clean_report(text: str, header_cleaner=None) -> tuple[str, int]:
    """Return (de-identified text, number of removals); line breaks are kept.

    ``header_cleaner`` is a :class:`medviewer.deid.clean.TextCleaner` that has
    collected the exported images' identifying values.
    """
    removed = 0
    lines = []
    for line in (text or "").splitlines():
        for placeholder, pattern in _RULES:
            line, n = pattern.subn(lambda m, p=placeholder: (m.groupdict().get("label") or "") + p, line)
            removed += n
        if header_cleaner is not None and line.strip():
            cleaned = _header_clean(header_cleaner, line)
            removed += int(cleaned.split() != line.split())
            line = cleaned
        lines.append(line)
    return "\n".join(lines).strip(), removed


def _header_clean(cleaner, line: str) -> str:
    """Remove the header's names and identifiers from a line, keeping placeholders intact."""
    parts = re.split(r"(\[(?:name|ID|date|time|contact|number)\])", line)
    return " ".join(p if p.startswith("[") and p.endswith("]") else cleaner.clean(p)
                    for p in parts if p.strip()).strip()
