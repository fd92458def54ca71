"""Chapter 14: Context & KV cache — prefill, decode, and what the cache costs and saves.

Read off the shared generation (the same steps chapters 5, 8 and 9 show): the key and
value arrays of every layer, one position longer per step, with their shapes and
``nbytes``; each step measured with the cache and without it (time, multiply-adds, and
how far the logits differ); a quantized copy of the cache (8 or 4 bits) fed the same
tokens, with the bytes it saves and how far it moves the logits; and a memory calculator
for real architectures.

Everything that touches the generation or its cache runs inside generation ops (the app's
single generation worker): an op steps (or not), makes sure the next forward pass has run
— so the cache holds every token in context — measures, and hands this screen a
:class:`KVState` in one assignment; the "generation" change then redraws.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.geometry import Size
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static

from ..core.generation import GenerationStopped, kv_cache_bytes_for
from ..core.quant_kv import kv_bytes_per_token
from ..views.kv_inspect import (
    CacheComparison,
    CacheSnapshot,
    DriftLog,
    cache_snapshot,
    compare_step,
)
from ..views.kv_memory import (
    DTYPE_BYTES,
    DTYPE_NOTES,
    FIELDS,
    KVArch,
    KVInputError,
    bytes_per_token,
    bytes_text,
    format_bytes,
    format_gib,
    formula_text,
    kv_bytes,
    parse_field,
    presets_with,
)
from ..widgets.colors import get_cmap
from ..widgets.line_plot import LinePlot, Series
from ..widgets.prompt_bar import PromptBar
from .base import GENERATION, MODEL, PROMPT, ChapterScreen
from .generation_common import GenerationChapterMixin, step_once

if TYPE_CHECKING:
    from ..core.generation import Generation
    from ..core.quant_kv import KVDriftStep

SYNC_KEY = "kv-cache.sync"
COMPARE_PER_OP = 2
"""Steps measured both ways per catch-up op (newest first). A step op only steps, so a held
key stays quick; catch-up ops run once the keys pause (:data:`CATCH_UP_DELAY`)."""
CATCH_UP_DELAY = 0.12
"""Seconds without a new step before the cache on/off measurements catch up."""
DRIFT_FEEDS_PER_OP = 64
TABLE_ROWS = 8
"""Recent steps listed in the tables (the plot shows all of them)."""

LEAD = (
    "Prefill runs the prompt through the model in one pass and stores every token's keys "
    "and values. Decode adds one token per step: only the new token is computed; its "
    "query reads the stored keys and values of all before it."
)

EXPLAINER: tuple[tuple[str, str], ...] = (
    (
        "Why a cache",
        "A token's key and value vectors depend only on the tokens before it, so once "
        "computed they never change. Without a cache every step recomputes them for the "
        "whole context: the work of a step grows with its length, and a story of n tokens "
        "costs about n²/2 token-passes. With the cache each step runs one token: the work "
        "stays almost flat, and only the attention scores grow, one more key per step.",
    ),
    (
        "What it costs",
        "Memory. Every layer keeps a key and a value vector per KV head for every position: "
        "2 · L · H_kv · d_head numbers per token, at 2 bytes each in bf16. For Llama-3-8B "
        "that is 128 KiB per token, 1 GiB for an 8,192-token context and 16 GiB at 128K — "
        "as much as the 16 GB of weights. That is why long contexts are limited by memory, "
        "and why models share K/V heads (grouped-query attention) and quantize the cache.",
    ),
    (
        "Same numbers, different work",
        "Cached and uncached decoding compute the same function: the logits agree to "
        "float32 rounding (a few millionths, from summing in a different order). What "
        "differs is how many multiply-adds it takes and how long it takes.",
    ),
    (
        "Quantizing the cache",
        "Storing each key and value in 8 or 4 bits, with one fp16 scale per block of 32 "
        "numbers (llama.cpp's q8_0 / q4_0), cuts the cache to about a quarter or an eighth. "
        "The model then reads slightly rounded keys and values; the drift table measures "
        "what that does to the next-token distribution, step by step. Here the shared "
        "story keeps its float32 cache; the quantized one runs alongside on the same "
        "tokens.",
    ),
    (
        "When the window is full",
        "anatomy-mini was trained on 256 positions and its cache holds no more. When "
        "prompt and output fill it, generation stops and says so. (Chat apps instead drop "
        "or summarise the oldest turns; this app cuts a too-long prompt from the front.)",
    ),
)


@dataclass(frozen=True, eq=False)
class KVState:
    """What an op measured for this screen (immutable once handed over)."""

    gen: Generation
    n_steps: int
    use_cache: bool
    bits: int | None
    snapshot: CacheSnapshot
    comparisons: dict  # StepRecord -> CacheComparison
    drift: tuple[tuple[int, KVDriftStep], ...] = ()
    """(step index, drift) for every step the quantized cache has seen."""
    quant_codes_bytes: int = 0
    quant_scales_bytes: int = 0
    quant_pending: int = 0
    """Tokens the quantized cache has not been fed yet (caught up by the next ops)."""
    message: str = ""
    failed: bool = False
    """A measurement raised (the message says what); nothing more is retried."""


@dataclass
class _Shown:
    """The numbers as drawn (read by tests)."""

    arrays: list[tuple[str, str, str, int]] = field(default_factory=list)
    total_bytes: int = 0
    formula_bytes: int = 0
    comparisons: list[CacheComparison] = field(default_factory=list)
    drift: list[tuple[int, KVDriftStep]] = field(default_factory=list)
    calculator_bytes: int = 0


def picture_lines(
    snap: CacheSnapshot, n_prompt: int, width: int, color: bool = True
) -> list[list[Segment]]:
    """Rows L0 K, L0 V, … of cells, one per cached position (or per block of positions
    when there are more than fit), shaded by the length of the cached vector; a ruler
    marks where the prompt ends and which position is newest. Built as segments: it is
    redrawn on every step."""
    t = snap.length
    label_w = 6
    room = max(8, width - label_w - 1)
    block = max(1, -(-t // room))  # positions per cell
    cells = -(-t // block) if t else 0
    cmap = get_cmap("sequential")
    dim, bold = Style(dim=True), Style(bold=True)
    lines: list[list[Segment]] = []
    prompt_cells = min(cells, -(-n_prompt // block))
    ruler = "prompt (prefill)"[: max(0, prompt_cells)].ljust(prompt_cells)
    if cells > prompt_cells:
        ruler += ("│decoded" if cells - prompt_cells > 8 else "│")[: cells - prompt_cells]
    lines.append([Segment(" " * label_w + ruler, dim)])
    ranges = {}
    for kind in (0, 1):  # K rows share one shade range, V rows another
        vals = snap.norms[:, kind, :]
        ranges[kind] = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    for layer in range(snap.norms.shape[0]):
        for kind in (0, 1):
            padded = np.full(cells * block, np.nan)
            padded[:t] = snap.norms[layer, kind, :]
            means = padded.reshape(cells, block)
            means = np.nanmean(means, axis=1) if block > 1 else means[:, 0]
            lo, hi = ranges[kind]
            line = [Segment(f"L{layer} {'KV'[kind]}".ljust(label_w), bold)]
            for i, v in enumerate(means):
                edge = i == prompt_cells and i > 0
                if color:
                    line.append(Segment("▏" if edge else " ", cmap.style(float(v), lo, hi)))
                else:
                    line.append(Segment("│" if edge else cmap.glyph(float(v), lo, hi)))
            lines.append(line)
    tail = f" newest (position {t - 1})"
    col = label_w + max(0, cells - 1)
    marker = (
        " " * col + "▲" + tail
        if col + 1 + len(tail) <= width
        else (" " * max(0, col - len(tail)) + tail.strip() + " ▲")
    )
    lines.append([Segment(marker, bold)])
    per = "each cell is one position" if block == 1 else f"each cell is {block} positions (mean)"
    lines.append([Segment(f"{per}; shade = length of the cached vector (darker = shorter):", dim)])
    lines.append([Segment(
        f"K {ranges[0][0]:.2f}–{ranges[0][1]:.2f}, V {ranges[1][0]:.2f}–{ranges[1][1]:.2f}", dim
    )])  # fmt: skip
    return lines


class CachePicture(Widget):
    """The cache as a picture (see :func:`picture_lines`); a fixed height, so a step
    repaints it without a new layout."""

    DEFAULT_CSS = "CachePicture { height: auto; width: 1fr; }"

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self._data: tuple[CacheSnapshot, int] | None = None
        self._lines: list[Strip] = []
        self._layers = 0

    def set_data(self, snap: CacheSnapshot, n_prompt: int) -> None:
        relayout = snap.norms.shape[0] != self._layers
        self._layers = snap.norms.shape[0]
        self._data = (snap, n_prompt)
        self._lines = []
        self.refresh(layout=relayout)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return 2 * self._layers + 4 if self._data else 1

    def text(self, width: int = 100) -> str:
        """The picture as plain text (for tests and for reading it aloud)."""
        if self._data is None:
            return ""
        lines = picture_lines(*self._data, width, color=False)
        return "\n".join("".join(seg.text for seg in line).rstrip() for line in lines)

    def render_line(self, y: int) -> Strip:
        # Every segment carries the widget's style: a segment without one (padding, a
        # glyph cell) reached Textual's NO_COLOR filter as None and crashed it.
        width = self.size.width
        base = self.rich_style
        if self._data is None or width <= 0:
            return Strip.blank(width, base)
        if not self._lines or self._lines[0].cell_length != width:
            lines = picture_lines(*self._data, width, color=not self.app.no_color)
            self._lines = [Strip(line).adjust_cell_length(width).apply_style(base) for line in lines]
        return self._lines[y] if y < len(self._lines) else Strip.blank(width, base)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def _m(macs: int) -> str:
    return f"{macs / 1e6:.2f}"


def _prefill_and_decode(n_prompt: int, n_generated: int) -> list[str | tuple[str, str]]:
    """The status line's count of the work: the prefill yields the first new token, each
    decode step one more — so "3 tokens generated" is the prefill and 2 decode steps.

    >>> "".join(p if isinstance(p, str) else p[0] for p in _prefill_and_decode(18, 3))
    '18 prompt tokens → token 1 · decode: tokens 2–3, one per step'
    """
    prompt = f"{n_prompt} prompt token{'s' if n_prompt != 1 else ''}"
    if n_generated == 0:
        return [f"{prompt} in one pass · no token generated yet"]
    if n_generated == 1:
        return [f"{prompt} → token 1 · ", ("decode: ", "bold"), "from the next step on"]
    later = "token 2" if n_generated == 2 else f"tokens 2–{n_generated}"
    return [f"{prompt} → token 1 · ", ("decode: ", "bold"), f"{later}, one per step"]


class KVCacheScreen(GenerationChapterMixin, ChapterScreen):
    """Chapter 14: the KV cache of the shared generation, measured."""

    NEEDS_MODEL = True
    AUTO_FOCUS = "#kv-body"
    CSS_PATH = "c14_kv_cache.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-tiny"), (60, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    BINDINGS = [
        Binding("s,space", "step", "Step", id="kv-cache.step",
                tooltip="Decode one token (shared with chapters 5, 8 and 9): the cache grows "
                        "by one position"),
        Binding("g", "generate", "Generate 10", id="kv-cache.generate",
                tooltip="Decode ten tokens, one step at a time"),
        Binding("c", "toggle_cache", "Cache on/off", id="kv-cache.cache",
                tooltip="Decode with the KV cache (one token per step) or without it (the "
                        "whole context every step); the logits stay the same"),
        Binding("k", "cycle_quant", "Quantized KV", id="kv-cache.quant",
                tooltip="Run an 8-bit, then a 4-bit copy of the cache beside the float32 one "
                        "(off, 8, 4): bytes saved and logit drift per step"),
        Binding("x", "restart", "Start over", id="kv-cache.restart",
                tooltip="Forget the generated tokens and the cache; the next step prefills "
                        "the prompt again"),
        Binding("m", "calculator", "Calculator", id="kv-cache.calculator",
                tooltip="Jump to the memory calculator (Tab moves between its fields, Esc "
                        "comes back)"),
    ]  # fmt: skip

    def __init__(self, chapter) -> None:  # noqa: ANN001
        super().__init__(chapter)
        self._use_cache = True
        self._bits: int | None = None
        self._kv: KVState | None = None  # written by generation ops
        self._requested: tuple | None = None
        self._drift_log: DriftLog | None = None  # touched only inside generation ops
        self._drift_gen: Generation | None = None
        self._catch_up_timer: Timer | None = None
        self._arch: KVArch | None = None
        self._calc_errors: dict[str, str] = {}
        self._filling = False
        self.shown = _Shown()
        """The numbers as drawn (for tests)."""

    # -- layout ----------------------------------------------------------------------------

    def compose_chapter(self) -> ComposeResult:
        with VerticalScroll(id="kv-body"):
            yield PromptBar(self.session.prompt, title="Prompt (shared by every chapter)",
                            id="prompt")  # fmt: skip
            yield Static(Text(LEAD), id="kv-lead", classes="prose")
            yield Static(id="kv-status")
            yield Static(id="kv-message")
            yield Static(Text("The cache, layer by layer", style="bold"), classes="heading")
            yield Static(id="kv-arrays")
            yield CachePicture(id="kv-map")
            yield Static(Text("With and without the cache", style="bold"), classes="heading")
            yield Static(id="kv-compare")
            with Horizontal(id="kv-plots"):
                yield LinePlot(id="kv-plot-macs", title="multiply-adds per step",
                               y_label="millions", x_label="step")  # fmt: skip
                yield LinePlot(id="kv-plot-time", title="time per step",
                               y_label="ms", x_label="step")  # fmt: skip
            yield Static(Text("Quantized KV cache", style="bold"), classes="heading")
            yield Static(id="kv-quant")
            yield Static(Text("Memory for real models", style="bold"), classes="heading")
            yield Static(id="kv-calc-lead", classes="prose")
            with Grid(id="kv-calc"):
                with Horizontal(classes="kv-field kv-wide"):
                    yield Label("model", classes="kv-label")
                    yield Select([], id="kv-preset", compact=True, allow_blank=True,
                                 prompt="custom")  # fmt: skip
                for key, (label, _, _) in FIELDS.items():
                    with Horizontal(classes="kv-field"):
                        yield Label(label, classes="kv-label")
                        yield Input(id=f"kv-{key}", compact=True, max_length=12,
                                    tooltip=f"{label}: a whole number")  # fmt: skip
                with Horizontal(classes="kv-field"):
                    yield Label("dtype", classes="kv-label")
                    yield Select([(k, k) for k in DTYPE_BYTES], id="kv-dtype", compact=True,
                                 allow_blank=False, value="bf16")  # fmt: skip
            yield Static(id="kv-calc-result")
            yield Static(id="kv-presets")
            for heading, body in EXPLAINER:
                yield Static(Text(heading, style="bold"), classes="heading")
                yield Static(Text(body), classes="prose")

    def on_mount(self) -> None:
        q = self.query_one
        self._status = q("#kv-status", Static)
        self._message = q("#kv-message", Static)
        self._arrays = q("#kv-arrays", Static)
        self._map = q("#kv-map", CachePicture)
        self._compare = q("#kv-compare", Static)
        self._plot_macs = q("#kv-plot-macs", LinePlot)
        self._plot_time = q("#kv-plot-time", LinePlot)
        self._quant = q("#kv-quant", Static)
        self._calc_result = q("#kv-calc-result", Static)
        self._presets_table = q("#kv-presets", Static)
        q("#kv-calc-lead", Static).update(
            Text(
                "The same formula for other models: pick one (Enter opens the list), or type "
                "your own numbers; a context like 128k is read as 131,072."
            )
        )
        self._fill_presets()

    _FIXED_HEIGHT = frozenset({"kv-status", "kv-arrays", "kv-compare", "kv-quant"})

    # -- session ---------------------------------------------------------------------------

    def session_changed(self, changes: frozenset[str]) -> None:
        if changes & {PROMPT, MODEL}:
            self._kv = None
        if MODEL in changes:
            self._fill_presets()
        if changes & {PROMPT, MODEL, GENERATION}:
            self.refresh_view()

    def _want(self, gen: Generation | None) -> tuple:
        return (gen, len(gen.steps) if gen is not None else -1, self._use_cache, self._bits)

    def _fresh(self, kv: KVState | None, gen: Generation | None) -> bool:
        return (
            kv is not None
            and gen is not None
            and (kv.gen, kv.n_steps, kv.use_cache, kv.bits) == self._want(gen)
            and not self._behind(kv)
        )

    def _behind(self, kv: KVState) -> bool:
        """True while some step still lacks its measurement or drift row (a failed
        measurement is reported once, not retried forever)."""
        if kv.failed:
            return False
        return kv.n_steps > len(kv.comparisons) or kv.quant_pending > 0

    # -- generation ops (run in the app's generation worker) ---------------------------------

    def _op(
        self, action: Callable[[Generation], str | None] | None = None, compare: int = 0
    ) -> Callable:
        use_cache, bits = self._use_cache, self._bits

        def op(gen: Generation) -> str | None:
            gen.use_cache = use_cache
            message = action(gen) if action is not None else None
            try:
                self._kv = self._measure(gen, use_cache, bits, message or "", compare)
            except Exception as exc:  # keep the screen alive and say what failed
                snapshot = cache_snapshot(gen.cache, gen.model.config)
                text = f"Could not measure this step: {type(exc).__name__}: {exc}"
                self._kv = KVState(gen, len(gen.steps), use_cache, bits, snapshot, {},
                                   message=text, failed=True)  # fmt: skip
                return text
            return message

        return op

    def _measure(self, gen: Generation, use_cache: bool, bits: int | None,
                 message: str, compare: int) -> KVState:  # fmt: skip
        if use_cache and (gen.room > 0 or not gen.done):
            # run the next forward pass now: then every token in context is in the cache
            # (with the cache off there is nothing to store; the next step does the work)
            with contextlib.suppress(GenerationStopped):
                gen.preview()
        old = self._kv.comparisons if self._kv is not None and self._kv.gen is gen else {}
        comparisons = {rec: old[rec] for rec in gen.steps if rec in old}
        todo = [rec for rec in reversed(gen.steps) if rec not in comparisons][:compare]
        for rec in todo:
            comparisons[rec] = compare_step(gen, rec.index)
        snapshot = cache_snapshot(gen.cache, gen.model.config)
        drift: tuple = ()
        codes = scales = pending = 0
        if bits is None:
            self._drift_log = None
        else:
            log = self._drift_log
            if log is None or log.bits != bits or self._drift_gen is not gen:
                log = self._drift_log = DriftLog(gen.model, bits)
                self._drift_gen = gen
            pending = log.sync(gen.tokens, len(gen.prompt), limit=DRIFT_FEEDS_PER_OP)
            drift = tuple(sorted(log.rows.items()))
            cache = log.quantized_cache
            scales = sum(layer.key_scales.nbytes + layer.value_scales.nbytes
                         for layer in cache.layers)  # fmt: skip
            codes = cache.nbytes - scales
        return KVState(gen, len(gen.steps), use_cache, bits, snapshot, comparisons, drift,
                       codes, scales, pending, message)  # fmt: skip

    def _request_sync(self, gen: Generation | None) -> None:
        """Bring the measurements up to date: at once when what is shown belongs to another
        state (a step taken elsewhere, cache or quantization switched); after a pause when
        only the cache on/off measurements of earlier steps are missing — so a held step
        key is never slowed down by recomputing old steps."""
        want = self._want(gen)
        kv = self._kv
        if kv is None or (kv.gen, kv.n_steps, kv.use_cache, kv.bits) != want:
            if want != self._requested:
                self._requested = want
                self.submit_generation(self._op(), key=SYNC_KEY)
            return
        if self._behind(kv):
            if self._catch_up_timer is not None:
                self._catch_up_timer.stop()
            self._catch_up_timer = self.set_timer(CATCH_UP_DELAY, self._catch_up)

    def _catch_up(self) -> None:
        self._catch_up_timer = None
        kv = self._kv
        if kv is not None and self._behind(kv):
            self.submit_generation(self._op(compare=COMPARE_PER_OP), key=SYNC_KEY)

    # -- drawing ---------------------------------------------------------------------------

    def refresh_view(self) -> None:
        if not self._ready():
            self._put(self._status, self._waiting_text())
            return
        gen = self.session.current_generation
        kv = self._kv
        if not self._fresh(kv, gen):
            self._request_sync(gen)
        if kv is None or gen is None or kv.gen is not gen:
            self._put(self._status, Text("Reading the prompt…", style="italic"))
            self._show_message(gen)
            return
        self._draw_status(gen, kv)
        self._show_message(gen)
        self._draw_arrays(gen, kv)
        self._draw_compare(gen, kv)
        self._draw_quant(gen, kv)

    def _show_message(self, gen: Generation | None) -> None:
        s = self.session
        lines = []
        if gen is not None and gen.done and gen.stop is not None:
            tail = (
                " Press x to start over, or shorten the prompt."
                if gen.stop.reason == "context_full"
                else " Press x to start over."
            )
            lines.append(Text.assemble(("Generation stopped: ", "bold"), gen.stop.message + ".",
                                       tail))  # fmt: skip
        if s.generation_message and gen is not None and not gen.done:
            lines.append(Text(s.generation_message, style="bold"))
        if s.context_notice and gen is not None:
            lines.append(Text(s.context_notice, style="italic"))
        self._message.display = bool(lines)
        self._put(self._message, Text("\n").join(lines) if lines else "")

    def _draw_status(self, gen: Generation, kv: KVState) -> None:
        n_prompt = len(gen.prompt)
        n_gen = kv.n_steps
        cfg = gen.model.config
        cache = "on" if kv.use_cache else "OFF (every step recomputes all tokens)"
        self._put(
            self._status,
            Text.assemble(
                ("Prefill: ", "bold"),
                *_prefill_and_decode(n_prompt, n_gen),
                "\n",
                ("cache: ", "bold"),
                f"{kv.snapshot.length} of {cfg.max_position_embeddings} positions, {cache}",
            ),
        )

    def _draw_arrays(self, gen: Generation, kv: KVState) -> None:
        snap = kv.snapshot
        cfg = gen.model.config
        out = Text(no_wrap=True, overflow="ellipsis")
        t = snap.length
        rows = []
        for layer in snap.layers:
            k = f"[{', '.join(str(d) for d in layer.k_shape)}]"
            v = f"[{', '.join(str(d) for d in layer.v_shape)}]"
            rows.append((f"layer {layer.layer}", k, v, layer.nbytes, layer.dtype))
        self.shown.arrays = [(r[0], r[1], r[2], r[3]) for r in rows]
        self.shown.total_bytes = snap.nbytes
        self.shown.formula_bytes = snap.formula_bytes
        cells = [(name, f"{k} {dtype}", f"{v} {dtype}", f"{nbytes:,}")
                 for name, k, v, nbytes, dtype in rows]  # fmt: skip
        total = snap.nbytes
        header = ("", "K [H_kv, T, d_head]", "V [H_kv, T, d_head]", "bytes K + V")
        footer = ("all", "", "Σ nbytes", f"{total:,}")
        widths = [max(len(c[i]) for c in (header, footer, *cells)) for i in range(4)]

        def line(c: tuple[str, ...]) -> str:
            return "  ".join((c[0].ljust(widths[0]), c[1].ljust(widths[1]),
                              c[2].ljust(widths[2]), c[3].rjust(widths[3])))  # fmt: skip

        out.append(line(header) + "\n", style="bold")
        for c in cells:
            out.append(line(c) + "\n")
        out.append(line(footer) + "\n", style="bold")
        ok = "✓ equal" if total == snap.formula_bytes else "✗ they differ!"
        pad = " " * widths[0]
        out.append(f"{'formula':<{widths[0]}}  2 · L · H_kv · d_head · T · 4 B\n")
        out.append(
            f"{pad}  = 2 · {cfg.num_hidden_layers} · {cfg.num_key_value_heads} · "
            f"{cfg.dim_head} · {t} · 4 = {snap.formula_bytes:,} B  "
        )
        out.append(ok + "\n", style="bold")
        per = kv_cache_bytes_for(cfg, 1)
        full = kv_cache_bytes_for(cfg, cfg.max_position_embeddings)
        out.append(
            f"{per:,} B per token; the full {cfg.max_position_embeddings}-token window "
            f"takes {full:,} B ({format_bytes(full)})",
            style="dim",
        )
        # one note line, always present (blank if nothing to say): a step never changes
        # the table's height, so it repaints without a layout pass
        if not kv.use_cache:
            note = "Cache off: nothing is stored; every step recomputes all keys and values."
        elif t < len(gen.tokens) and gen.done:
            note = "The newest token never ran (generation stopped): its K, V were not needed."
        else:
            note = ""
        out.append("\n" + note, style="italic")
        self._put(self._arrays, out)
        # the picture: one column per cached position, one row per layer and K/V
        self._map.display = t > 0
        if t:
            self._map.set_data(snap, len(gen.prompt))

    def _comparisons(self, gen: Generation, kv: KVState) -> list[CacheComparison]:
        return [kv.comparisons[rec] for rec in gen.steps[: kv.n_steps] if rec in kv.comparisons]

    def _draw_compare(self, gen: Generation, kv: KVState) -> None:
        comps = self._comparisons(gen, kv)
        self.shown.comparisons = comps
        out = Text(no_wrap=True, overflow="ellipsis")
        if not comps:
            out.append("Take a step (s) to measure one both ways.", style="italic")
            self._put(self._compare, out)
            self._plot_macs.display = self._plot_time.display = False
            return
        last = comps[-1]
        out.append(f"Step {last.index}", style="bold")
        if last.prefill:
            out.append(f": the prefill — both ways run all {last.cached_fed} prompt tokens.\n")
        else:
            out.append(
                f": with the cache {last.cached_fed} token fed, without it all "
                f"{last.uncached_fed}.\n"
            )
        same = "same top token" if last.top1_same else "DIFFERENT top token"
        out.append(f"Logits with vs without: max |Δ| = {last.max_abs_diff:.1e}, {same}.\n")
        header = ("step", "T", "fed", "M MACs cached", "no cache", "ms cached", "no cache",
                  "max |Δ|")  # fmt: skip
        rows = []
        for c in comps[-TABLE_ROWS:]:
            fed = f"{c.cached_fed}/{c.uncached_fed}"
            rows.append((str(c.index), str(c.position), fed, _m(c.cached_macs),
                         _m(c.uncached_macs), _ms(c.cached_seconds), _ms(c.uncached_seconds),
                         f"{c.max_abs_diff:.1e}"))  # fmt: skip
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        out.append("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)) + "\n",
                   style="bold")  # fmt: skip
        for r in rows:
            out.append("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + "\n")
        if len(comps) > TABLE_ROWS:
            out.append(f"(the last {TABLE_ROWS} of {len(comps)} steps; the plots show all)\n",
                       style="dim")  # fmt: skip
        decode = [c for c in comps if not c.prefill]
        if decode:
            cm = sum(c.cached_macs for c in decode)
            um = sum(c.uncached_macs for c in decode)
            ct = sum(c.cached_seconds for c in decode)
            ut = sum(c.uncached_seconds for c in decode)
            out.append(
                f"{len(decode)} decode step{'s' if len(decode) != 1 else ''}: "
                f"{_m(cm)} M multiply-adds with the cache, {_m(um)} M without "
                f"({um / cm:.1f}×);\nmeasured {_ms(ct)} ms with the cache, {_ms(ut)} ms without.",
                style="bold",
            )
        missing = kv.n_steps - len(comps)
        if missing:
            out.append(f"\nmeasuring {missing} more step{'s' if missing != 1 else ''}…",
                       style="italic")  # fmt: skip
        self._put(self._compare, out)
        xs = [c.index for c in comps]
        self._plot_macs.series = (
            Series("no cache", [c.uncached_macs / 1e6 for c in comps], xs),
            Series("cache", [c.cached_macs / 1e6 for c in comps], xs),
        )
        self._plot_time.series = (
            Series("no cache", [c.uncached_seconds * 1000 for c in comps], xs),
            Series("cache", [c.cached_seconds * 1000 for c in comps], xs),
        )
        self._plot_macs.ylim = (0.0, max(c.uncached_macs for c in comps) / 1e6 * 1.05)
        self._plot_time.ylim = (
            0.0,
            max(max(c.uncached_seconds, c.cached_seconds) for c in comps) * 1000 * 1.05,
        )
        self._plot_macs.display = self._plot_time.display = True

    def _draw_quant(self, gen: Generation, kv: KVState) -> None:
        out = Text(no_wrap=True, overflow="ellipsis")
        cfg = gen.model.config
        self.shown.drift = list(kv.drift)
        if kv.bits is None:
            out.append("Off. ", style="bold")
            out.append(
                f"Press k to run an 8-bit copy of the cache beside the float32 one\n"
                f"({kv_bytes_per_token(cfg, 8):,} B per token instead of "
                f"{kv_bytes_per_token(cfg):,}); k again for 4-bit "
                f"({kv_bytes_per_token(cfg, 4):,} B), once more for off.",
            )
            self._put(self._quant, out)
            return
        if not kv.drift:
            out.append("Feeding the tokens so far to the quantized cache…", style="italic")
            self._put(self._quant, out)
            return
        step_index, last = kv.drift[-1]
        t = last.length
        bits = kv.bits
        fp32 = last.fp32_nbytes
        q = last.quantized_nbytes
        block = "block of 32" if cfg.dim_head % 32 == 0 else f"head ({cfg.dim_head} numbers)"
        out.append(f"{bits}-bit cache", style="bold")
        out.append(f", one fp16 scale per {block}, {t} positions:\n")
        n_blocks = cfg.dim_head // (32 if cfg.dim_head % 32 == 0 else cfg.dim_head)
        L, H = cfg.num_hidden_layers, cfg.num_key_value_heads  # noqa: N806
        out.append(
            f"  codes   2 · {L} · {H} · {t} · {cfg.dim_head} · {bits}/8 B"
            f" = {kv.quant_codes_bytes:,} B\n"
            f"  scales  2 · {L} · {H} · {t} · {n_blocks} × 2 B = {kv.quant_scales_bytes:,} B\n"
            f"  total   {q:,} B = codes + scales; float32 holds {fp32:,} B\n"
            f"  saved   {fp32 - q:,} B ({last.saved_fraction * 100:.1f}%)\n"
        )
        rows = kv.drift
        agree = sum(1 for _, d in rows if d.top1_match)
        mean_kl = float(np.mean([d.kl for _, d in rows]))
        worst = max(d.max_abs_logit_diff for _, d in rows)
        out.append("Drift of the next-token logits versus the float32 cache:\n", style="bold")
        out.append(
            f"top token the same in {agree} of {len(rows)}; mean KL {mean_kl:.1e} nats; "
            f"worst max |Δlogit| {worst:.4f}\n"
        )
        header = ("for step", "T", "float32 B", f"{bits}-bit B", "max |Δlogit|", "KL (nats)",
                  "top-1")  # fmt: skip
        table = []
        for i, d in rows[-TABLE_ROWS:]:
            label = f"{i} (prefill)" if i == 0 else (f"{i} (next)" if i == kv.n_steps else str(i))
            table.append((label, str(d.length), f"{d.fp32_nbytes:,}", f"{d.quantized_nbytes:,}",
                          f"{d.max_abs_logit_diff:.4f}", f"{d.kl:.1e}",
                          "same" if d.top1_match else "DIFF"))  # fmt: skip
        widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
        out.append("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)) + "\n",
                   style="bold")  # fmt: skip
        for r in table:
            out.append("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + "\n")
        if len(rows) > TABLE_ROWS:
            out.append(f"(the last {TABLE_ROWS} of {len(rows)})\n", style="dim")
        if kv.quant_pending:
            out.append(f"feeding {kv.quant_pending} more tokens…", style="italic")
        self._put(self._quant, out)

    # -- the calculator ------------------------------------------------------------------------

    def _presets(self) -> tuple[KVArch, ...]:
        model = self.session.model
        return presets_with(model.config if model is not None else None)

    def _fill_presets(self) -> None:
        presets = self._presets()
        select = self.query_one("#kv-preset", Select)
        select.set_options([(a.name, i) for i, a in enumerate(presets)])
        self._filling = True
        try:
            select.value = 0
        finally:
            self._filling = False
        self._set_arch(presets[0])
        self._draw_presets_table(presets)

    def _set_arch(self, arch: KVArch) -> None:
        self._arch = arch
        self._filling = True
        try:
            for key in FIELDS:
                self.query_one(f"#kv-{key}", Input).value = f"{getattr(arch, key)}"
            self.query_one("#kv-dtype", Select).value = arch.dtype
        finally:
            self._filling = False
        self._calc_errors = {}
        self._draw_calc()

    def _draw_presets_table(self, presets: tuple[KVArch, ...]) -> None:
        header = ("model", "L", "H", "H_kv", "d_head", "T", "dtype", "B/token", "all T")
        rows = []
        for a in presets:
            rows.append((a.name, str(a.layers), str(a.attention_heads), str(a.kv_heads),
                         str(a.head_dim), f"{a.context:,}", a.dtype,
                         f"{float(bytes_per_token(a)):,.0f}", format_bytes(kv_bytes(a))))  # fmt: skip
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )

        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(line(header) + "\n", style="bold")
        for r in rows:
            out.append(line(r) + "\n")
        out.append(
            "Numbers from the public checkpoints' configs: H query heads, T the context\n"
            "window. Under GQA, H / H_kv query heads share one K/V head: the cache shrinks by\n"
            "that factor.",
            style="dim",
        )
        self._presets_table.update(out)

    def _draw_calc(self) -> None:
        arch = self._arch
        out = Text()
        if self._calc_errors:
            for err in self._calc_errors.values():
                out.append(err + "\n", style="bold red")
        if arch is None:
            self._calc_result.update(out)
            return
        total = kv_bytes(arch)
        self.shown.calculator_bytes = total
        out.append("2 · L · H_kv · d_head · T · bytes", style="bold")
        out.append(f" = {formula_text(arch)} = ")
        out.append(f"{total:,} B", style="bold")
        out.append(f" ({format_bytes(total)}, {format_gib(total)})\n")
        per = bytes_per_token(arch)
        per_text = f"{per.numerator:,}" if per.denominator == 1 else bytes_text(per)
        out.append(f"{per_text} B per token; {arch.dtype}: {DTYPE_NOTES[arch.dtype]}", style="dim")
        if arch.gqa_group > 1 and arch.name != "custom":
            out.append(
                f"; without GQA ({arch.attention_heads} K/V heads) it would be "
                f"{format_bytes(total * arch.gqa_group)}",
                style="dim",
            )
        self._calc_result.update(out)

    def on_input_changed(self, event: Input.Changed) -> None:
        ident = event.input.id or ""
        if not ident.startswith("kv-"):
            return
        event.stop()
        if self._filling or self._arch is None:
            return
        key = ident[3:]
        if key not in FIELDS:
            return
        try:
            value = parse_field(key, event.value)
        except KVInputError as exc:
            self._calc_errors[key] = str(exc)
            event.input.add_class("-bad")
        else:
            self._calc_errors.pop(key, None)
            event.input.remove_class("-bad")
            if getattr(self._arch, key) != value:
                self._arch = replace(self._arch, **{key: value}, name="custom")
                self._mark_custom()
        self._draw_calc()

    def _mark_custom(self) -> None:
        select = self.query_one("#kv-preset", Select)
        self._filling = True
        try:
            select.clear()
        finally:
            self._filling = False

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if (event.input.id or "").startswith("kv-"):
            event.stop()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if self._filling:
            return
        if event.select.id == "kv-preset":
            if isinstance(event.value, int):
                presets = self._presets()
                if 0 <= event.value < len(presets):
                    self._set_arch(presets[event.value])
        elif (
            event.select.id == "kv-dtype"
            and self._arch is not None
            and isinstance(event.value, str)
            and event.value != self._arch.dtype
        ):
            self._arch = replace(self._arch, dtype=event.value)
            self._draw_calc()

    # -- actions ---------------------------------------------------------------------------

    def action_step(self) -> None:
        if not self._model_or_say():
            return
        self.submit_generation(self._op(step_once))

    def action_generate(self) -> None:
        for _ in range(10):
            self.action_step()

    def action_toggle_cache(self) -> None:
        if not self._model_or_say():
            return
        self._use_cache = not self._use_cache  # the status line says so once applied
        self.refresh_view()

    def action_cycle_quant(self) -> None:
        if not self._model_or_say():
            return
        self._bits = {None: 8, 8: 4, 4: None}[self._bits]
        self.refresh_view()

    def action_restart(self) -> None:
        if not self._model_or_say():
            return

        def restart(gen: Generation) -> str | None:
            gen.rewind(0)
            gen.cache.truncate(0)  # so the next step is a full prefill again
            return None

        self.submit_generation(self._op(restart))

    def action_calculator(self) -> None:
        select = self.query_one("#kv-preset", Select)
        select.focus()
        select.scroll_visible(top=True)
