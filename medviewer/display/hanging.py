"""Hanging protocols: which layout, and which series of which study in each viewport.

A reader comparing with priors wants the current study first and the same kind of
series from each earlier study of the same patient beside it, newest prior first.
The layout is chosen by modality and body part: the user's last choice for that
pair (remembered in the settings), else one cell per study shown, up to six.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

LAYOUTS: dict[str, tuple[int, int]] = {"1x1": (1, 1), "1x2": (1, 2), "2x2": (2, 2),
                                       "1x3": (1, 3), "2x3": (2, 3)}
MAX_VIEWPORTS = 6


def parse_layout(text: str) -> tuple[int, int]:
    """Return (rows, columns) of a layout name such as ``"2x3"``.

    Raises
    ------
    ValueError
        Not ``RxC``, or more than :data:`MAX_VIEWPORTS` cells.
    """
    if text in LAYOUTS:
        return LAYOUTS[text]
    try:
        rows, cols = (int(v) for v in text.lower().replace(" ", "").split("x"))
    except ValueError as exc:
        raise ValueError(f"a layout is rows x columns, e.g. 2x3 (not {text!r})") from exc
    if rows < 1 or cols < 1 or rows * cols > MAX_VIEWPORTS:
        raise ValueError(f"a layout has 1 to {MAX_VIEWPORTS} viewports ({text!r} has {rows * cols})")
    return rows, cols


def protocol_key(modality: str, body_part: str) -> str:
    """Return the key a remembered layout is stored under (``"CT|HEAD"``)."""
    return f"{(modality or '').upper()}|{(body_part or '').upper()}"


@dataclass(frozen=True)
class SeriesChoice:
    """A series that can be hung: its study's date and the series' kind."""

    series_id: int
    study_id: int
    study_date: str
    modality: str
    body_part: str
    description: str
    instances: int = 1


@dataclass
class HangingPlan:
    """The layout and the series for each viewport, in order, with what was found."""

    layout: str
    series_ids: list[int]
    study_dates: list[str]
    notes: list[str] = field(default_factory=list)


def _words(text: str) -> set[str]:
    return {w for w in "".join(c if c.isalnum() else " " for c in text.lower()).split() if w}


def _similar(current: SeriesChoice, candidate: SeriesChoice) -> tuple:
    # Same modality first, then body part, then shared description words, then size.
    return (candidate.modality == current.modality,
            bool(current.body_part) and candidate.body_part.upper() == current.body_part.upper(),
            len(_words(current.description) & _words(candidate.description)),
            -abs(candidate.instances - current.instances))


def plan_hanging(current: SeriesChoice, studies: Sequence[Sequence[SeriesChoice]],
                 remembered: dict[str, str] | None = None) -> HangingPlan:
    """Choose the layout and series: the current series, then the best match of each prior.

    Parameters
    ----------
    current : SeriesChoice
        The series on screen (its study is the current study).
    studies : sequence of sequences of SeriesChoice
        Every study of the same patient with its series (the current one included).
    remembered : dict, optional
        :func:`protocol_key` -> layout name, the user's earlier choices.
    """
    priors = []
    for series in studies:
        if not series or series[0].study_id == current.study_id:
            continue
        date = series[0].study_date
        if date and current.study_date and date > current.study_date:
            continue  # a later study is not a prior of this one
        best = max(series, key=lambda s: _similar(current, s))
        if best.modality != current.modality:
            continue  # a prior X-ray beside a CT is not a comparison
        priors.append(best)
    priors.sort(key=lambda s: s.study_date or "", reverse=True)
    priors = priors[: MAX_VIEWPORTS - 1]
    notes = []
    if not priors:
        notes.append("no prior study of this patient with the same modality")
    shown = [current, *priors]
    key = protocol_key(current.modality, current.body_part)
    layout = (remembered or {}).get(key)
    if layout is not None:
        try:
            rows, cols = parse_layout(layout)
        except ValueError:
            layout = None
        else:
            if rows * cols < len(shown):
                notes.append(f"the remembered layout {layout} shows {rows * cols} of "
                             f"{len(shown)} studies")
    if layout is None:
        layout = {1: "1x1", 2: "1x2", 3: "1x3", 4: "2x2"}.get(len(shown), "2x3")
    rows, cols = parse_layout(layout)
    shown = shown[: rows * cols]
    return HangingPlan(layout, [s.series_id for s in shown], [s.study_date for s in shown], notes)
