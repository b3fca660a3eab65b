"""Run plain task functions on a thread pool and deliver results on the GUI thread.

A panel owns one :class:`TaskRunner`.  Starting a new task cancels the one in
flight (its result is dropped), so a fast scroll or a second click never shows
stale results.  Task functions are plain Python taking a ``TaskState``
(Orange's ``concurrent`` pattern); nothing here subclasses QThread.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from medviewer.errors import TaskCancelled
from medviewer.tasks import TaskState


class _Relay(QObject):
    """Carries a finished task's outcome across threads (queued to the GUI thread)."""

    sig_done = Signal(object, object, object)  # token, result, error text


class _Job(QRunnable):
    def __init__(self, fn: Callable, state: TaskState, relay: _Relay, token: object) -> None:
        super().__init__()
        self.fn, self.state, self.relay, self.token = fn, state, relay, token
        self.setAutoDelete(True)

    def run(self) -> None:  # worker thread
        try:
            result = self.fn(self.state)
        except TaskCancelled:
            return
        except Exception as exc:  # noqa: BLE001 - reported on the GUI thread
            detail = "".join(traceback.format_exception(exc))
            self._deliver(None, (str(exc), detail))
            return
        self._deliver(result, None)

    def _deliver(self, result: object, error: object) -> None:
        try:
            self.relay.sig_done.emit(self.token, result, error)
        except RuntimeError:
            pass  # the panel was closed while the task ran; nobody wants the result


class TaskRunner(QObject):
    """One background executor for one panel.

    Signals
    -------
    sig_finished(object)
        The result of the latest task (GUI thread).
    sig_failed(str, str)
        Message and traceback of the latest task's unexpected error.
    sig_progress(float, str)
        Progress of the running task, polled ten times a second.
    """

    sig_finished = Signal(object)
    sig_failed = Signal(str, str)
    sig_progress = Signal(float, str)

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None) -> None:
        super().__init__(parent)
        self.pool = pool or QThreadPool.globalInstance()
        self._relay = _Relay(self)
        self._relay.sig_done.connect(self._on_done)
        self._token: object | None = None
        self._state: TaskState | None = None
        self._callback: Callable | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._poll)

    @property
    def busy(self) -> bool:
        """Whether a task is running."""
        return self._token is not None

    def start(self, fn: Callable[[TaskState], object],
              on_result: Callable[[object], None] | None = None) -> TaskState:
        """Run ``fn(state)`` in the background, cancelling any task in flight.

        ``on_result`` (optional) is called with the result on the GUI thread,
        in addition to :attr:`sig_finished`.
        """
        self.cancel()
        state = TaskState()
        token = object()
        self._token, self._state, self._callback = token, state, on_result
        self.pool.start(_Job(fn, state, self._relay, token))
        self._timer.start()
        return state

    def cancel(self) -> None:
        """Ask the running task to stop and forget its result."""
        if self._state is not None:
            self._state.request_cancel()
        self._token = self._state = self._callback = None
        self._timer.stop()

    def _poll(self) -> None:
        if self._state is not None:
            self.sig_progress.emit(self._state.progress, self._state.status)

    def _on_done(self, token: object, result: object, error: object) -> None:
        if token is not self._token:
            return  # a cancelled or superseded task
        callback = self._callback
        self._token = self._state = self._callback = None
        self._timer.stop()
        if error is not None:
            self.sig_failed.emit(*error)
        elif result is not None or callback is not None:
            if callback is not None:
                callback(result)
            self.sig_finished.emit(result)
