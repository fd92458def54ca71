"""Chapter 14: Context & KV cache — prefill, decode, and what the cache costs and saves.

Read off the shared generation (the same steps chapters 5, 8 and 9 show): the key and
value arrays of every layer, one position longer per step, with their shapes and
``nbytes``; each step measured with the cache and without it (time, multiply-adds, and
how far the logits differ); a quantized copy of the cache (8 or 4 bits) fed the same
tokens, with the bytes it saves and how far it moves the logits; and a memory calculator
for real architectures.

Everything that touches the generation goes through the base's one compute path:
``compute_generation("state", op)``, whose op (in the app's generation worker) steps or
not and returns a :class:`~llm_anatomy_tui.views.kv_inspect.KVState` — a snapshot with
the measurements — that :meth:`KVCacheScreen.draw_state` draws. Steps not yet measured
both ways are measured a few per op; while some are missing the screen asks again.

The cache switch (``c``) changes only which way of decoding this screen shows: with the
cache (what is stored, and what each step feeds) or without it (nothing stored, every
step recomputes every key and value). The shared generation is not touched by it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from ..core.generation import Generation, StepRecord
from ..core.quant_kv import KVDriftStep
from ..views.generation_ops import step_op
from ..views.kv_inspect import (
    CacheComparison,
    DriftLog,
    KVState,
    array_rows,
    ignore_progress,
    kv_state,
    measure_after_a_pause,
    restart_op,
    state_key,
    ten_steps_op,
)
from ..views.kv_memory import (
    DTYPE_BYTES,
    FIELDS,
    KVArch,
    KVInputError,
    kv_bytes,
    parse_field,
    presets_with,
)
from ..views.kv_text import EXPLAINER, LEAD
from ..widgets.cache_picture import CachePicture
from ..widgets.kv_panels import (
    arrays_text,
    calc_text,
    compare_series,
    compare_text,
    message_lines,
    no_cache_text,
    presets_text,
    quant_text,
    status_text,
)
from ..widgets.line_plot import LinePlot
from ..widgets.prompt_bar import PromptBar
from .base import MODEL, PROMPT, ChapterScreen
from .generation_common import GenerationChapterMixin

SYNC_KEY = "kv-cache.sync"
"""Queued measuring ops replace each other: only the newest is run."""
COMPARE_PER_OP = 2
"""Steps measured both ways per measuring op (newest first); a step op measures none."""
DRIFT_FEEDS_PER_OP = 16
"""Positions fed to the quantized cache per op (about 1 ms each for anatomy-mini): ``k``
on a long story repaints after 16, then catch-up ops feed the rest (64 per op held the
first repaint of ``k`` at 138 tokens to 60 ms)."""


@dataclass
class _Shown:
    """The numbers as drawn (read by tests)."""

    arrays: list[tuple[str, str, str, int]] = field(default_factory=list)
    total_bytes: int = 0
    formula_bytes: int = 0
    comparisons: list[CacheComparison] = field(default_factory=list)
    drift: list[tuple[int, KVDriftStep]] = field(default_factory=list)
    calculator_bytes: int = 0


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
        self.use_cache = True
        """Which way of decoding the screen shows (the c key); the generation is untouched."""
        self._drift: DriftLog | None = None  # fed only inside generation ops
        self._comparisons: dict[StepRecord, CacheComparison] = {}  # UI thread only
        self._measure_error = ""
        self._arch: KVArch | None = None
        self._calc_errors: dict[str, str] = {}
        self._filling = False
        self.state: KVState | None = None
        """The newest snapshot of the shared generation drawn (None before the first)."""
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

    # -- asking: every change goes through compute_generation --------------------------------

    def session_changed(self, changes: frozenset[str]) -> None:
        if MODEL in changes:
            self._fill_presets()
            self._drift = None
        if changes & {PROMPT, MODEL}:
            self._measure_error = ""
        if not self.model_ready():
            self.state = None
            self.draw_state(None)
            return
        if changes & {PROMPT, MODEL} or not self._up_to_date():
            self._ask(None)

    def _up_to_date(self) -> bool:
        """Whether the state drawn is the shared generation's state now."""
        gen = self.session.current_generation
        st = self.state
        return (
            gen is not None
            and st is not None
            and st.key == state_key(gen)
            and (st.bits == (self._drift.bits if self._drift is not None else None))
        )

    def _ask(self, action, info: str = "") -> None:  # noqa: ANN001
        """Run ``action(gen) -> str`` (None: nothing) on the shared generation and draw the
        state it leaves. Plain reading ops are keyed: a newer one replaces a queued one;
        actions are never dropped."""
        log = self._drift

        def op(gen: Generation) -> KVState:
            said = action(gen) if action is not None else info
            return kv_state(gen, log, feeds=DRIFT_FEEDS_PER_OP, info=said,
                            notice=self.generation_notice)  # fmt: skip

        self.compute_generation("state", op, then=self.draw_state,
                                key=SYNC_KEY if action is None else None)  # fmt: skip

    def _measure(self, kv: KVState) -> None:
        """Ask for the steps not yet measured both ways (newest first, a few at a time)
        in a thread worker beside the generation worker, so a held step key never waits
        for them; a newer request (the next step) supersedes this one."""
        model = self.session.model
        todo = [rec for rec in reversed(kv.steps) if rec not in self._comparisons]
        if model is None or not todo:
            self.cancel_compute("measure")
            return
        self.compute("measure", measure_after_a_pause, model, kv.tokens, kv.n_prompt,
                     todo[:COMPARE_PER_OP], then=self._measured, on_error=self._measure_failed,
                     on_progress=ignore_progress)  # fmt: skip

    def _measured(self, found: dict | None) -> None:
        if found is None:
            return  # cancelled by a newer request
        self._comparisons.update(found)
        self.draw_state(None)
        if self.state is not None:
            self._measure(self.state)  # the next few, until every step is measured

    def _measure_failed(self, message: str) -> None:
        self._measure_error = f"Could not measure a step both ways: {message}"
        self.draw_state(None)

    # -- drawing ---------------------------------------------------------------------------

    def draw_state(self, state: KVState | None) -> None:
        """Draw a snapshot of the shared generation; ask for more while steps are missing
        their measurements (a few per op, so a held step key never waits for old ones)."""
        if state is not None:
            self.state = state
            kept = set(state.steps)  # a rewind or a new prompt drops what it measured
            self._comparisons = {r: c for r, c in self._comparisons.items() if r in kept}
        if not self.model_ready():
            self._put(self._status, self._waiting_text())
            return
        kv = self.state
        if kv is None:
            self._put(self._status, Text("Reading the prompt…", style="italic"))
            return
        self._draw_status(kv)
        self._show_message(kv)
        self._draw_arrays(kv)
        self._draw_compare(kv)
        self._draw_quant(kv)
        if state is not None:
            if state.behind and not self.is_computing("state"):
                self._ask(None)  # the quantized cache has more tokens to be fed
            if not self._measure_error:
                self._measure(state)

    def _show_message(self, kv: KVState) -> None:
        lines = message_lines(kv, self._measure_error)
        self._message.display = bool(lines)
        self._put(self._message, Text("\n").join(lines) if lines else "")

    def _draw_status(self, kv: KVState) -> None:
        self._put(self._status, status_text(kv, self.use_cache))

    def _draw_arrays(self, kv: KVState) -> None:
        snap = kv.snapshot
        if not self.use_cache:  # nothing is kept between steps
            self.shown.arrays = []
            self.shown.total_bytes = self.shown.formula_bytes = 0
            self._put(self._arrays, no_cache_text(kv))
            self._map.display = False
            return
        rows = array_rows(snap)
        self.shown.arrays = [(r[0], r[1], r[2], r[3]) for r in rows]
        self.shown.total_bytes = snap.nbytes
        self.shown.formula_bytes = snap.formula_bytes
        self._put(self._arrays, arrays_text(kv, rows))
        # the picture: one column per cached position, one row per layer and K/V
        t = snap.length
        self._map.display = t > 0
        if t:
            self._map.set_data(snap, kv.n_prompt)

    def _draw_compare(self, kv: KVState) -> None:
        """The newest step both ways, the recent steps in a table and the totals, and the
        plots of every step measured."""
        comps = [self._comparisons[rec] for rec in kv.steps if rec in self._comparisons]
        pending = [] if self._measure_error else [
            (rec.index, rec.position) for rec in kv.steps if rec not in self._comparisons
        ]  # fmt: skip
        self.shown.comparisons = comps
        self._put(self._compare, compare_text(comps, self.use_cache, pending))
        if not comps:
            self._plot_macs.display = self._plot_time.display = False
            return
        macs, times, macs_top, time_top = compare_series(comps, self.use_cache)
        self._plot_macs.series = macs
        self._plot_time.series = times
        self._plot_macs.ylim = (0.0, macs_top)
        self._plot_time.ylim = (0.0, time_top)
        self._plot_macs.display = self._plot_time.display = True

    def _draw_quant(self, kv: KVState) -> None:
        self.shown.drift = list(kv.drift)
        self._put(self._quant, quant_text(kv))

    # -- the calculator ------------------------------------------------------------------------

    def _presets(self) -> tuple[KVArch, ...]:
        model = self.session.model
        return presets_with(model.config, model.name) if model is not None else presets_with(None)

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
        self._presets_table.update(presets_text(presets))

    def _draw_calc(self) -> None:
        if self._arch is not None:
            self.shown.calculator_bytes = kv_bytes(self._arch)
        self._calc_result.update(calc_text(self._arch, list(self._calc_errors.values())))

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
        if self._model_or_say():
            self._ask(step_op)

    def action_generate(self) -> None:
        # One op of ten steps, so one repaint: ten separate ops repainted ten times (86 KB
        # per press over SSH); the measurements catch up as after held steps.
        if self._model_or_say():
            self._ask(ten_steps_op)

    def action_toggle_cache(self) -> None:
        """Show decoding with the cache or without it: this screen only (the shared story
        keeps its cache, so chapters 5, 8 and 9 step the same as before)."""
        if not self._model_or_say():
            return
        self.use_cache = not self.use_cache
        self.notify("Showing decoding " + ("with the cache: stored K, V are reused."
                    if self.use_cache else "without a cache: every step recomputes all."),
                    timeout=3)  # fmt: skip
        self.draw_state(None)

    def action_cycle_quant(self) -> None:
        if not self._model_or_say():
            return
        model = self.session.model
        bits = {None: 8, 8: 4, 4: None}[self._drift.bits if self._drift is not None else None]
        self._drift = DriftLog(model, bits) if bits is not None and model is not None else None
        self._ask(None)

    def action_restart(self) -> None:
        if self._model_or_say():
            self._ask(restart_op)

    def action_calculator(self) -> None:
        select = self.query_one("#kv-preset", Select)
        select.focus()
        select.scroll_visible(top=True)
