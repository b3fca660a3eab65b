"""The DICOM UID grammar, checked before a UID from outside data names a file or folder.

References
----------
DICOM PS3.5 9.1 (UID encoding rules): components of digits separated by ``.``, no
leading zero in a component of more than one digit, at most 64 characters.
"""

from __future__ import annotations

import re

_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
MAX_UID_LENGTH = 64


def is_valid_uid(value: object) -> bool:
    """Return whether ``value`` is a UID as PS3.5 9.1 defines it (and so a safe file name)."""
    return (isinstance(value, str) and 0 < len(value) <= MAX_UID_LENGTH
            and _UID.fullmatch(value) is not None)


def instance_file_name(sop_uid: str) -> str:
    """Return a file stem for an instance: its UID when valid, else a stable digest of it.

    A server may send an instance UID that is not a UID (``../../x``); the file is still
    stored, under a name that cannot leave its folder and is the same on every retrieve.
    """
    if is_valid_uid(sop_uid):
        return sop_uid
    import hashlib

    return "instance-" + hashlib.sha256(str(sop_uid).encode("utf-8", "replace")).hexdigest()[:20]
