"""The case panel: what the library knows about the image on screen."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from medviewer.services.session import Session


class CasePanel(QWidget):
    """Show labels (with their source), the file and the geometry of the current image.

    Follows the session's image on screen; it reads the library once scrolling
    pauses (150 ms), never on every step of a fast scroll, and again after a
    classification (the model's labels are stored with the case).
    """

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        self.text.setTextFormat(self.text.textFormat().RichText)
        layout.addWidget(self.text)
        layout.addStretch(1)
        self._timer = QTimer(self, singleShot=True, interval=150)
        self._timer.timeout.connect(self.refresh)
        session.connect("case_shown", lambda image: self._timer.start())
        session.connect("classified", lambda result: self._timer.start())
        self.show_nothing()

    def show_nothing(self) -> None:
        """Show the empty state."""
        self.text.setText("<i>No image open.</i>")

    def refresh(self) -> None:
        """Describe the session's image on screen now."""
        self._timer.stop()
        image = self.session.image
        if image is None or image.library != self.session.library_path:
            self.show_nothing()
            return
        with self.session.library() as library:
            series = library.series(series_id=image.series_id)
            warnings = [w.message for w in series[0].warnings] if series else []
            parts = []
            for case_id, frame, mask in library.instance_cases(image.instance_id):
                labels = library.labels(case_id)
                found = ", ".join(f"<b>{name}</b> <span style='color:#8a8f98'>({source})</span>"
                                  for name, _v, source, _d in labels if source != "model") or "none"
                predicted = [(name, value) for name, value, source, _d in labels if source == "model"]
                if predicted:
                    found += "<br>Model: " + ", ".join(f"{n} {v * 100:.0f}%" for n, v in predicted)
                parts.append(f"Case {case_id} (frame {frame + 1}): {found}"
                             + ("<br>lesion mask available" if mask else ""))
        html = "<h3>Case</h3>" + ("<br>".join(parts) or "This image is not a case of the library "
                                  "(only a key slice of each stack is).")
        if warnings:
            html += "<h3>Geometry</h3>" + "<br>".join(f"\u26a0 {w}" for w in warnings)
        html += f"<h3>File</h3><span style='font-size:small'>{image.location}</span>"
        self.text.setText(html)
