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

import time
from dataclasses import dataclass, field, replace

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static

from ..core.generation import Generation, StepRecord, kv_cache_bytes_for
from ..core.quant_kv import KVDriftStep, kv_bytes_per_token
from ..views.kv_inspect import (
    CacheComparison,
    DriftLog,
    KVState,
    diff_text,
    kv_state,
    measure_records,
    state_key,
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
from ..views.kv_text import EXPLAINER, LEAD
from ..widgets.cache_picture import CachePicture
from ..widgets.line_plot import LinePlot, Series
from ..widgets.prompt_bar import PromptBar
from .base import MODEL, PROMPT, ChapterScreen
from .generation_common import GenerationChapterMixin, stopped_message

SYNC_KEY = "kv-cache.sync"
"""Queued measuring ops replace each other: only the newest is run."""
COMPARE_PER_OP = 2
"""Steps measured both ways per measuring op (newest first); a step op measures none."""
CATCH_UP_DELAY = 0.12
"""Seconds without a newer step before the missing measurements are taken."""
DRIFT_FEEDS_PER_OP = 64
TABLE_ROWS = 8
"""Recent steps listed in the tables (the plots show all of them)."""


@dataclass
class _Shown:
    """The numbers as drawn (read by tests)."""

    arrays: list[tuple[str, str, str, int]] = field(default_factory=list)
    total_bytes: int = 0
    formula_bytes: int = 0
    comparisons: list[CacheComparison] = field(default_factory=list)
    drift: list[tuple[int, KVDriftStep]] = field(default_factory=list)
    calculator_bytes: int = 0


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
        if not self._ready():
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
        session = self.session
        log = self._drift

        def op(gen: Generation) -> KVState:
            said = action(gen) if action is not None else info
            return kv_state(gen, log, feeds=DRIFT_FEEDS_PER_OP, info=said,
                            notice=session.context_notice)  # fmt: skip

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
        self.compute("measure", _measure_after_a_pause, model, kv.tokens, kv.n_prompt,
                     todo[:COMPARE_PER_OP], then=self._measured, on_error=self._measure_failed,
                     on_progress=_ignore)  # fmt: skip

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
        if not self._ready():
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
        lines = []
        if kv.stop is not None:
            tail = (
                " Press x to start over, or shorten the prompt."
                if kv.stop.reason == "context_full"
                else " Press x to start over."
            )
            lines.append(Text.assemble(("Generation stopped: ", "bold"), kv.stop.message + ".",
                                       tail))  # fmt: skip
        elif kv.info:
            lines.append(Text(kv.info, style="bold"))
        for message in (kv.message, self._measure_error):
            if message:
                lines.append(Text(message, style="bold"))
        if kv.notice:
            lines.append(Text(kv.notice, style="italic"))
        self._message.display = bool(lines)
        self._put(self._message, Text("\n").join(lines) if lines else "")

    def _draw_status(self, kv: KVState) -> None:
        cfg = kv.config
        if self.use_cache:
            cache = f"{kv.snapshot.length} of {cfg.max_position_embeddings} positions, on"
        else:
            cache = f"OFF, nothing stored: every step feeds all {kv.n_tokens} tokens again"
        self._put(
            self._status,
            Text.assemble(
                ("Prefill: ", "bold"),
                *_prefill_and_decode(kv.n_prompt, kv.n_steps),
                "\n",
                ("cache: ", "bold"),
                cache,
            ),
        )

    def _draw_no_cache(self, kv: KVState) -> None:
        """The arrays table with the cache off: nothing is kept between steps."""
        cfg = kv.config
        t = kv.n_tokens
        self.shown.arrays = []
        self.shown.total_bytes = self.shown.formula_bytes = 0
        with_cache = kv_cache_bytes_for(cfg, t)
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append("Cache off: nothing is stored between steps (0 B).\n", style="bold")
        out.append(
            f"Every step feeds all {t} tokens again; each of the {cfg.num_hidden_layers} "
            "layers recomputes\n"
            f"K and V of shape [{cfg.num_key_value_heads}, {t}, {cfg.dim_head}], uses them "
            "once and drops them.\n"
        )
        out.append(
            f"With the cache on they would be kept: {with_cache:,} B for {t} positions.\n",
            style="dim",
        )
        out.append("Press c to show decoding with the cache.", style="italic")
        self._put(self._arrays, out)
        self._map.display = False

    def _draw_arrays(self, kv: KVState) -> None:
        snap = kv.snapshot
        cfg = kv.config
        if not self.use_cache:
            self._draw_no_cache(kv)
            return
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
        if t < kv.n_tokens and kv.stop is not None:
            note = "The newest token never ran (generation stopped): its K, V were not needed."
        else:
            note = ""
        out.append("\n" + note, style="italic")
        self._put(self._arrays, out)
        # the picture: one column per cached position, one row per layer and K/V
        self._map.display = t > 0
        if t:
            self._map.set_data(snap, kv.n_prompt)

    def _draw_compare(self, kv: KVState) -> None:
        """The newest step both ways, the recent steps in a table and the totals; with the
        cache off, the table lists the work without it (the cached figures only as what
        the cache would have saved)."""
        comps = [self._comparisons[rec] for rec in kv.steps if rec in self._comparisons]
        missing = 0 if self._measure_error else kv.n_steps - len(comps)
        self.shown.comparisons = comps
        out = Text(no_wrap=True, overflow="ellipsis")
        if not comps:
            out.append("Take a step (s) to measure one both ways.", style="italic")
            self._put(self._compare, out)
            self._plot_macs.display = self._plot_time.display = False
            return
        on = self.use_cache
        last = comps[-1]
        out.append(f"Step {last.index}", style="bold")
        if last.prefill:
            out.append(f": the prefill — both ways run all {last.cached_fed} prompt tokens.\n")
        elif on:
            out.append(f": with the cache {last.cached_fed} token fed, without it all "
                       f"{last.uncached_fed}.\n")  # fmt: skip
        else:
            out.append(f": without a cache all {last.uncached_fed} tokens fed (with it, "
                       f"{last.cached_fed}).\n")  # fmt: skip
        same = "same top token" if last.top1_same else "DIFFERENT top token"
        out.append(f"Logits with vs without: max |Δ| {diff_text(last.max_abs_diff)}, {same}.\n")
        if on:
            header = ("step", "T", "fed", "M MACs cached", "no cache", "ms cached", "no cache",
                      "max |Δ|")  # fmt: skip
        else:
            header = ("step", "T", "fed", "M MACs no cache", "ms no cache", "max |Δ| vs cache")
        rows = []
        for c in comps[-TABLE_ROWS:]:
            if on:
                rows.append((str(c.index), str(c.position), f"{c.cached_fed}/{c.uncached_fed}",
                             _m(c.cached_macs), _m(c.uncached_macs), _ms(c.cached_seconds),
                             _ms(c.uncached_seconds), diff_text(c.max_abs_diff)))  # fmt: skip
            else:
                rows.append((str(c.index), str(c.position), str(c.uncached_fed),
                             _m(c.uncached_macs), _ms(c.uncached_seconds),
                             diff_text(c.max_abs_diff)))  # fmt: skip
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
            n = f"{len(decode)} decode step{'s' if len(decode) != 1 else ''}"
            if on:
                out.append(f"{n}: {_m(cm)} M multiply-adds with the cache, {_m(um)} M without "
                           f"({um / cm:.1f}×);\nmeasured {_ms(ct)} ms with the cache, "
                           f"{_ms(ut)} ms without.", style="bold")  # fmt: skip
            else:
                out.append(f"{n} without a cache: {_m(um)} M multiply-adds, {_ms(ut)} ms;\n"
                           f"the cache would have needed {_m(cm)} M ({um / cm:.1f}× fewer).",
                           style="bold")  # fmt: skip
        if missing:
            out.append(f"\nmeasuring {missing} more step{'s' if missing != 1 else ''}…",
                       style="italic")  # fmt: skip
        self._put(self._compare, out)
        xs = [c.index for c in comps]
        macs = [Series("no cache", [c.uncached_macs / 1e6 for c in comps], xs)]
        times = [Series("no cache", [c.uncached_seconds * 1000 for c in comps], xs)]
        if on:
            macs.append(Series("cache", [c.cached_macs / 1e6 for c in comps], xs))
            times.append(Series("cache", [c.cached_seconds * 1000 for c in comps], xs))
        self._plot_macs.series = tuple(macs)
        self._plot_time.series = tuple(times)
        self._plot_macs.ylim = (0.0, max(c.uncached_macs for c in comps) / 1e6 * 1.05)
        top = max(max(c.uncached_seconds, c.cached_seconds if on else 0.0) for c in comps)
        self._plot_time.ylim = (0.0, top * 1000 * 1.05)
        self._plot_macs.display = self._plot_time.display = True

    def _draw_quant(self, kv: KVState) -> None:
        out = Text(no_wrap=True, overflow="ellipsis")
        cfg = kv.config
        self.shown.drift = list(kv.drift)
        if kv.bits is None:
            out.append("Off. ", style="bold")
            out.append(
                f"Press k to run an 8-bit copy of the cache beside the float32 one\n"
                f"({kv_bytes_per_token(cfg, 8):,} B per token instead of "
                f"{kv_bytes_per_token(cfg):,}); k again for 4-bit "
                f"({kv_bytes_per_token(cfg, 4):,} B),\nonce more for off.",
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
            "window. Under GQA, H / H_kv query heads share one K/V head: the cache\n"
            "shrinks by that factor.",
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
        if self._model_or_say():
            self._ask(_step)

    def action_generate(self) -> None:
        # One op of ten steps, so one repaint: ten separate ops repainted ten times (86 KB
        # per press over SSH); the measurements catch up as after held steps.
        if self._model_or_say():
            self._ask(_ten_steps)

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
            self._ask(_restart)

    def action_calculator(self) -> None:
        select = self.query_one("#kv-preset", Select)
        select.focus()
        select.scroll_visible(top=True)


def _ignore(_report: object) -> None:
    """Measuring reports no progress on screen (the task is there to cancel it)."""


def _measure_after_a_pause(model, tokens, n_prompt, records, task):  # noqa: ANN001, ANN202
    """:func:`~llm_anatomy_tui.views.kv_inspect.measure_records` once no newer request came
    for :data:`CATCH_UP_DELAY` seconds: while a step key is held each step cancels the last
    request, so the forward passes a measurement costs never compete with the steps."""
    time.sleep(CATCH_UP_DELAY)
    if task.cancelled:
        return None
    return measure_records(model, tokens, n_prompt, records, task)


# -- generation actions (run in the app's generation worker) ----------------------------------


def _step(gen: Generation) -> str:
    """One step, or why there is none."""
    if gen.done:
        return stopped_message(gen) or ""
    gen.step()
    return ""


def _ten_steps(gen: Generation) -> str:
    """Ten steps in one op (fewer if generation stops), or why there were none."""
    for _ in range(10):
        said = _step(gen)
        if said:
            return said
    return ""


def _restart(gen: Generation) -> str:
    """Forget every step and the cache: the next step prefills the prompt again."""
    gen.rewind(0)
    gen.cache.truncate(0)
    return ""
