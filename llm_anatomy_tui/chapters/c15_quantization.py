"""Chapter 15: Quantization — fewer bits per weight, and what that costs the real model.

The person picks a format (FP32 … INT2), a granularity (one scale per tensor, per row or
per block of 32 weights; symmetric or not) and a real matrix of the model. The screen
shows one scale group of that matrix before and after (values snapping to the grid), the
matrix's numbers (range, distinct values, scales, RMSE, max error, bytes and bits per
weight with the scale overhead spelled out), then the whole model quantized the same way:
its size, KL divergence and top-1 agreement with FP32, perplexity on held-out text, and a
continuation of the prompt by FP32 and by the quantized model with the same seed. A
table gives the size of an 8B-parameter model in every format.

What runs where:

- On a key press (UI thread): the selection, the matrix's numbers and histogram for any
  projection matrix (≤ 49k weights: a few ms), the whole model's size (from shapes) and
  everything already cached.
- In a thread worker: the 1M-weight embedding (20–50 ms on a busy machine), and for the
  whole model: quantize (progress per tensor), generate side by side, FP32 reference
  logits (once), compare window by window. A newer key press cancels the running job
  (``exclusive``); a job waits :data:`START_DELAY` before starting, so a burst of key
  presses costs nothing. Results are cached per scheme in :class:`~llm_anatomy_tui.core.quant_lab.QuantLab`,
  so coming back to a scheme is instant. The screen says which numbers are still coming.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from ..core.evaluate import EvalDataError, ModelComparison, eval_tokens
from ..core.quant import FORMAT_NAMES, FORMATS, GRANULARITIES, LLAMA_3_8B, QuantScheme, size_table
from ..core.quant_lab import EVAL_TOKENS, LARGE_MODEL_BYTES, LabEvent, QuantLab, SideBySide
from ..core.session import NotReady
from ..views.quant_matrix import (
    MATRIX_KINDS,
    GroupView,
    MatrixCache,
    MatrixResult,
    MatrixSummary,
    group_bounds,
    matrix_result,
    model_nbytes_fast,
    outlier_cell,
    short_name,
    step_group,
    tensor_name,
)
from ..views.quant_text import EXPLAINER, LEAD, group_line, group_where, ratio, sig, wt
from ..widgets import quant_panels as qp
from ..widgets.prompt_bar import PromptBar
from ..widgets.quant_views import Facts, OptionRow, QuantTable, SnapHistogram
from .base import MODEL, PROMPT, TOKENIZERS, ChapterScreen

__all__ = ["N_NEW", "QuantizationScreen", "ratio", "sig", "wt"]  # ratio, sig, wt: for tests


INLINE_LIMIT = 200_000
"""Matrices up to this many weights are quantized on the UI thread (a projection of the
model takes 0.2–5 ms); larger ones (the 1M-weight embedding) in a worker."""
N_NEW = 32
"""Tokens each model generates for the side-by-side text."""
START_DELAY = 0.3
"""Seconds a whole-model job waits before starting: a newer key press cancels it for free."""
MATRIX_DELAY = 0.03
"""The same for the embedding's matrix worker."""
PROGRESS_INTERVAL = 0.05
"""Seconds between progress repaints sent by a worker."""
LABEL_WIDTH = 10
_FP32 = QuantScheme("fp32").effective()
MATRIX_NUMBERS = (
    "range", "unique_before", "unique_after", "rmse", "rms", "relative", "max_error",
    "storage", "fp32_bytes", "compression", "distinct", "scales", "error", "storage_line",
    "group", "samples",
)  # fmt: skip
"""Keys of :attr:`QuantizationScreen.shown` that belong to the matrix panel."""


@dataclass
class ModelView:
    """What the whole-model panel shows for the current scheme."""

    scheme: QuantScheme
    stage: str = "waiting"  # waiting, quantize, quantized, generated, compare, done
    done: int = 0
    total: int = 0
    texts: SideBySide | None = None
    comparison: ModelComparison | None = None
    error: str = ""


