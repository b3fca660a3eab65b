"""User-changeable keyboard shortcuts: stable action ids, applying changes, finding clashes.

The settings keep only the shortcuts a user changed, keyed by an id built from the
menu and the action's text ("image.next-image"), as Qt's portable key text
("Ctrl+Shift+I; F2"), so a settings file works on every platform and survives new
actions being added.
"""

from __future__ import annotations

import re
from collections import defaultdict

from PySide6.QtGui import QAction, QKeySequence


def action_id(action: QAction) -> str:
    """Return the stable id of a menu action: ``<menu>.<text>`` in lower-case words."""
    def slug(text: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", text.replace("&", "").lower()).strip("-")

    return f"{slug(str(action.property('group') or 'general'))}.{slug(action.text())}"


def keys_to_text(sequences: list[QKeySequence]) -> str:
    """Return key sequences as portable text, several separated by ``"; "``."""
    return "; ".join(s.toString(QKeySequence.PortableText) for s in sequences if not s.isEmpty())


def text_to_keys(text: str) -> list[QKeySequence]:
    """Parse the portable text written by :func:`keys_to_text`."""
    return [QKeySequence(part.strip()) for part in text.split(";") if part.strip()]


def default_keys(action: QAction) -> str:
    """Return the shortcut an action was built with, as portable text."""
    return "; ".join(action.property("default_keys") or [])


def apply_shortcuts(actions: list[QAction], overrides: dict[str, str]) -> None:
    """Give each action its default shortcut, or the user's replacement when there is one.

    An empty replacement removes the shortcut; ids of actions that no longer exist are
    ignored.
    """
    for action in actions:
        if not action.objectName():
            continue
        text = overrides.get(action.objectName(), default_keys(action))
        action.setShortcuts(text_to_keys(text))


def find_conflicts(assignment: dict[str, str]) -> dict[str, list[str]]:
    """Return key -> action ids for every key sequence bound to more than one action.

    Parameters
    ----------
    assignment : dict
        Action id -> portable key text (all actions, not only the changed ones).
    """
    owners: dict[str, list[str]] = defaultdict(list)
    for ident, text in assignment.items():
        for sequence in text_to_keys(text):
            owners[sequence.toString(QKeySequence.PortableText)].append(ident)
    return {key: ids for key, ids in owners.items() if len(ids) > 1}
