"""Printing command results as text for people or JSON for scripts."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GuiRequest:
    """A command's answer that means "now open the GUI".

    With ``study`` (and a library) or ``package`` it opens the reader-study
    reading screen instead of the viewer.
    """

    library: str | None = None
    study: str | None = None
    reader: str | None = None
    package: str | None = None
    # Open the demo library with one case classified, searched and explained.
    demo_tour: bool = False
    # When ``medviewer demo`` started (perf_counter), so "ready in" counts its build.
    demo_started: float | None = None
    # Options of ``medviewer smoke-test`` (the first-run path run headless), when asked for.
    smoke_test: dict | None = None


def strict_json(value: Any) -> Any:
    """Return ``value`` with NaN and infinities as ``null``, so the JSON is valid (RFC 8259)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if hasattr(value, "dtype") and hasattr(value, "tolist"):  # numpy scalars and arrays
        return strict_json(value.tolist())
    return value


def emit(as_json: bool, payload: Any, text: str) -> None:
    """Print ``payload`` as JSON when ``as_json`` is set, else the human ``text``.

    The JSON never holds NaN or Infinity (a number that is not known is ``null``).
    """
    if as_json:
        json.dump(strict_json(payload), sys.stdout, indent=2, default=str, allow_nan=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")


def fail(message: str, code: int = 2) -> int:
    """Print an error message on stderr and return the exit code to use."""
    sys.stderr.write(f"medviewer: error: {message}\n")
    return code
