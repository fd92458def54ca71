"""Chapter 5: Logits & sampling — the real next-token distribution, every filter, the draw.

The bars are the model's scores for the next token after the shared prompt and the steps
taken so far: raw logit, probability, the logit after penalties and temperature, and the
probability after the filters (or which filter cut the token). Under them, the seeded
uniform draw against the cumulative distribution.

Every change — a prompt edit, a setting typed, a step, a step taken in another chapter —
asks for one thing through the base's one compute path: ``compute_generation("state", op)``,
where the op (run in the app's generation worker) does what was asked and returns a
:class:`~llm_anatomy_tui.views.sampling_view.SamplingState`, a snapshot of the generation
and the preview of its next step. :meth:`SamplingScreen.draw_state` draws it. Settings are
the session's (set on the UI thread as they are typed); they apply from the next step on.

All numbers in a row come from :func:`~llm_anatomy_tui.views.sampling_view.sampling_table`:
every probability is the softmax of the rounded logits printed beside it, so the table
can be checked with a calculator (``p = exp(logit - lse)``).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, Static

from ..core.generation import Generation, StepRecord
from ..core.sampling import SamplingSettings
from ..core.session import NotReady
from ..views.generation_ops import step_op
from ..views.readout import LOGIT_DECIMALS
from ..views.sampling_text import EXPLAINER, FIELDS, LEAD, explainer_texts
from ..views.sampling_view import (
    SamplingState,
    SamplingTable,
    Shown,
    bar_labels,
    bar_tags,
    branch_op,
    flow_label,
    generation_key,
    highlight_tag,
    read_fields,
    replay_op,
    rewind_op,
    running_pieces,
    sampling_state,
    sampling_table,
    setting_notes,
    settings_fields,
    shown_for,
    stops_field,
    token_label,
)
from ..widgets.bar_chart import BarChart, CumulativeStrip
from ..widgets.prompt_bar import PromptBar
from ..widgets.sampling_panels import (
    SettingInput,
    bar_columns,
    draw_note,
    message_lines,
    norm_text,
    running_text,
    stages_text,
    status_text,
)
from .base import MODEL, PROMPT, ChapterScreen
from .generation_common import GenerationChapterMixin

TOP_N = 20
"""Rows in the bar table (the chosen token is added if it ranks lower)."""

PREVIEW_KEY = "sampling.preview"
"""Queued previews replace each other: only the newest settings are computed."""

Action = Callable[[Generation], str]
"""What a key does to the shared generation (in the generation worker); returns what to
say about it ("" for nothing)."""


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
        self._count = 10
        self._errors: dict[str, str] = {}
        self._view: int | None = None  # None: the next step
        self._last_temperature = 1.0
        self._details = False
        self._labels: dict[int, str] = {}
        self._record_tables: dict[int, tuple[StepRecord, SamplingTable]] = {}
        self._syncing_fields = False
        self._text_key: tuple | None = None
        self._drawn: tuple | None = None
        self._failed: tuple | None = None
        self.state: SamplingState | None = None
        """The newest snapshot of the shared generation drawn (None before the first)."""
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
        self._last_temperature = self.session.sampling.temperature or 1.0
        self._fill_fields()
        self.set_class(self._details, "-details")

    def on_resize(self) -> None:
        # the running text is wrapped to the width by hand: wrap it again
        self.call_after_refresh(self._rewrap)

    def _rewrap(self) -> None:
        self._text_key = None
        self._draw_text()

    def _fill_fields(self) -> None:
        """Write the session's settings into the fields (without treating it as typing)."""
        s = self.session
        self._syncing_fields = True
        try:
            for key, text in settings_fields(s.sampling).items():
                self._inputs[key].value = text
            self._inputs["stops"].value = stops_field(s.stop_sequences)
            self._inputs["seed"].value = str(s.seed)
            self._inputs["count"].value = str(self._count)
        finally:
            self._syncing_fields = False

    _FIXED_HEIGHT = frozenset({"s-status", "s-text", "s-norm"})

    # -- asking: every change goes through compute_generation --------------------------------

    def session_changed(self, changes: frozenset[str]) -> None:
        if MODEL in changes:  # the prose names the loaded model's sizes
            for i, body in enumerate(explainer_texts(self.session.model)):
                self.query_one(f"#s-explain-{i}", Static).update(Text(body))
        if changes & {PROMPT, MODEL}:
            self._view = None
            self._record_tables.clear()
        if not self.model_ready():
            self.state = self.shown = None
            self.draw_state(None)
            return
        if changes & {PROMPT, MODEL} or not self._up_to_date():
            self._ask(None)

    def _up_to_date(self) -> bool:
        """Whether the state drawn (or asked for) is the shared generation's state now."""
        s = self.session
        gen = s.current_generation
        if gen is None:
            return False
        now = generation_key(gen)
        want = (now[:3], s.sampling, s.seed, s.stop_sequences)
        if self._failed == (s.prompt_revision, want):
            return True  # it failed for exactly this: asking again would fail again
        st = self.state
        return st is not None and (st.key[:3], st.settings, st.seed, st.stops) == want

    def _ask(self, action: Action | None) -> None:
        """Run ``action`` (None: nothing, a preview) on the shared generation and draw the
        state it leaves. Previews are keyed: a newer one replaces a queued one."""

        def op(gen: Generation) -> SamplingState:
            info = action(gen) if action is not None else ""
            return sampling_state(gen, TOP_N, info=info, notice=self.generation_notice)

        key = PREVIEW_KEY if action is None else None
        self.compute_generation("state", op, then=self.draw_state, on_error=self._op_failed,
                                key=key)  # fmt: skip

    def _op_failed(self, message: str) -> None:
        s = self.session
        gen = s.current_generation
        now = generation_key(gen)[:3] if gen is not None else None
        self._failed = (s.prompt_revision, (now, s.sampling, s.seed, s.stop_sequences))
        self.notify(message, severity="warning", timeout=4)
        self.draw_state(self.state)

    # -- drawing ---------------------------------------------------------------------------

    def draw_state(self, state: SamplingState | None) -> None:
        """Draw a snapshot of the shared generation (None: nothing to show yet)."""
        if state is not None and state is not self.state:
            self.state = state
            if self._view is not None and self._view >= len(state.steps):
                self._view = None
        if not self.model_ready():
            self._put(self._status, self._waiting_text())
            self._clear_bars()
            self._show_message()
            return
        st = self.state
        if st is not None and st.stop is not None and self._view is None and st.steps:
            self._view = len(st.steps) - 1  # nothing comes next: show the step that ended it
        self.shown = shown_for(st, self._view, self._record_table)
        self._draw_text()
        self._draw_status()
        self._show_message()
        shown = self.shown
        if shown is None:
            self._clear_bars()
            if st is None:
                self._put(self._norm, Text("Reading the prompt…", style="italic"))
            return
        drawn = (shown.table, shown.token, shown.forced, shown.recorded, st.stops)
        if drawn == self._drawn:
            return  # the same step and settings as on screen: nothing to repaint
        self._drawn = drawn
        self._draw_bars(shown)
        self._put(self._norm, norm_text(shown.table, shown.result.settings))
        self._draw_strip(shown)
        self._put(self._stages, stages_text(shown.result, shown.index, shown.recorded,
                                            self.session.stop_sequences))  # fmt: skip

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

    def _label(self, token: int) -> str:
        label = self._labels.get(token)
        if label is None:
            label = self._labels[token] = token_label(self._raw(token), token)
        return label

    def _raw(self, token: int) -> bytes:
        try:
            return self.session.encoding("model").decode_single_token_bytes(token)
        except (KeyError, NotReady):
            return b""

    def _draw_bars(self, shown: Shown) -> None:
        rows = shown.table.rows
        highlight = next((i for i, r in enumerate(rows) if r.token == shown.token), None)
        drew = shown.result.draw.u is not None
        self._bars.highlight_tag = highlight_tag(shown.recorded, shown.forced, drew)
        self._bars.set_data(
            bar_labels(rows, self._label, TOP_N),
            [r.p_final if r.p_final is not None else r.p_before_cut for r in rows],
            columns=bar_columns(shown.table), cut=[r.cut for r in rows], highlight=highlight,
            tags=bar_tags(rows),
        )  # fmt: skip
        # new numbers: the cursor starts on the chosen token, so it is in view and
        # branching means moving the cursor to another row
        if highlight is not None:
            self._bars.cursor = highlight

    def _draw_strip(self, shown: Shown) -> None:
        t = shown.table
        self._strip.set_data([self._label(c) for c in t.candidates], list(t.candidate_probs),
                             shown.result.draw.u)  # fmt: skip
        note = draw_note(t, shown.result, shown.token, shown.forced, self._label)
        self._draw_line.display = note is not None
        if note is not None:
            self._put(self._draw_line, note)

    def _draw_status(self) -> None:
        self._put(self._status, status_text(self.state, self._view))

    def _draw_text(self) -> None:
        """Prompt (dim) and generated tokens, steps alternately underlined, the one shown
        in reverse; windowed to the lines that fit around it."""
        st = self.state
        if st is None or not self.model_ready():
            self._text_key = None
            self._put(self._text, "")
            return
        width = max(10, self._text.content_region.width or self.app.size.width - 2)
        lines_avail = 3 if self.has_class("-tall") and not self.has_class("-tiny") else 2
        steps = st.steps
        key = (st.key, self._view, width, lines_avail)
        if key == self._text_key:
            return
        self._text_key = key
        pieces, focus_piece = running_pieces(st.prompt, steps, self._view, self._flow_label)
        lines = running_text(pieces, focus_piece, self.app.console, width, lines_avail)
        self._put(self._text, lines)

    def _flow_label(self, token: int) -> str:
        """A token as running text: spaces as spaces, line breaks and tabs as ⏎ ⇥."""
        label = self._labels.get(-1 - token)
        if label is None:
            label = self._labels[-1 - token] = flow_label(self._raw(token), token)
        return label

    def _show_message(self) -> None:
        shown = self.shown
        top = None
        if shown is not None and not shown.recorded and self.session.sampling.temperature >= 5:
            top = max((r.p_final or 0.0) for r in shown.table.rows)
        st = self.state if self.model_ready() else None
        lines = message_lines(list(self._errors.values()), st,
                              setting_notes(self.session.sampling, top))  # fmt: skip
        msg = self._message
        msg.display = bool(lines)
        self._put(msg, Text("\n").join(lines[:3]) if lines else "")

    # -- fields ----------------------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id is None or not event.input.id.startswith("s-"):
            return
        event.stop()
        if not self._syncing_fields:
            self._read_fields()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id and event.input.id.startswith("s-"):
            event.stop()
            self.focus_body()

    def _read_fields(self) -> None:
        """Parse the fields into the session's settings (a bad field keeps its old value
        and says why) and ask for the next step's preview with them."""
        s = self.session
        texts = {key: inp.value for key, inp in self._inputs.items()}
        settings, seed, count, stops, errors = read_fields(texts, s.sampling, s.seed, self._count)
        for key, inp in self._inputs.items():
            inp.set_class(key in errors, "-bad")
        self._errors = errors
        self._count = count
        changed = (settings, seed, stops) != (s.sampling, s.seed, s.stop_sequences)
        s.set_sampling(settings)
        s.set_seed(seed)
        s.set_stop_sequences(stops)
        if settings.temperature > 0:
            self._last_temperature = settings.temperature
        if changed and self.model_ready():
            self._view = None  # settings act on the next step: show it
            self._ask(None)
        else:
            self.draw_state(self.state)

    def _set_temperature(self, value: float) -> None:
        value = max(0.0, round(value, 6))
        self._inputs["temperature"].value = f"{value:g}"  # -> Changed -> _read_fields

    # -- actions ---------------------------------------------------------------------------

    def _act(self, action: Action) -> None:
        """Run ``action`` on the shared generation, then show the next step."""
        if not self._model_or_say():
            return
        self._view = None
        self._ask(action)
        self.draw_state(self.state)

    def action_step(self) -> None:
        self._act(step_op)

    def action_generate(self) -> None:
        for _ in range(self._count):
            self.action_step()

    def action_toggle_greedy(self) -> None:
        greedy = self.session.sampling.greedy
        self._set_temperature((self._last_temperature or 1.0) if greedy else 0.0)

    def action_hotter(self) -> None:
        self._set_temperature(self.session.sampling.temperature + 0.1)

    def action_colder(self) -> None:
        self._set_temperature(max(0.0, self.session.sampling.temperature - 0.1))

    def action_defaults(self) -> None:
        """Every setting off, stop sequences included (a generation they stopped goes on)."""
        s = self.session
        s.set_sampling(SamplingSettings())
        s.set_stop_sequences(())
        self._errors = {}
        for inp in self._inputs.values():
            inp.remove_class("-bad")
        self._fill_fields()
        self._view = None
        if self.model_ready():
            self._ask(None)

    def action_edit(self) -> None:
        self._inputs["temperature"].focus()

    def action_toggle_details(self) -> None:
        self._details = not self._details
        self.set_class(self._details, "-details")
        if not self.has_class("-wide"):  # the details replace the bars: keys follow
            self.query_one("#s-details" if self._details else "#s-bars").focus()

    def action_view_previous(self) -> None:
        st = self.state
        if st is None or not st.steps:
            self.notify("No steps yet: press s to take one.", timeout=2)
            return
        index = len(st.steps) if self._view is None else self._view
        if index == 0:
            self.notify("This is the first step.", timeout=2)
            return
        self._view = index - 1
        self.draw_state(st)

    def action_view_next(self) -> None:
        st = self.state
        if st is None or self._view is None:
            return
        if self._view + 1 < len(st.steps):
            self._view += 1
        elif st.stop is not None:
            self.notify("The generation stopped here: nothing comes next.", timeout=2)
            return
        else:
            self._view = None
        self.draw_state(st)

    def action_replay(self) -> None:
        self._act(replay_op)

    def on_bar_chart_row_chosen(self, event: BarChart.RowChosen) -> None:
        event.stop()
        self._branch_at(event.index)

    def action_branch(self) -> None:
        self._branch_at(self._bars.cursor)

    def _branch_at(self, row: int) -> None:
        shown = self.shown
        if shown is None or not 0 <= row < len(shown.table.rows) or not self.model_ready():
            return
        token = shown.table.rows[row].token
        self._act(branch_op(shown.index, token, self._label(token)))

    def action_rewind(self) -> None:
        st = self.state
        if st is None or not st.steps:
            self.notify("No steps to drop.", timeout=2)
            return
        self._act(rewind_op(self._view if self._view is not None else len(st.steps) - 1))
