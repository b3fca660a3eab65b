"""Hang the active series with its priors, and remember layouts per modality and body part."""

from __future__ import annotations

from PySide6.QtWidgets import QInputDialog

from medviewer.display.corner_text import format_da
from medviewer.display.hanging import (LAYOUTS, SeriesChoice, parse_layout, plan_hanging,
                                       protocol_key)
from medviewer.services.settings import save_settings


def add_layout_actions(window, menu) -> None:
    """Add the layouts (1x1 ... 2x3, custom) and "Hang with priors" to a menu."""
    for n, name in enumerate(LAYOUTS, start=1):
        window._action(menu, f"Layout {name}", lambda _c=False, v=name: choose_layout(window, v),
                       f"Ctrl+{n}")
    window._action(menu, "Layout custom\u2026", lambda: ask_custom_layout(window), "Ctrl+0")
    window._action(menu, "Hang with priors", lambda: hang_with_priors(window), "Ctrl+P")


def choose_layout(window, name: str) -> None:
    """Show a layout and remember it for the modality and body part on screen."""
    window.set_layout(name)
    series = window.active.series if window.active is not None else None
    if series is not None:
        window.settings.hanging_layouts[protocol_key(series.modality, series.body_part)] = name
        save_settings(window.settings)


def ask_custom_layout(window) -> None:
    """Ask for rows x columns and show that layout."""
    text, ok = QInputDialog.getText(window, "Custom layout", "Rows x columns (up to 6 viewports):",
                                    text=window.settings.layout)
    if not ok:
        return
    try:
        parse_layout(text.strip())
    except ValueError as exc:
        window.statusBar().showMessage(str(exc), 6000)
        return
    choose_layout(window, text.strip().lower().replace(" ", ""))


def _choices(library, study_ref: int) -> list[SeriesChoice]:
    header = library.study_header(study_ref)
    date = header.study_date if header is not None else ""
    return [SeriesChoice(s.id, s.study_ref, date, s.modality, s.body_part, s.description,
                         s.instances) for s in library.series(study_ref)]


def hang_with_priors(window):
    """Show the active series and the matching series of the patient's earlier studies."""
    viewport = window.active
    if viewport is None or viewport.series is None or not window.library_path:
        window.statusBar().showMessage("Open a series first", 4000)
        return None
    current_series = viewport.series
    with window.session.library() as library:
        patient = library.patient_of_study(current_series.study_ref)
        studies = [_choices(library, s.id) for s in library.studies(patient)]
    current = next(c for group in studies for c in group if c.series_id == current_series.id)
    plan = plan_hanging(current, studies, window.settings.hanging_layouts)
    window.set_layout(plan.layout)
    for slot, series_id in enumerate(plan.series_ids):
        if slot == 0 and series_id == current_series.id and window.viewports[0] is viewport:
            continue
        window.open_series(series_id, viewport=window.viewports[slot])
    window.set_active(window.viewports[0])
    dates = ", ".join(format_da(d) or "no date" for d in plan.study_dates[1:])
    text = (f"Current {format_da(plan.study_dates[0]) or '(no date)'}"
            + (f" with priors {dates}" if dates else "") + f" in {plan.layout}")
    if plan.notes:
        text += "; " + "; ".join(plan.notes)
    window.statusBar().showMessage(text, 8000)
    return plan
