"""Desktop widgets of SqueezeLens: the canvas (image and boxes)."""
