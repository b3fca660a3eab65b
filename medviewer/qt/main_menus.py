"""The main window's menus and actions: File, Image, Tools, View, Reader study, Help.

Every action is added to the window too, so its shortcut works wherever the focus is,
and carries a stable id (``image.next-image``) that keys the user's shortcut changes.
"""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence

from medviewer.display.windowing import PRESET_KEYS, PRESETS
from medviewer.qt.hanging import add_layout_actions
from medviewer.qt.measurement_actions import add_measurement_actions
from medviewer.qt.mpr_window import add_mpr_action
from medviewer.qt.seg_actions import add_seg_action
from medviewer.qt.shortcuts import action_id
from medviewer.qt.sr_text_dialog import add_sr_action
from medviewer.qt.study_menu import ReaderStudyMenu
from medviewer.qt.teaching_menu import TeachingMenu
from medviewer.qt.viewport_export import add_export_action


def add_action(window, menu, text: str, slot, keys=None, checkable=False, group="") -> QAction:
    """Add an action with its shortcuts to a menu and to the window (so its keys work)."""
    action = QAction(text, window)
    if keys:
        sequences = [QKeySequence(k) for k in (keys if isinstance(keys, list) else [keys])]
        action.setShortcuts(sequences)
    action.setCheckable(checkable)
    action.triggered.connect(slot)
    action.setProperty("group", group or menu.title().replace("&", ""))
    # A stable id (e.g. "image.next-image") keys the user's shortcut changes.
    action.setObjectName(action_id(action))
    action.setProperty("default_keys", [s.toString() for s in action.shortcuts()])
    menu.addAction(action)
    window.addAction(action)
    return action

def build_menus(window) -> None:
    """Build the main window's menus; the actions call the window's methods."""
    def act(menu, text, slot, keys=None, **options):
        return add_action(window, menu, text, slot, keys, **options)

    on = window._on_active  # run on the active viewport when it shows something
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    act(file_menu, "Open library\u2026", window.choose_library, "Ctrl+O")
    act(file_menu, "New library\u2026", window.new_library, "Ctrl+N")
    act(file_menu, "Import folder\u2026", window.choose_import_folder, "Ctrl+I")
    act(file_menu, "Import files\u2026", window.choose_import_files, "Ctrl+Shift+I")
    window.recent_menu = file_menu.addMenu("Recent libraries")
    window._fill_recent()
    act(file_menu, "Query a PACS\u2026", window.show_pacs, "Ctrl+Shift+P")
    add_sr_action(window, file_menu)
    act(file_menu, "Open the demo library", window.open_demo)
    file_menu.addSeparator()
    act(file_menu, "Export de-identified copy\u2026", window.export_deidentified, "Ctrl+E")
    file_menu.addSeparator()
    act(file_menu, "Settings\u2026", window.show_settings, "Ctrl+,")
    file_menu.addSeparator()
    act(file_menu, "Quit", window.close, "Ctrl+Q")

    image = bar.addMenu("&Image")
    act(image, "Next image", lambda: on(lambda v: v.state.step(1)), ["Down", "PgDown"])
    act(image, "Previous image", lambda: on(lambda v: v.state.step(-1)), ["Up", "PgUp"])
    act(image, "First image", lambda: on(lambda v: v.state.set_index(0)), "Home")
    act(image, "Last image",
        lambda: on(lambda v: v.state.set_index(len(v.state.planes) - 1)),
        "End")
    act(image, "Next series", lambda: window.step_series(1), "Right")
    act(image, "Previous series", lambda: window.step_series(-1), "Left")
    window.cine_action = act(image, "Play / pause cine", window.toggle_cine, "Space",
                             checkable=True)
    image.addSeparator()
    for key, name in PRESET_KEYS.items():
        # The name says where a preset applies; apply_preset refuses it elsewhere, in words.
        act(image, f"Window: {PRESETS[name].name} (CT only)",
            lambda _c=False, n=name: window.apply_preset(n), key)
    act(image, "Window: radiograph / auto", lambda: window.apply_preset("auto"), "6")
    act(image, "Window: from the header", lambda: window.apply_preset("header"), "0")
    image.addSeparator()
    act(image, "Invert", lambda: on(lambda v: v.state.toggle_invert()), "I")
    act(image, "Rotate clockwise", lambda: on(lambda v: v.state.rotate(90)), "R")
    act(image, "Rotate anticlockwise", lambda: on(lambda v: v.state.rotate(-90)), "Shift+R")
    act(image, "Flip horizontally", lambda: on(lambda v: v.state.flip(True)), "H")
    act(image, "Flip vertically", lambda: on(lambda v: v.state.flip(False)), "V")
    act(image, "Zoom in", lambda: on(lambda v: v.zoom(0.8)), ["+", "="])
    act(image, "Zoom out", lambda: on(lambda v: v.zoom(1.25)), "-")
    act(image, "Fit to window", lambda: on(lambda v: v.fit()), "F")
    act(image, "Reset view", window.reset_view, "Ctrl+R")

    tools = bar.addMenu("&Tools")
    act(tools, "Window / level (left drag)", lambda: window.set_tool("window"), "W")
    add_measurement_actions(window, tools)
    add_mpr_action(window, tools)
    add_export_action(window, tools)
    add_seg_action(window, tools)
    act(tools, "Search similar cases in a region (drag)", lambda: window.set_tool("region"), "G")
    act(tools, "Match report sentences to a region (drag)",
        lambda: window.set_tool("sentences"), "Shift+G")
    act(tools, "Show / hide the overlay", window.toggle_overlays, "O")
    tools.addSeparator()
    act(tools, "DICOM tags\u2026", window.show_tags, "T")

    view = bar.addMenu("&View")
    add_layout_actions(window, view)
    window.sync_action = act(view, "Synchronise scrolling", window.toggle_sync, "S", checkable=True)
    window.sync_action.setChecked(True)
    view.addSeparator()
    window.hide_action = act(view, "Hide identifying text", window.toggle_identifying,
                             "A", checkable=True)
    window.hide_action.setChecked(window.settings.hide_identifying_text)
    window.corner_action = act(view, "Show corner text", window.toggle_corner_text, "C",
                               checkable=True)
    window.corner_action.setChecked(window.settings.show_corner_text)
    act(view, "Full screen", window.toggle_full_screen, "F11")

    window.study_menu = ReaderStudyMenu(window)
    window.teaching_menu = TeachingMenu(window)

    help_menu = bar.addMenu("&Help")
    act(help_menu, "Keyboard and mouse\u2026", window.show_shortcuts, ["F1", "?"])
    help_menu.addSeparator()
    act(help_menu, "Report a problem\u2026", window.report_problem)
    act(help_menu, "Open the log folder", window.open_log_folder)
    help_menu.addSeparator()
    act(help_menu, "About MedViewer", window.show_about)


def shortcut_rows(actions) -> list[tuple[str, str, str]]:
    """Return (group, keys, action) for every action with a shortcut (the cheat sheet)."""
    rows = []
    for action in actions:
        keys = ", ".join(s.toString(QKeySequence.NativeText) for s in action.shortcuts())
        if keys:
            rows.append((str(action.property("group")), keys, action.text().replace("\u2026", "")))
    return rows
