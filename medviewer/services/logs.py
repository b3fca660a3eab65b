"""Write MedViewer's log to the user's log folder, and catch errors that would otherwise vanish.

One rotating file, ``medviewer.log`` in :func:`medviewer.paths.log_dir` (five files of 2 MB at
most, so the log never grows without bound), plus warnings and errors on stderr for whoever
started MedViewer from a terminal.  Exceptions nobody caught, on the main thread (including those
raised in Qt slots, which PySide6 hands to :data:`sys.excepthook`) or on worker threads, are
written to the log at ERROR before the previous hook runs, so a crash a user reports can be read
in the log they send with "Report a problem" (:mod:`medviewer.services.problem_report`).

No Qt here: the GUI calls :func:`configure_logging` at start-up, the CLI may too.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import platform
import sys
import threading
from pathlib import Path

LOG_FILE_NAME = "medviewer.log"
MAX_BYTES = 2 * 1024 * 1024
BACKUP_COUNT = 4  # medviewer.log + .1 .. .4: five files of 2 MB at most
LINE_FORMAT = "%(asctime)s %(levelname)-8s %(name)s [%(threadName)s] %(message)s"

log = logging.getLogger("medviewer")

# Marks on the handlers and hooks this module installs, so a second call finds (and replaces)
# its own and never those of pytest, an embedding application or the user.
_MARK = "_medviewer_logging"
# Set on records of uncaught exceptions: the chained hook prints them to stderr already.
_NO_STDERR = "_medviewer_no_stderr"


def _our_handlers(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if getattr(h, _MARK, False)]


def _file_handler() -> logging.handlers.RotatingFileHandler | None:
    for handler in _our_handlers(logging.getLogger()):
        if isinstance(handler, logging.handlers.RotatingFileHandler):
            return handler
    return None


class _SkipMarked(logging.Filter):
    """Drop records that are printed on stderr by someone else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, _NO_STDERR, False)


def configure_logging(level: str | int = "INFO", *, folder: str | os.PathLike | None = None,
                      max_bytes: int = MAX_BYTES, backup_count: int = BACKUP_COUNT,
                      stderr: bool = True) -> Path:
    """Send the log to a rotating file in the log folder and catch uncaught exceptions.

    Safe to call again (for example when the user changes the log level in the settings):
    the handlers installed by an earlier call are replaced, never duplicated, and the hooks
    are installed once.

    Parameters
    ----------
    level : str or int
        Level of the root logger, hence of the file (``"DEBUG"``, ``"INFO"``, ``"WARNING"``);
        ``logging.getLogger().setLevel(...)`` changes it later.  The start line (versions) is
        written whatever the level.
    folder : path, optional
        Folder of ``medviewer.log``; default :func:`medviewer.paths.log_dir`.
    max_bytes, backup_count : int
        Size at which the file rotates, and how many old files are kept.
    stderr : bool
        Also print warnings and errors on stderr.

    Returns
    -------
    Path
        The log file.  Where it cannot be opened (a read-only folder), logging goes to stderr
        only and a warning says why; the start-up continues.
    """
    root = logging.getLogger()
    level = logging.getLevelName(level.upper()) if isinstance(level, str) else int(level)
    if not isinstance(level, int):  # an unknown name: getLevelName returned "Level X"
        level = logging.INFO
    if folder is None:
        from medviewer.paths import log_dir

        folder = log_dir()
    path = Path(folder) / LOG_FILE_NAME
    formatter = logging.Formatter(LINE_FORMAT)

    existing = _file_handler()
    same_file = (existing is not None and Path(existing.baseFilename) == path.absolute()
                 and existing.maxBytes == max_bytes and existing.backupCount == backup_count)
    for handler in _our_handlers(root):
        if handler is existing and same_file:
            continue
        root.removeHandler(handler)
        handler.close()

    problem = None
    if not same_file:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        except OSError as exc:
            problem = f"cannot write the log file {path}: {exc}"
        else:
            handler.setFormatter(formatter)
            # No level of its own: the root's level decides, so a window that changes the
            # level with logging.getLogger().setLevel(...) changes what the file gets.
            setattr(handler, _MARK, True)
            root.addHandler(handler)
            # The start line goes to the file whatever the level: versions are what a
            # problem report needs first.
            handler.handle(log.makeRecord(log.name, logging.INFO, __file__, 0, "%s",
                                          (start_line(),), None))
    if stderr:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(formatter)
        console.setLevel(logging.WARNING)
        console.addFilter(_SkipMarked())
        setattr(console, _MARK, True)
        root.addHandler(console)
    root.setLevel(level)
    # warnings.warn(...) from numpy, pydicom and friends land in the log too.
    logging.captureWarnings(True)
    _install_hooks()
    if problem:
        log.warning("%s; logging to stderr only", problem)
    return path


