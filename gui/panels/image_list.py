"""Image browser: thumbnails with per-image counts, filters, sorting, jump.

Each row shows the image stem and its counts at the current score threshold:
ground truth, reference (float or A), other (quantized or B), and a badge with the
value the list is sorted by: boxes changed (lost + new + class flips), or, by the
devkit's matching, true positives lost, recall drop or false positives gained
(:mod:`gui.panels.image_rows`), all taken from AppState.  Filters: only images
quantization changed, only images where a true positive is lost.  The split combo
lists the KITTI splits of the open folder (found by the dataset job); choosing
one reopens the folder through the controller.  The footer shows a small
indicator while the split is being scanned in the background.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QVBoxLayout,
    QWidget,
)

from squeezelens.gui.busy import BusyIndicator
from squeezelens.gui.controller import Controller
from squeezelens.gui.panels.image_rows import (
    BADGE_ROLE,
    CHANGES_ROLE,
    FP_ROLE,
    LINES_ROLE,
    RECALL_ROLE,
    ROW_ROLE,
    SORTS,
    TP_LOST_ROLE,
    ImageRowDelegate,
    badge_text,
    sort_value,
    tooltip,
)
from squeezelens.gui.state import AppState
from squeezelens.gui.thumbnails import ThumbnailLoader

Index = QModelIndex | QPersistentModelIndex
SORT_ROLES = (CHANGES_ROLE, TP_LOST_ROLE, RECALL_ROLE, FP_ROLE)


class ImageListModel(QAbstractListModel):
    """Rows = dataset records; text and sort keys from AppState.counts."""

    def __init__(self, state: AppState, loader: ThumbnailLoader) -> None:
        super().__init__()
        self.state = state
        self.loader = loader
        self.badge = "changes"  # what the row's badge shows (the sort key)
        self._thumbs: dict[int, QPixmap] = {}
        loader.ready.connect(self._on_thumb)
        state.dataset_changed.connect(self._reset)
        state.counts_changed.connect(self._on_counts)
        state.quant_changed.connect(lambda: self._on_counts(-1))

    def _reset(self) -> None:
        self.beginResetModel()
        self._thumbs.clear()
        self.loader.clear()
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        ds = self.state.dataset
        return 0 if ds is None or parent.isValid() else len(ds.records)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        row = index.row()
        if not index.isValid() or row >= self.rowCount():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return "\n".join(self._lines(row))
        if role == LINES_ROLE:
            return self._lines(row)
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumb(row)
        if role in SORT_ROLES:
            return sort_value(self.state.counts.get(row), role)
        if role == ROW_ROLE:
            return row
        if role == BADGE_ROLE:
            return badge_text(self.state.counts.get(row), self.badge)
        if role == Qt.ItemDataRole.ToolTipRole:
            ref, other = self._names()
            return tooltip(self.state.dataset.records[row].path, self.state.counts.get(row),
                           ref, other)  # fmt: skip
        return None

    def _names(self) -> tuple[str, str]:
        return ("A", "B") if self.state.mode == "ab" else ("Float", self.state.other_label)

    def _lines(self, row: int) -> tuple[str, str]:
        stem = self.state.dataset.records[row].stem
        counts = self.state.counts.get(row)
        if counts is None:
            return stem, "…"
        r, o = ("A", "B") if self.state.mode == "ab" else ("F", "Q")
        return stem, f"GT {counts.gt} · {r} {counts.ref} · {o} {counts.other}"

    def _thumb(self, row: int) -> QPixmap | None:
        pix = self._thumbs.get(row)
        if pix is None:
            self.loader.request(row, self.state.dataset.records[row].path)
        return pix

    def _on_thumb(self, row: int, path: str, image: QImage) -> None:
        ds = self.state.dataset
        if ds is None or row >= len(ds.records) or ds.records[row].path != path:
            return
        self._thumbs[row] = QPixmap.fromImage(image)
        idx = self.index(row)
        self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    def _on_counts(self, row: int) -> None:
        if row < 0:
            if self.rowCount():
                self.dataChanged.emit(self.index(0), self.index(self.rowCount() - 1))
            return
        idx = self.index(row)
        self.dataChanged.emit(idx, idx)


class ChangedFilterProxy(QSortFilterProxyModel):
    """Optionally keeps only rows with changes, or only rows where a true positive is lost;
    sorts by one of :data:`SORTS`."""

    def __init__(self) -> None:
        super().__init__()
        self.only_changed = False
        self.only_tp_lost = False
        self.setDynamicSortFilter(True)

    def set_only_changed(self, on: bool) -> None:
        self.only_changed = on
        self.invalidateFilter()

    def set_only_tp_lost(self, on: bool) -> None:
        self.only_tp_lost = on
        self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent: Index) -> bool:  # noqa: N802
        index = self.sourceModel().index(row)
        if self.only_changed and self.sourceModel().data(index, CHANGES_ROLE) <= 0:
            return False
        return not self.only_tp_lost or self.sourceModel().data(index, TP_LOST_ROLE) > 0


class ImageListPanel(QWidget):
    """The left panel: jump box, filter and sort, and the list itself."""

    def __init__(self, state: AppState, controller: Controller, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.controller = state, controller
        self.loader = ThumbnailLoader(self)
        self.model = ImageListModel(state, self.loader)
        self.proxy = ChangedFilterProxy()
        self.proxy.setSourceModel(self.model)
        self.view = QListView()
        self.view.setObjectName("imageList")
        self.view.setModel(self.proxy)
        self.view.setIconSize(QSize(96, 29))
        self.view.setUniformItemSizes(True)
        self.delegate = ImageRowDelegate(self.view)
        self.view.setItemDelegate(self.delegate)
        self.view.setAlternatingRowColors(True)
        self.view.selectionModel().currentChanged.connect(self._on_current)
        self.jump = QLineEdit(placeholderText="Jump to image… (type a name)")
        self.jump.setObjectName("jumpEdit")
        self.jump.setClearButtonEnabled(True)
        self.jump.textEdited.connect(self._jump)
        self._build_filters_and_sort()
        self._build_split_and_scan()
        self.setMinimumWidth(200)
        self.summary = QLabel("No images", wordWrap=True)
        self.summary.setObjectName("listSummary")
        self._layout()
        state.image_changed.connect(self._select_current)
        state.counts_changed.connect(self._update_summary)
        state.dataset_changed.connect(self._update_summary)
        state.quant_changed.connect(self._update_labels)
        state.dataset_changed.connect(self._sync_split)
        state.error.connect(self._sync_split)  # a split that failed to open: show the open one
        state.scanning_changed.connect(self.scan_busy.setVisible)
        self._sync_split()

    def _build_filters_and_sort(self) -> None:
        self.only_changed = QCheckBox("Only images quantization changed")
        self.only_changed.setObjectName("onlyChangedCheck")
        self.only_changed.toggled.connect(self.proxy.set_only_changed)
        self.only_tp_lost = QCheckBox("Only images losing a true positive")
        self.only_tp_lost.setObjectName("onlyTpLostCheck")
        self.only_tp_lost.setToolTip("Images where the quantized model misses an object the float "
                                     "model finds, by the KITTI devkit's matching at the score "
                                     "threshold")  # fmt: skip
        self.only_tp_lost.toggled.connect(self.proxy.set_only_tp_lost)
        self.sort = QComboBox(objectName="sortCombo")
        self.sort.addItems([sort.label for sort in SORTS])
        self.sort.setToolTip("Most changes: lost + new + flipped boxes. True positives lost, "
                             "recall drop, false positives gained: by the devkit's matching of "
                             "each model to the ground truth (a spurious new box is not a lost car)")  # fmt: skip
        self.sort.currentIndexChanged.connect(self._sort)

    def _build_split_and_scan(self) -> None:
        self.split = QComboBox(objectName="splitCombo")
        self.split.setToolTip("KITTI split to browse (ImageSets); 'all' = every image")
        self.split.activated.connect(self._on_split)
        self.scan_busy = BusyIndicator(objectName="scanBusy")
        self.scan_busy.setFixedWidth(40)
        self.scan_busy.setToolTip("Detecting every image of the split for these counts")
        self.scan_busy.setVisible(False)

    def _layout(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.jump)
        for label, combo in (("Split", self.split), ("Sort by", self.sort)):
            row = QHBoxLayout()
            row.addWidget(QLabel(label))
            row.addWidget(combo, 1)
            layout.addLayout(row)
        layout.addWidget(self.only_changed)
        layout.addWidget(self.only_tp_lost)
        layout.addWidget(self.view, 1)
        footer = QHBoxLayout()
        footer.addWidget(self.summary, 1)
        footer.addWidget(self.scan_busy)
        layout.addLayout(footer)

    def _sync_split(self, *_args) -> None:
        """Show the open dataset's split among the folder's splits (no signal)."""
        ds = self.state.dataset
        kitti = ds is not None and ds.split != "images"
        names = list(self.state.splits) if kitti else (["images"] if ds is not None else [])
        self.split.blockSignals(True)
        self.split.clear()
        self.split.addItems(names)
        if ds is not None:
            self.split.setCurrentText(ds.split)
        self.split.blockSignals(False)
        self.split.setEnabled(kitti and len(names) > 1)

    def _on_split(self, index: int) -> None:
        ds, split = self.state.dataset, self.split.itemText(index)
        if ds is not None and ds.split not in ("images", split):
            self.controller.open_dataset(ds.root, split)

    def _sort(self, choice: int) -> None:
        sort = SORTS[max(0, choice)]
        self.model.badge = self.delegate.badge = sort.badge
        self.proxy.setSortRole(sort.role)
        order = Qt.SortOrder.DescendingOrder if sort.descending else Qt.SortOrder.AscendingOrder
        self.proxy.sort(0, order)
        self.view.viewport().update()

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            row = self.proxy.mapToSource(current).row()
            if row != self.state.index:
                self.controller.go_to(row)

    def _select_current(self) -> None:
        src = self.model.index(self.state.index) if self.state.index >= 0 else QModelIndex()
        idx = self.proxy.mapFromSource(src)
        if idx.isValid() and idx != self.view.currentIndex():
            self.view.selectionModel().blockSignals(True)
            self.view.setCurrentIndex(idx)
            self.view.selectionModel().blockSignals(False)
            self.view.scrollTo(idx)

    def _jump(self, text: str) -> None:
        ds = self.state.dataset
        if ds is None or not text:
            return
        text = text.strip().lower()
        for row, record in enumerate(ds.records):
            if record.stem.lower().startswith(text) or text in record.stem.lower():
                self.controller.go_to(row)
                return

    def _update_labels(self) -> None:
        ab = self.state.mode == "ab"
        word = "B differs from A" if ab else "quantization changed"
        self.only_changed.setText(f"Only images {word}")
        self.only_tp_lost.setText("Only images where B misses A's TP" if ab
                                  else "Only images losing a true positive")  # fmt: skip

    def _update_summary(self, *_args) -> None:
        ds = self.state.dataset
        if ds is None:
            self.summary.setText("No images")
            return
        counts = self.state.counts
        changed = sum(1 for c in counts.values() if c.changes > 0)
        lost = sum(1 for c in counts.values() if c.tp_lost > 0)
        parts = [f"{len(ds.records)} images", f"{len(counts)} scanned", f"{changed} changed"]
        if ds.has_labels:
            parts.append(f"{lost} lose a TP")
        # a narrow list wraps between the parts, never inside one
        self.summary.setText(" · ".join(p.replace(" ", "\u00a0") for p in parts))
        self.summary.setToolTip(" · ".join(parts[:3]) + f" · {lost} where a true positive is lost")
