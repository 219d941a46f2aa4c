"""Persistent settings: window geometry, splitters, recent files, view options (QSettings)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 8
RECENT_KINDS = ("checkpoint", "kitti", "images", "session")


class Settings:
    """A thin typed wrapper over QSettings (injectable for tests)."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self.q = qsettings if qsettings is not None else QSettings("SqueezeLens", "SqueezeLens")

    @staticmethod
    def at(path: str | Path) -> Settings:
        """Settings kept in an INI file (tests, portable installs)."""
        return Settings(QSettings(str(path), QSettings.Format.IniFormat))

    # ----------------------------------------------------------------- recent
    def recent(self) -> list[tuple[str, str]]:
        """(kind, path) pairs, newest first."""
        raw = self.q.value("recent", []) or []
        if isinstance(raw, str):
            raw = [raw]
        out = []
        for entry in raw:
            kind, _, path = str(entry).partition("|")
            if kind in RECENT_KINDS and path:
                out.append((kind, path))
        return out

    def add_recent(self, kind: str, path: str) -> None:
        entries = [(k, p) for k, p in self.recent() if (k, p) != (kind, path)]
        entries.insert(0, (kind, str(path)))
        self.q.setValue("recent", [f"{k}|{p}" for k, p in entries[:MAX_RECENT]])

    def last(self, kind: str) -> str | None:
        return next((p for k, p in self.recent() if k == kind), None)

    # ---------------------------------------------------------------- window
    def save_bytes(self, key: str, data: QByteArray) -> None:
        self.q.setValue(key, data)

    def load_bytes(self, key: str) -> QByteArray | None:
        value = self.q.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def value(self, key: str, default=None, kind: type | None = None):
        value = self.q.value(key, default)
        if kind is bool and isinstance(value, str):
            return value.lower() == "true"
        if kind is not None and value is not None:
            try:
                return kind(value)
            except (TypeError, ValueError):
                return default
        return value

    def set(self, key: str, value) -> None:
        self.q.setValue(key, value)

    def sync(self) -> None:
        self.q.sync()