def start_line() -> str:
    """Return the line logged at start-up: versions of MedViewer, Python and the system."""
    from medviewer import __version__

    frozen = " (packaged)" if getattr(sys, "frozen", False) else ""
    return (f"MedViewer {__version__}{frozen} starting; Python {platform.python_version()} "
            f"({platform.python_implementation()}) on {platform.platform()}; pid {os.getpid()}")


def current_log_file() -> Path:
    """Return the log file in use, or where :func:`configure_logging` would put it."""
    handler = _file_handler()
    if handler is not None:
        return Path(handler.baseFilename)
    from medviewer.paths import log_dir

    return log_dir() / LOG_FILE_NAME


def log_files(current: str | os.PathLike | None = None) -> list[Path]:
    """Return the existing log files, oldest first (``medviewer.log.4`` ... ``medviewer.log``).

    Parameters
    ----------
    current : path, optional
        The live log file; default :func:`current_log_file`.
    """
    current = Path(current) if current is not None else current_log_file()
    flush_logs()
    backups = sorted(current.parent.glob(current.name + ".*"),
                     key=lambda p: int(p.suffix[1:]) if p.suffix[1:].isdigit() else -1,
                     reverse=True)
    found = [p for p in backups if p.suffix[1:].isdigit()] + [current]
    return [p for p in found if p.is_file()]


def reset_logging() -> None:
    """Undo :func:`configure_logging`: remove its handlers and restore the previous hooks.

    For tests, and for an application that embeds MedViewer and wants its logging back.
    """
    root = logging.getLogger()
    for handler in _our_handlers(root):
        root.removeHandler(handler)
        handler.close()
    if getattr(sys.excepthook, _MARK, False):
        sys.excepthook = sys.excepthook.previous
    if getattr(threading.excepthook, _MARK, False):
        threading.excepthook = threading.excepthook.previous
    logging.captureWarnings(False)


def flush_logs() -> None:
    """Flush MedViewer's handlers, so the file holds every line logged so far."""
    for handler in _our_handlers(logging.getLogger()):
        handler.flush()


# -- uncaught exceptions --------------------------------------------------------------------------

def _install_hooks() -> None:
    """Wrap sys.excepthook and threading.excepthook once; each chains to the hook before it."""
    if not getattr(sys.excepthook, _MARK, False):
        previous = sys.excepthook

        def excepthook(exc_type, exc, tb):
            if not issubclass(exc_type, KeyboardInterrupt):
                log.error("Uncaught exception", exc_info=(exc_type, exc, tb),
                          extra={_NO_STDERR: True})
            previous(exc_type, exc, tb)

        setattr(excepthook, _MARK, True)
        excepthook.previous = previous
        sys.excepthook = excepthook

    if not getattr(threading.excepthook, _MARK, False):
        previous_thread = threading.excepthook

        def thread_excepthook(args):
            if args.exc_type is not SystemExit:
                name = args.thread.name if args.thread is not None else "unknown"
                log.error("Uncaught exception in thread %s", name,
                          exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
                          extra={_NO_STDERR: True})
            previous_thread(args)

        setattr(thread_excepthook, _MARK, True)
        thread_excepthook.previous = previous_thread
        threading.excepthook = thread_excepthook
