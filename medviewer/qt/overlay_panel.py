"""The overlay panel: pick a map (rollout, attention, class saliency, "why similar"), show it.

Computation runs on a :class:`~medviewer.qt.workers.TaskRunner` (one model
run per image is cached, so changing the fusion, block or head redraws at
once); the map goes into the :class:`~medviewer.services.session.Session` as an
``OverlayReady`` carrying its image, and from there to the
:class:`~medviewer.qt.overlay_layer.OverlayLayer` of every viewport showing that image
and out through :attr:`OverlayPanel.sig_map_ready`.  When the session drops the map
(another image, library or model) the layers forget it.  A short note under the title
says what the maps are not.  GUI thread only.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QGridLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSlider,
                               QSpinBox, QVBoxLayout, QWidget)

from medviewer.explain.maps import MAP_METHODS, map_method
from medviewer.qt.overlay_layer import OverlayLayer
from medviewer.qt.workers import TaskRunner
from medviewer.services.session import OverlayReady, Session

NOTE_TEXT = ("These maps show which parts of the image the model's output depends on: model "
             "behaviour, not lesion localisation. They can look convincing when the model is wrong.")
THUMB = 150


def _thumbnail(image: np.ndarray, image_map: np.ndarray, opacity: float, threshold: float) -> QPixmap:
    """Return a small picture of an image with its map blended in (worker- or GUI-thread safe data)."""
    from medviewer.explain.render import blend
    from medviewer.qt.library_panel import to_qimage

    step = max(1, int(np.ceil(max(image.shape[:2]) / THUMB)))
    pixels = blend(image[::step, ::step], image_map[::step, ::step], opacity=opacity, threshold=threshold)
    return QPixmap.fromImage(to_qimage(np.ascontiguousarray(pixels)))


class OverlayPanel(QWidget):
    """Choose and compute attention/saliency maps; control the overlay; run the trust checks.

    The model, the image on screen and the search hits come from the session; the
    window hands over its viewports once with :meth:`attach_viewports` (a map is drawn on
    every visible viewport showing the image it was computed for).

    Signals
    -------
    sig_map_ready(object)
        An :class:`~medviewer.explain.Explanation` for the image on screen.
    sig_pair_ready(object)
        A :class:`~medviewer.explain.PairExplanation` ("why similar").
    sig_checked(object)
        A :class:`~medviewer.services.explain.TrustReport`.
    """

    sig_map_ready = Signal(object)
    sig_pair_ready = Signal(object)
    sig_checked = Signal(object)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.explainer = None
        self.viewports: list = []
        self.hits: list = []
        self.last = None  # (explanation, image) of the latest map
        self._layers: dict[int, OverlayLayer] = {}
        self._worker = TaskRunner(self, message=self._show_problem)
        self._checker = TaskRunner(self, message=self._show_problem)
        self._build()
        session.connect("model_loaded", self.set_model)
        session.connect("results_found", lambda result: self.set_hits(result.result.nearest
                                                                      + result.result.farthest))
        session.connect("overlay_ready", self._on_overlay)
        session.connect("results_cleared", self._on_cleared)
        session.connect("library_opened", lambda path: self._worker.cancel())
        self._worker.sig_progress.connect(self._on_progress)
        self._checker.sig_progress.connect(self._on_progress)
        self._set_ready(False)
        self._on_method_changed(0)

    # -- construction -------------------------------------------------------------------------
    def _build(self) -> None:
        from PySide6.QtWidgets import QFrame, QScrollArea

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        # A dock shares its height with others: scroll rather than squash the controls.
        body = QWidget(scroll)
        scroll.setWidget(body)
        outer.addWidget(scroll)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(8, 8, 8, 8)
        self.note = QLabel(NOTE_TEXT, self)
        self.note.setObjectName("overlayNote")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #e0b84a; background: #2a2618; padding: 5px; border-radius: 3px;")
        layout.addWidget(self.note)
        self.model_label = QLabel("No model loaded", self)
        self.model_label.setWordWrap(True)
        layout.addWidget(self.model_label)
        self.applicability = QLabel("", self)
        self.applicability.setWordWrap(True)
        self.applicability.setObjectName("applicabilityLabel")
        self.applicability.hide()
        layout.addWidget(self.applicability)
        self.method = QComboBox(self)
        for method in MAP_METHODS:
            self.method.addItem(method.label, method.key)
        layout.addWidget(self.method)
        # One parameter page per method; only the current one is shown (a hidden widget
        # takes no room, where a stacked widget is as tall as its tallest page).
        self.pages = [self._rollout_page(), self._attention_page(), self._gradcam_page(),
                      self._occlusion_page(), self._similar_page()]
        for page in self.pages:
            layout.addWidget(page)
        buttons = QGridLayout()
        self.compute_button = QPushButton("Show map", self)
        self.compute_button.setObjectName("primaryButton")
        self.check_button = QPushButton("Check this map", self)
        self.check_button.setToolTip("Deletion/insertion scores and the randomised-weights sanity check")
        self.export_button = QPushButton("Export PNG\u2026", self)
        buttons.addWidget(self.compute_button, 0, 0, 1, 2)
        buttons.addWidget(self.check_button, 1, 0)
        buttons.addWidget(self.export_button, 1, 1)
        layout.addLayout(buttons)
        self.show_box = QCheckBox("Show overlay (O)", self)
        self.show_box.setChecked(True)
        layout.addWidget(self.show_box)
        form = QFormLayout()
        self.opacity = QSlider(Qt.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.threshold = QSlider(Qt.Horizontal, self)
        self.threshold.setRange(0, 95)
        self.threshold.setValue(0)
        self.opacity_text, self.threshold_text = QLabel("0.50", self), QLabel("0.00", self)
        form.addRow("Opacity", self._with_value(self.opacity, self.opacity_text))
        form.addRow("Threshold", self._with_value(self.threshold, self.threshold_text))
        layout.addLayout(form)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.hide()
        layout.addWidget(self.progress)
        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        self.message.setObjectName("panelMessage")
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.message)
        layout.addStretch(1)
        # For a host window's menu (key O).  Not added to this panel: a window that defines
        # its own "O" action would otherwise get an ambiguous shortcut that never fires.
        self.toggle_action = QAction("Show saliency overlay", self)
        self.toggle_action.setCheckable(True)
        self.toggle_action.setChecked(True)
        self.toggle_action.setShortcut(QKeySequence("O"))
        self.toggle_action.setProperty("group", "View")  # the main window's shortcut sheet
        self.toggle_action.toggled.connect(self.show_box.setChecked)
        self.show_box.toggled.connect(self.toggle_action.setChecked)
        self.show_box.toggled.connect(self._on_show_toggled)
        self.method.currentIndexChanged.connect(self._on_method_changed)
        self.compute_button.clicked.connect(self.compute)
        self.check_button.clicked.connect(self.check_current)
        self.export_button.clicked.connect(lambda: self.export_png())
        self.opacity.valueChanged.connect(self._on_opacity)
        self.threshold.valueChanged.connect(self._on_threshold)

    def _with_value(self, slider: QSlider, label: QLabel) -> QWidget:
        box = QWidget(self)
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(slider, 1)
        label.setMinimumWidth(34)
        row.addWidget(label)
        return box

    def _rollout_page(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        self.fusion = QComboBox(page)
        self.fusion.addItems(["mean", "max", "min"])
        self.discard = QDoubleSpinBox(page)
        self.discard.setRange(0.0, 0.99)
        self.discard.setSingleStep(0.05)
        self.discard.setDecimals(2)
        form.addRow("Head fusion", self.fusion)
        form.addRow("Discard ratio", self.discard)
        self.fusion.currentIndexChanged.connect(self._auto_compute)
        self.discard.valueChanged.connect(self._auto_compute)
        return page

    def _attention_page(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        self.block = QSpinBox(page)
        self.head = QComboBox(page)
        form.addRow("Block", self.block)
        form.addRow("Head", self.head)
        self.block.valueChanged.connect(self._auto_compute)
        self.head.currentIndexChanged.connect(self._auto_compute)
        return page

    def _occlusion_page(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        self.label = QComboBox(page)
        self.fill = QComboBox(page)
        self.fill.addItem("mean grey", "mean")
        self.fill.addItem("blurred copy", "blur")
        form.addRow("Label", self.label)
        form.addRow("Occluder", self.fill)
        hint = QLabel("Hides 2\u00d72-patch windows one at a time; bright = hiding it lowers the "
                      "label's score.", page)
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #8a8f98;")
        form.addRow(hint)
        return page

    def _gradcam_page(self) -> QWidget:
        page = QWidget(self)
        form = QFormLayout(page)
        form.setContentsMargins(0, 0, 0, 0)
        self.gradcam_label = QComboBox(page)
        form.addRow("Label", self.gradcam_label)
        self.gradcam_hint = QLabel("Gradient of the label's logit at the last block's norm1 (Selvaraju et al. "
                                   "2017), from the bundle's gradient graph; bright = pushes the label up.", page)
        self.gradcam_hint.setWordWrap(True)
        self.gradcam_hint.setStyleSheet("color: #8a8f98;")
        form.addRow(self.gradcam_hint)
        return page

    def _similar_page(self) -> QWidget:
        page = QWidget(self)
        box = QVBoxLayout(page)
        box.setContentsMargins(0, 0, 0, 0)
        self.hit_choice = QComboBox(page)
        box.addWidget(self.hit_choice)
        pair = QHBoxLayout()
        self.query_thumb, self.other_thumb = QLabel(page), QLabel(page)
        for label, caption in ((self.query_thumb, "This image"), (self.other_thumb, "Search result")):
            column = QVBoxLayout()
            label.setFixedSize(THUMB, THUMB)
            label.setAlignment(Qt.AlignCenter)
            label.setStyleSheet("background: #121417;")
            column.addWidget(label)
            text = QLabel(caption, page)
            text.setAlignment(Qt.AlignCenter)
            column.addWidget(text)
            pair.addLayout(column)
        box.addLayout(pair)
        hint = QLabel("Each patch's best match in the other image (patch-token cosine), shown as its "
                      "rank within the pair: bright = among the best-matched patches.", page)
        hint.setWordWrap(True)
        hint.setStyleSheet("color: #8a8f98;")
        box.addWidget(hint)
        self.pair_text = QLabel("", page)
        self.pair_text.setWordWrap(True)
        box.addWidget(self.pair_text)
        return page

    # -- model and inputs ---------------------------------------------------------------------
    def attach_viewports(self, viewports: list) -> None:
        """Draw maps on these viewports (those visible and showing the map's image)."""
        self.viewports = list(viewports)

    def viewports_showing(self, image) -> list:
        """Return the visible viewports whose current plane is ``image`` (a ShownImage)."""
        out = []
        for viewport in self.viewports:
            plane = viewport.state.current
            if (not viewport.isHidden() and plane is not None
                    and (plane.instance.id, plane.frame) == (image.instance_id, image.frame)):
                out.append(viewport)
        return out

    def set_model(self, runner) -> None:
        """Use a loaded ModelRunner (GUI thread); fills the block, head and label pickers."""
        from medviewer.explain import Explainer

        self._worker.cancel()
        self._checker.cancel()
        if runner is None:
            self.explainer = None
            self._set_ready(False)
            return
        try:
            self.explainer = Explainer(runner)
        except Exception as exc:  # noqa: BLE001 - a bundle without a grid: say so in the panel
            self.explainer = None
            self._show_problem(str(exc))
            self._set_ready(False)
            return
        ex = self.explainer
        self.model_label.setText(f"<b>{ex.bundle.name}</b> on {runner.provider}")
        self.block.blockSignals(True)
        self.block.setRange(0, max(0, ex.depth - 1))
        self.block.setValue(max(0, ex.depth - 1))
        self.block.blockSignals(False)
        self.head.blockSignals(True)
        self.head.clear()
        self.head.addItem("mean of heads", None)
        for h in range(ex.heads):
            self.head.addItem(f"head {h}", h)
        self.head.blockSignals(False)
        for combo in (self.label, self.gradcam_label):
            combo.clear()
            combo.addItem("top-scoring label", None)
            for name in ex.labels:
                combo.addItem(name, name)
        index = self.method.findData("gradcam")
        if ex.has_gradcam:
            parity = ex.bundle.metadata["gradcam"].get("parity", {})
            self.method.setItemText(index, "Class map: Grad-CAM")
            self.gradcam_hint.setText(
                "Gradient of the label's logit at the last block's norm1 (Selvaraju et al. 2017), from the "
                f"bundle's gradient graph (matches torch Grad-CAM: Pearson r >= {parity.get('pearson_min', '?')}); "
                "bright = pushes the label up.")
        else:
            self.method.setItemText(index, "Class map: Grad-CAM (not in this bundle: occlusion)")
            self.gradcam_hint.setText("This bundle was exported without the Grad-CAM gradient graph: the map is "
                                      "computed by occlusion instead (slower), and says so. Re-export the bundle "
                                      "for Grad-CAM.")
        self.last = None
        self._set_ready(True)
        self.message.setText("")

    def set_hits(self, hits) -> None:
        """List search results (``Hit`` objects) for the "why similar" maps."""
        self.hits = list(hits)
        self.hit_choice.clear()
        for hit in self.hits:
            score = f"{hit.similarity:.2f}" if getattr(hit, "similarity", None) is not None else ""
            self.hit_choice.addItem(f"#{hit.rank} {', '.join(hit.labels) or 'no labels'} {score}".strip())

    def add_hit(self, hit) -> None:
        """Add one search result and select it (e.g. the one the user opened beside the query)."""
        known = [(h.location, h.frame) for h in self.hits]
        if (hit.location, hit.frame) not in known:
            self.set_hits([*self.hits, hit])
            known.append((hit.location, hit.frame))
        self.hit_choice.setCurrentIndex(known.index((hit.location, hit.frame)))

    def request(self):
        """Return the :class:`~medviewer.explain.ExplainRequest` the controls describe."""
        from medviewer.explain import ExplainRequest

        method = self.method.currentData()
        label = (self.gradcam_label if method == "gradcam" else self.label).currentData()
        return ExplainRequest(method, fusion=self.fusion.currentText(), discard_ratio=self.discard.value(),
                              block=self.block.value(), head=self.head.currentData(),
                              label=label, fill=self.fill.currentData() or "mean", fallback=True)

    def layer_for(self, viewport) -> OverlayLayer:
        """Return (creating once) the overlay layer of a viewport."""
        key = id(viewport)
        if key not in self._layers:
            layer = OverlayLayer(viewport)
            layer.set_opacity(self.opacity.value() / 100)
            layer.set_threshold(self.threshold.value() / 100)
            layer.set_enabled(self.show_box.isChecked())
            self._layers[key] = layer
        return self._layers[key]

    def layers(self) -> list[OverlayLayer]:
        """Return the layers made so far."""
        return list(self._layers.values())

    # -- computing ----------------------------------------------------------------------------
    def compute(self) -> None:
        """Compute the chosen map for the image on screen, off the GUI thread."""
        if self.explainer is None:
            self.message.setText("Load a model first (Model panel).")
            return
        shown = self.session.image
        image = self.session.display_image(shown)
        if image is None:
            self.message.setText("Open an image first.")
            return
        request = self.request()
        explainer, sha = self.explainer, self.session.model_sha256
        if map_method(request.method).pair:
            if not self.hits or self.hit_choice.currentIndex() < 0:
                self.message.setText("Search for similar cases first, then pick a result here.")
                return
            hit = self.hits[self.hit_choice.currentIndex()]
            from medviewer.services.explain import explain_hit

            def pair_job(state):
                pair, other = explain_hit(explainer, image, hit, state)
                return OverlayReady(shown, sha, pair, hit, {"image": image, "other": other})

            self._busy("Comparing patches\u2026")
            self._worker.start(pair_job, self._deliver)
            return

        def work(state):
            from medviewer.services.session import applicability_of

            explanation = explainer.explain(image, request, state=state)
            return OverlayReady(shown, sha, explanation,
                                extra={"image": image, "applicability": applicability_of(explainer.runner, shown, image)})

        self._busy("Computing\u2026" if request.method != "occlusion" else "Occluding windows\u2026")
        self._worker.start(work, self._deliver)

    def _deliver(self, result: OverlayReady) -> None:
        self._idle()
        if not self.session.accept(result):
            self.message.setText("")  # computed for an image no longer on screen

    def _auto_compute(self) -> None:
        # Attention maps come from the cached model run: recompute at once when a parameter moves.
        if self.last is not None and self.method.currentData() in ("rollout", "attention"):
            self.compute()

    def _on_overlay(self, result: OverlayReady) -> None:
        if result.hit is not None:
            self._on_pair(result)
        else:
            self._on_map(result)

    def _on_cleared(self) -> None:
        if self.session.search is None:
            self.set_hits([])
        if self.session.overlay is None:
            self._worker.cancel()
            self._checker.cancel()
            self._idle()
            self.last = None
            for layer in self._layers.values():
                layer.clear()
            self.applicability.hide()
            self.query_thumb.clear()
            self.other_thumb.clear()
            self.pair_text.setText("")
            self.message.setText("")

    def _on_map(self, result: OverlayReady) -> None:
        from medviewer.explain import seen_mask

        from medviewer.qt.model_panel import show_applicability

        explanation, image = result.explanation, result.extra["image"]
        self.last = (explanation, image)
        show_applicability(self.applicability, result.extra.get("applicability"))
        for viewport in self.viewports_showing(result.image):
            self.layer_for(viewport).set_map(explanation.image_map, title=explanation.title,
                                             seen=seen_mask(explanation.geometry))
        lines = [f"{explanation.title}: {explanation.seconds * 1000:.0f} ms"]
        if explanation.label is not None and explanation.score is not None:
            lines.append(f"{explanation.label}: logit {explanation.score:.2f}")
        for key in ("fallback", "note"):
            if key in explanation.extra:
                lines.append(explanation.extra[key])
        self.message.setText("\n".join(lines))
        self.sig_map_ready.emit(explanation)

    def _on_pair(self, result: OverlayReady) -> None:
        from medviewer.explain import seen_mask

        pair, hit = result.explanation, result.hit
        image, other = result.extra["image"], result.extra["other"]
        self.last = (pair.query, image)
        opacity, threshold = self.opacity.value() / 100, self.threshold.value() / 100
        self.query_thumb.setPixmap(_thumbnail(image, pair.query.image_map, opacity, threshold))
        self.other_thumb.setPixmap(_thumbnail(other, pair.other.image_map, opacity, threshold))
        self.pair_text.setText(f"Embedding cosine {pair.embedding_similarity:.3f}; best-match patch "
                               f"cosines {pair.query.scale[0]:.2f} to {pair.query.scale[1]:.2f}, ranked "
                               "over both images together.")
        title = "Why similar: patch match rank"
        queries = self.viewports_showing(result.image)
        for viewport in queries:
            self.layer_for(viewport).set_map(pair.query.image_map, title=title,
                                             seen=seen_mask(pair.query.geometry))
        for other_view in self.viewports:
            plane = other_view.state.current
            if other_view not in queries and not other_view.isHidden() and plane is not None and \
                    (plane.instance.location, plane.frame) == (hit.location, hit.frame):
                self.layer_for(other_view).set_map(pair.other.image_map, title=title,
                                                   seen=seen_mask(pair.other.geometry))
        self.message.setText(f"Why similar: {pair.query.seconds * 1000:.0f} ms")
        self.sig_pair_ready.emit(pair)

    def check_current(self) -> None:
        """Run deletion/insertion and the randomisation check for the latest map (worker thread)."""
        if self.explainer is None or self.last is None:
            self.message.setText("Show a map first.")
            return
        explanation, image = self.last
        if not map_method(explanation.request.method).checkable:
            self.message.setText("The checks apply to single-image maps (not \u201cwhy similar\u201d).")
            return
        from medviewer.services.explain import trust_report

        explainer = self.explainer
        self._busy("Checking\u2026")
        self._checker.start(lambda state: trust_report(explainer, image, explanation.request,
                                                       explanation=explanation, state=state),
                            self._on_checked)

    def _on_checked(self, report) -> None:
        self._idle()
        self.message.setText(report.text())
        self.sig_checked.emit(report)

    # -- overlay controls ---------------------------------------------------------------------
    def _on_opacity(self, value: int) -> None:
        self.opacity_text.setText(f"{value / 100:.2f}")
        for layer in self._layers.values():
            layer.set_opacity(value / 100)

    def _on_threshold(self, value: int) -> None:
        self.threshold_text.setText(f"{value / 100:.2f}")
        for layer in self._layers.values():
            layer.set_threshold(value / 100)

    def toggle_overlay(self) -> None:
        """Show or hide every overlay (the checkbox, the action and the layers stay in step)."""
        self.show_box.toggle()

    def _on_show_toggled(self, on: bool) -> None:
        for layer in self._layers.values():
            layer.set_enabled(on)

    def export_png(self, path: str | None = None) -> tuple[int, int] | None:
        """Write the active viewport's image with its overlay as PNG (asks for a path when None)."""
        overlay = self.session.overlay
        viewports = self.viewports_showing(overlay.image) if overlay is not None else []
        layer = self._layers.get(id(viewports[0])) if viewports else None
        if layer is None or not layer.visible:
            self.message.setText("Show a map first.")
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export image with overlay", "overlay.png",
                                                  "PNG image (*.png)")
            if not path:
                return None
        try:
            size = layer.export_png(path)
        except RuntimeError as exc:
            self._show_problem(str(exc))
            return None
        self.message.setText(f"Wrote {path} ({size[0]}\u00d7{size[1]})")
        return size

    # -- state --------------------------------------------------------------------------------
    def _on_method_changed(self, index: int) -> None:
        for i, page in enumerate(self.pages):
            page.setVisible(i == index)
        self.check_button.setEnabled(self.explainer is not None
                                     and map_method(self.method.currentData()).checkable)

    def _set_ready(self, ready: bool) -> None:
        for widget in (self.compute_button, self.check_button, self.export_button, self.method):
            widget.setEnabled(ready)

    def _busy(self, text: str) -> None:
        self.message.setText(text)
        self.progress.setValue(0)
        self.progress.show()

    def _idle(self) -> None:
        self.progress.hide()

    def _on_progress(self, fraction: float, status: str) -> None:
        self.progress.setValue(int(fraction * 1000))

    def _show_problem(self, message: str) -> None:
        self._idle()
        self.message.setText(message)