class QuantizationScreen(ChapterScreen):
    """Chapter 15: formats, granularity, one matrix before/after, the whole model vs FP32."""

    NEEDS_MODEL = True
    AUTO_FOCUS = "#q-body"
    CSS_PATH = "c15_quantization.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-tiny"), (80, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("f", "format(1)", "Format", id="quantization.format-next",
                tooltip="Next number format: FP32, FP16, BF16, FP8, INT8, INT4, INT3, INT2"),
        Binding("F", "format(-1)", "Format back", show=False, id="quantization.format-previous",
                tooltip="Previous number format"),
        Binding("g", "granularity", "Scale per", id="quantization.granularity",
                tooltip="One scale per tensor, per row (channel) or per block of 32 weights"),
        Binding("a", "symmetry", "Sym/asym", id="quantization.symmetry",
                tooltip="Symmetric codes (±, scale only) or asymmetric (scale and offset)"),
        Binding("m", "matrix(1)", "Matrix", id="quantization.matrix-next",
                tooltip="Next weight matrix: q, k, v, o, gate, up, down, the embedding"),
        Binding("M", "matrix(-1)", "Matrix back", show=False, id="quantization.matrix-previous",
                tooltip="Previous weight matrix"),
        Binding("l", "layer(1)", "Layer", id="quantization.layer-next",
                tooltip="Next layer (for the projection matrices)"),
        Binding("L", "layer(-1)", "Layer back", show=False, id="quantization.layer-previous",
                tooltip="Previous layer"),
        Binding("w", "group(1)", "Group", id="quantization.group-next",
                tooltip="Show the next scale group (the next block or row)"),
        Binding("W", "group(-1)", "Group back", show=False, id="quantization.group-previous",
                tooltip="Show the previous scale group"),
        Binding("x", "outlier", "Largest", id="quantization.outlier",
                tooltip="Show the group holding the matrix's largest weight (its outlier)"),
        Binding("s", "seed", "Seed", id="quantization.seed",
                tooltip="Generate both texts again with the next seed"),
    ]  # fmt: skip

    def __init__(self, chapter) -> None:  # noqa: ANN001
        super().__init__(chapter)
        self.format_index = FORMAT_NAMES.index("int4")
        self.granularity_index = GRANULARITIES.index("per-block")
        self.symmetric = True
        self.kind_index = 0
        self.layer_index = 0
        self.cell = (0, 0)
        self.seed_offset = 0
        self.shown: dict[str, str] = {}
        """Every number on the screen, as the exact text shown (for tests and readers)."""
        self._model = None
        self._cache = MatrixCache()
        self.matrix_pending = False
        self._lab: QuantLab | None = None
        self._eval_error = ""
        self.model_view: ModelView | None = None
        self._prompt_ctx: tuple[int, tuple[int, ...] | None, str, str] | None = None
        self._sizes_8b: dict[QuantScheme, int] = {}
        self._sizes: dict[tuple[int, QuantScheme], int] = {}
        self._shown_notice: str | None = None
        self._shown_title: tuple[str, str] | None = None

    # -- layout ----------------------------------------------------------------------------

    def compose_chapter(self) -> ComposeResult:
        with VerticalScroll(id="q-body"):
            yield Static(Text(LEAD), id="q-lead", classes="prose")
            with Vertical(id="q-choices"):
                yield OptionRow(id="q-row-format", label_width=LABEL_WIDTH)
                yield OptionRow(id="q-row-scale", label_width=LABEL_WIDTH)
                yield OptionRow(id="q-row-matrix", label_width=LABEL_WIDTH)
            with Vertical(id="q-columns"):
                with Vertical(id="q-left"):
                    yield Static(id="q-mat-title", classes="q-line")
                    yield SnapHistogram(id="q-hist", title_rows=2)
                    yield QuantTable(id="q-samples")
                    yield Facts(id="q-metrics", label_width=LABEL_WIDTH)
                with Vertical(id="q-right"):
                    yield Facts(id="q-model", label_width=LABEL_WIDTH + 2)
                    yield Static(id="q-text-head", classes="q-line q-heading")
                    yield Static(id="q-text")
                    yield Static(id="q-text-note", classes="q-line")
                    yield PromptBar(
                        self.session.prompt, title="Prompt both models continue", id="prompt"
                    )
                    yield Static(id="q-context", classes="q-note")
                    yield QuantTable(id="q-8b")
                    yield Static(id="q-8b-yours", classes="q-note")
            with Vertical(id="q-explainer"):
                for heading, body in EXPLAINER:
                    yield Static(Text(heading, style="bold"), classes="heading")
                    yield Static(Text(body), classes="prose")

    def on_mount(self) -> None:
        self._w = {
            name: self.query_one(f"#{name}")
            for name in (
                "q-row-format", "q-row-scale", "q-row-matrix", "q-mat-title",
                "q-hist", "q-samples", "q-metrics", "q-model", "q-text-head", "q-text",
                "q-text-note", "q-context", "q-8b", "q-8b-yours",
            )
        }  # fmt: skip
        self._8b_rows = size_table()
        self._w["q-8b"].set_table(**qp.size_8b_table(self._8b_rows))

    # -- the selection -----------------------------------------------------------------------

    @property
    def scheme(self) -> QuantScheme:
        """The scheme applied (meaningless options dropped, as the core does)."""
        return QuantScheme(
            FORMAT_NAMES[self.format_index],
            GRANULARITIES[self.granularity_index],
            self.symmetric,
        ).effective()

    @property
    def kind(self) -> str:
        return MATRIX_KINDS[self.kind_index]

    @property
    def tensor(self) -> str:
        return tensor_name(self.kind, self.layer_index)

    @property
    def seed(self) -> int:
        return self.session.seed + self.seed_offset

    @property
    def busy(self) -> bool:
        """True while any number on the screen is still being computed."""
        view = self.model_view
        model_busy = view is not None and view.stage not in ("done", "error")
        return self.matrix_pending or model_busy

    def action_format(self, step: int) -> None:
        self.format_index = (self.format_index + step) % len(FORMAT_NAMES)
        self._refresh(matrix=True, model=True)

    def action_granularity(self) -> None:
        self.granularity_index = (self.granularity_index + 1) % len(GRANULARITIES)
        self._refresh(matrix=True, model=True)

    def action_symmetry(self) -> None:
        self.symmetric = not self.symmetric
        self._refresh(matrix=True, model=True)

    def action_matrix(self, step: int) -> None:
        self.kind_index = (self.kind_index + step) % len(MATRIX_KINDS)
        self.cell = (0, 0)
        self._refresh(matrix=True, model=False)

    def action_layer(self, step: int) -> None:
        model = self.session.model
        layers = model.config.num_hidden_layers if model is not None else 1
        self.layer_index = (self.layer_index + step) % max(1, layers)
        if self.kind != "embedding":
            self.cell = (0, 0)
        self._refresh(matrix=True, model=False)

    def action_group(self, step: int) -> None:
        model = self.session.model
        if model is None:
            return
        shape = model.tensors()[self.tensor].shape
        self.cell = step_group(shape, self.scheme, *self.cell, step)
        self._refresh(matrix=True, model=False)

    def action_outlier(self) -> None:
        model = self.session.model
        if model is None:
            return
        self.cell = outlier_cell(model.tensors()[self.tensor])
        self._refresh(matrix=True, model=False)

    def action_seed(self) -> None:
        self.seed_offset += 1
        self._refresh(matrix=False, model=True)

    # -- session ---------------------------------------------------------------------------

    def session_changed(self, changes: frozenset[str]) -> None:
        model = self.session.model
        new_model = model is not self._model
        if new_model:  # nothing cached is valid any more
            self._model = model
            self._cache.clear()
            self._lab = None
            self.cell = (0, 0)
            if model is not None:
                self.layer_index = min(self.layer_index, model.config.num_hidden_layers - 1)
        self._prompt_ctx = None
        if new_model or changes & {MODEL, TOKENIZERS}:
            self._refresh(matrix=True, model=True)
        elif PROMPT in changes or self._sampler_changed():
            self._refresh(matrix=False, model=True)
        # a step of the shared generation elsewhere changes nothing here

    def _sampler_changed(self) -> bool:
        """Whether the session's sampler or seed differ from those of the shown texts."""
        view = self.model_view
        texts = view.texts if view is not None else None
        if texts is None:
            return view is None or view.stage == "error"
        return texts.settings != self.session.sampling or texts.seed != self.seed

    def _prompt_context(self) -> tuple[tuple[int, ...] | None, str, str]:
        """(token ids the models continue, the context notice, a reason if none)."""
        key = self.session.prompt_revision
        if self._prompt_ctx is not None and self._prompt_ctx[0] == key:
            return self._prompt_ctx[1], self._prompt_ctx[2], self._prompt_ctx[3]
        model = self.session.model
        ids: tuple[int, ...] | None = None
        notice = reason = ""
        if model is None:
            reason = "needs the model"
        else:
            try:
                enc = self.session.encoding("model")
            except NotReady as exc:
                reason = str(exc)
            else:
                raw, notice = self.context_ids(enc, model.config.max_position_embeddings)
                ids = tuple(raw)
        self._prompt_ctx = (key, ids, notice, reason)
        return ids, notice, reason

    # -- drawing: choices --------------------------------------------------------------------

    def _refresh(self, *, matrix: bool, model: bool) -> None:
        self._draw_choices()
        if matrix:
            self._draw_matrix()
        if model:
            self._draw_sizes()
            self._request_model()

    def _draw_choices(self) -> None:
        e = self.scheme
        model = self.session.model
        layers = model.config.num_hidden_layers if model is not None else 1
        self._w["q-row-format"].set_groups(qp.format_groups(self.format_index), hint="f F")
        self._w["q-row-scale"].set_groups(qp.scale_groups(self.granularity_index, e), hint="g a")
        self._w["q-row-matrix"].set_groups(
            qp.matrix_groups(self.kind_index, self.layer_index, layers), hint="m l"
        )

    # -- drawing: one matrix ---------------------------------------------------------------------
    def _draw_matrix(self) -> None:
        model = self.session.model
        title = self._w["q-mat-title"]
        if model is None:
            self.matrix_pending = False
            self._shown_title = None
            title.update(qp.italic("One matrix: needs the model (see above)."))
            self._w["q-hist"].clear("", title="")
            self._w["q-samples"].set_table(header=(), rows=())
            self._w["q-metrics"].set_rows([])
            return
        name, e = self.tensor, self.scheme
        array = model.tensors()[name]
        rows, cols = array.shape
        heading = f" · {rows:,} × {cols:,} = {array.size:,} weights"
        if (name, heading) != self._shown_title:  # no repaint when only the format changed
            self._shown_title = (name, heading)
            title.update(qp.matrix_title(short_name(name), heading), layout=False)
        result, summary, group = self._cache.lookup(name, array.shape, e, self.cell)
        if summary is not None and group is not None:
            self.cancel_compute("matrix")  # a slower request for another choice is moot
            self._show_matrix(summary, group)
            return
        kind, _, _, (r0, r1), (c0, c1) = group_bounds(array.shape, e, *self.cell)
        group_size = (r1 - r0) * (c1 - c0)
        cheap = array.size <= INLINE_LIMIT or (
            result is not None and summary is not None and group_size <= INLINE_LIMIT
        )
        args = (name, array, e, self.cell, result, summary)
        if cheap:
            self.compute("matrix", matrix_result, *args, then=self._matrix_done, inline=True)
            return
        self.matrix_pending = True
        self._pending_matrix(array.size, summary)
        self.compute("matrix", _matrix_after_a_pause, *args, then=self._matrix_done,
                     on_error=self._matrix_failed, on_progress=_ignore)  # fmt: skip

    def _matrix_done(self, m: MatrixResult | None) -> None:
        """Keep what was computed (the last few results, every group seen) and draw it."""
        if m is None:
            return  # abandoned for a newer choice
        self._cache.keep(m, self.cell)
        self.matrix_pending = False
        self._show_matrix(m.summary, m.group)

    def _matrix_failed(self, message: str) -> None:
        self.matrix_pending = False
        self._w["q-hist"].clear(f"Could not quantize this matrix: {message}", title="")

    def _pending_matrix(self, n_values: int, summary: MatrixSummary | None) -> None:
        title = (
            f"Quantizing {n_values:,} weights in the background…"
            if summary is None
            else "Sorting the group's values in the background…"
        )
        self._w["q-hist"].clear(qp.COMPUTING, title=title)
        self._w["q-samples"].set_table(rows=())
        self.shown.update({k: qp.COMPUTING for k in MATRIX_NUMBERS})
        self._w["q-metrics"].set_rows(qp.pending_metric_rows())

    def _show_matrix(self, s: MatrixSummary, g: GroupView) -> None:
        e = s.scheme
        label = FORMATS[e.format].label
        self.matrix_pending = False
        n_rows = s.shape[0] if len(s.shape) == 2 else 1
        where = group_where(g.kind, g.index, g.count, g.rows, g.cols, n_rows)
        used = len(np.unique(g.after))
        line = group_line(where, g.scale, g.offset, g.grid_count, used, g.grid is not None, label)
        self.shown["group"] = line
        self._w["q-hist"].set_data(
            g.before,
            g.after,
            g.grid,
            lo=g.lo,
            hi=g.hi,
            grid_count=g.grid_count,
            grid_name=label,
            decimals=3,
            title=line,
        )
        table = qp.samples_table(e.format, g)
        self.shown["samples"] = "\n".join(" ".join(r) for r in table["rows"])
        self.shown["samples_note"] = table["note"]
        self._w["q-samples"].set_table(**table)
        numbers = qp.matrix_numbers(s)
        self.shown.update(numbers)
        self._w["q-metrics"].set_rows(qp.metric_rows(numbers))

    # -- drawing: the whole model --------------------------------------------------------------

    def _draw_sizes(self) -> None:
        e = self.scheme
        nbytes = self._sizes_8b.get(e)
        if nbytes is None:
            nbytes = self._sizes_8b[e] = model_nbytes_fast(LLAMA_3_8B, e)
        text = qp.llama3_line(LLAMA_3_8B.parameter_count(), nbytes, e.label)
        self.shown["llama3_yours"] = text
        self._w["q-8b-yours"].update(Text(text), layout=False)
        self._w["q-8b"].set_table(highlight=FORMAT_NAMES.index(e.format))

    def _request_model(self) -> None:
        """Show what is known for the current scheme now; ask for the rest (a job reports
        progress as it goes; the base drops it if another scheme was asked for since)."""
        e = self.scheme
        model = self.session.model
        ids, notice, reason = self._prompt_context()
        if notice != self._shown_notice:  # a layout, but only when the notice changes
            self._shown_notice = notice
            self._w["q-context"].update(qp.italic(notice) if notice else "")
            self._w["q-context"].display = bool(notice)
        view = ModelView(e)
        self.model_view = view
        if model is None:
            view.stage, view.error = "error", "needs the model (see above)"
            self.cancel_compute("model")
            self._show_model()
            return
        try:
            lab = self._ensure_lab(model)
        except NotReady:
            self.cancel_compute("model")
            self._show_model()
            return  # the tokenizers are still loading: session_changed comes back later
        settings = self.session.sampling
        view.comparison = lab.comparison(e)
        if ids is not None:
            view.texts = lab.texts(e, ids, settings, self.seed, N_NEW)
        complete = (view.comparison is not None or not lab.can_compare) and (
            view.texts is not None or ids is None
        )
        if complete:
            view.stage = "done"
            self.cancel_compute("model")
            self._show_model()
            return
        self._show_model()
        self.compute("model", _run_lab, lab, e, ids, settings, self.seed, then=self._model_event,
                     on_error=self._model_failed,
                     on_progress=lambda report: self._model_event(report.value))  # fmt: skip

    def _ensure_lab(self, model) -> QuantLab:  # noqa: ANN001
        """The lab of ``model`` (made once, on the UI thread: reading the held-out text takes
        a few milliseconds; everything slow it does runs later, in the compute worker)."""
        lab = self._lab
        if lab is None or lab.model is not model:
            enc = self.session.encoding("model")
            try:
                tokens = eval_tokens(enc, max_tokens=EVAL_TOKENS)
                self._eval_error = ""
            except EvalDataError as exc:
                tokens, self._eval_error = None, str(exc)
            lab = self._lab = QuantLab(model, tokens, enc)
        return lab

    def _model_event(self, event: LabEvent | None) -> None:
        view = self.model_view
        if event is None or view is None:
            return
        view.stage, view.done, view.total = event.stage, event.done, event.total
        if event.texts is not None:
            view.texts = event.texts
        if event.comparison is not None:
            view.comparison = event.comparison
        self._show_model()

    def _model_failed(self, message: str) -> None:
        if self.model_view is None:
            return
        self.model_view.stage, self.model_view.error = "error", message
        self._show_model()

    def _show_model(self) -> None:
        view = self.model_view
        if view is None:
            return
        e = view.scheme
        model = self.session.model
        title = qp.model_title(e.label)
        if model is None:
            self._w["q-model"].set_rows([("", qp.italic(view.error))], title=title)
            self._show_texts(view, "")
            return
        lab = self._lab
        big_copy = lab is not None and lab.copy_bytes > LARGE_MODEL_BYTES  # say what it costs
        no_eval = lab is not None and not lab.can_compare
        rows, shown = qp.model_rows(
            self._model_nbytes(model, e),
            self._model_nbytes(model, _FP32),
            lab.copy_bytes if big_copy else None,
            view.comparison,
            self._eval_error if no_eval else None,
        )
        self.shown.update(shown)
        status = qp.status_text(view.stage, view.error, view.texts is None,
                             view.comparison is None, view.done, view.total)  # fmt: skip
        rows.append(("status", status))
        self.shown["status"] = status.plain
        self._w["q-model"].set_rows(rows, title=title)
        self._show_texts(view, self._prompt_context()[2])

    def _model_nbytes(self, model, scheme: QuantScheme) -> int:  # noqa: ANN001
        """Bytes of ``model`` in ``scheme``, from its shapes (cached: ~2 ms each)."""
        key = (id(model), scheme)
        nbytes = self._sizes.get(key)
        if nbytes is None:
            nbytes = self._sizes[key] = model_nbytes_fast(model.config, scheme)
        return nbytes

    def _show_texts(self, view: ModelView, reason: str) -> None:
        head, body, note = self._w["q-text-head"], self._w["q-text"], self._w["q-text-note"]
        head.update(qp.texts_head(N_NEW, self.seed), layout=False)
        t = view.texts
        if t is None:
            message = view.error if view.stage == "error" else (reason or qp.COMPUTING)
            body.update(qp.italic(message), layout=False)
            note.update("", layout=False)
            self.shown["text_fp32"] = self.shown["text_quant"] = message
            return
        self.shown["text_fp32"] = t.reference.text
        self.shown["text_quant"] = t.candidate.text
        body.update(qp.texts_compare(t, view.scheme), layout=False)
        message = qp.texts_note(t, view.scheme)
        self.shown["text_note"] = message
        note.update(qp.italic(message), layout=False)


