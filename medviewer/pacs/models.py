"""Queries and results of PACS operations, as plain dataclasses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from medviewer.pacs.errors import PacsError

_DATE = re.compile(r"^(\d{8})?(-)?(\d{8})?$")


@dataclass(frozen=True)
class StudyQuery:
    """What to look for, at study level.

    Attributes
    ----------
    patient_id : str
        (0010,0020); ``*`` and ``?`` wildcards allowed.
    patient_name : str
        (0010,0010); wildcards allowed, e.g. ``DOE*``.
    study_date : str
        ``YYYYMMDD``, ``YYYYMMDD-``, ``-YYYYMMDD`` or ``YYYYMMDD-YYYYMMDD``.
    modality : str
        Matched against (0008,0061) Modalities in Study.
    accession : str
        (0008,0050).
    study_uid : str
        (0020,000D).
    limit : int
        At most this many results (DICOMweb sends it; DIMSE results are cut).
    """

    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    modality: str = ""
    accession: str = ""
    study_uid: str = ""
    limit: int = 200

    def validate(self) -> StudyQuery:
        """Return the query if valid, else raise :class:`PacsError` with a hint."""
        if self.study_date and not _DATE.match(self.study_date):
            raise PacsError(f"invalid study date {self.study_date!r}",
                            hint="use YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
        if self.limit <= 0:
            raise PacsError("the result limit must be positive")
        return self

    @property
    def is_empty(self) -> bool:
        """Whether no criterion is set (a query of the whole PACS)."""
        return not any((self.patient_id, self.patient_name, self.study_date, self.modality,
                        self.accession, self.study_uid))


@dataclass(frozen=True)
class StudyMatch:
    """A study found on a PACS.

    Attributes
    ----------
    study_uid, patient_id, patient_name, study_date, study_time, accession : str
    description : str
    modalities : tuple of str
    series : int or None
        Number of Study Related Series, if the PACS said.
    instances : int or None
        Number of Study Related Instances, if the PACS said.
    in_library : int
        Instances of this study already in the library (set by the service).
    """

    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    study_time: str = ""
    accession: str = ""
    description: str = ""
    modalities: tuple[str, ...] = ()
    series: int | None = None
    instances: int | None = None
    in_library: int = 0

    @property
    def complete_in_library(self) -> bool:
        """Whether every instance the PACS reported is already in the library."""
        return self.instances is not None and self.in_library >= self.instances > 0

    def as_dict(self) -> dict:
        """Return the match as JSON-able data."""
        return {"study_uid": self.study_uid, "patient_id": self.patient_id,
                "patient_name": self.patient_name, "study_date": self.study_date,
                "study_time": self.study_time, "accession": self.accession,
                "description": self.description, "modalities": list(self.modalities),
                "series": self.series, "instances": self.instances,
                "in_library": self.in_library}


@dataclass(frozen=True)
class EchoResult:
    """The answer to a verification (C-ECHO, or a DICOMweb ping)."""

    node: str
    ok: bool
    status: str
    seconds: float

    def as_dict(self) -> dict:
        """Return the result as JSON-able data."""
        return {"node": self.node, "ok": self.ok, "status": self.status,
                "seconds": round(self.seconds, 4)}


@dataclass
class StudyTransfer:
    """What one study's retrieve did.

    Attributes
    ----------
    study_uid : str
    files : list of str
        Files written.
    skipped_instances : int
        Instances not stored because the library had them.
    failed : int
        Sub-operations the PACS reported as failed.
    warnings : list of str
    """

    study_uid: str
    files: list[str] = field(default_factory=list)
    skipped_instances: int = 0
    failed: int = 0
    warnings: list[str] = field(default_factory=list)
