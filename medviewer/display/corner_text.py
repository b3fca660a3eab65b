"""Corner text as a reader expects it: names, dates and ages formatted, not raw DICOM.

(0010,0010) Patient Name is a PN value, ``Family^Given^Middle^Prefix^Suffix``
(PS3.5 6.2.1); it is shown ``FAMILY, Given Middle``.  DA values (``YYYYMMDD``)
are shown as ISO dates (``2024-01-31``), which no reader misreads as month-first
or day-first.  The age comes from (0010,1010) Patient's Age when the header has
it, else from the birth date and the study date, in the DICOM AS units a
report uses (days under a month, weeks under three months, months under two years).
"""

from __future__ import annotations

from datetime import date


def format_person_name(value: str | None) -> str:
    """Return ``"KHAN, Wei A"`` for ``"KHAN^WEI^A"``; ``""`` for an empty name."""
    text = str(value or "").strip()
    if not text:
        return ""
    # Only the alphabetic group (before "=") is shown; ideographic forms need other fonts.
    parts = [p.strip() for p in text.split("=")[0].split("^")]
    parts += [""] * (5 - len(parts))
    family, given, middle, prefix, suffix = parts[:5]
    first = " ".join(_given_case(p) for p in (given, middle) if p)
    name = family.upper()
    if first:
        name = f"{name}, {first}" if name else first
    if prefix:
        name = f"{_given_case(prefix)} {name}"
    if suffix:
        name = f"{name} {suffix}"
    return name


def _given_case(part: str) -> str:
    # "WEI" -> "Wei", "mary-ann" -> "Mary-Ann"; a single letter stays a capital initial.
    return "-".join(w[:1].upper() + w[1:].lower() for w in part.split("-"))


def parse_da(value: str | None) -> date | None:
    """Return the date of a DA value (``YYYYMMDD``, or the old ``YYYY.MM.DD``), else ``None``."""
    text = str(value or "").strip().replace(".", "")
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def format_da(value: str | None) -> str:
    """Return a DA value as ``YYYY-MM-DD`` (unparseable values are shown as they are)."""
    parsed = parse_da(value)
    return parsed.isoformat() if parsed else str(value or "").strip()


def age_text(birth: str | None, on: str | None, header_age: str | None = None) -> str:
    """Return the age at the study, e.g. ``"54Y"``, ``"7M"``, ``"3W"`` or ``"12D"``.

    Parameters
    ----------
    birth : str
        (0010,0030) Patient's Birth Date (DA).
    on : str
        (0008,0020) Study Date (DA).
    header_age : str, optional
        (0010,1010) Patient's Age (AS, ``"054Y"``), preferred when present.
    """
    if header_age:
        text = str(header_age).strip().upper()
        if len(text) == 4 and text[:3].isdigit() and text[3] in "DWMY":
            return f"{int(text[:3])}{text[3]}"
    born, when = parse_da(birth), parse_da(on)
    if born is None or when is None or when < born:
        return ""
    days = (when - born).days
    if days < 31:
        return f"{days}D"
    if days < 91:
        return f"{days // 7}W"
    months = (when.year - born.year) * 12 + when.month - born.month - (when.day < born.day)
    if months < 24:
        return f"{months}M"
    years = when.year - born.year - ((when.month, when.day) < (born.month, born.day))
    return f"{years}Y"


def patient_lines(name: str | None, patient_id: str | None, birth: str | None, sex: str | None,
                  study_date: str | None, header_age: str | None = None) -> list[str]:
    """Return the top-left corner: name, ID, birth date with age and sex."""
    lines = [format_person_name(name) or "(no name)"]
    if patient_id:
        lines.append(f"ID {patient_id}")
    details = []
    if parse_da(birth) or birth:
        details.append(f"b. {format_da(birth)}")
    age = age_text(birth, study_date, header_age)
    if age:
        details.append(age)
    if sex:
        details.append(str(sex).strip())
    if details:
        lines.append("  ".join(details))
    return lines


def study_lines(study_date: str | None, description: str | None,
                accession: str | None) -> list[str]:
    """Return the top-right corner's study lines: date, description, accession."""
    lines = [format_da(study_date) if study_date else "", str(description or "").strip(),
             f"Acc {accession}" if accession else ""]
    return [line for line in lines if line]