# -- the work, run by the compute path (pure: every input passed in) --------------------------


def _ignore(_report: object) -> None:
    """Progress of the matrix job is not drawn (it is short); the task is for cancelling."""


def _matrix_after_a_pause(name, array, scheme, cell, result, summary, task):  # noqa: ANN001, ANN202
    """:func:`~llm_anatomy_tui.views.quant_matrix.matrix_result` after a short pause, unless
    a newer choice cancelled it meanwhile (a burst of keys runs one job, not one per key)."""
    time.sleep(MATRIX_DELAY)
    if task.cancelled:
        return None
    return matrix_result(name, array, scheme, cell, result, summary)


def _run_lab(lab: QuantLab, scheme, ids, settings, seed, task) -> LabEvent | None:  # noqa: ANN001
    """Run the lab for one scheme after a short pause (a burst of key presses starts one
    job), reporting its events as progress; None if cancelled."""
    time.sleep(START_DELAY)
    last = 0.0
    final = None
    for event in lab.run(scheme, ids, settings, seed, N_NEW):
        if task.cancelled:
            return None
        final = event
        now = time.monotonic()
        progress = event.stage in ("quantize", "compare")
        if progress and now - last < PROGRESS_INTERVAL:
            continue
        last = now
        task.report(event.done / event.total if event.total else 0.0, event)
    return final
