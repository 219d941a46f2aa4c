"""Work around pyqtgraph 0.14.0's SVG exporter on Qt >= 6.10 (pyqtgraph issue #3495).

Qt now closes rectangular paths with a ``Z`` command, which the exporter's
coordinate fix-up cannot parse.  Dropping the ``Z`` of a path whose last point
already returns to its first changes nothing visible.
"""

from __future__ import annotations

_PATCHED = False


def patch_svg_exporter() -> None:
    """Install the fix once (idempotent); safe if pyqtgraph already handles Z."""
    global _PATCHED
    if _PATCHED:
        return
    import importlib
    from xml.dom import minidom

    svg = importlib.import_module("pyqtgraph.exporters.SVGExporter")

    original = svg.correctCoordinates

    def correct_coordinates(node, defs, item, options):
        for grp in node.getElementsByTagName("g"):
            for ch in grp.childNodes:
                if isinstance(ch, minidom.Element) and ch.tagName == "path":
                    d = ch.getAttribute("d")
                    tokens = [t for t in d.strip().split(" ") if t and t.upper() != "Z"]
                    ch.setAttribute("d", " ".join(tokens))
        return original(node, defs, item, options)

    svg.correctCoordinates = correct_coordinates
    _PATCHED = True
