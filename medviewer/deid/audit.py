"""The de-identification audit: what happened to every attribute of every file.

The audit is written into the export, so it records actions and rules only,
never an original value, and names input files by a keyed digest (the export's
secret), never by path: file and folder names often carry patient IDs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from medviewer.fileio import atomic_write_json

# Actions as the audit words them.
REMOVED, EMPTIED, DUMMY, UID_REPLACED, SHIFTED, CLEANED, KEPT, ADDED = (
    "removed", "emptied", "replaced", "uid-replaced", "shifted", "cleaned", "kept", "added")


@dataclass(frozen=True)
class AuditEntry:
    """One attribute and what was done to it.

    Attributes
    ----------
    tag : str
        ``(gggg,eeee)``.
    path : str
        Where it sits, e.g. ``RequestAttributesSequence[0].AccessionNumber``.
    action : str
        One of removed, emptied, replaced, uid-replaced, shifted, cleaned, kept, added.
    rule : str
        Why: ``E.1-1 Z``, ``option 113107``, ``safety net PN``, ``private``, ...
    """

    tag: str
    path: str
    action: str
    rule: str

    def as_dict(self) -> dict:
        """Return the entry as JSON-able data."""
        return {"tag": self.tag, "path": self.path, "action": self.action, "rule": self.rule}


@dataclass
class FileAudit:
    """The audit of one output file."""

    output: str = ""
    input_ref: str = ""
    sop_class: str = ""
    entries: list[AuditEntry] = field(default_factory=list)
    burned_in_flagged: bool = False
    burned_in_reasons: list[str] = field(default_factory=list)
    regions_blacked_out: int = 0

    def add(self, tag, path: str, action: str, rule: str) -> None:
        """Record one action."""
        self.entries.append(AuditEntry(_tag_text(tag), path, action, rule))

    def counts(self) -> dict[str, int]:
        """Return how many attributes each action touched."""
        return dict(Counter(e.action for e in self.entries))

    def actions_for(self, path: str) -> list[str]:
        """Return the actions recorded for an attribute path (tests and the UI)."""
        return [e.action for e in self.entries if e.path == path]

    def as_dict(self) -> dict:
        """Return the audit as JSON-able data."""
        return {
            "output": self.output, "input_ref": self.input_ref, "sop_class": self.sop_class,
            "counts": self.counts(),
            "burned_in": {"flagged": self.burned_in_flagged, "reasons": self.burned_in_reasons,
                          "regions_blacked_out": self.regions_blacked_out},
            "attributes": [e.as_dict() for e in self.entries],
        }


@dataclass
class ExportAudit:
    """The audit of one export: options, method codes and every file."""

    options: dict = field(default_factory=dict)
    method: list[str] = field(default_factory=list)
    created: str = ""
    software: str = ""
    files: list[FileAudit] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Return the export audit as JSON-able data."""
        totals: Counter = Counter()
        for f in self.files:
            totals.update(f.counts())
        return {"created": self.created, "software": self.software, "options": self.options,
                "method": self.method, "files_written": len(self.files),
                "totals": dict(totals), "skipped": self.skipped,
                "files": [f.as_dict() for f in self.files]}

    def write(self, path: str | Path) -> Path:
        """Write the audit as JSON; return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, self.as_dict(), indent=1)
        return path


def _tag_text(tag) -> str:
    value = int(tag)
    return f"({value >> 16:04X},{value & 0xFFFF:04X})"
