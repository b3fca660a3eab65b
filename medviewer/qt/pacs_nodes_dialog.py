"""The form that adds or edits a PACS node, and the small dialog around it.

:class:`NodeEditor` is the form itself (a "PACS" tab and a "This computer" tab);
:class:`SetupPage` shows it inline, with a word of explanation, when no node exists
yet; :class:`NodeDialog` wraps it with Save/Cancel for "Add…" and "Edit…".  Saving goes through
:mod:`medviewer.services.pacs`; nothing here touches the network.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from medviewer.pacs import LocalAE, Node, NodeConfigError
from medviewer.qt.pacs_widgets import DIALOG_STYLE, MessageBar
from medviewer.services import pacs

PROTOCOLS = (("DICOM (C-FIND, C-GET / C-MOVE)", "dimse"),
             ("DICOMweb (QIDO-RS, WADO-RS)", "dicomweb"))
RETRIEVE = (("C-GET: images come back on the same connection", "get"),
            ("C-MOVE: the PACS sends images to this computer", "move"))
AUTH = (("None", "none"), ("User name and password", "basic"), ("Bearer token", "bearer"))


def _combo(parent: QWidget, choices: tuple[tuple[str, str], ...]) -> QComboBox:
    combo = QComboBox(parent)
    for text, key in choices:
        combo.addItem(text, key)
    return combo


def _select(combo: QComboBox, key: str) -> None:
    combo.setCurrentIndex(max(0, combo.findData(key)))


class NodeEditor(QWidget):
    """Fields of one node plus this computer's DICOM identity; saves them to the config.

    Parameters
    ----------
    config_path : path-like or None
        The PACS configuration file (None: the user's).
    node : Node, optional
        The node to edit; a new one when omitted.
    parent : QWidget, optional
    """

    def __init__(self, config_path=None, node: Node | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.config_path = config_path
        self.original = node
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self._node_tab(), "PACS")
        self.tabs.addTab(self._local_tab(), "This computer")
        self.message = MessageBar(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        layout.addWidget(self.message)
        if node is not None:
            self.set_node(node)
        self._show_protocol_rows()

    def _node_tab(self) -> QWidget:
        page = QWidget(self)
        form = self.node_form = QFormLayout(page)
        self.name = QLineEdit(page)
        self.name.setPlaceholderText("what you call it, e.g. Hospital PACS")
        self.protocol = _combo(page, PROTOCOLS)
        self.host = QLineEdit(page)
        self.host.setPlaceholderText("e.g. pacs.hospital.org or 10.1.2.3")
        self.port = QSpinBox(page)
        self.port.setRange(1, 65535)
        self.port.setValue(104)
        self.ae_title = QLineEdit(page)
        self.ae_title.setMaxLength(16)
        self.ae_title.setPlaceholderText("the PACS's AE title, e.g. ORTHANC")
        self.retrieve = _combo(page, RETRIEVE)
        self.url = QLineEdit(page)
        self.url.setPlaceholderText("e.g. https://pacs.hospital.org/dicom-web")
        self.auth = _combo(page, AUTH)
        self.username = QLineEdit(page)
        self.password_env = QLineEdit(page)
        self.password_env.setPlaceholderText("name of the variable, e.g. PACS_PASSWORD")
        self.token_env = QLineEdit(page)
        self.token_env.setPlaceholderText("name of the variable, e.g. PACS_TOKEN")
        self.timeout = QSpinBox(page)
        self.timeout.setRange(1, 3600)
        self.timeout.setValue(30)
        self.timeout.setSuffix(" s")
        for label, field in (("Name", self.name), ("Protocol", self.protocol),
                             ("Host", self.host), ("Port", self.port),
                             ("Called AE title", self.ae_title), ("Retrieve with", self.retrieve),
                             ("Base URL", self.url), ("Authentication", self.auth),
                             ("User name", self.username),
                             ("Password variable", self.password_env),
                             ("Token variable", self.token_env), ("Timeout", self.timeout)):
            form.addRow(label, field)
        # Secrets never go into the config file (see medviewer.pacs.nodes): say where they live.
        secret_tip = ("MedViewer reads the secret from this environment variable when it "
                      "connects; it never stores passwords or tokens.")
        self.password_env.setToolTip(secret_tip)
        self.token_env.setToolTip(secret_tip)
        self.protocol.currentIndexChanged.connect(self._show_protocol_rows)
        self.auth.currentIndexChanged.connect(self._show_protocol_rows)
        return page

    def _local_tab(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        note = QLabel("Only C-MOVE needs these: the PACS must know this AE title, this "
                      "computer's address and the port below. C-GET and DICOMweb ignore them.",
                      page)
        note.setWordWrap(True)
        form.addRow(note)
        try:
            local = pacs.list_nodes(self.config_path).local
        except NodeConfigError:
            local = LocalAE()  # the PACS window already reports the unreadable file
        self.local_ae = QLineEdit(local.ae_title, page)
        self.local_ae.setMaxLength(16)
        self.local_host = QLineEdit(local.storage_host, page)
        self.local_host.setToolTip("0.0.0.0 listens on every network interface")
        self.local_port = QSpinBox(page)
        self.local_port.setRange(1, 65535)
        self.local_port.setValue(local.storage_port)
        form.addRow("AE title of this computer", self.local_ae)
        form.addRow("Listen on address", self.local_host)
        form.addRow("Port for incoming images", self.local_port)
        self.saved_local = local
        return page

    def _show_protocol_rows(self) -> None:
        dimse = self.protocol.currentData() == "dimse"
        auth = self.auth.currentData()
        visible = {self.host: dimse, self.port: dimse, self.ae_title: dimse,
                   self.retrieve: dimse, self.url: not dimse, self.auth: not dimse,
                   self.username: not dimse and auth == "basic",
                   self.password_env: not dimse and auth == "basic",
                   self.token_env: not dimse and auth == "bearer"}
        for field, show in visible.items():
            self.node_form.setRowVisible(field, show)

    def set_node(self, node: Node) -> None:
        """Fill the fields from ``node``."""
        self.name.setText(node.name)
        _select(self.protocol, node.kind)
        self.host.setText(node.host)
        self.port.setValue(node.port or 104)
        self.ae_title.setText(node.ae_title)
        _select(self.retrieve, node.retrieve)
        self.url.setText(node.url)
        _select(self.auth, node.auth)
        self.username.setText(node.username)
        self.password_env.setText(node.password_env)
        self.token_env.setText(node.token_env)
        self.timeout.setValue(round(node.timeout))

    def node(self) -> Node:
        """Return the node the fields describe (not validated)."""
        base = self.original or Node(name="")
        return replace(base, name=self.name.text().strip(), kind=self.protocol.currentData(),
                       host=self.host.text().strip(), port=self.port.value(),
                       ae_title=self.ae_title.text().strip(),
                       retrieve=self.retrieve.currentData(), url=self.url.text().strip(),
                       auth=self.auth.currentData(), username=self.username.text().strip(),
                       password_env=self.password_env.text().strip(),
                       token_env=self.token_env.text().strip(),
                       timeout=float(self.timeout.value()))

    def save(self) -> str | None:
        """Validate and write the node (and this computer's AE); return its name, or None.

        A problem is shown under the form instead of raising, so the user can fix it.
        """
        node = self.node()
        local = LocalAE(self.local_ae.text().strip(), self.local_host.text().strip(),
                        self.local_port.value())
        old = self.original.name if self.original is not None else None
        try:
            # An edit may rename the node: write the new one first so a failure loses nothing.
            pacs.add_node(node, replace=node.name == old, config_path=self.config_path)
            if old is not None and old != node.name:
                pacs.remove_node(old, self.config_path)
            if local != self.saved_local:
                pacs.set_local_ae(local, self.config_path)
                self.saved_local = local
        except NodeConfigError as exc:
            self.message.say(exc.message, "error", exc.hint)
            return None
        self.original = node
        self.message.hide()
        return node.name


class NodeDialog(QDialog):
    """Add or edit a node; emits :attr:`sig_saved` with the node's name once it is stored.

    Open it with ``open()`` (window-modal, never blocks the event loop).
    """

    sig_saved = Signal(str)

    def __init__(self, config_path=None, node: Node | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit PACS" if node is not None else "Add a PACS")
        self.setMinimumWidth(520)
        self.setStyleSheet(DIALOG_STYLE)
        self.editor = NodeEditor(config_path, node, self)
        buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.editor)
        layout.addWidget(buttons)

    def accept(self) -> None:
        """Save, and close only when the node was stored."""
        name = self.editor.save()
        if name is not None:
            super().accept()
            self.sig_saved.emit(name)


class SetupPage(QWidget):
    """The first-run page: what a PACS connection needs, the node form, "Save and test"."""

    def __init__(self, config_path=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("Connect to a PACS", self)
        title.setStyleSheet("font-size: 17px; font-weight: 600;")
        intro = QLabel("No PACS is set up yet. Enter the details your PACS administrator gave "
                       "you: for a DICOM PACS its host, port and AE title; for DICOMweb its "
                       "base URL. MedViewer saves them and tests the connection.", self)
        intro.setWordWrap(True)
        self.editor = NodeEditor(config_path, parent=self)
        self.button = QPushButton("Save and test connection", self)
        self.button.setObjectName("primaryButton")
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.button)
        # A form column of reading width, centred: full-width fields are hard to scan.
        column = QWidget(self)
        column.setMaximumWidth(680)
        inner = QVBoxLayout(column)
        for widget in (title, intro, self.editor):
            inner.addWidget(widget)
        inner.addLayout(row)
        inner.addStretch(1)
        layout = QHBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(column, 4)
        layout.addStretch(1)
