"""Run plain task functions on a thread pool and deliver results on the GUI thread.

A panel owns one :class:`TaskRunner`.  Starting a new task cancels the one in
flight (its result is dropped), so a fast scroll or a second click never shows
stale results.  Task functions are plain Python taking a ``TaskState``
(Orange's ``concurrent`` pattern); nothing here subclasses QThread.

Errors travel as exception objects (superqt's ``errored(object)``, Orange's
``on_exception``): a :class:`~medviewer.errors.MedViewerError` is an expected problem
and goes to the owning panel's ``message`` callable; anything else is a bug, logged
with its traceback and shown once with details (:func:`report_unexpected`).
"""

from __future__ import annotations

import logging
import traceback
import weakref
from collections.abc import Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from medviewer.errors import MedViewerError, TaskCancelled
from medviewer.tasks import TaskState

log = logging.getLogger(__name__)
# (type, message) of the unexpected errors already shown, per window.
_shown: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def error_detail(exc: BaseException) -> str:
    """Return the traceback of an exception as text."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def report_unexpected(parent, exc: BaseException, *, context: str = "") -> None:
    """Log a bug with its traceback and show it once (short message, details below).

    The same error (type and message) is shown once per window, so a failing worker
    that runs on every scroll step cannot bury the window in dialogs; every occurrence is
    logged.
    """
    from medviewer.qt import dialogs

    message = f"{context}: {exc}" if context else str(exc) or type(exc).__name__
    detail = error_detail(exc)
    key = (type(exc).__name__, str(exc))
    seen = _shown.setdefault(parent, set()) if parent is not None else set()
    if key in seen:
        log.error("%s (again)\n%s", message, detail)
        return
    seen.add(key)
    dialogs.show_unexpected_error(parent, message, detail)


def handle_error(exc: BaseException, message: Callable[[str], None] | None, parent,
                 context: str = "") -> None:
    """Show an expected problem in its panel; report anything else as a bug."""
    if isinstance(exc, MedViewerError):
        log.info("%s%s", f"{context}: " if context else "", exc)
        if message is not None:
            message(str(exc))
            return
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.warning(parent, "MedViewer", str(exc))
        return
    if message is not None:
        message("Something went wrong (details were shown and logged).")
    report_unexpected(parent, exc, context=context)


class _Relay(QObject):
    """Carries a finished task's outcome across threads (queued to the GUI thread)."""

    sig_done = Signal(object, object, object)  # token, result, exception


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
        except Exception as exc:  # noqa: BLE001 - reported on the GUI thread, as the object
            self._deliver(None, exc)
            return
        self._deliver(result, None)

    def _deliver(self, result: object, error: object) -> None:
        try:
            self.relay.sig_done.emit(self.token, result, error)
        except RuntimeError:
            pass  # the panel was closed while the task ran; nobody wants the result


class TaskRunner(QObject):
    """One background executor for one panel.

    Parameters
    ----------
    parent : QObject, optional
        The owner (its window parents the error dialog).
    pool : QThreadPool, optional
    message : callable, optional
        ``message(text)`` shows an expected problem (a ``MedViewerError``) in the owning
        panel.  When given, the runner handles every error itself (:func:`handle_error`);
        otherwise it only emits :attr:`sig_errored` and whoever connects handles it.

    Signals
    -------
    sig_finished(object)
        The result of the latest task (GUI thread).
    sig_errored(object)
        The exception object the latest task raised (GUI thread).
    sig_progress(float, str)
        Progress of the running task, polled ten times a second.
    """

    sig_finished = Signal(object)
    sig_errored = Signal(object)
    sig_progress = Signal(float, str)

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None, *,
                 message: Callable[[str], None] | None = None) -> None:
        super().__init__(parent)
        self.message = message
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
            if self.message is not None:
                handle_error(error, self.message, self._window())
            self.sig_errored.emit(error)
        elif result is not None or callback is not None:
            if callback is not None:
                callback(result)
            self.sig_finished.emit(result)

    def _window(self):
        parent = self.parent()
        return parent.window() if hasattr(parent, "window") else None
