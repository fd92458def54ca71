"""Chapter 5: Logits & sampling — the real next-token distribution, every filter, the draw.

The bars are the model's scores for the next token after the shared prompt and the steps
taken so far: raw logit, probability, the logit after penalties and temperature, and the
probability after the filters (or which filter cut the token). Under them, the seeded
uniform draw against the cumulative distribution. Settings are typed into number fields
and change the bars as they are typed: each edit submits a *keyed* preview op to the
shared generation worker, so only the newest edit is ever computed.

All numbers in a row come from :func:`~llm_anatomy_tui.views.sampling_view.sampling_table`:
every probability is the softmax of the rounded logits printed beside it, so the table
can be checked with a calculator (``p = exp(logit - lse)``).

The shared generation is touched only by ops run in the app's generation worker; the
results an op computes for this screen (a :class:`Preview`) are handed over by one
attribute assignment and drawn when the "generation" change arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, Static

from ..core.generation import GenerationStopped
from ..core.sampling import SamplingResult, SamplingSettings
from ..core.session import NotReady
from ..views.readout import LOGIT_DECIMALS, PERCENT_DECIMALS
from ..views.sampling_view import (
    SETTING_FIELDS,
    SamplingTable,
    SettingError,
    parse_count,
    parse_seed,
    parse_settings,
    parse_stops,
    sampling_table,
    settings_fields,
)
from ..views.token_pieces import piece_spans
from ..widgets.bar_chart import BarChart, BarColumn, CumulativeStrip
from ..widgets.prompt_bar import PromptBar
from .base import GENERATION, MODEL, PROMPT, ChapterScreen
from .generation_common import GenerationChapterMixin, step_once, stopped_message

if TYPE_CHECKING:
    from ..core.generation import Generation, StepRecord

TOP_N = 20
"""Rows in the bar table (the chosen token is added if it ranks lower)."""

PREVIEW_KEY = "sampling.preview"

LEAD = (
    "The model's last layer scores every token of its vocabulary; softmax turns the scores "
    "into probabilities, and a sampler picks one. The settings reshape the distribution "
    "before the pick; the bars show the result live."
)

EXPLAINER: tuple[tuple[str, str], ...] = (
    (
        "Logits",
        "The model ends with one score per vocabulary entry: {vocab} numbers for {name}, "
        "called logits. They are not probabilities. Only their differences matter: adding "
        "the same amount to all of them changes nothing below.",
    ),
    (
        "Softmax, and how to check it",
        "p = exp(logit − lse), where lse (the log-sum-exp) is the one number that makes all "
        "{vocab} probabilities add up to 1. Any two rows compare as p₁ / p₂ = exp(logit₁ − "
        "logit₂): one unit more logit makes a token e ≈ 2.718 times as likely. The table's "
        "probabilities are computed from the rounded logits it prints, so a calculator "
        "agrees with every row.",
    ),
    (
        "Temperature",
        "Every logit is divided by T before the softmax. Below 1 the gaps grow and the "
        "favourite wins more often; above 1 they shrink and long shots get a chance; at "
        "T = 100 the distribution is nearly flat. T = 0 is read as greedy: always take the "
        "top token, no random number at all.",
    ),
    (
        "Filters and renormalising",
        "top-k keeps the k best tokens (0 = off). top-p keeps the fewest best tokens whose "
        "probabilities reach p (1 = off; 0 keeps only the best). min-p keeps tokens at least "
        "m times as likely as the best (0 = off). The survivors are renormalised: each is "
        "divided by the probability they hold together, so they add up to 1 again — that "
        "is the p′ column, exp(z − lse′) with lse′ summed over the survivors only.",
    ),
    (
        "Penalties",
        "They lower the logits of tokens already in the context (prompt and output). "
        "Repetition r divides a positive logit by r and multiplies a negative one; "
        "frequency f subtracts f for every earlier use; presence q subtracts q once. They "
        "break loops, and also punish names a story is supposed to repeat.",
    ),
    (
        "The draw",
        "The survivors are laid end to end on the line from 0 to 1, most likely first, each "
        "as wide as its probability. A uniform random number u falls into one of them. Step "
        "t always draws from its own generator, seeded with (seed, t): replaying gives the "
        "same tokens, and branching changes later tokens only through what the model "
        "reads, never through the dice.",
    ),
    (
        "When it stops",
        "At the end-of-text token, when a stop sequence appears in the output (the text is "
        "cut just before it), or when the context window is full: {name} reads at "
        "most {context} positions, prompt included.",
    ),
)


def explainer_texts(model: object) -> list[str]:
    """The explainer's paragraphs with the loaded model's name, vocabulary and context
    (anatomy-mini's until a model is loaded).

    >>> explainer_texts(None)[0][:60]
    'The model ends with one score per vocabulary entry: 8,193 nu'
    """
    cfg = getattr(model, "config", None)
    values = {
        "name": getattr(model, "name", None) or "anatomy-mini",
        "vocab": f"{cfg.vocab_size:,}" if cfg is not None else "8,193",
        "context": f"{cfg.max_position_embeddings:,}" if cfg is not None else "256",
    }
    return [body.format(**values) for _, body in EXPLAINER]


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    placeholder: str
    tooltip: str


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("temperature", "temp", "1", "Temperature T ≥ 0: logits are divided by T. 0 = greedy."),
    FieldSpec("top_k", "top-k", "0 off", "Keep the k most likely tokens; 0 = off."),
    FieldSpec("top_p", "top-p", "1 off", "Keep the fewest tokens whose mass reaches p (0–1); 1 = off."),
    FieldSpec("min_p", "min-p", "0 off", "Keep tokens with p ≥ m × the top p (0–1); 0 = off."),
    FieldSpec("repetition_penalty", "rep", "1 off",
              "Repetition penalty r > 0 on tokens in context; 1 = off."),
    FieldSpec("frequency_penalty", "freq", "0 off",
              "Subtract f × (uses so far) from a token's logit; 0 = off."),
    FieldSpec("presence_penalty", "pres", "0 off",
              "Subtract q once from every token already used; 0 = off."),
    FieldSpec("stops", "stop", "none",
              "Stop sequences, separated by |; \\n is a newline. Empty = none."),
    FieldSpec("seed", "seed", "0", "Seed of the draws (a whole number ≥ 0)."),
    FieldSpec("count", "N", "10", "How many tokens g generates."),
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class Preview:
    """What the next step would do with some settings (computed by a generation op)."""

    gen: Generation
    n_steps: int
    settings: SamplingSettings
    seed: int
    stops: tuple[str, ...]
    result: SamplingResult | None
    table: SamplingTable | None
    message: str = ""


@dataclass(frozen=True)
class Shown:
    """What the bars show right now (read by tests)."""

    index: int
    """The step: ``len(steps)`` for the next one (a preview), less for a recorded one."""
    recorded: bool
    token: int
    """The highlighted token: the one the draw picks (preview) or the one appended."""
    forced: bool
    table: SamplingTable
    result: SamplingResult


class SettingInput(Input):
    """A number field. Pasted text keeps only its first line's printable characters."""

    def _on_paste(self, event: events.Paste) -> None:
        lines = event.text.splitlines() if event.text else []
        clean = "".join(ch for ch in lines[0] if ch.isprintable()) if lines else ""
        event.prevent_default()
        event.stop()
        if clean:
            self.insert_text_at_cursor(clean)


class SamplingScreen(GenerationChapterMixin, ChapterScreen):
    """Chapter 5: logits → softmax → filters → the seeded draw, stepped on the real model."""

    NEEDS_MODEL = True
    AUTO_FOCUS = "#s-bars"
    CSS_PATH = "c05_sampling.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-tiny"), (60, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    BINDINGS = [
        Binding("s,space", "step", "Step", id="sampling.step",
                tooltip="Sample one token with the settings shown and append it"),
        Binding("g", "generate", "Generate N", id="sampling.generate",
                tooltip="Take N steps (N is the last field), one at a time"),
        Binding("m", "toggle_greedy", "Greedy", id="sampling.greedy",
                tooltip="Switch between greedy decoding (temperature 0: always the top "
                        "token) and sampling at the temperature used before"),
        Binding("r", "replay", "Replay", id="sampling.replay",
                tooltip="Take every step again from the prompt, each with its own settings "
                        "and the seed shown: the same seed gives the same tokens"),
        Binding("b", "branch", "Branch", id="sampling.branch",
                tooltip="At the step shown, take the token under the cursor instead of the "
                        "drawn one (Enter on the bars does the same); later steps are dropped"),
        Binding("left,comma", "view_previous", "Earlier", id="sampling.previous",
                tooltip="Show the step before: its distribution, draw and choice"),
        Binding("right,full_stop", "view_next", "Later", id="sampling.next",
                tooltip="Show the step after (the last one: the next token, live)"),
        Binding("x", "rewind", "Drop from here", show=False, id="sampling.rewind",
                tooltip="Forget the step shown and every step after it"),
        Binding("plus,equals_sign", "hotter", "T +0.1", show=False, id="sampling.hotter",
                tooltip="Raise the temperature by 0.1"),
        Binding("minus", "colder", "T −0.1", show=False, id="sampling.colder",
                tooltip="Lower the temperature by 0.1 (0 is greedy)"),
        Binding("e", "edit", "Edit", id="sampling.edit",
                tooltip="Put the cursor in the temperature field; Tab moves between the "
                        "fields, Esc goes back to the bars"),
        Binding("d", "defaults", "Defaults", show=False, id="sampling.defaults",
                tooltip="Every setting off: temperature 1, no filters, no penalties, no "
                        "stop sequences"),
        Binding("i", "toggle_details", "Details", id="sampling.details",
                tooltip="Show or hide what each stage did, the normalisers, and how to "
                        "read the table"),
    ]  # fmt: skip

    def __init__(self, chapter) -> None:  # noqa: ANN001
        super().__init__(chapter)
        self._settings: SamplingSettings = SamplingSettings()
        self._seed = 0
        self._stops: tuple[str, ...] = ()
        self._count = 10
        self._errors: dict[str, str] = {}
        self._view: int | None = None  # None: the next step
        self._preview: Preview | None = None  # written by generation ops
        self._requested: tuple | None = None
        self._info = ""  # written by generation ops (replay, branch …)
        self._last_temperature = 1.0
        self._details = False
        self._labels: dict[int, str] = {}
        self._record_tables: dict[int, tuple[StepRecord, SamplingTable]] = {}
        self._syncing_fields = False
        self._text_key: tuple | None = None
        self._drawn: tuple | None = None
        self.shown: Shown | None = None
        """What the bars show (None while nothing can be shown)."""

    # -- layout ----------------------------------------------------------------------------

    def compose_chapter(self) -> ComposeResult:
        with VerticalScroll(id="s-body", can_focus=False):
            yield PromptBar(self.session.prompt, title="Prompt (shared by every chapter)",
                            id="prompt")  # fmt: skip
            yield Static(id="s-status")
            yield Static(id="s-text")
            yield Static(id="s-message")
            with Horizontal(id="s-columns"):
                with Vertical(id="s-left"):
                    yield BarChart(id="s-bars", label_header="token")
                    yield Static(id="s-norm")
                    yield CumulativeStrip(id="s-strip", decimals=LOGIT_DECIMALS)
                    yield Static(id="s-draw")
                with VerticalScroll(id="s-details"):
                    yield Static(Text(LEAD), classes="prose")
                    yield Static(id="s-stages", classes="heading")
                    for i, (heading, _) in enumerate(EXPLAINER):
                        yield Static(Text(heading, style="bold"), classes="heading")
                        yield Static(id=f"s-explain-{i}", classes="prose")
            # the controls sit at the bottom, below what a step repaints: a repaint then
            # never has to redraw them
            with Grid(id="s-settings"):  # label, field, label, field … (few widgets)
                for spec in FIELDS:
                    yield Label(spec.label, classes="s-label")
                    yield SettingInput(
                        placeholder=spec.placeholder,
                        id=f"s-{spec.key}",
                        compact=True,
                        max_length=64,
                        tooltip=spec.tooltip,
                    )

    def on_mount(self) -> None:
        self._bars = self.query_one("#s-bars", BarChart)
        self._strip = self.query_one("#s-strip", CumulativeStrip)
        self._status = self.query_one("#s-status", Static)
        self._text = self.query_one("#s-text", Static)
        self._message = self.query_one("#s-message", Static)
        self._norm = self.query_one("#s-norm", Static)
        self._draw_line = self.query_one("#s-draw", Static)
        self._stages = self.query_one("#s-stages", Static)
        self._inputs = {spec.key: self.query_one(f"#s-{spec.key}", SettingInput) for spec in FIELDS}
        s = self.session
        self._settings = s.sampling
        self._seed = s.seed
        self._last_temperature = s.sampling.temperature or 1.0
        self._fill_fields()
        self._apply_details_class()

    def on_resize(self) -> None:
        # the running text is wrapped to the width by hand: wrap it again
        self.call_after_refresh(self._rewrap)

    def _rewrap(self) -> None:
        self._text_key = None
        if self._ready():
            self._draw_text(self.session.current_generation)

    def _fill_fields(self) -> None:
        """Write the current settings into the fields (without treating it as typing)."""
        self._syncing_fields = True
        try:
            texts = settings_fields(self._settings)
            for key, text in texts.items():
                self._inputs[key].value = text
            self._inputs["stops"].value = "|".join(
                s.replace("\n", "\\n").replace("\t", "\\t") for s in self._stops
            )
            self._inputs["seed"].value = str(self._seed)
            self._inputs["count"].value = str(self._count)
        finally:
            self._syncing_fields = False

    _FIXED_HEIGHT = frozenset({"s-status", "s-text", "s-norm"})

    # -- session ---------------------------------------------------------------------------

    def session_changed(self, changes: frozenset[str]) -> None:
        if MODEL in changes:  # the prose names the loaded model's sizes
            for i, body in enumerate(explainer_texts(self.session.model)):
                self.query_one(f"#s-explain-{i}", Static).update(Text(body))
        if changes & {PROMPT, MODEL}:
            self._view = None
            self._record_tables.clear()
            self._info = ""
        elif GENERATION in changes:
            gen = self.session.current_generation
            if gen is not None and self._view is not None and self._view >= len(gen.steps):
                self._view = None
        self.refresh_view()

    def _label(self, token: int) -> str:
        label = self._labels.get(token)
        if label is None:
            try:
                raw = self.session.encoding("model").decode_single_token_bytes(token)
            except (KeyError, NotReady):
                raw = b""
            label = "".join(text for text, _ in piece_spans(raw)) if raw else f"#{token}"
            self._labels[token] = label
        return label

    def _want(self, gen: Generation | None) -> tuple:
        n = len(gen.steps) if gen is not None else -1
        return (gen, n, self._settings, self._seed, self._stops)

    def _matches(self, pv: Preview | None, gen: Generation | None) -> bool:
        return (
            pv is not None
            and gen is not None
            and (pv.gen, pv.n_steps, pv.settings, pv.seed, pv.stops) == self._want(gen)
        )

    def _request_preview(self, gen: Generation | None) -> None:
        want = self._want(gen)
        if want == self._requested:
            return
        self._requested = want
        self.submit_generation(self._op(None), key=PREVIEW_KEY)

    # -- generation ops (run in the app's generation worker) ---------------------------------

    def _apply(self, gen: Generation, settings: SamplingSettings, seed: int,
               stops: tuple[str, ...]) -> None:  # fmt: skip
        session = self.session
        session.set_sampling(settings)
        session.set_seed(seed)
        session.set_stop_sequences(stops)
        session.apply_settings(gen)

    def _compute_preview(self, gen: Generation, settings: SamplingSettings, seed: int,
                         stops: tuple[str, ...]) -> Preview:  # fmt: skip
        n = len(gen.steps)
        if gen.done:
            return Preview(gen, n, settings, seed, stops, None, None,
                           gen.stop.message if gen.stop else "")  # fmt: skip
        try:
            result = gen.preview(settings)
        except GenerationStopped as exc:
            return Preview(gen, n, settings, seed, stops, None, None, str(exc))
        return Preview(gen, n, settings, seed, stops, result, sampling_table(result, top_n=TOP_N))

    def _op(self, action: Callable[[Generation], str | None] | None) -> Callable:
        """A generation op: apply the settings shown, run ``action``, preview the next step."""
        settings, seed, stops = self._settings, self._seed, self._stops

        def op(gen: Generation) -> str | None:
            self._apply(gen, settings, seed, stops)
            message = action(gen) if action is not None else None
            self._preview = self._compute_preview(gen, settings, seed, stops)
            return message

        return op

    def _submit(self, action: Callable[[Generation], str | None]) -> None:
        self._info = ""
        self.submit_generation(self._op(action))

    # -- drawing ---------------------------------------------------------------------------

    def refresh_view(self) -> None:
        if not self._ready():
            self.shown = None
            self._put(self._status, self._waiting_text())
            self._clear_bars()
            self._show_message()
            return
        gen = self.session.current_generation
        steps = gen.steps if gen is not None else ()
        if gen is not None and gen.done and self._view is None and steps:
            self._view = len(steps) - 1  # nothing comes next: show the step that ended it
        if self._view is not None:
            rec = steps[self._view]
            table = self._record_table(rec)
            self.shown = Shown(self._view, True, rec.token, rec.forced, table, rec.sampling)
        else:
            pv = self._preview
            if not self._matches(pv, gen):
                self._request_preview(gen)
            if pv is not None and pv.gen is gen and pv.table is not None:
                self.shown = Shown(pv.n_steps, False, pv.table.chosen, False, pv.table, pv.result)
            else:
                self.shown = None  # nothing computed for this generation yet, or it stopped
        self._draw(gen)

    def _record_table(self, rec: StepRecord) -> SamplingTable:
        cached = self._record_tables.get(rec.index)
        if cached is not None and cached[0] is rec:
            return cached[1]
        table = sampling_table(rec.sampling, chosen=rec.token, top_n=TOP_N)
        self._record_tables[rec.index] = (rec, table)
        return table

    def _clear_bars(self) -> None:
        self._drawn = None
        self._bars.set_data([], [])
        self._strip.set_data([], [], None)
        self._put(self._norm, "")
        self._draw_line.display = False
        self._put(self._stages, "")
        self._put(self._text, "")

    def _draw(self, gen: Generation | None) -> None:
        self._draw_text(gen)
        self._draw_status(gen)
        self._show_message()
        shown = self.shown
        if shown is None:
            if gen is None or not (gen.done and not gen.steps):
                self._put(self._norm, Text("computing…", style="italic"))
            else:
                self._clear_bars()
                self._draw_text(gen)
            return
        drawn = (shown.table, shown.token, shown.forced, shown.recorded, self._stops)
        if drawn == self._drawn:
            return  # the same step and settings as on screen: nothing to repaint
        self._drawn = drawn
        self._draw_bars(shown)
        self._draw_norm(shown)
        self._draw_strip(shown)
        self._draw_stages(shown)

    def _draw_bars(self, shown: Shown) -> None:
        table = shown.table
        rows = table.rows
        labels = []
        for r in rows:
            label = self._label(r.token)
            if r.rank >= TOP_N:
                label = f"{label} #{r.rank + 1}"
            labels.append(label)
        columns = [
            BarColumn("logit", [r.logit for r in rows], LOGIT_DECIMALS),
            BarColumn("p", [r.p for r in rows], PERCENT_DECIMALS, percent=True),
        ]
        if table.adjusted:
            columns.append(BarColumn("z", [r.z for r in rows], LOGIT_DECIMALS))
        columns.append(BarColumn("p′", [r.p_final for r in rows], PERCENT_DECIMALS, percent=True))
        values = [r.p_final if r.p_final is not None else r.p_before_cut for r in rows]
        tags = [
            "▼ penalty" if r.penalty < 0 else ("▲ boost" if r.penalty > 0 else None) for r in rows
        ]
        highlight = next((i for i, r in enumerate(rows) if r.token == shown.token), None)
        if not shown.recorded:
            tag = "drawn" if shown.result.draw.u is not None else "top"
        else:
            tag = "you chose" if shown.forced else "chosen"
        self._bars.highlight_tag = tag
        self._bars.set_data(
            labels, values, columns=columns, cut=[r.cut for r in rows], highlight=highlight,
            tags=tags,
        )  # fmt: skip
        # new numbers: the cursor starts on the chosen token, so it is in view and
        # branching means moving the cursor to another row
        if highlight is not None:
            self._bars.cursor = highlight

    def _draw_norm(self, shown: Shown) -> None:
        """Two lines: the normaliser of the raw logits, and what the settings did to them
        (how z is made, what was kept, the normaliser over the kept tokens)."""
        t = shown.table
        d = t.decimals
        settings = shown.result.settings
        line1 = Text.assemble(
            ("lse", "bold"),
            f" = {t.lse:.{d}f} over {t.vocab:,} logits · p = exp(logit − {t.lse:.{d}f})",
        )
        if settings.greedy:
            self._put(
                self._norm, Text.assemble(line1, "\ngreedy: only the top token is kept, p′ = 100%")
            )
            return
        if not t.adjusted and t.n_kept == t.vocab:
            self._put(self._norm, Text.assemble(line1, "\nnothing cut or changed: p′ = p"))
            return
        pen = settings.penalised
        temp = settings.temperature
        if t.adjusted:
            inner = "logit − pen." if pen else "logit"
            if temp == 1:
                how = inner
            elif pen:
                how = f"({inner})/{temp:g}"
            else:
                how = f"logit/{temp:g}"
            parts = [f"z = {how}"]
        else:
            parts = []
        parts.append(
            f"kept {t.n_kept:,} of {t.vocab:,} ({t.kept_mass * 100:.{PERCENT_DECIMALS}f}%)"
            if t.n_kept < t.vocab
            else f"all {t.vocab:,} kept"
        )
        z = "z" if t.adjusted else "logit"
        parts.append(f"p′ = exp({z} − {t.lse_final:.{d}f})")
        line2 = Text(" · ".join(parts))
        self._put(self._norm, Text.assemble(line1, "\n", line2))

    def _draw_strip(self, shown: Shown) -> None:
        t = shown.table
        result = shown.result
        draw = result.draw
        labels = [self._label(c) for c in t.candidates]
        self._strip.set_data(labels, list(t.candidate_probs), draw.u)
        note: Text | None = None
        if draw.u is None:
            note = Text("Greedy: no random number is drawn; the top token is taken.")
        elif shown.forced:
            note = Text.assemble(
                "You chose ", (self._label(shown.token), "bold"), " here; the draw (u = ",
                f"{draw.u:.{LOGIT_DECIMALS}f}) had picked ", (self._label(draw.token), "bold"), ".",
            )  # fmt: skip
        elif draw.token not in t.candidates:
            note = Text.assemble(
                f"u = {draw.u:.{LOGIT_DECIMALS}f} fell past the first {len(t.candidates)}: "
                f"rank {draw.rank + 1:,} of {draw.n_candidates:,}, ",
                (self._label(draw.token), "bold"),
                f", in [{draw.cdf_low:.{LOGIT_DECIMALS}f}, {draw.cdf_high:.{LOGIT_DECIMALS}f}).",
            )
        self._draw_line.display = note is not None
        if note is not None:
            self._put(self._draw_line, note)

    def _draw_stages(self, shown: Shown) -> None:
        result = shown.result
        out = Text()
        title = "What each stage did" + (
            f" (step {shown.index}, as recorded)" if shown.recorded else " (next step)"
        )
        out.append(title + "\n", style="bold")
        names = {"logits": "logits", "penalties": "penalties", "temperature": "temperature",
                 "top_k": "top-k", "top_p": "top-p", "min_p": "min-p"}  # fmt: skip
        for stage in result.stages:
            style = "" if stage.active else "dim"
            out.append(f"{names[stage.name]:<12}", style=f"bold {style}".strip())
            out.append(f"{stage.n_kept:>6,} tokens left\n", style=style)
            out.append(f"  {stage.note}\n", style=style)
        out.append(f"\nsettings: {result.settings.describe()}", style="italic")
        if self._stops:
            out.append("; stop at " + ", ".join(repr(s) for s in self._stops), style="italic")
        self._put(self._stages, out)

    def _draw_status(self, gen: Generation | None) -> None:
        if gen is None:
            self._put(self._status, Text("Reading the prompt…", style="italic"))
            return
        n = len(gen.steps)
        mode = "greedy" if self._settings.greedy else f"sampling, seed {self._seed}"
        if self._view is None:
            text = Text.assemble(
                ("Next token", "bold"),
                f" · step {n} · {len(gen.tokens)} tokens in context, room for {gen.room} · {mode}",
            )
        else:
            rec = gen.steps[self._view]
            how = "you chose it" if rec.forced else rec.sampling.settings.describe()
            text = Text.assemble(
                (f"Step {self._view} of {n}", "bold"),
                f" (recorded: {how}) · → later · b / Enter branches here",
            )
        if gen.done and gen.stop is not None:
            text = Text.assemble(("Stopped: ", "bold"), gen.stop.message, " · x drops a step")
        self._put(self._status, text)

    def _draw_text(self, gen: Generation | None) -> None:
        """Prompt (dim) and generated tokens, steps alternately underlined, the one shown
        in reverse; windowed to the lines that fit around it."""
        width = max(10, self._text.content_region.width or self.app.size.width - 2)
        lines_avail = 3 if self.has_class("-tall") and not self.has_class("-tiny") else 2
        if gen is None:
            self._put(self._text, "")
            return
        steps = gen.steps
        key = (gen, steps[-1] if steps else None, len(steps), self._view, width, lines_avail)
        if key == self._text_key:
            return
        self._text_key = key
        pieces: list[tuple[str, str]] = []
        for tok in gen.prompt:
            pieces.append((self._flow_label(tok), "dim"))
        for rec in steps:
            style = "underline" if rec.index % 2 else ""
            if self._view is not None and rec.index == self._view:
                style = "reverse bold"
            label = self._flow_label(rec.token)
            pieces.append((label, style))
        if self._view is None:
            pieces.append(("▏", "bold"))  # where the next token goes
        # which piece to keep in view
        focus_piece = len(gen.prompt) + (self._view if self._view is not None else len(steps))
        text = Text(no_wrap=False, overflow="fold")
        offsets = []
        for label, style in pieces:
            offsets.append(len(text.plain))
            text.append(label, style=style)
        lines = text.wrap(self.app.console, width)
        if len(lines) <= lines_avail:
            self._put(self._text, Text("\n").join(lines))
            return
        # keep the line holding the focus piece in view (the newest, or the step shown)
        pos = offsets[min(focus_piece, len(offsets) - 1)]
        total, focus_line = 0, len(lines) - 1
        for i, line in enumerate(lines):
            total += len(line.plain)
            if total > pos:
                focus_line = i
                break
        start = max(0, min(focus_line - lines_avail + 1, len(lines) - lines_avail))
        hidden = sum(len(line.plain) for line in lines[:start])
        out = Text("\n").join(lines[start : start + lines_avail])
        if start:
            out = Text.assemble((f"…{hidden:,} characters above… ", "dim italic"), out)
        self._put(self._text, out)

    def _flow_label(self, token: int) -> str:
        """A token as running text: spaces as spaces, line breaks and tabs as ⏎ ⇥."""
        label = self._labels.get(-1 - token)
        if label is None:
            try:
                raw = self.session.encoding("model").decode_single_token_bytes(token)
            except (KeyError, NotReady):
                raw = b""
            parts = []
            for text, kind in piece_spans(raw):
                parts.append(text.replace("·", " ") if kind == "marker" else text)
            label = "".join(parts) or f"#{token}"
            self._labels[-1 - token] = label
        return label

    def _show_message(self) -> None:
        lines: list[Text] = []
        for err in self._errors.values():
            lines.append(Text(err, style="bold red"))
        s = self.session
        if s.generation_message and s.current_generation is not None:
            lines.append(Text(s.generation_message, style="bold"))
        if s.context_notice and s.current_generation is not None:
            lines.append(Text(s.context_notice, style="italic"))
        pv = self._preview
        if self._view is None and pv is not None and pv.message and pv.table is None:
            gen = s.current_generation
            if gen is not None and pv.gen is gen and not gen.steps:
                lines.append(Text(f"Nothing can be generated: {pv.message}.", style="bold"))
        if self._info:
            lines.append(Text(self._info, style="italic"))
        lines.extend(self._setting_notes())
        msg = self._message
        msg.display = bool(lines)
        self._put(msg, Text("\n").join(lines[:3]) if lines else "")

    def _setting_notes(self) -> list[Text]:
        s = self._settings
        notes = []
        shown = self.shown
        if s.greedy:
            notes.append("Temperature 0 is greedy: no draw, the top token every time.")
        elif s.temperature >= 5 and shown is not None and not shown.recorded:
            top = max((r.p_final or 0.0) for r in shown.table.rows)
            notes.append(
                f"Temperature {s.temperature:g} flattens the distribution: the best token "
                f"keeps {top * 100:.{PERCENT_DECIMALS}f}%, so the draw is close to a blind pick."
            )
        if s.top_p == 0:
            notes.append("top-p 0 keeps only the most likely token: sampling becomes greedy.")
        if s.top_k == 1:
            notes.append("top-k 1 keeps only the most likely token.")
        if s.min_p == 1:
            notes.append("min-p 1 keeps only the most likely token (and exact ties).")
        return [Text(n, style="italic") for n in notes]

    # -- fields ----------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id is None or not event.input.id.startswith("s-"):
            return
        event.stop()
        if self._syncing_fields:
            return
        self._read_fields()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id and event.input.id.startswith("s-"):
            event.stop()
            self.focus_body()

    def _read_fields(self) -> None:
        texts = {key: inp.value for key, inp in self._inputs.items()}
        errors: dict[str, str] = {}
        settings = self._settings
        try:
            settings = parse_settings({f: texts[f] for f in SETTING_FIELDS})
        except SettingError as exc:
            errors[exc.field] = str(exc)
        try:
            seed = parse_seed(texts["seed"])
        except SettingError as exc:
            errors["seed"], seed = str(exc), self._seed
        try:
            count = parse_count(texts["count"], 256)
        except SettingError as exc:
            errors["count"], count = str(exc), self._count
        stops = parse_stops(texts["stops"])
        for key, inp in self._inputs.items():
            inp.set_class(key in errors, "-bad")
        self._errors = errors
        changed = (settings, seed, stops) != (self._settings, self._seed, self._stops)
        self._settings, self._seed, self._stops, self._count = settings, seed, stops, count
        if settings.temperature > 0:
            self._last_temperature = settings.temperature
        if changed:
            self._view = None  # settings act on the next step: show it
            self._info = ""
        self.refresh_view()

    def _set_temperature(self, value: float) -> None:
        value = max(0.0, round(value, 6))
        self._inputs["temperature"].value = f"{value:g}"  # -> Changed -> _read_fields

    # -- actions ---------------------------------------------------------------------------

    def action_step(self) -> None:
        if not self._model_or_say():
            return
        was_viewing = self._view is not None
        self._view = None
        self._submit(step_once)
        if was_viewing:  # otherwise the op's "generation" change redraws
            self.refresh_view()

    def action_generate(self) -> None:
        if not self._model_or_say():
            return
        for _ in range(self._count):
            self.action_step()

    def action_toggle_greedy(self) -> None:
        if self._settings.greedy:
            self._set_temperature(self._last_temperature or 1.0)
        else:
            self._set_temperature(0.0)

    def action_hotter(self) -> None:
        self._set_temperature(self._settings.temperature + 0.1)

    def action_colder(self) -> None:
        self._set_temperature(max(0.0, self._settings.temperature - 0.1))

    def action_defaults(self) -> None:
        self._settings = SamplingSettings()
        self._stops = ()
        self._errors = {}
        for inp in self._inputs.values():
            inp.remove_class("-bad")
        self._fill_fields()
        self._view = None
        self.refresh_view()

    def action_edit(self) -> None:
        self._inputs["temperature"].focus()

    def action_toggle_details(self) -> None:
        self._details = not self._details
        self._apply_details_class()
        if not self.has_class("-wide"):  # the details replace the bars: keys follow
            target = "#s-details" if self._details else "#s-bars"
            self.query_one(target).focus()

    def _apply_details_class(self) -> None:
        self.set_class(self._details, "-details")

    def action_view_previous(self) -> None:
        gen = self.session.current_generation
        if gen is None or not gen.steps:
            self.notify("No steps yet: press s to take one.", timeout=2)
            return
        index = len(gen.steps) if self._view is None else self._view
        if index == 0:
            self.notify("This is the first step.", timeout=2)
            return
        self._view = index - 1
        self.refresh_view()

    def action_view_next(self) -> None:
        gen = self.session.current_generation
        if gen is None or self._view is None:
            return
        if self._view + 1 < len(gen.steps):
            self._view += 1
        elif gen.done:
            self.notify("The generation stopped here: nothing comes next.", timeout=2)
            return
        else:
            self._view = None
        self.refresh_view()

    def action_replay(self) -> None:
        if not self._model_or_say():
            return

        def replay(gen: Generation) -> str | None:
            before = gen.generated
            if not before:
                return "Nothing to replay yet: take a few steps first."
            gen.replay()
            after = gen.generated
            same = sum(a == b for a, b in zip(before, after, strict=False))
            if before == after:
                self._info = (
                    f"Replayed {len(before)} steps with seed {gen.seed}: the same tokens again."
                )
            else:
                self._info = (
                    f"Replayed with seed {gen.seed}: {len(after) - same} of {len(after)} tokens "
                    "differ from before (a different seed gives different draws)."
                )
            return None

        self._view = None
        self._submit(replay)

    def on_bar_chart_row_chosen(self, event: BarChart.RowChosen) -> None:
        event.stop()
        self._branch_at(event.index)

    def action_branch(self) -> None:
        self._branch_at(self._bars.cursor)

    def _branch_at(self, row: int) -> None:
        shown = self.shown
        if shown is None or not 0 <= row < len(shown.table.rows) or not self._ready():
            return
        token = shown.table.rows[row].token
        index = shown.index
        label = self._label(token)

        def branch(gen: Generation) -> str | None:
            if index > len(gen.steps):
                return f"Step {index} no longer exists."
            if index == len(gen.steps):
                if gen.done:
                    return stopped_message(gen)
                gen.step(token=token)
                self._info = f"Step {index}: took {label} by hand instead of drawing."
                return None
            old = gen.steps[index].token
            dropped = len(gen.steps) - index - 1
            gen.branch(index, token)
            was = self._label(old)
            self._info = f"Branched at step {index}: {label} instead of {was}" + (
                f"; the {dropped} later step{'s' if dropped != 1 else ''} were dropped."
                if dropped
                else "."
            )
            return None

        self._view = None
        self._submit(branch)

    def action_rewind(self) -> None:
        gen = self.session.current_generation
        if gen is None or not gen.steps:
            self.notify("No steps to drop.", timeout=2)
            return
        index = self._view if self._view is not None else len(gen.steps) - 1

        def rewind(g: Generation) -> str | None:
            if index >= len(g.steps):
                return None
            n = len(g.steps) - index
            g.rewind(index)
            self._info = f"Dropped {n} step{'s' if n != 1 else ''}, from step {index} on."
            return None

        self._view = None
        self._submit(rewind)
