"""Decoded images, cached by memory size, shared by every viewport.

Decoding happens on worker threads; :meth:`ImageCache.get` blocks only the
calling worker.  The GUI thread calls :meth:`peek`, which never decodes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from medviewer.dicom.pixels import DecodedImage, decode
from medviewer.dicom.sources import FileRef

DEFAULT_BUDGET = 1536 * 1024 * 1024  # bytes; a 512x512x600 CT in float32 is 630 MB


class ImageCache:
    """A least-recently-used cache of decoded images keyed by location.

    Parameters
    ----------
    budget_bytes : int
        Evict least recently used images beyond this much pixel memory.
    """

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET) -> None:
        self.budget = budget_bytes
        self._items: OrderedDict[str, DecodedImage] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def peek(self, location: str) -> DecodedImage | None:
        """Return the image if it is decoded already (safe on the GUI thread)."""
        with self._lock:
            image = self._items.get(location)
            if image is not None:
                self._items.move_to_end(location)
            return image

    def get(self, ref: FileRef) -> DecodedImage:
        """Return the decoded image, decoding it if needed (call from a worker thread)."""
        cached = self.peek(ref.display)
        if cached is not None:
            return cached
        image = decode(ref)
        with self._lock:
            if ref.display not in self._items:
                self._items[ref.display] = image
                self._bytes += image.nbytes
                while self._bytes > self.budget and len(self._items) > 1:
                    _, old = self._items.popitem(last=False)
                    self._bytes -= old.nbytes
        return image

    def clear(self) -> None:
        """Drop every cached image."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
