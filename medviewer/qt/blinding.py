"""Hide every other window while a reader reads or a learner takes a quiz; bring them back.

The main window shows patient names, model results and similar cases; the Teaching
window shows the diagnosis.  A blinded screen (the reading screen, the quiz) hides
them all while it is up and shows them again when it closes.
"""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QWidget


class HiddenWindows:
    """The windows one blinded screen hid (GUI thread only)."""

    def __init__(self) -> None:
        self.windows: list[QWidget] = []

    def hide_all_but(self, keep: QWidget) -> None:
        """Hide every visible top-level window except ``keep``."""
        self.windows = [w for w in QApplication.topLevelWidgets()
                        if w is not keep and w.isWindow() and w.isVisible()]
        for widget in self.windows:
            widget.hide()

    def restore(self) -> None:
        """Show again what :meth:`hide_all_but` hid (windows deleted meanwhile are skipped)."""
        for widget in self.windows:
            try:
                widget.show()
            except RuntimeError:  # its C++ object is gone
                continue
        self.windows = []
