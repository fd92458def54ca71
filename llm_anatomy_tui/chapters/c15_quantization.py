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
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from ..core.evaluate import EvalDataError, ModelComparison, eval_tokens
from ..core.quant import (
    E4M3_VALUES,
    FORMAT_NAMES,
    FORMATS,
    GRANULARITIES,
    LLAMA_3_8B,
    QuantResult,
    QuantScheme,
    size_table,
)
from ..core.quant_lab import EVAL_TOKENS, LARGE_MODEL_BYTES, LabEvent, QuantLab, SideBySide
from ..core.session import NotReady
from ..views.quant_matrix import (
    MATRIX_KINDS,
    MATRIX_LABELS,
    GroupView,
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
from ..views.quant_text import EXPLAINER, LEAD, ratio, sig, wt
from ..widgets._format import fmt, fmt_percent
from ..widgets.prompt_bar import PromptBar
from ..widgets.quant_views import (
    Facts,
    OptionGroup,
    OptionRow,
    QuantTable,
    SnapHistogram,
    TextCompareRenderable,
    TextRow,
)
from .base import MODEL, PROMPT, TOKENIZERS, ChapterScreen

FORMAT_LABELS = tuple(FORMATS[f].label for f in FORMAT_NAMES)
GRANULARITY_LABELS = ("tensor", "channel", "block of 32")
GROUP_WORDS = {"per-tensor": "tensor", "per-channel": "row", "per-block": "block of 32"}

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
    stage: str = "waiting"  # waiting, quantize, quantized, generated, reference, compare, done
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
        Binding(
            "f",
            "format(1)",
            "Format",
            id="quantization.format-next",
            tooltip="Next number format: FP32, FP16, BF16, FP8, INT8, INT4, INT3, INT2",
        ),
        Binding(
            "F",
            "format(-1)",
            "Format back",
            show=False,
            id="quantization.format-previous",
            tooltip="Previous number format",
        ),
        Binding(
            "g",
            "granularity",
            "Scale per",
            id="quantization.granularity",
            tooltip="One scale per tensor, per row (channel) or per block of 32 weights",
        ),
        Binding(
            "a",
            "symmetry",
            "Sym/asym",
            id="quantization.symmetry",
            tooltip="Symmetric codes (±, scale only) or asymmetric (scale and offset)",
        ),
        Binding(
            "m",
            "matrix(1)",
            "Matrix",
            id="quantization.matrix-next",
            tooltip="Next weight matrix: q, k, v, o, gate, up, down, the embedding",
        ),
        Binding(
            "M",
            "matrix(-1)",
            "Matrix back",
            show=False,
            id="quantization.matrix-previous",
            tooltip="Previous weight matrix",
        ),
        Binding(
            "l",
            "layer(1)",
            "Layer",
            id="quantization.layer-next",
            tooltip="Next layer (for the projection matrices)",
        ),
        Binding(
            "L",
            "layer(-1)",
            "Layer back",
            show=False,
            id="quantization.layer-previous",
            tooltip="Previous layer",
        ),
        Binding(
            "w",
            "group(1)",
            "Group",
            id="quantization.group-next",
            tooltip="Show the next scale group (the next block or row)",
        ),
        Binding(
            "W",
            "group(-1)",
            "Group back",
            show=False,
            id="quantization.group-previous",
            tooltip="Show the previous scale group",
        ),
        Binding(
            "x",
            "outlier",
            "Largest",
            id="quantization.outlier",
            tooltip="Show the group holding the matrix's largest weight (its outlier)",
        ),
        Binding(
            "s",
            "seed",
            "Seed",
            id="quantization.seed",
            tooltip="Generate both texts again with the next seed",
        ),
    ]

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
        self._results: OrderedDict[tuple[str, QuantScheme], QuantResult] = OrderedDict()
        self._summaries: dict[tuple[str, QuantScheme], MatrixSummary] = {}
        self._groups: OrderedDict[tuple, GroupView] = OrderedDict()
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
        rows = size_table()
        self._8b_rows = rows
        self._w["q-8b"].set_table(
            header=("format", "codes only", "+ scales", "bits/weight", "Llama-3-8B"),
            rows=[
                (
                    r.label,
                    f"{r.gb:.1f} GB",
                    f"{r.gb_with_scales:.2f} GB",
                    f"{r.bits_per_weight_with_scales:.1f}",
                    f"{r.llama3_8b_gb:.2f} GB",
                )
                for r in rows
            ],
            title="An 8B-parameter model in each format (GB = 10⁹ bytes)",
            note="codes only: 8e9 × bits ÷ 8. + scales: one fp16 scale per 32 weights",
        )

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
            self._results.clear()
            self._summaries.clear()
            self._groups.clear()
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
                raw, notice = self.session.context_ids(enc, model.config.max_position_embeddings)
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
        fmt_label = FORMATS[e.format].label
        has_scale = e.granularity != "none"
        if not has_scale:
            note = f"({fmt_label}: no scale)"
        elif e.format == "fp8":
            note = "(FP8: always sym)"
        else:
            note = f"= {e.llama_cpp_name}" if e.llama_cpp_name else ""
        self._w["q-row-format"].set_groups(
            [OptionGroup("Format", FORMAT_LABELS, self.format_index)], hint="f F"
        )
        self._w["q-row-scale"].set_groups(
            [
                OptionGroup("Scale per", GRANULARITY_LABELS, self.granularity_index, has_scale),
                OptionGroup(
                    "",
                    ("sym", "asym"),
                    0 if e.symmetric else 1,
                    has_scale and e.format != "fp8",
                    note,
                ),
            ],
            hint="g a",
        )
        model = self.session.model
        layers = model.config.num_hidden_layers if model is not None else 1
        embedding = self.kind == "embedding"
        self._w["q-row-matrix"].set_groups(
            [
                OptionGroup(
                    "Matrix", tuple(MATRIX_LABELS[k] for k in MATRIX_KINDS), self.kind_index
                ),
                OptionGroup(
                    "layer",
                    tuple(str(i) for i in range(layers)),
                    self.layer_index,
                    not embedding,
                ),
            ],
            hint="m l",
        )

    # -- drawing: one matrix ---------------------------------------------------------------------

    def _draw_matrix(self) -> None:
        model = self.session.model
        title = self._w["q-mat-title"]
        if model is None:
            self.matrix_pending = False
            self._shown_title = None
            title.update(Text("One matrix: needs the model (see above).", style="italic"))
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
            title.update(
                Text.assemble(
                    (short_name(name), "bold"), heading, no_wrap=True, overflow="ellipsis"
                ),
                layout=False,
            )
        key = (name, e)
        result = self._results.get(key)
        summary = self._summaries.get(key)
        gkey = (name, e, self._group_anchor(array.shape, e))
        group = self._groups.get(gkey)
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

    def _group_anchor(self, shape: tuple[int, int], e: QuantScheme) -> tuple[int, int]:
        _, _, _, (r0, _), (c0, _) = group_bounds(shape, e, *self.cell)
        return r0, c0

    def _matrix_done(self, m: MatrixResult | None) -> None:
        """Keep what was computed (the last few results, every group seen) and draw it."""
        if m is None:
            return  # abandoned for a newer choice
        key = (m.name, m.scheme)
        self._results[key] = m.result
        self._results.move_to_end(key)
        while len(self._results) > 6:
            self._results.popitem(last=False)
        self._summaries[key] = m.summary
        array_shape = m.result.original.shape
        self._groups[(m.name, m.scheme, self._group_anchor(array_shape, m.scheme))] = m.group
        while len(self._groups) > 48:
            self._groups.popitem(last=False)
        self.matrix_pending = False
        self._show_matrix(m.summary, m.group)

    def _matrix_failed(self, message: str) -> None:
        self.matrix_pending = False
        self._w["q-hist"].clear(f"Could not quantize this matrix: {message}", title="")

    def _pending_matrix(self, n_values: int, summary: MatrixSummary | None) -> None:
        computing = Text("computing…", style="italic")
        title = (
            f"Quantizing {n_values:,} weights in the background…"
            if summary is None
            else "Sorting the group's values in the background…"
        )
        self._w["q-hist"].clear("computing…", title=title)
        self._w["q-samples"].set_table(rows=())
        self.shown.update({k: "computing…" for k in MATRIX_NUMBERS})
        self._w["q-metrics"].set_rows(
            [(label, computing) for label in ("range", "distinct", "scales", "error", "storage")]
        )

    def _show_matrix(self, s: MatrixSummary, g: GroupView) -> None:
        e = s.scheme
        self.matrix_pending = False
        # the group line
        used = len(np.unique(g.after))
        rows, cols = s.shape if len(s.shape) == 2 else (1, s.n_values)
        if g.kind == "block":
            where = (
                f"Block {g.index + 1:,} of {g.count:,} (row {g.rows[0]}, "
                f"columns {g.cols[0]}–{g.cols[1] - 1})"
            )
        elif g.kind == "channel":
            where = f"Row {g.rows[0]} of {rows:,}"
        else:
            where = "The whole matrix"
        line = where
        if g.scale is not None:
            line += f" · d = {sig(g.scale, 7)}"
            if g.offset is not None:
                line += f", m = {sig(g.offset, 7)}"
        if g.grid is not None:
            line += f" · uses {used} of its {g.grid_count} values"
        else:
            line += f" · {FORMATS[e.format].label} rounds each weight on its own"
        self.shown["group"] = line
        # the histogram
        self._w["q-hist"].set_data(
            g.before,
            g.after,
            g.grid,
            lo=g.lo,
            hi=g.hi,
            grid_count=g.grid_count,
            grid_name=FORMATS[e.format].label,
            decimals=3,
            title=line,
        )
        # sample weights
        self._w["q-samples"].set_table(**self._samples_table(e, g))
        # the matrix's numbers
        self._w["q-metrics"].set_rows(self._metric_rows(s))

    def _samples_table(self, e: QuantScheme, g: GroupView) -> dict:
        fmt_name = e.format
        if FORMATS[fmt_name].kind == "int":
            after = "code × d + m" if g.offset is not None else "code × d"
        elif fmt_name == "fp8":
            after = "code × d"
        else:
            after = "after"
        code_head = {"fp8": "E4M3 value", "fp16": "fp16 bits", "bf16": "bf16 bits"}.get(
            fmt_name, "fp32 bits" if fmt_name == "fp32" else "code"
        )
        rows = []
        for smp in g.samples:
            if fmt_name == "fp8":
                code = f"{float(E4M3_VALUES[smp.code]):g}"
            elif fmt_name in ("fp16", "bf16"):
                code = f"0x{smp.code:04X}"
            elif fmt_name == "fp32":
                code = f"0x{smp.code:08X}"
            else:
                code = str(smp.code)
            rows.append(
                (f"[{smp.row}, {smp.col}]", wt(smp.before, 6), code, wt(smp.after, 6),
                 fmt(smp.error, 5))
            )  # fmt: skip
        self.shown["samples"] = "\n".join(" ".join(r) for r in rows)
        if g.scale is None:
            note = "▶ the group's largest |w|"
        elif g.offset is None:  # symmetric: d = largest |w| / the largest code
            note = "▶ the group's largest |w|: it sets d"
        else:  # asymmetric: the group's min and max set d and m together
            note = "▶ the group's largest |w|; its min and max set d and m"
        self.shown["samples_note"] = note
        return {
            "header": ("weight", "before", code_head, after, "error"),
            "rows": rows,
            "align": "lrrrr",
            "highlight": 0,
            "note": note,
        }

    def _metric_rows(self, s: MatrixSummary) -> list[tuple[str, Text | str]]:
        e = s.scheme
        label = FORMATS[e.format].label
        (lo0, hi0), (lo1, hi1) = s.original_range, s.dequantized_range
        shown = {
            "range": f"{wt(lo0)} … {wt(hi0)}  →  {wt(lo1)} … {wt(hi1)}",
            "unique_before": f"{s.unique_original:,}",
            "unique_after": f"{s.unique_values:,}",
            "rmse": sig(s.rmse),
            "rms": sig(s.rms),
            "relative": fmt_percent(s.relative_rmse, 1),
            "max_error": sig(s.max_abs_error),
            "storage": s.storage.explain(),
            "fp32_bytes": f"{s.fp32_nbytes:,}",
            "compression": ratio(s.fp32_nbytes, s.storage.nbytes),
        }
        self.shown.update(shown)
        group_word = GROUP_WORDS.get(e.granularity, "group")
        distinct = f"{shown['unique_before']} values before → {shown['unique_after']} after"
        if FORMATS[e.format].kind == "int" or e.format == "fp8":
            distinct += f" · codes used: {s.unique_codes:,} of {s.levels:,}"
            if s.n_groups > 1:
                distinct += f", at most {s.max_unique_per_group} in one {group_word}"
        if e.granularity == "none":
            scales = f"none: {label} rounds each weight on its own"
        else:
            kind = e.scale_dtype or "fp32"
            lo_d, hi_d = s.scale_abs_range or (0.0, 0.0)
            if s.n_groups == 1:
                scales = f"1 {kind} scale for all {s.n_values:,} weights, |d| = {sig(hi_d, 6)}"
            else:
                scales = (
                    f"{s.n_groups:,} {kind} scales, one per {group_word}; "
                    f"|d| from {sig(lo_d)} to {sig(hi_d)}"
                )
            if e.spec.kind == "int" and not e.symmetric:
                scales += f"; plus {s.n_groups:,} {kind} offsets m"
            per = s.n_values // s.n_groups
            scales += (
                f" · overhead {s.storage.overhead_bits_per_weight:.4g} bits/weight "
                f"({s.storage.scale_bits} bits ÷ {per:,} weights"
                + (" × 2 with offsets)" if s.storage.n_offsets else ")")
            )
        self.shown["scales"] = scales
        self.shown["distinct"] = distinct
        error = (
            f"RMSE {shown['rmse']} = {shown['relative']} of the weights' RMS "
            f"({shown['rms']}) · largest error {shown['max_error']}"
        )
        self.shown["error"] = error
        storage = (
            f"{shown['storage']} · FP32 {shown['fp32_bytes']} B is {shown['compression']} as large"
        )
        self.shown["storage_line"] = storage
        return [
            ("range", shown["range"]),
            ("distinct", distinct),
            ("scales", scales),
            ("error", error),
            ("storage", storage),
        ]

    # -- drawing: the whole model --------------------------------------------------------------

    def _draw_sizes(self) -> None:
        e = self.scheme
        nbytes = self._sizes_8b.get(e)
        if nbytes is None:
            nbytes = self._sizes_8b[e] = model_nbytes_fast(LLAMA_3_8B, e)
        n = LLAMA_3_8B.parameter_count()
        text = (
            f"Llama-3-8B ({n / 1e9:.2f} billion weights) in your scheme, {e.label}: "
            f"{nbytes / 1e9:.2f} GB, {nbytes * 8 / n:.2f} bits per weight."
        )
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
            self._w["q-context"].update(Text(notice, style="italic") if notice else "")
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
        title = Text.assemble(("The whole model in ", "bold"), (e.label, "bold"))
        computing = Text("computing…", style="italic")
        rows: list[tuple[str, Text | str]] = []
        if model is None:
            self._w["q-model"].set_rows([("", Text(view.error, style="italic"))], title=title)
            self._show_texts(view, "")
            return
        nbytes, fp32 = self._model_nbytes(model, e), self._model_nbytes(model, _FP32)
        n_params = fp32 // 4
        size = f"{nbytes:,} B = {nbytes * 8 / n_params:.2f} bits/weight"
        versus = f"{fp32:,} B: {ratio(fp32, nbytes)} as large"
        self.shown["model_size"] = size
        self.shown["model_fp32"] = versus
        rows += [("size", size), ("FP32 size", versus)]
        c = view.comparison
        lab = self._lab
        if lab is not None and lab.copy_bytes > LARGE_MODEL_BYTES:  # say what the copy costs
            rows.append(("memory", f"+{lab.copy_bytes / 2**20:,.0f} MB: the copy runs as FP32"))
        no_eval = lab is not None and not lab.can_compare
        if c is not None:
            kl = f"{sig(c.kl_mean)} nats per token, worst {sig(c.kl_max)}"
            top1 = (
                f"{fmt_percent(c.top1_agreement, 2)} of {c.n_predictions:,} held-out tokens: "
                "same first choice"
            )
            ppl = (
                f"{c.perplexity_candidate:.3f} vs FP32 {c.perplexity_reference:.3f} "
                f"(the same {c.n_predictions:,} tokens)"
            )
            self.shown.update({"kl": kl, "top1": top1, "perplexity": ppl})
            rows += [("KL vs FP32", kl), ("top-1", top1), ("perplexity", ppl)]
        else:
            missing: Text = (
                Text(f"unavailable: {self._eval_error}", style="italic") if no_eval else computing
            )
            self.shown.update({k: missing.plain for k in ("kl", "top1", "perplexity")})
            rows += [("KL vs FP32", missing), ("top-1", missing), ("perplexity", missing)]
        rows.append(("status", self._status(view)))
        self.shown["status"] = rows[-1][1].plain if isinstance(rows[-1][1], Text) else ""
        self._w["q-model"].set_rows(rows, title=title)
        self._show_texts(view, self._prompt_context()[2])

    def _model_nbytes(self, model, scheme: QuantScheme) -> int:  # noqa: ANN001
        """Bytes of ``model`` in ``scheme``, from its shapes (cached: ~2 ms each)."""
        key = (id(model), scheme)
        nbytes = self._sizes.get(key)
        if nbytes is None:
            nbytes = self._sizes[key] = model_nbytes_fast(model.config, scheme)
        return nbytes

    def _status(self, view: ModelView) -> Text:
        if view.stage == "error":
            return Text(f"✗ {view.error}", style="bold")
        if view.stage == "done":
            return Text("✓ final (cached: coming back is instant)")
        pending = []
        if view.texts is None:
            pending.append("text")
        if view.comparison is None:
            pending += ["KL", "top-1", "perplexity"]
        what = {
            "waiting": "starting",
            "quantize": f"quantizing tensor {view.done} of {view.total}",
            "quantized": "generating text",
            "generated": "comparing on held-out text",
            "reference": f"FP32 reference, window {view.done} of {view.total}",
            "compare": f"comparing window {view.done} of {view.total}",
        }.get(view.stage, view.stage)
        bar = ""
        if view.total:
            filled = round(8 * view.done / view.total)
            bar = "  " + "▰" * filled + "▱" * (8 - filled)
        return Text.assemble(("⧗ still computing: ", "bold"), ", ".join(pending), f" — {what}{bar}")

    def _show_texts(self, view: ModelView, reason: str) -> None:
        head, body, note = self._w["q-text-head"], self._w["q-text"], self._w["q-text-note"]
        e = view.scheme
        head.update(
            Text(
                f"Both models continue your prompt: {N_NEW} tokens, seed {self.seed}",
                style="bold",
                no_wrap=True,
                overflow="ellipsis",
            ),
            layout=False,
        )
        t = view.texts
        if t is None:
            message = reason if reason else "computing…"
            if view.stage == "error":
                message = view.error
            body.update(Text(message, style="italic"), layout=False)
            note.update("", layout=False)
            self.shown["text_fp32"] = self.shown["text_quant"] = message
            return
        common = t.common_text
        ref_rest = t.reference.text[len(common) :]
        got_rest = t.candidate.text[len(common) :]
        label = "FP32" if e.format == "fp32" else FORMATS[e.format].label
        self.shown["text_fp32"] = t.reference.text
        self.shown["text_quant"] = t.candidate.text
        body.update(
            TextCompareRenderable(
                [
                    TextRow("FP32", common, ref_rest),
                    TextRow(label if e.format != "fp32" else "FP32 again", common, got_rest, True),
                ],
                max_lines=3,
            ),
            layout=False,
        )
        k = t.first_difference
        n = len(t.reference.tokens)
        if k is None:
            message = f"Both texts are identical ({n} token{'' if n == 1 else 's'})."
        elif k == 0:
            message = "Different from the first token on (underlined)."
        elif k == 1:
            message = "Same first token, then they part (underlined)."
        else:
            message = f"Identical for the first {k} tokens, then they part (underlined)."
        message += f" Sampler: {t.settings.describe()}, same for both."
        for who, gen in (("FP32", t.reference), (label, t.candidate)):
            if gen.stop:
                message += f" {who} stopped early: {gen.stop}."
                break
        self.shown["text_note"] = message
        note.update(Text(message, style="italic"), layout=False)


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
        progress = event.stage in ("quantize", "reference", "compare")
        if progress and now - last < PROGRESS_INTERVAL:
            continue
        last = now
        task.report(event.done / event.total if event.total else 0.0, event)
    return final
