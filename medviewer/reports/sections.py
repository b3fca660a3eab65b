"""Tell the sections of a radiology report apart: indication, findings, impression.

Headings are recognised at the start of a line or after a sentence, followed
by a colon ("FINDINGS:", "Clinical history:", "Conclusion -").  Synonyms map
to the three sections the report panel shows (plus comparison and technique,
kept but not shown first).  Text before the first heading, or a report with no
heading at all, is kept under ``body``.
"""

from __future__ import annotations

import re

INDICATION, FINDINGS, IMPRESSION = "indication", "findings", "impression"
COMPARISON, TECHNIQUE, BODY = "comparison", "technique", "body"
# Order in which the panel shows them.
SECTION_ORDER = (INDICATION, COMPARISON, TECHNIQUE, FINDINGS, IMPRESSION, BODY)

_HEADINGS = {
    INDICATION: ("indication", "indications", "clinical indication", "clinical history", "history",
                 "reason for exam", "reason for examination", "clinical information",
                 "clinical details"),
    COMPARISON: ("comparison", "comparisons", "prior"),
    TECHNIQUE: ("technique", "examination", "exam", "procedure"),
    FINDINGS: ("findings", "finding", "report", "observations"),
    IMPRESSION: ("impression", "impressions", "conclusion", "conclusions", "summary", "opinion",
                 "assessment"),
}
_BY_HEADING = {h: section for section, heads in _HEADINGS.items() for h in heads}
_HEADING = re.compile(
    r"(?:(?<=^)|(?<=\n)|(?<=[.!?] ))\s*(" + "|".join(sorted(map(re.escape, _BY_HEADING),
                                                            key=len, reverse=True))
    + r")\s*[:\-]\s*", re.IGNORECASE)


def split_sections(text: str) -> dict[str, str]:
    """Return ``{section: text}`` in reading order; ``{"body": text}`` when no heading is found.

    A section named twice (an addendum's second "IMPRESSION:") has both parts, joined.
    """
    text = (text or "").strip()
    marks = list(_HEADING.finditer(text))
    if not marks:
        return {BODY: text} if text else {}
    sections: dict[str, str] = {}
    lead = text[:marks[0].start()].strip()
    if lead:
        sections[BODY] = lead
    for mark, nxt in zip(marks, [*marks[1:], None]):
        name = _BY_HEADING[mark.group(1).lower()]
        part = text[mark.end():nxt.start() if nxt else len(text)].strip()
        if part:
            sections[name] = f"{sections[name]}\n{part}" if name in sections else part
    return sections


def searchable_text(sections: dict[str, str]) -> str:
    """Return the text that text search and the learned model read (no indication).

    The indication is why the study was asked for ("rule out pneumonia"), not what it
    shows, so it is left out of what a phrase is matched against.
    """
    return "\n".join(sections[s] for s in SECTION_ORDER if s in sections and s != INDICATION)
