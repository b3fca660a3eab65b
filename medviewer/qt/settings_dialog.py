"""The settings dialog: data folders, model and execution provider, de-identification
defaults, keyboard shortcuts.

The dialog edits a copy; :meth:`SettingsDialog.result_settings` returns the new
settings and the window saves and applies them.  A shortcut used by two actions
blocks OK until one of them changes, so a user can never save a clash.
"""

from __future__ import annotations

import copy
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QHeaderView, QKeySequenceEdit, QLabel, QLineEdit,
                               QListWidget, QPushButton, QScrollArea, QTableWidget,
                               QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)

from medviewer.qt.shortcuts import default_keys, find_conflicts, keys_to_text
from medviewer.services.settings import LOG_LEVELS, PROVIDER_CHOICES, Settings

PROVIDER_NAMES = {"auto": "Automatic (fastest that works)", "cuda": "NVIDIA CUDA",
                  "tensorrt": "NVIDIA TensorRT", "coreml": "Apple Core ML",
                  "directml": "DirectML (Windows)", "cpu": "CPU only"}


class SettingsDialog(QDialog):
    """Edit a copy of the settings.

    Parameters
    ----------
    settings : Settings
        The settings in force (not modified).
    actions : list of QAction
        The window's actions, for the shortcut table.
    """

    def __init__(self, settings: Settings, actions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.resize(760, 640)
        self._settings = copy.deepcopy(settings)
        self._actions = [a for a in actions if a.objectName()]
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self._folders_page(), "Data folders")
        self.tabs.addTab(self._model_page(), "Model")
        self.tabs.addTab(self._deid_page(), "De-identification")
        self.tabs.addTab(self._shortcuts_page(), "Keyboard shortcuts")
        layout.addWidget(self.tabs)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel, self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._check_conflicts()

    # -- pages ----------------------------------------------------------------------------
    def _folders_page(self) -> QWidget:
        from medviewer.paths import data_dir, log_dir

        page, form = _form_page(self)
        row = QHBoxLayout()
        self.library_folder = QLineEdit(self._settings.library_folder, page)
        self.library_folder.setPlaceholderText(str(data_dir()))
        browse = QPushButton("Choose\u2026", page)
        browse.clicked.connect(lambda: self._choose_folder(self.library_folder))
        row.addWidget(self.library_folder, 1)
        row.addWidget(browse)
        form.addRow("New libraries and imports", row)
        self.model_folders = QListWidget(page)
        self.model_folders.addItems(self._settings.model_folders)
        self.model_folders.setMaximumHeight(120)
        buttons = QHBoxLayout()
        add, remove = QPushButton("Add\u2026", page), QPushButton("Remove", page)
        add.clicked.connect(self._add_model_folder)
        remove.clicked.connect(lambda: [self.model_folders.takeItem(self.model_folders.row(i))
                                        for i in self.model_folders.selectedItems()])
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        form.addRow("Extra model folders", self.model_folders)
        form.addRow("", buttons)
        hint = QLabel("Model bundles are also found in your MedViewer data folder "
                      f"({data_dir() / 'models'}) and the demo model ships with the app.", page)
        hint.setWordWrap(True)
        hint.setObjectName("welcomeNote")
        form.addRow("", hint)
        self.log_level = QComboBox(page)
        self.log_level.addItems(LOG_LEVELS)
        self.log_level.setCurrentText(self._settings.log_level)
        form.addRow("Log detail", self.log_level)
        form.addRow("Log folder", QLabel(str(log_dir()), page))
        return page

    def _model_page(self) -> QWidget:
        from medviewer.services.models import bundle_search_paths, find_bundles

        page, form = _form_page(self)
        self.default_model = QComboBox(page)
        self.default_model.addItem("The demo model (or the first one found)", "")
        for folder in find_bundles(bundle_search_paths(self._settings.model_folders)):
            self.default_model.addItem(f"{folder.name}  \u2014  {folder.parent}", str(folder))
        current = self._settings.default_model
        if current and self.default_model.findData(current) < 0:
            self.default_model.addItem(f"{Path(current).name} (not found)", current)
        self.default_model.setCurrentIndex(max(0, self.default_model.findData(current)))
        form.addRow("Default model", self.default_model)
        self.provider = QComboBox(page)
        for key in PROVIDER_CHOICES:
            self.provider.addItem(PROVIDER_NAMES[key], key)
        self.provider.setCurrentIndex(self.provider.findData(self._settings.provider_preference))
        form.addRow("Execution provider", self.provider)
        self.provider_note = QLabel(self._provider_note(), page)
        self.provider_note.setWordWrap(True)
        self.provider_note.setObjectName("welcomeNote")
        form.addRow("", self.provider_note)
        return page

    @staticmethod
    def _provider_note() -> str:
        from medviewer.inference.providers import DISPLAY, available_providers

        names = ", ".join(DISPLAY.get(p, p.replace("ExecutionProvider", ""))
                          for p in available_providers())
        return ("This ONNX Runtime build includes: " + names + ". A provider that cannot start "
                "on this machine (no GPU or driver) falls back to the CPU, and the Model panel "
                "says why.")

    def _deid_page(self) -> QWidget:
        from medviewer.qt.deid_options_form import DeidOptionsForm

        page = QWidget(self)
        layout = QVBoxLayout(page)
        intro = QLabel("Used to pre-fill File \u25b8 Export de-identified copy. Each export "
                       "can still change them.", page)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.deid_form = DeidOptionsForm(page)
        self.deid_form.set_values(self._settings.deid_defaults)
        layout.addWidget(self.deid_form)
        layout.addStretch(1)
        # Ten options with explanations: scroll rather than squeeze the explanations.
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setWidget(page)
        return scroll

    def _shortcuts_page(self) -> QWidget:
        page = QWidget(self)
        layout = QVBoxLayout(page)
        self.shortcut_table = QTableWidget(len(self._actions), 3, page)
        self.shortcut_table.setHorizontalHeaderLabels(["Menu", "Action", "Keys"])
        self.shortcut_table.verticalHeader().setVisible(False)
        self.shortcut_table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.shortcut_table.setSelectionBehavior(QTableWidget.SelectRows)
        self.shortcut_table.setSelectionMode(QTableWidget.SingleSelection)
        for row, action in enumerate(self._actions):
            keys = self._settings.shortcuts.get(action.objectName(), default_keys(action))
            cells = (str(action.property("group")), action.text().replace("\u2026", ""), keys)
            for column, value in enumerate(cells):
                item = QTableWidgetItem(value)
                item.setData(Qt.UserRole, action.objectName())
                self.shortcut_table.setItem(row, column, item)
        header = self.shortcut_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeToContents)
        layout.addWidget(self.shortcut_table, 1)
        edit_row = QHBoxLayout()
        edit_row.addWidget(QLabel("New keys:", page))
        self.key_edit = QKeySequenceEdit(page)
        edit_row.addWidget(self.key_edit, 1)
        for text, slot in (("Set", self._set_keys), ("Clear", lambda: self._write_keys("")),
                           ("Default", self._reset_keys)):
            button = QPushButton(text, page)
            button.clicked.connect(slot)
            edit_row.addWidget(button)
        layout.addLayout(edit_row)
        self.conflicts = QLabel("", page)
        self.conflicts.setWordWrap(True)
        self.conflicts.setStyleSheet("color: #e5a54b")
        layout.addWidget(self.conflicts)
        return page

    # -- editing ----------------------------------------------------------------------------
    def _choose_folder(self, line: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", line.text() or str(Path.home()))
        if folder:
            line.setText(folder)

    def _add_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a model folder", str(Path.home()))
        if folder:
            self.model_folders.addItem(folder)

    def _selected_row(self) -> int:
        rows = self.shortcut_table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def _write_keys(self, text: str, row: int | None = None) -> None:
        row = self._selected_row() if row is None else row
        if row < 0:
            return
        self.shortcut_table.item(row, 2).setText(text)
        self._check_conflicts()

    def _set_keys(self) -> None:
        self._write_keys(self.key_edit.keySequence().toString(QKeySequence.PortableText))
        self.key_edit.clear()

    def _reset_keys(self) -> None:
        row = self._selected_row()
        if row >= 0:
            self._write_keys(default_keys(self._actions[row]), row)

    def assignment(self) -> dict[str, str]:
        """Return action id -> key text for every action, as the table shows it."""
        return {self.shortcut_table.item(r, 2).data(Qt.UserRole): self.shortcut_table.item(r, 2).text()
                for r in range(self.shortcut_table.rowCount())}

    def _check_conflicts(self) -> None:
        clashes = find_conflicts(self.assignment())
        names = {a.objectName(): a.text().replace("\u2026", "") for a in self._actions}
        self.conflicts.setText("".join(
            f"{key} is used by {' and '.join(names[i] for i in ids)}. " for key, ids in clashes.items()))
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(not clashes)

    def set_shortcut(self, ident: str, keys: str) -> None:
        """Give an action new keys (portable text), as if typed in the table."""
        for row in range(self.shortcut_table.rowCount()):
            if self.shortcut_table.item(row, 2).data(Qt.UserRole) == ident:
                self._write_keys(keys, row)
                return
        raise KeyError(ident)

    # -- result -----------------------------------------------------------------------------
    def result_settings(self) -> Settings:
        """Return the edited settings (only changed shortcuts are stored)."""
        result = copy.deepcopy(self._settings)
        result.library_folder = self.library_folder.text().strip()
        result.model_folders = [self.model_folders.item(i).text()
                                for i in range(self.model_folders.count())]
        result.log_level = self.log_level.currentText()
        result.default_model = self.default_model.currentData() or ""
        result.provider_preference = self.provider.currentData()
        result.deid_defaults = dict(self.deid_form.values())
        defaults = {a.objectName(): default_keys(a) for a in self._actions}
        result.shortcuts = {ident: keys for ident, keys in self.assignment().items()
                            if _normalise(keys) != _normalise(defaults.get(ident, ""))}
        return result


def _form_page(parent: QWidget) -> tuple[QWidget, QFormLayout]:
    """Return a page whose form rows keep their height, the spare space left below."""
    page = QWidget(parent)
    outer = QVBoxLayout(page)
    form = QFormLayout()
    outer.addLayout(form)
    outer.addStretch(1)
    return page, form


def _normalise(text: str) -> str:
    from medviewer.qt.shortcuts import text_to_keys

    return keys_to_text(text_to_keys(text))
