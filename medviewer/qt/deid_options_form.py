"""A form for the de-identification options a user keeps as defaults (PS3.15 E.3 options).

Used by the de-identified export dialog and by the settings dialog; both read
and write it as the ``deid_defaults`` dict of the settings
(:data:`medviewer.services.settings.DEID_DEFAULTS` keys, nothing else).
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QGroupBox,
    QLabel,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from medviewer.services.deid_choices import DATE_CHOICES, DEID_DEFAULTS, OPTION_CHOICES

# Grey explanations under each choice.
FORM_STYLE = """
QLabel#optionHint { color: #8a8f98; }
"""
class DeidOptionsForm(QWidget):
    """Date policy and retain/clean options, each with one line saying what it does.

    Call :meth:`set_values` and :meth:`values` on the GUI thread.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet(FORM_STYLE)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

        dates_box = QGroupBox("Dates", self)
        dates_layout = QVBoxLayout(dates_box)
        self.date_group = QButtonGroup(self)
        self.date_buttons: dict[str, QRadioButton] = {}
        for choice in DATE_CHOICES:
            button = QRadioButton(choice.label, dates_box)
            self.date_group.addButton(button)
            self.date_buttons[choice.policy] = button
            dates_layout.addWidget(button)
            dates_layout.addWidget(_hint(choice.hint, dates_box))
        layout.addWidget(dates_box)

        options_box = QGroupBox("Keep or clean (everything else identifying is removed)", self)
        options_layout = QVBoxLayout(options_box)
        self.checks: dict[str, QCheckBox] = {}
        for choice in OPTION_CHOICES:
            check = QCheckBox(choice.label, options_box)
            self.checks[choice.field] = check
            options_layout.addWidget(check)
            options_layout.addWidget(_hint(choice.hint, options_box))
        layout.addWidget(options_box)
        # Spare height goes below the options, not between a choice and its explanation.
        layout.addStretch(1)
        self.set_values(DEID_DEFAULTS)

    def set_values(self, values: Mapping[str, object]) -> None:
        """Show ``values`` (a ``deid_defaults`` dict); missing keys show their default.

        Unknown keys are ignored, and an unknown date policy shows "remove", the
        safest one, as the settings do when they load a damaged file.
        """
        chosen = {**DEID_DEFAULTS, **{k: v for k, v in values.items() if k in DEID_DEFAULTS}}
        self.date_buttons.get(str(chosen["dates"]), self.date_buttons["remove"]).setChecked(True)
        for key, check in self.checks.items():
            check.setChecked(bool(chosen[key]))

    def values(self) -> dict:
        """Return the shown options as a ``deid_defaults`` dict (every DEID_DEFAULTS key)."""
        dates = next(p for p, b in self.date_buttons.items() if b.isChecked())
        out = {"dates": dates, **{k: c.isChecked() for k, c in self.checks.items()}}
        return {key: out[key] for key in DEID_DEFAULTS}


def _hint(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setObjectName("optionHint")
    label.setWordWrap(True)
    # Indented under its check box or radio button, so it reads as that option's line.
    label.setContentsMargins(22, 0, 0, 4)
    return label
