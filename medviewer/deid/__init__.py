"""De-identification of DICOM files: PS3.15 Annex E Basic Profile with its options.

The public API, for the CLI, the teaching export and the Qt panels:

- :class:`DeidOptions` - the profile options the user chooses;
- :func:`deidentify_files` - de-identify inputs into an export folder, with an audit;
- :class:`Exporter` - the same, one file at a time (the teaching export uses it);
- :func:`deidentify_dataset` and :class:`DeidSession` - one in-memory dataset;
- :func:`assess_burned_in`, :class:`Region`, :func:`blackout` - burned-in text.

See ``docs/deidentification.md`` for what each option keeps and removes.
"""

from medviewer.deid.audit import AuditEntry, ExportAudit, FileAudit
from medviewer.deid.burned_in import BurnedInAssessment, Region, assess_burned_in, blackout
from medviewer.deid.engine import deidentify_dataset
from medviewer.deid.errors import BurnedInTextError, DeidError, DeidOptionsError, RegionError
from medviewer.deid.export import (
    AUDIT_NAME,
    DeidReport,
    Exporter,
    SkippedInput,
    WrittenFile,
    deidentify_files,
)
from medviewer.deid.options import DeidOptions
from medviewer.deid.session import DeidSession

__all__ = [
    "AUDIT_NAME",
    "AuditEntry",
    "BurnedInAssessment",
    "BurnedInTextError",
    "DeidError",
    "DeidOptions",
    "DeidOptionsError",
    "DeidReport",
    "DeidSession",
    "ExportAudit",
    "Exporter",
    "FileAudit",
    "Region",
    "RegionError",
    "SkippedInput",
    "WrittenFile",
    "assess_burned_in",
    "blackout",
    "deidentify_dataset",
    "deidentify_files",
]
