"""Chapter 2: Embeddings — a token ID picks a row of the real embedding matrix.

The prompt's tokens, each with the row it selects from ``embed_tokens`` [V × d]; the
selected token's vector as a colour strip (and every number on request) with its norm;
one token in two sentences of the person's choosing (the same row at the start, different
vectors after the blocks); its nearest neighbours by cosine over the whole vocabulary (a
worker, with progress, cached per token); a 2-D PCA of a token set with the variance its
axes explain; the tied output head; and the sizes of real models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Input, Static

from ..core.embeddings import Neighbours, Projection
from ..views import embeddings as ev
from ..widgets.prompt_bar import PromptBar
from ..widgets.vector_strip import VectorStrip
from .base import ChapterScreen

NEIGHBOURS = 10
LEAD = (
    "A model cannot compute with words, so each token ID picks one row of a large table of "
    "learned numbers: the token's embedding. That row is where the token starts, the same "
    "wherever it appears; the layers after it add the context."
)


class Strip(VectorStrip, can_focus=False):
    """A vector strip that is shown, not explored (the screen owns the keys)."""


def set_text(static: Static, text: Text | str) -> None:
    """Replace a Static's text, asking for a layout pass only when its number of lines
    changed (a layout costs 10-40 ms on a busy 2-core machine, a repaint about one).
    A ``no_wrap`` text must go to a Static styled ``text-wrap: nowrap`` (class
    ``nowrap``), so its line count is its height; any other text is laid out each time."""
    if isinstance(text, str):
        text = Text(text)
    if text == static.content:
        return
    lines = text.plain.count("\n") + 1
    old = getattr(static, "_text_lines", None)
    static.update(text, layout=old != lines or not text.no_wrap)
    static._text_lines = lines  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Shown:
    """What the screen shows now, for tests and readers (token IDs and exact numbers)."""

    ids: tuple[int, ...] = ()
    selected: int = 0
    row: np.ndarray | None = None  # the selected token's embedding row as shown
    norm: float | None = None
    lookup: ev.WordLookup | None = None
    neighbours: Neighbours | None = None
    projection: Projection | None = None
    token_set: ev.TokenSet | None = None
    contexts: ev.TwoContextView | None = None


class EmbeddingsScreen(ChapterScreen):
    NEEDS_MODEL = True
    AUTO_FOCUS = "#e-body"
    CSS_PATH = "c02_embeddings.tcss"
    BINDINGS = [
        Binding("comma", "token(-1)", "◀ token", id="embeddings.prev-token",
                tooltip="Select the previous token of the prompt"),
        Binding("full_stop", "token(1)", "token ▶", id="embeddings.next-token",
                tooltip="Select the next token of the prompt"),
        Binding("l", "lookup", "Look up", id="embeddings.lookup",
                tooltip="Type a word and find its nearest neighbours (Enter; empty: the selected prompt token)"),
        Binding("v", "numbers", "Numbers", id="embeddings.numbers",
                tooltip="Show every number of the selected vector under its colour strip"),
        Binding("s", "token_set", "Token set", id="embeddings.set",
                tooltip="Project another token set: the prompt, numbers, names, colours, verbs, places"),
        Binding("a", "sentence(0)", "Sentence A", id="embeddings.sentence-a",
                tooltip="Type the first of the two sentences (Enter to apply)"),
        Binding("b", "sentence(1)", "Sentence B", id="embeddings.sentence-b",
                tooltip="Type the second of the two sentences (Enter to apply)"),
        Binding("w", "shared", "Shared word", id="embeddings.shared",
                tooltip="Compare the next token the two sentences share"),
    ]  # fmt: skip

    def __init__(self, chapter) -> None:  # noqa: ANN001
        super().__init__(chapter)
        self.shown = Shown()
        """What is drawn now (public: tests read the numbers from here)."""
        self._selected = 0
        self._word: str | None = None  # a typed lookup word, or None: the selected token
        self._set_index = 0
        self._sentences = list(ev.DEFAULT_SENTENCES)
        self._pick: int | None = None  # which shared token; None: " bank" if shared
        self._nb_cache: dict[tuple[int, int], Neighbours] = {}
        self._ctx_cache: tuple[tuple[int, int], tuple[list[int], str]] | None = None

    def compose_chapter(self) -> ComposeResult:
        with VerticalScroll(id="e-body"):
            yield Static(LEAD, classes="lead")
            yield PromptBar(
                self.session.prompt, title="Prompt (shared by every chapter)", id="prompt"
            )
            yield Static(id="e-lookup", classes="nowrap")
            yield Strip(id="e-strip", legend=True, show_cursor=False)
            yield Static(id="e-norm", classes="nowrap")
            yield Static("Nearest neighbours by cosine similarity", classes="h")
            yield Input(placeholder="a word to look up, e.g. ' bank' (Enter)", id="e-word")
            yield Static(id="e-neighbours", classes="nowrap")
            yield Static("The same token in two sentences", classes="h")
            yield Input(value=self._sentences[0], id="e-sent-a")
            yield Input(value=self._sentences[1], id="e-sent-b")
            yield Static(id="e-contexts")
            yield Static("A flat picture of many dimensions: 2-D PCA", classes="h")
            yield Static(id="e-pca", classes="nowrap")
            yield Static(id="e-head", classes="note")
            yield Static("How big are embedding tables elsewhere?", classes="h")
            yield Static(id="e-scale", classes="nowrap")

    # -- inputs ------------------------------------------------------------------------------

    def _model_context(self) -> tuple[list[int], str]:
        """The token IDs the model reads for the prompt, and why they differ from it."""
        model = self.session.require_model()
        key = (self.session.prompt_revision, id(model))
        if self._ctx_cache is None or self._ctx_cache[0] != key:  # encode once per prompt
            ctx = self.context_ids(
                self.session.encoding("model"), model.config.max_position_embeddings
            )
            self._ctx_cache = (key, ctx)
        return self._ctx_cache[1]

    def _ids(self) -> list[int]:
        return self._model_context()[0]

    def session_changed(self, changes: frozenset[str]) -> None:
        if self.session.model is None or not self.session.tokenizer_state.ready:
            return
        if "model" in changes:
            self._nb_cache.clear()
        self._selected = min(self._selected, len(self._ids()) - 1)
        self.draw_lookup()
        self.ask_neighbours()
        self.ask_projection()
        if changes & {"model", "tokenizers"}:  # the two sentences do not follow the prompt
            self.ask_contexts()
            self.draw_static_parts()

    # -- the lookup and the vector ----------------------------------------------------------

    def draw_lookup(self) -> None:
        model, enc = self.session.require_model(), self.session.encoding("model")
        ids, notice = self._model_context()
        sel = self._selected
        v, d = model.embed.shape
        row = model.embed[ids[sel]]
        norm = float(np.linalg.norm(row.astype(np.float64)))
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(f"embed_tokens  [{v:,} × {d}]", style="bold")
        out.append("   one row per token ID; the ID is the row number\n", style="dim")
        if notice:
            out.append(notice + "\n", style="italic")
        lo = max(0, min(sel - 3, len(ids) - 7))
        for i in range(lo, min(len(ids), lo + 7)):
            t = ids[i]
            mark = "▶" if i == sel else " "
            first = " ".join(f"{x:+.2f}" for x in model.embed[t][:4])
            line = f"{mark} #{i:<3} {ev.token_label(enc, t):<12.12} ID {t:>6} → row {t:>6}: [{first} …]\n"
            out.append(line, style="bold reverse" if i == sel else "")
        if len(ids) > 7:
            out.append(
                f"  tokens {lo}–{min(len(ids), lo + 7) - 1} of {len(ids)} (, and . move)\n",
                style="dim",
            )
        set_text(self.query_one("#e-lookup", Static), out)
        strip = self.query_one("#e-strip", Strip)
        strip.values = row
        strip.title = f"“{ev.token_label(enc, ids[sel])}” (ID {ids[sel]}): its {d} numbers"
        set_text(self.query_one("#e-norm", Static),
                 Text(f"norm |e| = {norm:.4f}   min {row.min():+.3f}  max {row.max():+.3f}   "
                      "(v: numbers)", no_wrap=True, overflow="ellipsis"))  # fmt: skip
        self.shown = self._with(ids=tuple(ids), selected=sel, row=row.copy(), norm=norm)

    def _with(self, **kw) -> Shown:  # noqa: ANN003
        fields = self.shown.__dict__ | kw
        return Shown(**fields)

    # -- neighbours --------------------------------------------------------------------------

    def ask_neighbours(self) -> None:
        model, enc = self.session.require_model(), self.session.encoding("model")
        if self._word:
            try:
                lookup = ev.lookup_word(enc, self._word)
            except ValueError as exc:
                self._word = None
                self.notify(str(exc), severity="warning")
                return self.ask_neighbours()
        else:
            t = self._ids()[self._selected]
            lookup = ev.WordLookup(ev.token_label(enc, t), (t,), (ev.token_label(enc, t),))
        self.shown = self._with(lookup=lookup)
        key = (id(model), lookup.token)
        if key in self._nb_cache:
            self.cancel_compute("neighbours")
            return self.draw_neighbours(self._nb_cache[key])
        self._nb_waiting(lookup.message, 0.0)
        self.compute("neighbours", ev.neighbours_of, model.embed, lookup.token, NEIGHBOURS,
                     then=self.draw_neighbours, on_progress=self._nb_progress)  # fmt: skip

    def _nb_progress(self, report) -> None:  # noqa: ANN001
        lookup = self.shown.lookup
        self._nb_waiting(lookup.message if lookup else "", report.fraction)

    def _nb_waiting(self, message: str, fraction: float) -> None:
        """The neighbours panel while the search runs, as tall as its result will be."""
        lines = [message, f"searching the whole vocabulary… {fraction:.0%}"] + [""] * (
            NEIGHBOURS + 1
        )
        set_text(self.query_one("#e-neighbours", Static),
                 Text("\n".join(lines), style="dim", no_wrap=True, overflow="ellipsis"))  # fmt: skip

    def draw_neighbours(self, nb: Neighbours) -> None:
        model, enc = self.session.require_model(), self.session.encoding("model")
        self._nb_cache[(id(model), nb.query)] = nb
        lookup = self.shown.lookup
        out = Text(no_wrap=True, overflow="ellipsis")
        if lookup is not None:
            out.append(lookup.message + "\n")
        out.append(
            f"closest of all {nb.vocab:,} rows (cos = a·b / |a||b|, 1 = same direction):\n",
            style="dim",
        )
        for r in ev.neighbour_rows(nb, enc):
            bar = "█" * max(0, round(r.similarity * 20))
            out.append(f"{r.rank:>3}. {r.label:<14.14} ID {r.token:>6}  {r.shown}  {bar}\n")
        set_text(self.query_one("#e-neighbours", Static), out)
        self.shown = self._with(neighbours=nb)

    # -- two contexts ------------------------------------------------------------------------

    def ask_contexts(self) -> None:
        model, enc = self.session.require_model(), self.session.encoding("model")
        a, b = self._sentences
        pick = self._pick if self._pick is not None else -1
        self.compute("contexts", self._contexts, model, enc, a, b, pick,
                     then=self.draw_contexts, on_error=self._contexts_error)  # fmt: skip

    @staticmethod
    def _contexts(model, enc, a: str, b: str, pick: int) -> ev.TwoContextView:  # noqa: ANN001
        if pick < 0:  # the default: " bank" when both sentences have it
            ids_a, ids_b = enc.encode_ordinary(a), enc.encode_ordinary(b)
            pick = ev.default_pick(enc, ev.find_shared(ids_a, ids_b))
        return ev.compare_contexts(model, enc, a, b, pick)

    def _contexts_error(self, message: str) -> None:
        set_text(self.query_one("#e-contexts", Static), Text(message, style="italic"))

    def draw_contexts(self, view: ev.TwoContextView) -> None:
        n_layers = self.session.require_model().config.num_hidden_layers
        r = view.result
        if r is None:
            text = Text(
                "The two sentences share no token: type one that both use (a, b).", style="italic"
            )
        else:
            same = "the same row" if r.start_diff == 0 else f"max |difference| {r.start_diff:.2g}"
            text = Text.assemble(
                (
                    f"“{r.label}” (ID {r.token}) is token #{r.position_a} of A and #{r.position_b} of B.\n",
                    "bold",
                ),
                f"Start: both take row {r.token} of the table: {same} (max |a − b| = {r.start_diff:g}).\n",
                f"After all {n_layers} blocks the two vectors differ: cosine {r.end_cosine:.3f} "
                "(1 would mean the same direction). The context changed them.\n",
                (f"{len(view.shared)} shared token(s); w shows the next.", "dim"),
            )
        set_text(self.query_one("#e-contexts", Static), text)
        self.shown = self._with(contexts=view)

    # -- projection --------------------------------------------------------------------------

    def ask_projection(self) -> None:
        model, enc = self.session.require_model(), self.session.encoding("model")
        ts = ev.token_set(ev.TOKEN_SETS[self._set_index], enc, self._ids())
        self.shown = self._with(token_set=ts)
        self.compute("pca", ev.project_set, model.embed, ts, then=self.draw_projection,
                     on_error=self._pca_error)  # fmt: skip

    def _pca_error(self, message: str) -> None:
        set_text(
            self.query_one("#e-pca", Static), Text(message + "  (s: another set)", style="italic")
        )
        self.shown = self._with(projection=None)

    def draw_projection(self, p: Projection) -> None:
        ts = self.shown.token_set
        assert ts is not None
        width = max(30, min(100, self.size.width - 16))
        names = " · ".join(ev.TOKEN_SETS)
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(f"set: {ts.name}  ({len(ts.ids)} tokens; s cycles {names})\n", style="bold")
        if ts.skipped:
            out.append(
                "not one token here, left out: " + ", ".join(w.strip() for w in ts.skipped) + "\n",
                style="dim",
            )
        out.append("▲ axis 2\n", style="dim")
        for line in ev.scatter_lines(p.coords, ts.labels, width, 11):
            out.append("│" + line + "\n")
        out.append("└" + "─" * width + "▶ axis 1\n", style="dim")
        out.append(ev.variance_note(p))
        set_text(self.query_one("#e-pca", Static), out)
        self.shown = self._with(projection=p)

    def draw_static_parts(self) -> None:
        model = self.session.require_model()
        cfg = model.config
        if cfg.tie_word_embeddings and model.lm_head is model.embed:
            head = ("Tied head: this model scores every possible next token with this same "
                    f"[{cfg.vocab_size:,} × {cfg.hidden_size}] matrix (tie_word_embeddings). "
                    "Chapter 5's logits are the last vector's dot product with each row.")  # fmt: skip
        else:
            head = ("Untied head: this model has a separate output matrix lm_head "
                    f"[{cfg.vocab_size:,} × {cfg.hidden_size}] to score the next token (chapter 5).")  # fmt: skip
        set_text(self.query_one("#e-head", Static), head)
        lines = ev.scale_lines(model.name, cfg.hidden_size, cfg.vocab_size)
        set_text(
            self.query_one("#e-scale", Static),
            Text("\n".join(lines), no_wrap=True, overflow="ellipsis"),
        )

    # -- actions -----------------------------------------------------------------------------

    def action_token(self, delta: int) -> None:
        if not self.model_ready():
            return
        n = len(self._ids())
        self._selected = (self._selected + delta) % n
        self._word = None
        self.draw_lookup()
        self.ask_neighbours()

    def action_numbers(self) -> None:
        strip = self.query_one("#e-strip", Strip)
        strip.show_values = not strip.show_values

    def action_token_set(self) -> None:
        self._set_index = (self._set_index + 1) % len(ev.TOKEN_SETS)
        if self.model_ready():
            self.ask_projection()

    def action_shared(self) -> None:
        view = self.shown.contexts
        if view is None or not view.shared or view.result is None:
            return
        self._pick = (view.shared.index(view.result.token) + 1) % len(view.shared)
        if self.model_ready():
            self.ask_contexts()

    def action_lookup(self) -> None:
        self.query_one("#e-word", Input).focus()

    def action_sentence(self, which: int) -> None:
        self.query_one("#e-sent-a" if which == 0 else "#e-sent-b", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "e-word":
            self._word = event.value or None
            if self.model_ready():
                self.ask_neighbours()
        else:
            self._sentences[0 if event.input.id == "e-sent-a" else 1] = event.value
            self._pick = None
            if self.model_ready():
                self.ask_contexts()
        self.focus_body()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()  # only Enter applies a typed value
