"""Studies from a PACS: node configuration, verification, query and retrieve.

- :mod:`medviewer.pacs.nodes` - DICOM nodes and DICOMweb endpoints (``pacs.json``);
- :mod:`medviewer.pacs.dimse` - C-ECHO, C-FIND, C-GET, C-MOVE with pynetdicom;
- :mod:`medviewer.pacs.dicomweb` - QIDO-RS and WADO-RS with the standard library.

The application-facing API, which imports retrieved studies into a library and
skips what is already there, is :mod:`medviewer.services.pacs`.  pynetdicom is
imported only inside the functions that need it.
"""

from medviewer.pacs.errors import (
    AssociationError,
    DicomWebError,
    NodeConfigError,
    PacsError,
    RetrieveError,
)
from medviewer.pacs.models import EchoResult, StudyMatch, StudyQuery, StudyTransfer
from medviewer.pacs.nodes import LocalAE, Node, PacsConfig, load_config, save_config

__all__ = [
    "AssociationError",
    "DicomWebError",
    "EchoResult",
    "LocalAE",
    "Node",
    "NodeConfigError",
    "PacsConfig",
    "PacsError",
    "RetrieveError",
    "StudyMatch",
    "StudyQuery",
    "StudyTransfer",
    "load_config",
    "save_config",
]
