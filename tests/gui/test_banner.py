"""The message banner is legible in light and dark themes, dismissible, and the status
bar keeps a copy of every error."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QPalette

pytestmark = pytest.mark.gui


def _luminance(c: QColor) -> float:
    def lin(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(c.redF()) + 0.7152 * lin(c.greenF()) + 0.0722 * lin(c.blueF())


def _contrast(a: QColor, b: QColor) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _painted_contrast(row) -> float:
    """Contrast between the row's painted background and its painted text (the label's pixel
    farthest in luminance from the background), as WCAG measures it."""
    image = row.grab().toImage()
    background = image.pixelColor(1, 1)
    rect = row.label.geometry()
    text = max((image.pixelColor(x, y) for x in range(rect.left(), rect.right(), 2)
                for y in range(rect.top(), rect.bottom())),
               key=lambda c: abs(_luminance(c) - _luminance(background)))  # fmt: skip
    return _contrast(background, text)


def _dark_palette() -> QPalette:
    p = QPalette()
    for role, colour in ((QPalette.ColorRole.Window, "#202124"),
                         (QPalette.ColorRole.WindowText, "#E8EAED"),
                         (QPalette.ColorRole.Base, "#171717"), (QPalette.ColorRole.Text, "#E8EAED"),
                         (QPalette.ColorRole.Button, "#303134"),
                         (QPalette.ColorRole.ButtonText, "#E8EAED")):  # fmt: skip
        p.setColor(role, QColor(colour))
    return p


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_errors_and_notices_are_legible_in_both_themes(window, qtbot, theme):
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    saved = app.palette()
    try:
        app.setPalette(_dark_palette() if theme == "dark" else QPalette(QColor("#F0F0F0")))
        window.state.notice.emit("The last folder /data/kitti no longer exists: opened the sample")
        window.state.error.emit("/data/kitti/ImageSets/test.txt: split file not found")
        qtbot.wait(20)
        rows = window.banner.rows
        assert [r.kind for r in rows] == ["error", "notice"]
        for row in rows:
            assert row.isVisible() and _painted_contrast(row) >= 4.5, (theme, row.kind)
        background = rows[0].grab().toImage().pixelColor(1, 1)
        assert _luminance(background) < 0.2  # the error row is painted dark red, not left white
    finally:
        app.setPalette(saved)


def test_the_banner_is_dismissible_and_the_status_bar_keeps_a_copy(window, qtbot):
    window.state.error.emit("broken.npz: not a checkpoint")
    assert "Error: broken.npz: not a checkpoint" in window.statusBar().currentMessage()
    assert window.banner.isVisible()
    window.banner.rows[0].close_button.click()
    assert not window.banner.isVisible() and window.banner.text == ""
    assert "broken.npz" in window.statusBar().currentMessage()
