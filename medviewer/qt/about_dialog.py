"""The About box: version, purpose, the licences of the bundled components and the demo model's data.

Everything shown comes from :mod:`medviewer.services.about`; this module only lays it out.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHBoxLayout,
                               QHeaderView, QLabel, QPlainTextEdit, QTableWidget, QTableWidgetItem,
                               QTabWidget, QVBoxLayout, QWidget)

from medviewer.services.about import (FROM_TABLE, UNKNOWN, app_metadata, component_licences,
                                      components_text, demo_model_provenance)

ICON_SIZE = 72


def app_icon() -> QIcon:
    """Return MedViewer's icon from the packaged SVG."""
    return QIcon(str(resources.files("medviewer.resources").joinpath("medviewer.svg")))


class _Item(QTableWidgetItem):
    """A cell that sorts case-insensitively, so "PySide6" sits among the p's, not first."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return self.text().casefold() < other.text().casefold()


class AboutDialog(QDialog):
    """Show MedViewer's version and licence, its components' licences and the demo model's data.

    Parameters
    ----------
    parent : QWidget, optional
    bundle_folder : path, optional
        The model bundle to describe under "Demo model and data"; default the demo bundle.
    """

    def __init__(self, parent: QWidget | None = None, bundle_folder: str | Path | None = None
                 ) -> None:
        super().__init__(parent)
        self.setWindowTitle("About MedViewer")
        self.resize(660, 540)
        info = app_metadata()
        self.components = component_licences()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 16, 18, 12)
        layout.setSpacing(12)
        layout.addLayout(self._header(info))

        self.tabs = QTabWidget(self)
        self.tabs.addTab(self._components_page(), "Components")
        self.tabs.addTab(self._model_page(bundle_folder), "Demo model and data")
        layout.addWidget(self.tabs, 1)

        buttons = QDialogButtonBox(QDialogButtonBox.Close, self)
        self.copy_button = buttons.addButton("Copy component list", QDialogButtonBox.ActionRole)
        self.copy_button.setToolTip("Copy every component, version, licence and home page "
                                    "as tab-separated text")
        self.copy_button.clicked.connect(self.copy_components)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    # -- parts ------------------------------------------------------------------------------
    def _header(self, info) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(16)
        icon = QLabel(self)
        icon.setPixmap(app_icon().pixmap(ICON_SIZE, ICON_SIZE))
        icon.setAlignment(Qt.AlignTop)
        row.addWidget(icon)
        text = QVBoxLayout()
        text.setSpacing(4)
        self.title = QLabel(f"{info.name} {info.version}", self)
        self.title.setStyleSheet("font-size: 20px; font-weight: 600;")
        self.title.setTextInteractionFlags(Qt.TextSelectableByMouse)
        text.addWidget(self.title)
        purpose = QLabel(info.description, self)
        purpose.setWordWrap(True)
        text.addWidget(purpose)
        self.disclaimer = QLabel(info.disclaimer, self)
        self.disclaimer.setStyleSheet("color: #ffcf70; font-weight: 600;")
        text.addWidget(self.disclaimer)
        licence = f"Licence: {info.licence}"
        if info.homepage:
            licence += f" \u2014 <a href=\"{info.homepage}\">{info.homepage}</a>"
        self.licence = QLabel(licence, self)
        self.licence.setOpenExternalLinks(True)
        self.licence.setStyleSheet("color: #aeb4bd;")
        text.addWidget(self.licence)
        row.addLayout(text, 1)
        return row

    def _components_page(self) -> QWidget:
        page = QWidget(self)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(8, 10, 8, 8)
        intro = QLabel("MedViewer is built on these components, each under its own licence. "
                       "Hover over a row for its home page.", page)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        table = QTableWidget(len(self.components), 3, page)
        table.setHorizontalHeaderLabels(["Component", "Version", "Licence"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectRows)
        table.setAlternatingRowColors(False)
        table.setWordWrap(False)
        table.setShowGrid(False)
        marked = False
        for row, component in enumerate(self.components):
            licence = component.licence
            if component.source == FROM_TABLE:
                licence += " *"
                marked = True
            tip = "\n".join(filter(None, [
                component.url,
                f"Needed by {component.required_by}",
                f"Licence from {component.source}" if component.licence != UNKNOWN else
                "No licence found in the package metadata"]))
            for column, value in enumerate((component.name, component.version, licence)):
                item = _Item(value)
                item.setToolTip(tip)
                table.setItem(row, column, item)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.Stretch)
        table.setSortingEnabled(True)
        table.sortByColumn(0, Qt.AscendingOrder)
        layout.addWidget(table, 1)
        if marked:
            note = QLabel("* not stated in the component's own package metadata here; "
                          "taken from MedViewer's table of known licences.", page)
            note.setWordWrap(True)
            note.setStyleSheet("color: #8a8f98;")
            layout.addWidget(note)
        self.table = table
        return page

    def _model_page(self, bundle_folder: str | Path | None) -> QWidget:
        page = QWidget(self)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(8, 10, 8, 8)
        self.provenance = QPlainTextEdit(page)
        self.provenance.setReadOnly(True)
        self.provenance.setPlainText(demo_model_provenance(bundle_folder))
        self.provenance.setStyleSheet("QPlainTextEdit { background: #121417; "
                                      "border: 1px solid #30343a; padding: 6px; }")
        layout.addWidget(self.provenance)
        return page

    # -- actions ----------------------------------------------------------------------------
    def copy_components(self) -> None:
        """Put the component list on the clipboard as tab-separated text."""
        QGuiApplication.clipboard().setText(components_text(self.components))
