"""The main window: assembles the panels, menus, toolbar, status bar and shortcuts.

Layout (see the design sketch): image list | canvas | quantization panel on
top, tabs (Layers, Metrics, Sweep) below, status bar at the bottom.  The window
owns no data: AppState does; the Controller and Analysis run the jobs,
SessionRestore saves and reopens sessions, gui.startup decides what opens first.

It starts quantized at what the controls show (the engine's default config, the
fork at 8 bits), so Evaluate, Copy as command and the canvas agree with the
slider from the first frame.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSlider,
    QApplication,
    QComboBox,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSlider,
    QSplitter,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from squeezelens.engine.errors import InputError
from squeezelens.engine.quant import QuantConfig
from squeezelens.gui.actions import SHORTCUTS_HELP, Actions, create_actions
from squeezelens.gui.analysis import Analysis
from squeezelens.gui.canvas.image_view import Canvas
from squeezelens.gui.command import command_lines
from squeezelens.gui.compute_settings import ComputeSettings
from squeezelens.gui.controller import Controller
from squeezelens.gui.export_dialogs import ExportDialogs
from squeezelens.gui.panels.front_panel import FrontPanel
from squeezelens.gui.panels.hint_bar import HintBar
from squeezelens.gui.panels.image_list import ImageListPanel
from squeezelens.gui.panels.image_summary import ImageSummary
from squeezelens.gui.panels.layers_panel import LayersPanel
from squeezelens.gui.panels.metrics_panel import MetricsPanel
from squeezelens.gui.panels.quant_panel import QuantPanel
from squeezelens.gui.panels.status import ErrorBanner, StatusPanel
from squeezelens.gui.panels.sweep_panel import SweepPanel
from squeezelens.gui.session import TABS, Session
from squeezelens.gui.session_restore import SessionRestore
from squeezelens.gui.settings import Settings
from squeezelens.gui.startup import REOPEN_LAST, StartupPlan, plan_reopen_last
from squeezelens.gui.state import AppState

CHECKPOINT_FILTER = "Checkpoints (*.index *.npz *.h5 *.keras *.data-*);;All files (*)"
CHECKPOINT_SUFFIXES = (".index", ".npz", ".h5", ".keras")
SPLITTERS = ("mainSplitter", "topSplitter")


class MainWindow(QMainWindow):
    """SqueezeLens' main window."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("SqueezeLens")
        self.setAcceptDrops(True)
        self.settings = settings or Settings()
        # the split KITTI folders open with: the last one that opened (a remembered choice)
        self.split = self.settings.value("split", "val", str)
        self.state = AppState(self)
        self.state.set_quant(QuantConfig())  # what the controls show at start-up
        self.controller = Controller(self.state, self)
        self.analysis = Analysis(self.state, self.controller, self)
        self.banner = ErrorBanner()
        self.actions_ = create_actions(self)
        for action in self.actions_:  # the user's next action supersedes the messages shown
            action.triggered.connect(self.banner.clear)
        self.sessions = SessionRestore(self.state, self.controller, self.settings,
                                       self._window_view, self._apply_window_view, self)  # fmt: skip
        self.exports = ExportDialogs(self)
        self.compute = ComputeSettings(self.settings, self.controller.compute, self)
        self._build_panels()
        self._build_menus()
        self._build_toolbar()
        self.status = StatusPanel(self.statusBar(), self.state)
        self._connect()
        self._restore_settings()

    # ----------------------------------------------------------------- layout
    def _build_panels(self) -> None:
        s = self.state
        self.image_list = ImageListPanel(s, self.controller)
        self.canvas = Canvas(s)
        self.quant_panel = QuantPanel(s)
        self.summary = ImageSummary(s, self.canvas)
        self.layers_panel = LayersPanel(s, self.analysis)
        self.metrics_panel = MetricsPanel(s)
        self.sweep_panel = SweepPanel(s, self.analysis)
        row = self.sweep_panel.row
        row.insertWidget(row.indexOf(self.sweep_panel.button) + 1, self.compute.label)
        self.front_panel = FrontPanel(
            s, self.controller, self.analysis.sweep_root.parent / "searches"
        )
        self.hint = HintBar(s)
        self.hint.show_layer.connect(self.show_layer)
        self.top = QSplitter(Qt.Orientation.Horizontal, objectName="topSplitter")
        right_scroll = self._right_column()
        for w in (self.image_list, self._canvas_column(), right_scroll):
            self.top.addWidget(w)
        self.top.setStretchFactor(0, 0)
        self.top.setStretchFactor(1, 1)
        self.top.setStretchFactor(2, 0)
        self.tabs = QTabWidget(objectName="bottomTabs")
        self.tabs.addTab(self.layers_panel, "Layers")
        self.tabs.addTab(self.metrics_panel, "Metrics")
        self.tabs.addTab(self.sweep_panel, "Sweep")
        self.tabs.addTab(self.front_panel, "Pareto front")
        self.main_split = QSplitter(Qt.Orientation.Vertical, objectName="mainSplitter")
        self.main_split.addWidget(self.top)
        self.main_split.addWidget(self.tabs)
        self.main_split.setStretchFactor(0, 3)
        self.main_split.setStretchFactor(1, 2)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.main_split, 1)
        self.setCentralWidget(central)

    def _canvas_column(self) -> QWidget:
        """The range-hijack hint over the canvas: when it comes or goes only the canvas is
        resized (over the whole window, every plot and table was laid out and painted again:
        about 40 ms of UI thread on the real checkpoint's first results)."""
        column = QWidget(objectName="canvasColumn")
        layout = QVBoxLayout(column)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.hint)
        layout.addWidget(self.canvas, 1)
        return column

    def _right_column(self) -> QScrollArea:
        """Quantization controls over the per-image summary, in a scroll area: on a short
        screen (1366x768) the bottom tabs then keep their share of the height instead of
        the controls' minimum height deciding it."""
        right = QWidget(objectName="rightColumn")
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.quant_panel)
        column.addWidget(self.summary, 1)
        right_scroll = QScrollArea(objectName="rightScroll", widgetResizable=True)
        right_scroll.setWidget(right)
        right_scroll.setFrameShape(QFrame.Shape.NoFrame)
        right_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        bar = right_scroll.verticalScrollBar().sizeHint().width()
        right_scroll.setMinimumWidth(right.minimumSizeHint().width() + bar)
        return right_scroll

    def _build_menus(self) -> None:
        a = self.actions_
        file_menu = self.menuBar().addMenu("&File")
        for act in (a.open_checkpoint, a.open_kitti, a.open_images):
            file_menu.addAction(act)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addAction(a.reopen_last)
        file_menu.addAction(a.reopen_at_start)
        file_menu.addSeparator()
        file_menu.addAction(a.open_session)
        file_menu.addAction(a.save_session)
        file_menu.addMenu(self.exports.menu)
        file_menu.addAction(a.copy_command)
        file_menu.addSeparator()
        file_menu.addAction(a.quit)
        view = self.menuBar().addMenu("&View")
        for act in (a.overlay, a.side_by_side, a.reset_zoom, a.prev_image, a.next_image, a.flip):
            view.addAction(act)
        run = self.menuBar().addMenu("&Run")
        for act in (a.evaluate, a.sweep, a.cancel):
            run.addAction(act)
        run.addSeparator()
        run.addAction(self.compute.action)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(a.shortcuts)
        help_menu.addAction(a.about)

    def _build_toolbar(self) -> None:
        a = self.actions_
        bar = QToolBar("Main", objectName="mainToolbar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.setIconSize(QSize(18, 18))
        for act in (a.open_checkpoint, a.open_kitti, a.open_images):
            bar.addAction(act)
        bar.addWidget(self.exports.tool_button())
        bar.addSeparator()
        bar.addWidget(QLabel(" View "))
        self.view_combo = QComboBox(objectName="viewModeCombo")
        self.view_combo.addItems(["Overlay", "Side by side"])
        bar.addWidget(self.view_combo)
        bar.addSeparator()
        bar.addWidget(QLabel(" Score ≥ "))
        self.threshold = QSlider(Qt.Orientation.Horizontal, objectName="thresholdSlider")
        self.threshold.setRange(0, 100)
        self.threshold.setValue(round(100 * self.state.threshold))
        self.threshold.setFixedWidth(160)
        self.threshold.setToolTip("Display threshold on detection scores")
        bar.addWidget(self.threshold)
        self.threshold_label = QLabel(f" {self.state.threshold:.2f} ", objectName="thresholdLabel")
        bar.addWidget(self.threshold_label)
        bar.addSeparator()
        bar.addAction(a.evaluate)
        bar.addAction(a.sweep)
        bar.addAction(a.cancel)
        self.addToolBar(bar)
        self.toolbar = bar

    def _connect(self) -> None:
        a, s = self.actions_, self.state
        pairs: list[tuple[object, Callable]] = [
            (a.open_checkpoint, self.ask_checkpoint), (a.open_kitti, self.ask_kitti),
            (a.open_images, self.ask_images), (a.open_session, self.sessions.ask_open),
            (a.save_session, self.sessions.ask_save), (a.copy_command, self.copy_command),
            (a.reopen_last, self.reopen_last),
            (a.quit, self.close), (a.prev_image, lambda: self._navigate(-1)),
            (a.next_image, lambda: self._navigate(+1)), (a.flip, self._flip_key),
            (a.overlay, lambda: s.set_view_mode("overlay")),
            (a.side_by_side, lambda: s.set_view_mode("side")), (a.reset_zoom, self.canvas.reset_zoom),
            (a.evaluate, self._evaluate), (a.sweep, self._sweep), (a.cancel, self.analysis.cancel),
            (a.shortcuts, self._show_shortcuts), (a.about, self._about),
        ]  # fmt: skip
        for action, slot in pairs:
            action.triggered.connect(slot)
        a.reopen_at_start.setChecked(self.settings.value(REOPEN_LAST, False, bool))
        a.reopen_at_start.toggled.connect(lambda on: self.settings.set(REOPEN_LAST, on))
        self.view_combo.currentIndexChanged.connect(
            lambda i: s.set_view_mode("side" if i == 1 else "overlay")
        )
        self.threshold.valueChanged.connect(lambda v: s.set_threshold(v / 100))
        s.threshold_changed.connect(self._on_threshold)
        s.view_changed.connect(self._on_view)
        s.error.connect(self.banner.show_error)
        s.notice.connect(self.banner.show_notice)
        s.model_changed.connect(self._on_model)
        s.dataset_changed.connect(self._on_dataset)
        self.status.cancel.clicked.connect(self.analysis.cancel)
        s.job_progress.connect(lambda _l, _d, total: self.actions_.cancel.setEnabled(total > 0))
        self.actions_.cancel.setEnabled(False)
        self.metrics_panel.evaluate_button.clicked.connect(self._evaluate)
        self.metrics_panel.export_pr.clicked.connect(self.exports.ask_pr)
        self.metrics_panel.errors.export_button.clicked.connect(self.exports.ask_errors)
        self.metrics_panel.export_ap.clicked.connect(self.exports.ask_ap)
        self.sweep_panel.export.clicked.connect(self.exports.ask_sweep)

    # ------------------------------------------------------------ state echo
    def _on_threshold(self, value: float) -> None:
        self.threshold_label.setText(f" {value:.2f} ")
        if self.threshold.value() != round(100 * value):
            self.threshold.blockSignals(True)
            self.threshold.setValue(round(100 * value))
            self.threshold.blockSignals(False)

    def _on_view(self) -> None:
        side = self.state.view_mode == "side"
        self.view_combo.blockSignals(True)
        self.view_combo.setCurrentIndex(1 if side else 0)
        self.view_combo.blockSignals(False)
        self.actions_.overlay.setChecked(not side)
        self.actions_.side_by_side.setChecked(side)

    def _on_model(self) -> None:
        info = self.state.model
        if info is not None:
            self.settings.add_recent("checkpoint", info.checkpoint_path)
            self.setWindowTitle(f"SqueezeLens — {Path(info.checkpoint_path).name}")

    def _on_dataset(self) -> None:
        ds = self.state.dataset
        if ds is not None:
            self.settings.add_recent("images" if ds.split == "images" else "kitti", str(ds.root))
            if ds.split != "images":
                self.split = ds.split  # the split KITTI folders open with from now on

    # ------------------------------------------------------------ navigation
    def _navigate(self, delta: int) -> None:
        """Left/Right: a focused slider keeps its arrow keys; otherwise change image."""
        focus = QApplication.focusWidget()
        if isinstance(focus, QAbstractSlider):
            step = QAbstractSlider.SliderAction
            focus.triggerAction(step.SliderSingleStepAdd if delta > 0 else step.SliderSingleStepSub)
            if focus is self.quant_panel.bits:
                self.quant_panel.apply()
            return
        self.controller.step(delta)

    def _flip_key(self) -> None:
        focus = QApplication.focusWidget()
        if isinstance(focus, QAbstractButton) and focus.isEnabled():
            focus.animateClick()
            return
        self.flip()

    def flip(self) -> None:
        """Blink: show only the other model's boxes, then only the reference's, and so on."""
        vis = self.state.visible
        if vis["ref"] and vis["other"]:
            self.state.set_visible("ref", False)
        else:
            ref = not vis["ref"]
            self.state.set_visible("ref", ref)
            self.state.set_visible("other", not ref)

    # --------------------------------------------------------------- opening
    def open_plan(self, plan: StartupPlan) -> None:
        """Open what gui.startup chose (both load in the background); say what fell back."""
        if plan.root:
            self.controller.open_dataset(plan.root, plan.split, remembered=plan.remembered)
        if plan.checkpoint:
            self.controller.open_checkpoint(plan.checkpoint)
        else:
            self.state.message.emit("No checkpoint: File ▸ Open checkpoint… (or drop one here)")
        for note in plan.notes:
            self.state.notice.emit(note)

    def reopen_last(self) -> None:
        """File ▸ Reopen last files: the last checkpoint and folder (gone ones fall back)."""
        self.open_plan(plan_reopen_last(self.settings, self.split))

    def open_path(self, path: str, kind: str = "") -> None:
        """Open a dropped or recent path: session, checkpoint, or image/KITTI folder.

        A .json file is a session unless it is a checkpoint's sidecar (a checkpoint of
        the same name beside it); the session loader reports what is wrong with it."""
        p = Path(path)
        if kind == "session" or (p.suffix.lower() == ".json" and not p.is_dir()):
            sidecar_of = [Path(str(p.with_suffix("")) + s) for s in CHECKPOINT_SUFFIXES]
            owner = next((c for c in sidecar_of if c.exists()), None)
            if kind == "session" or owner is None:
                self.sessions.open(path)
                return
            path, p = str(p.with_suffix("")), p.with_suffix("")
        if not p.is_dir():  # any file (or TF1 prefix): its errors are the checkpoint's
            self.controller.open_checkpoint(path)
            return
        from squeezelens.engine.checkpoint.loader import identify

        try:
            identify(p)  # a folder holding a checkpoint
        except (InputError, OSError):
            self.controller.open_dataset(path, "all" if kind == "images" else self.split,
                                         remembered=kind != "images")  # fmt: skip
            return
        self.controller.open_checkpoint(path)

    def dialog_dir(self, kind: str) -> str:
        last = self.settings.last(kind)
        return str(Path(last).parent) if last else str(Path.home())

    def ask_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", self.dialog_dir("checkpoint"),
                                              CHECKPOINT_FILTER)  # fmt: skip
        if path:
            self.controller.open_checkpoint(path)

    def ask_kitti(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open KITTI folder", self.dialog_dir("kitti"))
        if path:
            self.controller.open_dataset(path, self.split, remembered=True)

    def ask_images(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Open image folder", self.dialog_dir("images")
        )
        if path:
            self.controller.open_dataset(path, "all")

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for kind, path in self.settings.recent():
            act = self.recent_menu.addAction(f"{kind}: {path}")
            act.triggered.connect(self.banner.clear)
            act.triggered.connect(lambda _c=False, p=path, k=kind: self.open_path(p, k))
        if not self.recent_menu.actions():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        self.banner.clear()
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
        event.acceptProposedAction()

    # --------------------------------------------------------------- sessions
    def _window_view(self) -> dict:
        """The parts of a session that live in widgets: bottom tab, metrics choices."""
        m = self.metrics_panel
        front = self.front_panel.saved
        return {"tab": self.tab_name(),
                "front_search": str(front.folder) if front is not None else None,
                "metrics_class": m.class_combo.currentText() or None,
                "metrics_difficulty": m.diff_combo.currentText() or None}  # fmt: skip

    def _apply_window_view(self, data: Session) -> None:
        if data.tab is not None:
            self.show_tab(data.tab)
        if data.front_search is not None:
            self.front_panel.open(data.front_search)
        m = self.metrics_panel
        for combo, value in ((m.class_combo, data.metrics_class),
                             (m.diff_combo, data.metrics_difficulty)):  # fmt: skip
            if value is not None and combo.findText(value) >= 0:
                combo.setCurrentText(value)

    def copy_command(self) -> None:
        lines = command_lines(self.state)
        if not lines:
            self.state.error.emit("Open a checkpoint first")
            return
        QGuiApplication.clipboard().setText("\n".join(lines))
        self.state.message.emit(f"Copied: {lines[-1]}")

    # ---------------------------------------------------------------- jobs
    def _evaluate(self) -> None:
        self.tabs.setCurrentWidget(self.metrics_panel)
        self.analysis.evaluate()

    def tab_name(self) -> str:
        """The bottom tab shown, as sessions name it (:data:`gui.session.TABS`)."""
        return TABS[self.tabs.currentIndex()]

    def show_tab(self, name: str) -> None:
        """Show a bottom tab by its session name."""
        self.tabs.setCurrentIndex(TABS.index(name))

    def _sweep(self) -> None:
        self.show_tab("sweep")
        self.sweep_panel.run()

    def show_layer(self, layer: str) -> None:
        """The Layers tab, at ``layer``'s row."""
        self.tabs.setCurrentWidget(self.layers_panel)
        self.state.select_layer(layer)
        self.layers_panel.select_layer(layer)

    def _show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", SHORTCUTS_HELP)

    def _about(self) -> None:
        QMessageBox.about(self, "About SqueezeLens",
                          "SqueezeLens: see what low-precision quantization does to a SqueezeDet "
                          "detector's boxes and KITTI AP.")  # fmt: skip

    # --------------------------------------------------------------- settings
    def _restore_settings(self) -> None:
        geometry = self.settings.load_bytes("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self._default_geometry()
        state = self.settings.load_bytes("windowState")
        if state is not None:
            self.restoreState(state)
        for split in (self.top, self.main_split):
            data = self.settings.load_bytes(f"splitter/{split.objectName()}")
            if data is None or not split.restoreState(data):
                self._default_splitter(split)
        self.state.set_threshold(self.settings.value("threshold", 0.4, float))
        self.state.set_view_mode(self.settings.value("viewMode", "overlay", str))
        self.tabs.setCurrentIndex(self.settings.value("tab", 0, int))

    def _default_geometry(self) -> None:
        screen = QGuiApplication.primaryScreen()
        avail = screen.availableGeometry() if screen else None
        w, h = (
            (1500, 950) if avail is None else (min(1600, avail.width()), min(1000, avail.height()))
        )
        self.resize(w, h)

    def _default_splitter(self, split: QSplitter) -> None:
        if split is self.top:
            w = max(self.width(), 1200)
            side = 260 if w < 1500 else 290
            right = max(int(1.15 * side), split.widget(2).minimumWidth())
            split.setSizes([side, w - side - right, right])
        else:
            h = max(self.height(), 700)
            split.setSizes([int(0.6 * h), int(0.4 * h)])

    def save_settings(self) -> None:
        self.settings.save_bytes("geometry", self.saveGeometry())
        self.settings.save_bytes("windowState", self.saveState())
        for split in (self.top, self.main_split):
            self.settings.save_bytes(f"splitter/{split.objectName()}", split.saveState())
        self.settings.set("threshold", self.state.threshold)
        self.settings.set("viewMode", self.state.view_mode)
        self.settings.set("tab", self.tabs.currentIndex())
        self.settings.set("split", self.split)
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        """Save settings and stop every worker (bounded: the window closes within ~1 s)."""
        self.save_settings()
        self.image_list.loader.shutdown()
        self.controller.shutdown(timeout=0.8)
        super().closeEvent(event)

    @property
    def ui_actions(self) -> Actions:
        return self.actions_
