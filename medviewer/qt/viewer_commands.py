"""The main window's viewing commands: presets, tools, cine, sync, text on the image.

A mixin of :class:`~medviewer.qt.main_window.MainWindow` (GUI thread); the Image, Tools and
View menus call these.
"""

from __future__ import annotations

from medviewer.display.windowing import PRESETS, auto_window, preset_applies
from medviewer.qt.measurement_actions import TOOL_HELP
from medviewer.services.settings import save_settings


class ViewerCommandsMixin:
    """Act on the active viewport (or all of them); needs ``active``, ``viewports``, ``cache``."""

    def _on_active(self, fn) -> None:
        if self.active is not None and self.active.state.planes:
            fn(self.active)

    def step_series(self, delta: int) -> None:
        """Open the next or previous series of the library in the active viewport."""
        order = self.library_panel.series_order()
        if not order:
            return
        current = getattr(self.active, "series_id", None)
        index = order.index(current) + delta if current in order else 0
        if 0 <= index < len(order):
            self.open_series(order[index])

    def apply_preset(self, name: str) -> None:
        """Apply a window preset (``auto`` and ``header`` are computed per image)."""
        viewport = self.active
        if viewport is None or viewport.state.current is None:
            return
        image = self.cache.peek(viewport.state.current.instance.location)
        if image is None or image.is_color:
            return
        if name in PRESETS and not preset_applies(name, image.units):
            modality = viewport.series.modality if viewport.series else "this image"
            self.statusBar().showMessage(
                f"{PRESETS[name].name} is a CT window (Hounsfield units); {modality or 'this image'} "
                "has no HU. Use 6 (auto) or 0 (the header's window).", 6000)
            return
        frame = image.frames[viewport.state.current.frame]
        if name == "auto":
            window = auto_window(frame)
        elif name == "header":
            from medviewer.display.render import initial_window

            window = initial_window(image, viewport.state.current.frame)
        else:
            window = PRESETS[name]
        viewport.state.set_window(window)

    def reset_view(self) -> None:
        """Reset window, rotation, flips, inversion and zoom of the active viewport."""
        viewport = self.active
        if viewport is None or viewport.state.current is None:
            return
        viewport.state.reset_transform()
        self.apply_preset("header")
        viewport.fit()

    def set_tool(self, tool: str) -> None:
        """Choose the left-drag tool for every viewport."""
        for viewport in self.viewports:
            viewport.set_tool(tool)
        names = {"window": "Window / level", "region": "Region search (drag a rectangle)",
                 "sentences": "Report sentences for a region (drag a rectangle)",
                 **TOOL_HELP}
        self.statusBar().showMessage(f"Tool: {names.get(tool, tool)} (W for window / level)", 6000)

    def toggle_cine(self) -> None:
        """Play or pause the active stack."""
        if self.cine.isActive():
            self.cine.stop()
        else:
            self.cine.start(int(1000 / max(1, self.settings.cine_fps)))
        self.cine_action.setChecked(self.cine.isActive())

    def _cine_step(self) -> None:
        viewport = self.active
        if viewport is None or len(viewport.state.planes) < 2:
            return
        nxt = viewport.state.index + 1
        viewport.state.set_index(0 if nxt >= len(viewport.state.planes) else nxt)

    def toggle_sync(self) -> None:
        """Synchronise scrolling between viewports, or not."""
        self.scroll_sync.enabled = self.sync_action.isChecked()

    def toggle_identifying(self) -> None:
        """Hide or show patient-identifying text (corner text and library)."""
        hide = self.hide_action.isChecked()
        self.settings.hide_identifying_text = hide
        for viewport in self.viewports:
            viewport.hide_identifying = hide
            viewport._update_corners()
        self.library_panel.hide_identifying = hide
        self.library_panel.refresh()
        save_settings(self.settings)

    def toggle_corner_text(self) -> None:
        """Show or hide all corner text."""
        self.settings.show_corner_text = self.corner_action.isChecked()
        for viewport in self.viewports:
            viewport.show_corner_text = self.settings.show_corner_text
            viewport._update_corners()
        save_settings(self.settings)

    def toggle_full_screen(self) -> None:
        """Switch full-screen mode."""
        self.showNormal() if self.isFullScreen() else self.showFullScreen()
