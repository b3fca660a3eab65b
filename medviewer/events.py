"""A tiny event emitter: domain and service state announce changes, views subscribe.

Callbacks run synchronously on the thread that emits; the Qt side emits only
from the GUI thread.  Event names are verbs in the past tense
(``window_changed``), per the style guide.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable


class EventEmitter:
    """Keep callbacks per event name and call them on :meth:`emit`."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callable]] = defaultdict(list)

    def connect(self, event: str, callback: Callable) -> None:
        """Call ``callback(**payload)`` whenever ``event`` is emitted."""
        self._callbacks[event].append(callback)

    def disconnect(self, event: str, callback: Callable) -> None:
        """Stop calling ``callback`` for ``event``."""
        if callback in self._callbacks.get(event, []):
            self._callbacks[event].remove(callback)

    def emit(self, event: str, **payload) -> None:
        """Call every callback of ``event`` with ``payload``."""
        for callback in list(self._callbacks.get(event, ())):
            callback(**payload)
