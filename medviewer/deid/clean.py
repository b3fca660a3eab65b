"""Clean free-text descriptors ("C" under the Clean Descriptors Option).

PS3.15 E.3.5 asks to replace descriptive text "with values of similar meaning
known not to contain identifying information".  Without a clinical language
model, MedViewer cleans by subtraction: it collects the identifying values of
the same file (every person-name component, the identifiers and institution
names listed in :data:`IDENTIFIER_TAGS`, every date) before de-identifying it,
then removes those values, dates and long digit runs from the descriptor.  What
is left ("XR CHEST PA", "CT CHEST WITHOUT CONTRAST") keeps its meaning.

This is a heuristic: a name typed into a description that appears nowhere else
in the header survives.  That is why the option is off by default.
"""

from __future__ import annotations

import re

# Attributes whose values identify someone or something and may be echoed in text.
IDENTIFIER_TAGS = frozenset({
    0x00100020,  # Patient ID
    0x00101000,  # Other Patient IDs
    0x00100021,  # Issuer of Patient ID
    0x00080050,  # Accession Number
    0x00200010,  # Study ID
    0x00401001,  # Requested Procedure ID
    0x00400009,  # Scheduled Procedure Step ID
    0x00400253,  # Performed Procedure Step ID
    0x00380010,  # Admission ID
    0x00080080,  # Institution Name
    0x00080081,  # Institution Address
    0x00081040,  # Institutional Department Name
    0x00081010,  # Station Name
    0x00181000,  # Device Serial Number
    0x00101040,  # Patient's Address
    0x00400031,  # Local Namespace Entity ID
    0x00102154,  # Patient's Telephone Numbers
})
_DATE = re.compile(r"\b(19|20)\d{2}[-./]?\d{2}[-./]?\d{2}\b")
_DIGITS = re.compile(r"\d{5,}")
_SPACES = re.compile(r"\s+")
MIN_TOKEN = 2


class TextCleaner:
    """Remove a file's identifying values from descriptive text."""

    def __init__(self) -> None:
        self.name_tokens: set[str] = set()
        self.phrases: set[str] = set()

    def collect(self, dataset) -> None:
        """Gather identifying values from ``dataset`` and its sequences (before changes)."""
        for elem in dataset.iterall():
            if elem.VR == "SQ" or elem.value in (None, ""):
                continue
            values = elem.value if elem.VM > 1 else [elem.value]
            if elem.VR == "PN":
                for value in values:
                    for part in re.split(r"[\^=\s,.]+", str(value)):
                        if len(part) >= MIN_TOKEN:
                            self.name_tokens.add(part.upper())
            elif int(elem.tag) in IDENTIFIER_TAGS or elem.tag.is_private:
                for value in values:
                    text = str(value).strip()
                    if len(text) >= 3:
                        self.phrases.add(text.upper())

    def clean(self, text: str) -> str:
        """Return ``text`` without the collected names, identifiers, dates and long numbers."""
        out = str(text)
        # Longest first, so "RIVERSIDE GENERAL HOSPITAL" goes before a shorter overlap.
        for phrase in sorted(self.phrases, key=len, reverse=True):
            out = re.sub(re.escape(phrase), " ", out, flags=re.IGNORECASE)
        out = _DATE.sub(" ", out)
        out = _DIGITS.sub(" ", out)
        if self.name_tokens:
            words = re.split(r"(\W+)", out)
            out = "".join("" if w.upper() in self.name_tokens else w for w in words)
        return _SPACES.sub(" ", out).strip(" ,;:-")
