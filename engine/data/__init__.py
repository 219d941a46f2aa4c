"""Reading datasets: KITTI label files, KITTI folder layouts and image files.

Pure numpy/OpenCV; no TensorFlow, no Qt.  Every bad input is raised as
:class:`engine.errors.InputError` naming the file (and line, for label files).
"""

from squeezelens.engine.data.images import IMAGE_SUFFIXES, list_images, read_image_bgr
from squeezelens.engine.data.kitti import (
    Dataset,
    available_splits,
    open_dataset,
    parse_label_file,
    parse_label_line,
    parse_label_text,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "Dataset",
    "available_splits",
    "list_images",
    "open_dataset",
    "parse_label_file",
    "parse_label_line",
    "parse_label_text",
    "read_image_bgr",
]
