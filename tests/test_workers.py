"""Workers deliver errors as exception objects: expected ones to the panel, bugs once with details."""

from __future__ import annotations

import logging

import pytest

pytestmark = pytest.mark.gui


@pytest.fixture
def shown(monkeypatch):
    """Record the unexpected-error dialogs instead of opening them."""
    from medviewer.qt import dialogs

    calls = []
    monkeypatch.setattr(dialogs, "show_unexpected_error",
                        lambda parent, message, detail: calls.append((message, detail)))
    return calls


def run(qtbot, runner, fn):
    with qtbot.waitSignal(runner.sig_errored, timeout=10000) as blocker:
        runner.start(fn)
    return blocker.args[0]


def test_a_domain_error_is_a_message_in_its_panel_and_no_dialog(qtbot, shown):
    from PySide6.QtWidgets import QWidget

    from medviewer.errors import LibraryError
    from medviewer.qt.workers import TaskRunner

    panel = QWidget()
    qtbot.addWidget(panel)
    messages = []
    runner = TaskRunner(panel, message=messages.append)

    def fail(state):
        raise LibraryError("the index is stale", path="/data/lib.sqlite", hint="update the index")

    exc = run(qtbot, runner, fail)
    assert isinstance(exc, LibraryError) and exc.hint == "update the index"
    assert messages == ["/data/lib.sqlite: the index is stale (update the index)"]
    assert shown == []


def test_a_bug_is_logged_with_its_traceback_and_shown_once(qtbot, shown, caplog):
    from PySide6.QtWidgets import QWidget

    from medviewer.qt.workers import TaskRunner

    panel = QWidget()
    qtbot.addWidget(panel)
    messages = []
    runner = TaskRunner(panel, message=messages.append)

    def bug(state):
        return {}["missing key"]

    with caplog.at_level(logging.ERROR):
        exc = run(qtbot, runner, bug)
        run(qtbot, runner, bug)  # the same bug again: logged, not shown again
    assert isinstance(exc, KeyError)
    assert len(shown) == 1
    message, detail = shown[0]
    assert "missing key" in message and "Traceback" in detail and "in bug" in detail
    assert any("(again)" in r.getMessage() and "Traceback" in r.getMessage()
               for r in caplog.records)
    # The panel says something went wrong, without pretending it was the user's input.
    assert messages and all("details" in m for m in messages)


def test_a_runner_without_a_message_only_emits_the_object(qtbot, shown):
    from PySide6.QtWidgets import QWidget

    from medviewer.qt.workers import TaskRunner

    panel = QWidget()
    qtbot.addWidget(panel)
    runner = TaskRunner(panel)
    exc = run(qtbot, runner, lambda state: 1 / 0)
    assert isinstance(exc, ZeroDivisionError) and shown == []
