"""A DICOM tag browser with search, nested sequences shown as a tree."""

from __future__ import annotations

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QLineEdit, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

MAX_VALUE_CHARS = 200


def _value_text(element) -> str:
    if element.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") and element.tag != 0x00020001:
        length = len(element.value) if element.value is not None else 0
        return f"<{length} bytes>"
    text = str(element.value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "\u2026"


class TagBrowserDialog(QDialog):
    """Show every element of a header; the search box filters by tag, keyword or value."""

    def __init__(self, dataset, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"DICOM tags \u2014 {title}")
        self.resize(820, 640)
        layout = QVBoxLayout(self)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter by tag (0010,0010), keyword or value\u2026")
        self.search.setClearButtonEnabled(True)
        layout.addWidget(self.search)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Tag", "Keyword", "VR", "Value"])
        self.tree.setColumnWidth(0, 110)
        self.tree.setColumnWidth(1, 230)
        self.tree.setColumnWidth(2, 40)
        layout.addWidget(self.tree, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        meta = getattr(dataset, "file_meta", None)
        if meta is not None:
            self._add(self.tree.invisibleRootItem(), meta)
        self._add(self.tree.invisibleRootItem(), dataset)
        self.tree.expandToDepth(0)
        self.search.textChanged.connect(self.apply_filter)

    def _add(self, parent: QTreeWidgetItem, dataset) -> None:
        for element in dataset:
            tag = f"({element.tag.group:04X},{element.tag.element:04X})"
            if element.VR == "SQ":
                item = QTreeWidgetItem([tag, element.keyword or element.name, "SQ",
                                        f"{len(element.value)} item(s)"])
                parent.addChild(item)
                for n, child in enumerate(element.value, start=1):
                    sub = QTreeWidgetItem(["", f"Item {n}", "", ""])
                    item.addChild(sub)
                    self._add(sub, child)
            else:
                parent.addChild(QTreeWidgetItem([tag, element.keyword or element.name,
                                                 element.VR, _value_text(element)]))

    def apply_filter(self, text: str) -> int:
        """Show only elements matching ``text`` (and their parents); return how many match."""
        needle = text.strip().lower().replace(" ", "")
        return self._filter(self.tree.invisibleRootItem(), needle)

    def _filter(self, item: QTreeWidgetItem, needle: str) -> int:
        matches = 0
        for i in range(item.childCount()):
            child = item.child(i)
            own = not needle or any(needle in child.text(c).lower().replace(" ", "")
                                    for c in range(4))
            below = self._filter(child, "" if own else needle)
            child.setHidden(not (own or below))
            matches += int(own and bool(needle)) + below
        return matches
