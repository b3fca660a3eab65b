"""The state of one viewport: which series, which image, window, orientation.

The state lives outside Qt and emits plain events; the Qt canvas only draws
it (napari's viewer model / Qt view split).  An "image" here is one displayed
plane: a single-frame instance or one frame of a multi-frame instance, in the
series' spatial order.
"""

from __future__ import annotations

from dataclasses import dataclass

from medviewer.display.windowing import Window
from medviewer.events import EventEmitter
from medviewer.store.library import InstanceRow, SeriesRow


@dataclass(frozen=True)
class PlaneRef:
    """One displayable plane: an instance and a frame in it."""

    instance: InstanceRow
    frame: int


class ViewerState(EventEmitter):
    """Series, position in the stack, window/level, invert, rotation and flips.

    Events: ``series_changed``, ``index_changed(index)``, ``window_changed(window)``,
    ``transform_changed``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.series: SeriesRow | None = None
        self.planes: list[PlaneRef] = []
        self.index = 0
        self.window: Window | None = None
        self.window_locked = False  # True once the user changes the window by hand
        self.invert = False
        self.rotation = 0  # degrees clockwise, multiple of 90
        self.flip_horizontal = False
        self.flip_vertical = False
        self.loading = False  # True while a new series announces itself (not a scroll)

    def set_series(self, series: SeriesRow, instances: list[InstanceRow]) -> None:
        """Show a series from its middle plane, with the default window to come."""
        self.series = series
        self.planes = [PlaneRef(inst, f) for inst in instances for f in range(max(1, inst.frames))]
        self.index = len(self.planes) // 2 if len(self.planes) > 2 else 0
        self.window = None
        self.window_locked = False
        self.loading = True
        try:
            self.emit("series_changed")
            self.emit("index_changed", index=self.index)
        finally:
            self.loading = False

    @property
    def current(self) -> PlaneRef | None:
        """Return the plane on screen."""
        return self.planes[self.index] if self.planes else None

    def set_index(self, index: int) -> None:
        """Go to a plane, clamped to the stack."""
        if not self.planes:
            return
        index = max(0, min(len(self.planes) - 1, int(index)))
        if index != self.index:
            self.index = index
            self.emit("index_changed", index=index)

    def step(self, delta: int) -> None:
        """Move through the stack by ``delta`` planes."""
        self.set_index(self.index + delta)

    def set_window(self, window: Window, by_user: bool = True) -> None:
        """Change the window; a user's choice sticks while scrolling the series."""
        self.window = window
        self.window_locked = self.window_locked or by_user
        self.emit("window_changed", window=window)

    def toggle_invert(self) -> None:
        """Invert grey levels."""
        self.invert = not self.invert
        self.emit("transform_changed")

    def rotate(self, degrees: int) -> None:
        """Rotate by a multiple of 90 degrees (clockwise positive)."""
        self.rotation = (self.rotation + degrees) % 360
        self.emit("transform_changed")

    def flip(self, horizontal: bool) -> None:
        """Mirror the image left-right (or up-down)."""
        if horizontal:
            self.flip_horizontal = not self.flip_horizontal
        else:
            self.flip_vertical = not self.flip_vertical
        self.emit("transform_changed")

    def reset_transform(self) -> None:
        """Undo rotation, flips and inversion."""
        self.rotation, self.flip_horizontal, self.flip_vertical, self.invert = 0, False, False, False
        self.emit("transform_changed")


class ScrollSync:
    """Keep stacks at the same patient position while one of them scrolls.

    Headless: works on :class:`ViewerState` objects.  The window calls :meth:`follow`
    when a state's index changed; the guard keeps the followers' own
    ``index_changed`` events from echoing back.  Where each follower goes is decided
    by :func:`medviewer.display.position_sync.follow_by_position` (same frame of
    reference and parallel slices: by position; no positions: by relative position;
    otherwise it stays), and the decision's sentence is kept in :attr:`reasons`.
    Loading a series into one viewport never moves the others.
    """

    def __init__(self) -> None:
        self.enabled = True
        self._syncing = False
        self.reasons: dict[int, str] = {}  # id(follower state) -> why it moved or stayed

    def follow(self, source: ViewerState, others: list[ViewerState],
               frame_of=lambda state: "") -> None:
        """Move every other stack of two planes or more to the source's position.

        ``frame_of(state)`` returns a state's Frame of Reference UID ("" when unknown).
        """
        from medviewer.display.position_sync import follow_by_position

        if not self.enabled or self._syncing or source.loading or len(source.planes) < 2:
            return
        self._syncing = True
        try:
            for other in others:
                if other is source or len(other.planes) < 2:
                    continue
                decision = follow_by_position(source.planes, source.index, other.planes,
                                              frame_of(source), frame_of(other))
                self.reasons[id(other)] = decision.reason
                if decision.index is not None:
                    other.set_index(decision.index)
        finally:
            self._syncing = False

    def reason_for(self, state: ViewerState) -> str:
        """Return why a follower last moved or stayed ("" before any scroll)."""
        return self.reasons.get(id(state), "")


class WindowLink:
    """Keep the window/level of two viewer states equal (a query and a result beside it).

    One pair at a time: linking another pair unlinks the old one, so a comparison
    opened earlier never keeps steering a viewport that now shows something else.
    """

    def __init__(self) -> None:
        self.pair: tuple[ViewerState, ViewerState] | None = None
        self._callbacks: list[tuple[ViewerState, object]] = []
        self._busy = False

    def link(self, first: ViewerState, second: ViewerState) -> None:
        """Link two states; the second takes the first's window at once."""
        if self.pair == (first, second):
            return
        self.unlink()
        self.pair = (first, second)
        for source, target in ((first, second), (second, first)):
            def on_window(window, target=target):
                if self._busy:
                    return
                self._busy = True
                try:
                    target.set_window(window)
                finally:
                    self._busy = False
            source.connect("window_changed", on_window)
            self._callbacks.append((source, on_window))
        if first.window is not None:
            second.set_window(first.window)

    def unlink(self) -> None:
        """Stop linking."""
        for source, callback in self._callbacks:
            source.disconnect("window_changed", callback)
        self._callbacks.clear()
        self.pair = None
