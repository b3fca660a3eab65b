"""The case panel: what the library knows about the image on screen."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from medviewer.store.library import Library


class CasePanel(QWidget):
    """Show labels (with their source), the file and the geometry of the current image."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        self.text.setTextFormat(self.text.textFormat().RichText)
        layout.addWidget(self.text)
        layout.addStretch(1)
        self.show_nothing()

    def show_nothing(self) -> None:
        """Show the empty state."""
        self.text.setText("<i>No image open.</i>")

    def show_instance(self, library_path: str, instance_id: int, location: str,
                      warnings: list[str]) -> None:
        """Describe one instance and its case(s)."""
        with Library(library_path) as library:
            cases = library.conn.execute(
                "SELECT id, frame, mask_path FROM cases WHERE instance_ref = ?",
                (instance_id,)).fetchall()
            parts = []
            for case_id, frame, mask in cases:
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
        html += f"<h3>File</h3><span style='font-size:small'>{location}</span>"
        self.text.setText(html)
