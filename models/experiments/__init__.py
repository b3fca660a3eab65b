"""Reproducible experiments whose results go into ``models/cards/`` (no weights are committed)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
CARDS = REPO / "models" / "cards"


def portable(value: object) -> object:
    """``value`` with any absolute path under the repository's parent written relative to the repo.

    Cards are committed and read on other machines, so they must not record where this checkout
    happened to live (``/work/main/...``); ``../shared/data/...`` means the same on every clone.
    """
    if not isinstance(value, (str, Path)) or not Path(value).is_absolute():
        return value
    path = Path(value).resolve()
    try:
        return Path(os.path.relpath(path, REPO)).as_posix() if path.is_relative_to(REPO.parent) else str(value)
    except ValueError:  # another drive (Windows): keep it as given
        return str(value)
