"""Chapter 13: Post-training — from a text predictor to an assistant, and a real DPO pair.

Top: pretraining → supervised fine-tuning → preference tuning, each with its objective,
signal and effect. Then a preference pair on the shared prompt: two completions (sampled
from the model or typed), each scored by its sequence log-probability (per token and
summed), the DPO loss for "A is better than B" against the model as loaded (frozen, the
reference), with β adjustable, and DPO steps on a copy (:mod:`views.preference`) with the
margin, loss, preference and KL to the reference after every step. Then the loaded model's
chat template, if it has one, and capability versus behaviour.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Static

from ..views.preference import (
    BETA_LADDER,
    DEFAULT_BETA,
    DPO_LR,
    DPO_STEPS_PER_PRESS,
    DPOPoint,
    DPOState,
    PairResult,
    chat_template_view,
    dpo_steps,
    find_chat_template,
    sample_texts,
    score_texts,
    start_dpo,
)
from ..views.preference_text import (
    CAPABILITY,
    NO_TEMPLATE,
    PIPELINE,
    DPOReadout,
    fmt_logp,
    preference_sentence,
    readout,
    special_notes,
    token_line,
)
from ..widgets.line_plot import LinePlot, Series
from ..widgets.prompt_bar import PromptBar
from .base import PROMPT, ChapterScreen, ProgressReport
from .repaint import Painter

LEAD = (
    "A pretrained model continues text. Chat assistants are the same kind of network after "
    "two more stages of training. Each stage changes what is rewarded, not the machinery."
)
PAIR_LEAD = (
    "Your prompt and two completions, A (preferred) and B (rejected), scored by the model: log p of each token given everything before it, and "
    "the sum, the sequence log-probability. a/b sample a new A/B, e edits them."
)


class PostTrainingScreen(ChapterScreen):
    """Chapter 13: the post-training pipeline, a scored pair, DPO steps on a copy."""

    NEEDS_MODEL = True
    AUTO_FOCUS = "#c13-body"
    CSS_PATH = "c13_post_training.tcss"
    BINDINGS = [
        Binding("a", "sample('a')", "Sample A", id="post-training.sample-a",
                tooltip="Sample a new completion A from the model (next seed)"),
        Binding("b", "sample('b')", "Sample B", id="post-training.sample-b",
                tooltip="Sample a new completion B from the model (next seed)"),
        Binding("e", "edit", "Edit A/B", id="post-training.edit",
                tooltip="Type completion A (Tab: B); Enter scores them, Esc leaves"),
        Binding("plus,equals_sign", "beta(1)", "β ↑", id="post-training.beta-up",
                tooltip="Raise β: how hard the DPO loss pulls (0, 0.01 … 10)"),
        Binding("minus", "beta(-1)", "β ↓", id="post-training.beta-down",
                tooltip="Lower β (0 means no preference is learnt)"),
        Binding("d", "dpo", f"DPO ×{DPO_STEPS_PER_PRESS}", id="post-training.dpo",
                tooltip=f"Take {DPO_STEPS_PER_PRESS} DPO steps on the copy (Adam, learning "
                        f"rate {DPO_LR:g}); x stops them"),
        Binding("x", "stop", "Stop", id="post-training.stop", show=False,
                tooltip="Stop the DPO steps after the one in progress"),
        Binding("r", "reset", "Reset", id="post-training.reset",
                tooltip="Throw the DPO copy away and start again from the reference"),
    ]  # fmt: skip

    def __init__(self, chapter) -> None:  # noqa: ANN001
        super().__init__(chapter)
        self.beta = DEFAULT_BETA
        self.seeds = {"a": 1, "b": 2}
        self.result: PairResult | None = None
        """The pair as scored by the reference (None until scored)."""
        self.dpo: DPOState | None = None
        """The DPO run shown (its points; the copy's weights)."""
        self.readout: DPOReadout | None = None
        """The DPO panel exactly as printed (strings), for readers and tests."""
        self.message = ""
        self.painter = Painter(self)

    def compose_chapter(self) -> ComposeResult:
        with VerticalScroll(id="c13-body"):
            yield Static(Text(LEAD), classes="prose")
            yield Static(pipeline_text(), id="c13-pipeline")
            yield Static(Text("What SFT leaves behind: a chat template", style="bold"),
                         classes="heading")  # fmt: skip
            yield Static(id="c13-chat")
            yield Static(Text(CAPABILITY), classes="prose")
            yield Static(Text("A real preference pair", style="bold"), classes="heading")
            yield Static(Text(PAIR_LEAD), classes="prose")
            yield PromptBar(self.session.prompt, title="Prompt (shared by every chapter)",
                            id="prompt")  # fmt: skip
            yield Static(id="c13-note")
            for key, what in (("a", "preferred"), ("b", "rejected")):
                with Horizontal(classes="c13-field"):
                    yield Label(f"{key.upper()} ({what}) ", classes="c13-label")
                    yield Input(placeholder=f"completion {key.upper()}", id=f"c13-{key}",
                                compact=True, max_length=4000)  # fmt: skip
            yield Static(id="c13-scores")
            yield Static(id="c13-dpo")
            yield LinePlot(id="c13-plot", x_label="DPO step", y_label="nats")

    # -- inputs -------------------------------------------------------------------------------

    def session_changed(self, changes: frozenset[str]) -> None:
        self.draw_chat()
        if self.session.model is None:
            return
        if not self.query_one("#c13-a", Input).value or PROMPT in changes:
            self.resample(("a", "b"))
        else:
            self.rescore()

    def resample(self, which: tuple[str, ...]) -> None:
        seeds = [self.seeds[w] for w in which]
        self.compute("sample", sample_texts, self.session.model, self._encoding(),
                     self.session.prompt, seeds, then=lambda texts: self.fill(which, texts),
                     on_error=self.show_error)  # fmt: skip

    def fill(self, which: tuple[str, ...], texts: list[str]) -> None:
        for w, text in zip(which, texts, strict=True):
            self.query_one(f"#c13-{w}", Input).value = text
        self.rescore()

    def _encoding(self):  # noqa: ANN202
        """The loaded model's own tokenizer, else the built-in vocabulary (None while it
        loads: the worker then says so, or uses anatomy-mini's)."""
        own = getattr(self.session.model, "tokenizer", None)
        if own is not None:
            return own
        try:
            return self.session.encoding("model")
        except Exception:  # noqa: BLE001 - not loaded yet
            return None

    def rescore(self) -> None:
        self.cancel_compute("dpo")
        a = self.query_one("#c13-a", Input).value
        b = self.query_one("#c13-b", Input).value
        self.compute("score", score_texts, self.session.model, self._encoding(),
                     self.session.prompt, a, b, self.beta, then=self.draw_pair,
                     on_error=self.show_error)  # fmt: skip

    def show_error(self, message: str) -> None:
        self.message = message
        self.query_one("#c13-scores", Static).update(Text(f"✗ {message}", style="bold"))
        self.painter.put("#c13-dpo", "", Text)
        self.readout = None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.rescore()
        self.focus_body()

    def action_sample(self, which: str) -> None:
        self.seeds[which] += 2
        self.resample((which,))

    def action_edit(self) -> None:
        self.query_one("#c13-a", Input).focus()

    def action_beta(self, direction: int) -> None:
        ladder = BETA_LADDER
        i = min(range(len(ladder)), key=lambda j: abs(ladder[j] - self.beta))
        self.beta = ladder[max(0, min(len(ladder) - 1, i + direction))]
        if self.dpo is not None and self.dpo.points:
            self.draw_dpo()

    # -- DPO ------------------------------------------------------------------------------------

    def action_dpo(self) -> None:
        if self.result is None or self.dpo is None:
            self.notify("Score a pair first.", severity="warning")
            return
        r = self.result
        self.compute("dpo", dpo_steps, self.dpo, r.pair, r.scores, self.beta,
                     DPO_STEPS_PER_PRESS, DPO_LR, then=self.finish_dpo,
                     on_progress=self.progress_dpo)  # fmt: skip

    def progress_dpo(self, report: ProgressReport) -> None:
        pass  # the header shows the fraction; the points land with the result

    def finish_dpo(self, state: DPOState) -> None:
        self.dpo = state
        self.message = state.message
        self.draw_dpo()

    def action_stop(self) -> None:
        # x works at any time and is never added to the footer: showing it only while
        # steps ran rebuilt the footer twice per press, and a β key landing then took
        # 70-110 ms to repaint
        if not self.is_computing("dpo"):
            self.notify("No DPO steps are running.", timeout=2)
            return
        self.cancel_compute("dpo")
        self.message = "Stopped: the steps of that press were dropped."
        self.draw_dpo()

    def action_reset(self) -> None:
        self.cancel_compute("dpo")
        if self.result is not None:
            self.dpo = start_dpo(self.result.model, self.result.scores)
            self.message = "The DPO copy was thrown away: back to the reference."
            self.draw_dpo()

    # -- drawing --------------------------------------------------------------------------------

    def draw_pair(self, result: PairResult) -> None:
        self.result = result
        self.dpo = start_dpo(result.model, result.scores)
        self.message = ""
        note = self.query_one("#c13-note", Static)
        note.update(Text(result.note, style="italic") if result.note else "")
        s = result.scores
        text = Text()
        for name, pieces, scored in (
            ("A", result.pieces_a, s.ref_a),
            ("B", result.pieces_b, s.ref_b),
        ):
            text.append(f"{name} ", style="bold")
            for piece, value in token_line(pieces, scored):
                text.append(piece, style="underline")
                text.append(f" {value}  ", style="dim")
            text.append(f"\n  sum {fmt_logp(scored.total)} over {len(scored.logprobs)} tokens "
                        f"(mean {scored.mean:.4f})\n")  # fmt: skip
        text.append(preference_sentence(s.ref_a, s.ref_b))
        self.query_one("#c13-scores", Static).update(text)
        self.draw_dpo()

    def current_point(self) -> DPOPoint | None:
        if self.dpo is None or not self.dpo.points:
            return None
        last = self.dpo.points[-1]
        return DPOPoint(last.step, self.beta, last.policy_a, last.policy_b, last.ref_a,
                        last.ref_b, last.kl)  # fmt: skip

    def draw_dpo(self) -> None:
        point = self.current_point()
        plot = self.query_one("#c13-plot", LinePlot)
        if point is None or self.result is None:
            self.painter.put("#c13-dpo", "", Text)
            plot.series = ()
            return
        self.readout = readout(point)
        text = Text()
        for i, line in enumerate(self.readout.lines()):
            text.append(line + "\n", style="bold" if i in (4, 5) else "")
        text.append(prefer_text(point) if point.step else
                    "Step 0: the copy equals the reference, so z = 0 and the loss is log 2.")  # fmt: skip
        for line in special_notes(self.beta, self.result.pair.identical):
            text.append(f"\n⚠ {line}", style="bold")
        if self.message:
            text.append(f"\n{self.message}", style="bold")
        # β keys while DPO steps run: a layout of this long screen only when the panel's
        # height changes (a whole-screen layout per key cost 65 ms p95 under the worker)
        self.painter.put("#c13-dpo", text, lambda: text)
        points = self.dpo.points
        steps = [p.step for p in points]
        plot.series = (
            Series("DPO loss", [p.loss for p in points], steps),
            Series("margin β·z", [p.margin for p in points], steps),
            Series("KL to ref", [p.kl for p in points], steps),
        )
        plot.xlim = (0, max(DPO_STEPS_PER_PRESS, steps[-1]))

    def draw_chat(self) -> None:
        model = self.session.model
        name = getattr(model, "name", "The loaded model") if model is not None else "anatomy-mini"
        template = find_chat_template(model, self.session)
        view = chat_template_view(template, self.session.prompt or "Hello!")
        widget = self.query_one("#c13-chat", Static)
        if view.template is None:
            widget.update(Text(NO_TEMPLATE.format(name=name)))
            return
        text = Text(f"{name}'s chat template wraps your prompt like this (special tokens "
                    "reversed):\n")  # fmt: skip
        body = view.rendered if view.rendered is not None else view.template
        text.append_text(mark_specials(body, view.special_tokens))
        text.append(f"\nSpecial tokens: {', '.join(view.special_tokens) or 'none found'}")
        if view.rendered is None:
            text.append("\n(shown raw: the template could not be filled in here)")
        widget.update(text)


def pipeline_text() -> Group:
    """The three stages, each a bold line over an objective/signal/effect grid."""
    parts: list[Text | Table] = []
    for i, (stage, objective, signal, effect) in enumerate(PIPELINE):
        parts.append(Text(("   ↓\n" if i else "") + stage, style="bold"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="italic", no_wrap=True)
        grid.add_column(ratio=1)
        for label, body in (("objective", objective), ("signal", signal), ("effect", effect)):
            grid.add_row(f"  {label}", body)
        parts.append(grid)
    return Group(*parts)


def mark_specials(body: str, specials: tuple[str, ...]) -> Text:
    text = Text(body.replace("\n", "⏎\n"))
    for token in specials:
        text.highlight_words([token], style="reverse bold")
    return text


def prefer_text(point: DPOPoint) -> str:
    if point.prefers == "neither":
        return "The DPO copy gives A and B the same log-probability."
    other = "B" if point.prefers == "A" else "A"
    return f"The DPO copy prefers {point.prefers}: log π({point.prefers}) > log π({other})."
