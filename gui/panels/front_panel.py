"""Pareto front panel (the tab beside Sweep): model size (KB) vs mAP of a mixed-precision search.

Run the search here (:mod:`gui.front_search`: a long job on the train split of the
open KITTI folder, into a folder the user chooses or one per search under the
window's results folder, resumable) or open what ``squeezelens search`` wrote
(its folder, ``search.json`` or ``front.csv``).  The plot is the CLI's
(:func:`cli.plots.draw_front`: every verified point, the front, the float mAP and
the allowed drop, the smallest point within it) plus the float model as a point.
Clicking a point applies its widths (``--bits`` and ``--layer-bits``) to the
config the quantization panel edits, keeping its other settings.  The caption
names the search's checkpoint, images, widths and base config, and turns stale
when the loaded model, the open folder or the config's non-width settings differ
from the search's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyqtgraph as pg
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from squeezelens.cli.plots import PALETTE, draw_front
from squeezelens.engine.errors import InputError
from squeezelens.engine.quant.labels import short_label
from squeezelens.gui.front_search import (
    default_folder,
    open_search,
    parse_widths,
    search_base,
    start_search,
)
from squeezelens.gui.panels.stale import ResultCaption
from squeezelens.gui.provenance import ResultTag, grids_of, int8_on

if TYPE_CHECKING:
    from squeezelens.engine.search import SearchPoint
    from squeezelens.engine.search_files import SavedSearch
    from squeezelens.gui.controller import Controller
    from squeezelens.gui.state import AppState

EMPTY = "No front yet: run a search (train split of the open folder) or open a search's front.csv"
PROTOCOL = "official"


def _shared(config: Any) -> Any:
    """What every point of a search shares: all but the widths (and a seed nearest ignores)."""
    shared = grids_of(config)
    return shared.replace(seed=0) if shared.rounding == "nearest" else shared


class FrontPanel(QWidget):
    """Search settings row, caption, then the size-vs-mAP plot (points clickable)."""

    def __init__(self, state: AppState, controller: Controller, results_root: Path,
                 parent: QWidget | None = None) -> None:  # fmt: skip
        super().__init__(parent)
        self.state, self.controller, self.results_root = state, controller, results_root
        self.saved: SavedSearch | None = None
        self.images = 0
        self.folder: Path | None = None  # chosen by the user (None: one per search)
        self.widths = QLineEdit("2,3,4,6,8", objectName="searchWidthsEdit")
        self.widths.setToolTip("Candidate bit widths per layer (a layer may also stay float)")
        self.widths.setMaximumWidth(110)
        self.max_drop = QDoubleSpinBox(objectName="searchDropSpin", decimals=3, minimum=0.0,
                                       maximum=0.5, singleStep=0.005, value=0.01)  # fmt: skip
        self.max_drop.setToolTip("Largest mAP drop from float the smallest model may have")
        self.folder_button = QPushButton("Folder…", objectName="searchFolderButton")
        self.button = QPushButton("Run search", objectName="searchButton")
        self.button.setToolTip("Search on the train split of the open KITTI folder (never the "
                               "split you evaluate); rerunning the same search resumes it")  # fmt: skip
        self.open_button = QPushButton("Open front…", objectName="openFrontButton")
        self.open_button.setToolTip("Open a search folder's front.csv or search.json")
        self.status = QLabel("", objectName="frontStatus", wordWrap=False)
        self.caption = ResultCaption(EMPTY, "Run search", "frontCaption")
        self.plot = pg.PlotWidget()  # no title: the tab names it (room on a 768-px screen)
        self.plot.setObjectName("frontPlot")
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("bottom", "model size (KB)")
        self.plot.setLabel("left", "mAP (R11)")
        self.legend = self.plot.addLegend(offset=(-10, -30), colCount=3)  # 2 short rows
        self.caption.greys(self.plot)
        self._build()
        self._update_folder_tip()
        self.folder_button.clicked.connect(self.choose_folder)
        self.button.clicked.connect(self.run)
        self.open_button.clicked.connect(self.ask_open)
        for signal in (state.quant_changed, state.model_changed, state.dataset_changed):
            signal.connect(self.update_stale)
        for signal in (state.model_changed, state.dataset_changed):
            signal.connect(self._update_folder_tip)

    def _build(self) -> None:
        row = QHBoxLayout()
        for w in (QLabel("Widths"), self.widths, QLabel("Max drop"), self.max_drop,
                  self.folder_button, self.button, self.open_button):  # fmt: skip
            row.addWidget(w)
        row.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(row)
        layout.addWidget(self.caption)
        layout.addWidget(self.plot, 1)

    # ------------------------------------------------------------- running
    def _settings(self) -> tuple[list[int], Any]:
        s = self.state
        widths = parse_widths(self.widths.text())
        return widths, search_base(s.edited_config, widths, int8_on(s))

    def out_dir(self, widths: list[int], base: Any) -> Path:
        """The user's folder, else this search's own folder under the results folder."""
        if self.folder is not None:
            return self.folder
        model, ds = self.state.model, self.state.dataset
        return default_folder(self.results_root, model.sha256 if model else "",
                              str(ds.root) if ds else "", PROTOCOL, widths, base)  # fmt: skip

    def run(self) -> None:
        try:
            widths, base = self._settings()
        except InputError as exc:
            self.state.error.emit(f"Search: {exc}")
            return
        out = self.out_dir(widths, base)
        if start_search(self.controller, widths, self.max_drop.value(), base, out, PROTOCOL,
                        self._loaded):  # fmt: skip
            self.status.setText(f"searching into {out}…")

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for the search's files")
        if path:
            self.folder = Path(path)
            self._update_folder_tip()

    def _update_folder_tip(self) -> None:
        where = (
            str(self.folder) if self.folder else f"one folder per search under {self.results_root}"
        )
        self.folder_button.setToolTip(f"Where the search writes (and resumes): {where}")

    def ask_open(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a search's front", "",
                                              "Search results (front.csv search.json)")  # fmt: skip
        if path:
            self.open(path)

    def open(self, path: str | Path) -> None:
        """Read a finished search in the background, then show it."""
        self.controller.io_runner.submit("front", open_search(path), "front", on_done=self._loaded)

    # ------------------------------------------------------------- showing
    def _loaded(self, value: tuple[SavedSearch, int]) -> None:
        self.saved, self.images = value
        r = self.saved.result
        widths = self.saved.meta.get("search_bits")
        if isinstance(widths, list) and widths:  # run again: the same search (resumes)
            self.widths.setText(",".join(map(str, widths)))
        self.max_drop.setValue(r.max_drop)
        best = (
            f"smallest within {r.max_drop:g}: {r.best.size_kb:.0f} KB"
            if r.best
            else "none within the drop"
        )
        self.status.setText(f"{len(r.front)} on the front, {len(r.points)} verified · {best}")
        self.status.setToolTip(str(self.saved.folder))
        self.redraw()

    def tag(self) -> ResultTag | None:
        if self.saved is None:
            return None
        meta, base = self.saved.meta, self.saved.base
        widths = ",".join(map(str, meta.get("search_bits") or [])) or "?"
        over = " · ".join(short_label(base).split(" · ")[1:]) if base else "base not recorded"
        summary = f"size vs mAP of the search over widths {widths} ({over})"
        return ResultTag("float", "search", "float", summary, self.images,
                         str(meta.get("split", "")), str(meta.get("kitti_root", "")),
                         str(meta.get("protocol", "")), str(meta.get("checkpoint") or ""),
                         str(meta.get("checkpoint_sha256") or ""), summary=summary)  # fmt: skip

    def is_stale(self) -> bool:
        """The search was made for another model, folder or non-width settings."""
        if self.saved is None:
            return False
        meta, s = self.saved.meta, self.state
        model_sha = s.model.sha256 if s.model else None
        if meta.get("checkpoint_sha256") and model_sha and meta["checkpoint_sha256"] != model_sha:
            return True
        if s.dataset is not None and meta.get("kitti_root") not in (None, str(s.dataset.root)):
            return True
        base, current = self.saved.base, s.edited_config
        return base is not None and current is not None and _shared(base) != _shared(current)

    def update_stale(self, *_args) -> None:
        self.caption.show_tag(self.tag(), self.is_stale())

    def redraw(self) -> None:
        self.plot.clear()
        self.legend.clear()
        self.update_stale()
        if self.saved is None:
            return
        r = self.saved.result
        item = self.plot.getPlotItem()
        # the legend away from the float point (right, at the float mAP): top or bottom right
        self.legend.setOffset((-10, 10) if r.float_map < 0.55 else (-10, -30))
        draw_front(item, r)
        item.plot([r.float_kb], [r.float_map], pen=None, symbol="d", symbolSize=12,
                  symbolBrush=PALETTE[2], symbolPen="#000000",
                  name=f"float: {r.float_kb:.0f} KB")  # fmt: skip
        clickable = pg.PlotDataItem([p.size_kb for p in r.points], [p.map_r11 for p in r.points],
                                    pen=None, symbol="o", symbolSize=14, data=list(r.points),
                                    symbolBrush=(0, 0, 0, 0), symbolPen=(0, 0, 0, 0))  # fmt: skip
        clickable.sigPointsClicked.connect(self._clicked)
        item.addItem(clickable)

    def _clicked(self, _item, points, _event) -> None:
        if len(points):
            self.apply_point(points[0].data())

    def apply_point(self, point: SearchPoint) -> None:
        """The point's widths (--bits, --layer-bits) on the edited config, the rest kept."""
        s = self.state
        current = s.edited_config or (self.saved.base if self.saved else None) or point.config
        config = current.replace(bits=point.config.bits, overrides=point.config.overrides)
        if s.mode == "ab" and s.editing == "b":
            s.set_quant(s.quant, config)
        else:
            s.set_quant(config, s.quant_b)
        s.message.emit(f"Applied --bits {point.config.bits} --layer-bits {point.layer_bits or '(none)'}"
                       f" ({point.size_kb:.0f} KB, mAP {point.map_r11:.4f} on the search's split)")  # fmt: skip
