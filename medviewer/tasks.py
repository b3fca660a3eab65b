"""Task state shared by long computations and whoever runs them.

Long work (scans, decodes, inference, index builds) is a plain function that
accepts a :class:`TaskState`.  The function reports progress and checks for
cancellation; the caller (the Qt worker, the CLI, a test) reads progress and
may request cancellation from another thread.  Nothing here knows about Qt.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from medviewer.errors import TaskCancelled


@dataclass
class TaskState:
    """Progress, status text and a cancel flag for one long task.

    Attributes are written by the worker thread and read by any thread; the
    values are simple Python objects, so reads see a consistent value.
    """

    progress: float = 0.0
    status: str = ""
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def set_progress(self, fraction: float, status: str | None = None) -> None:
        """Record progress as a fraction in [0, 1] and, optionally, a status line."""
        self.progress = min(1.0, max(0.0, float(fraction)))
        if status is not None:
            self.status = status

    def request_cancel(self) -> None:
        """Ask the task to stop at its next check (callable from any thread)."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        """Whether cancellation has been requested."""
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`TaskCancelled` if cancellation was requested."""
        if self._cancel.is_set():
            raise TaskCancelled()

    def child(self, lo: float, hi: float) -> TaskState:
        """Return a state for one step that fills ``lo..hi`` of this task's progress.

        The step reports 0..1 as usual; its status lines pass through, and it shares this
        task's cancel flag (cancelling either cancels both).
        """
        return _ChildState(self, float(lo), float(hi))


class _ChildState(TaskState):
    """A step's state: progress mapped onto a span of the parent's, the parent's cancel flag."""

    def __init__(self, parent: TaskState, lo: float, hi: float) -> None:
        super().__init__(_cancel=parent._cancel)
        self.parent, self.lo, self.hi = parent, lo, hi

    def set_progress(self, fraction: float, status: str | None = None) -> None:
        super().set_progress(fraction, status)
        self.parent.set_progress(self.lo + (self.hi - self.lo) * self.progress, status)


def ensure_state(state: TaskState | None) -> TaskState:
    """Return ``state`` or a fresh one, so task functions can accept ``None``."""
    return state if state is not None else TaskState()
