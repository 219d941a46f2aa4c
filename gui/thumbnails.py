"""Thumbnails for the image browser, read on a background thread on demand.

The list asks for a thumbnail when a row becomes visible; requests are served
newest first (the rows the user is looking at now) and each finished one comes
back as a ``QImage`` through a queued signal.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from squeezelens.engine.errors import InputError
from squeezelens.gui.workers import WORKER_NICE, lower_thread_priority

THUMB_WIDTH = 96


def to_qimage(rgb: np.ndarray) -> QImage:
    """An owned QImage copy of an (H, W, 3) uint8 RGB array."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class ThumbnailLoader(QObject):
    """Loads small RGB thumbnails of image files on one daemon thread."""

    ready = Signal(int, str, QImage)  # row, path, thumbnail

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._queue: list[tuple[int, str]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="thumbnails", daemon=True)
        self._thread.start()

    def request(self, row: int, path: str) -> None:
        with self._cond:
            if (row, path) not in self._queue:
                self._queue.append((row, path))
                del self._queue[:-256]  # only the most recent requests matter
            self._cond.notify()

    def clear(self) -> None:
        with self._cond:
            self._queue.clear()

    def shutdown(self) -> None:
        with self._cond:
            self._stop = True
            self._queue.clear()
            self._cond.notify()

    def _loop(self) -> None:
        from squeezelens.engine.data.images import read_image_bgr

        lower_thread_priority(WORKER_NICE)  # decoding gives way to the UI thread
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                row, path = self._queue.pop()
            try:
                bgr = read_image_bgr(path)
            except InputError:
                continue
            h, w = bgr.shape[:2]
            size = (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w)))
            thumb = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)[:, :, ::-1]
            try:
                self.ready.emit(row, path, to_qimage(thumb))
            except RuntimeError:  # receiver gone while closing
                return
