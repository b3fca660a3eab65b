"""Reproducible experiments whose results go into ``models/cards/`` (no weights are committed)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
CARDS = REPO / "models" / "cards"
