"""Private attributes known to be safe (Retain Safe Private Option).

References
----------
DICOM PS3.15 2024b E.3.10 and Table E.3.10-1 "Exported Safe Private Attributes":
private data elements, named by private creator, group and element byte, that
vendors have declared free of identifying information.  A selection of rows for
CT, MR, mammography and PET is transcribed here (the element bytes are those of
the table, i.e. the low byte of ``(gggg,xxEE)``).

Everything else that is private is removed: a private block is opaque, and the
Basic Profile removes all private attributes (Table E.1-1, "Private attributes").
"""

from __future__ import annotations

# creator -> group -> element bytes.  Creators compare after stripping spaces.
SAFE_PRIVATE: dict[str, dict[int, frozenset[int]]] = {
    "GEMS_ACQU_01": {0x0019: frozenset({0x23, 0x24, 0x27, 0x9E})},
    "GEMS_PARM_01": {0x0043: frozenset({0x27, 0x6F})},
    "GEMS_SERS_01": {0x0025: frozenset({0x07})},
    "GEMS_HELIOS_01": {0x0045: frozenset({0x01, 0x02})},
    "GEMS_IDI_01": {0x0073: frozenset({0x20, 0x21, 0x30, 0x31, 0x32, 0x40, 0x50})},
    "Philips MR Imaging DD 001": {0x2005: frozenset({0x0D, 0x0E})},
    "PHILIPS MR IMAGING DD 001": {0x2005: frozenset({0x0D, 0x0E})},
    "Philips PET Private Group": {0x7053: frozenset({0x00, 0x09})},
    "ELSCINT1": {0x00E1: frozenset({0x21, 0x50}), 0x01E1: frozenset({0x26}),
                 0x01F1: frozenset({0x01, 0x07, 0x26, 0x27})},
}


def is_safe_private(creator: str | None, group: int, element: int) -> bool:
    """Tell whether private element ``(group, element)`` under ``creator`` is listed safe."""
    if not creator:
        return False
    groups = SAFE_PRIVATE.get(str(creator).strip())
    if not groups:
        return False
    return (element & 0xFF) in groups.get(group, frozenset())
