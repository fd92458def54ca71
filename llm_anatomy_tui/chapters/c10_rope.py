"""Chapter 10: rotary position embedding, checked on the real q and k.

The model's q, k and v of every layer come from the core in one pass
(:func:`~..core.rope_inspect.all_layer_vectors`, through the one compute path: inline when
the pass is cheap, in a worker otherwise), so changing layer only redraws;
everything printed is built by :func:`~..views.rope_view.rope_view` from them and the
reader's selection, which is cheap, so moving a cursor repaints in its own frame.
"""

from __future__ import annotations

from dataclasses import replace

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..core.rope_inspect import LayerVectors, all_layer_vectors
from ..core.session import NotReady
from ..views.attention_tracker import token_labels
from ..views.rope_view import RopeSelection, RopeView, clamp_selection, rope_view
from ..widgets.prompt_bar import PromptBar
from .base import ChapterScreen
from .repaint import Painter

DIAL_LINES = 11
"""Height of the arrows panel: 5 dial rows, 4 caption rows, 2 lines below."""

INLINE_MACS = 150_000_000
"""A pass of at most this many multiply-adds (≈ tokens × parameters; ~10 ms) runs inline,
a longer one in a worker: measured in work, not tokens, so a large model never blocks."""

LEAD = (
    "RoPE gives attention a sense of order without adding anything to the token vectors: "
    "each query and key is cut into pairs of numbers, and pair i is turned by an angle of "
    "position × θ^(−2i/D). Fast pairs spin round in a few tokens, slow pairs barely move. "
    "Below: the real query and key of the layer and head you pick, on your prompt."
)


def _bind(key: str, action: str, desc: str, name: str, tip: str, show: bool = True) -> Binding:
    return Binding(key, action, desc, id=f"rope.{name}", tooltip=tip, show=show)


class RopeScreen(ChapterScreen):
    """Chapter 10: RoPE pairs as arrows, their frequencies, the shift proof, the layouts."""

    CSS_PATH = "c10_rope.tcss"
    NEEDS_MODEL = True
    AUTO_FOCUS = "#rope-body"
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    BINDINGS = [
        _bind("m", "query(1)", "Query", "query-next", "Next query token (position m)"),
        _bind("M", "query(-1)", "Query back", "query-prev", "Previous query token", False),
        _bind("k", "key(1)", "Key", "key-next", "Next key token (position n)"),
        _bind("K", "key(-1)", "Key back", "key-prev", "Previous key token", False),
        _bind("o", "shift(1)", "Shift", "shift-more", "Shift both positions one further"),
        _bind("O", "shift(-1)", "Shift back", "shift-less", "Shift both positions one back", False),
        _bind("full_stop", "position(1)", "Turn", "pos-next", "Draw the arrows one position later"),
        _bind("comma", "position(-1)", "Turn back", "pos-prev", "Draw the arrows one position earlier", False),
        _bind("greater_than_sign", "position(10)", "+10", "pos-next10", "Arrows ten positions later", False),
        _bind("less_than_sign", "position(-10)", "−10", "pos-prev10", "Arrows ten positions earlier", False),
        _bind("r", "reset_position", "At m", "pos-reset", "Draw the arrows at the query's position", False),
        _bind("l", "layer(1)", "Layer", "layer-next", "Next layer"),
        _bind("L", "layer(-1)", "Layer back", "layer-prev", "Previous layer", False),
        _bind("h", "head(1)", "Head", "head-next", "Next query head"),
        _bind("H", "head(-1)", "Head back", "head-prev", "Previous query head", False),
    ]  # fmt: skip

    def __init__(self, chapter) -> None:  # noqa: ANN001
        super().__init__(chapter)
        self.selection = RopeSelection()
        """The reader's selection, clamped to the model and context."""
        self.view: RopeView | None = None
        """What the screen shows (None until the model has run): for tests and readers."""
        self.tokens: tuple[int, ...] = ()
        """The context the vectors were computed for (the prompt, or the shared generation)."""
        self._labels: list[str] = []
        self._vectors: list[LayerVectors] = []
        """q, k, v of every layer for :attr:`_vector_key` (one pass, so l/L only redraw)."""
        self._vector_key: tuple[tuple[int, ...], int] | None = None
        """(tokens, id of the model) the vectors belong to."""
        self._paint = Painter(self)
        self._notice_text = ""

    def compose_chapter(self) -> ComposeResult:
        with VerticalScroll(id="rope-body"):
            yield Static(Text(LEAD), id="rope-lead", classes="prose")
            yield PromptBar(self.session.prompt, id="prompt")
            yield Static(id="rope-status")
            yield Static(id="rope-notice")
            yield Static(Text("The query's pairs as arrows", style="bold"), classes="heading")
            yield Static(id="rope-dials")
            yield Static(Text("The proof: only the offset m − n counts", style="bold"),
                         classes="heading")  # fmt: skip
            yield Static(id="rope-proof")
            yield Static(Text("V is not rotated", style="bold"), classes="heading")
            yield Static(id="rope-v")
            yield Static(id="rope-freq-title", classes="heading")
            yield Static(id="rope-freqs")
            yield Static(Text("RoPE scaling", style="bold"), classes="heading")
            yield Static(id="rope-scaling")
            yield Static(Text("Two layouts of the pairs", style="bold"), classes="heading")
            yield Static(id="rope-conv")

    def on_mount(self) -> None:
        self._notice = self.query_one("#rope-notice", Static)

    # -- data ------------------------------------------------------------------------------

    def session_changed(self, changes: frozenset[str]) -> None:
        s = self.session
        if s.model is None or not s.tokenizer_state.ready:
            self._set_status(Text("Waiting for the model and tokenizer…", style="italic"))
            return
        try:
            enc = s.encoding("model")
        except NotReady as exc:
            self._set_status(Text(str(exc)))
            return
        gen = s.current_generation
        if gen is not None:
            tokens, notice = tuple(gen.tokens), self.generation_notice
        else:
            ids, notice = self.context_ids(enc, s.model.config.max_position_embeddings)
            tokens = tuple(ids)
        if notice != self._notice_text:
            self._notice_text = notice
            self._notice.update(Text(notice, style="italic"))
            self._notice.display = bool(notice)
        if tokens != self.tokens:
            self.tokens = tokens
            self._labels = token_labels(enc, tokens)
            self.selection = RopeSelection(
                self.selection.layer, self.selection.head, -1, max(0, len(tokens) - 4), -1,
                self.selection.shift,
            )  # fmt: skip
        self._request_vectors()

    def _request_vectors(self) -> None:
        model = self.session.model
        if model is None or not self.tokens:
            return
        cfg = model.config
        sel = clamp_selection(self.selection, cfg.num_hidden_layers, cfg.num_attention_heads,
                              len(self.tokens), cfg.max_position_embeddings)  # fmt: skip
        self.selection = sel
        if self._vectors and self._vector_key == (self.tokens, id(model)):
            self._draw()
            return
        cheap = len(self.tokens) * cfg.parameter_count() <= INLINE_MACS
        self.compute("vectors", _vectors_for, model, self.tokens, then=self._got_vectors,
                     inline=cheap, on_error=self._say)  # fmt: skip
        if self.is_computing("vectors"):
            self._set_status(Text(f"Running {len(self.tokens)} tokens through the model…",
                                  style="italic"))  # fmt: skip

    def _got_vectors(self, value: tuple[tuple[tuple[int, ...], int], list[LayerVectors]]) -> None:
        key, vectors = value
        model = self.session.model
        if model is None or key != (self.tokens, id(model)):
            return
        self._vector_key = key
        self._vectors = vectors
        self._draw()

    def _say(self, message: str) -> None:
        self._set_status(Text(message, style="bold"))

    def _set_status(self, text: Text) -> None:
        """A status line not drawn from the view (waiting, running, an error)."""
        self._paint.put("#rope-status", text.plain, lambda: text)

    # -- drawing -----------------------------------------------------------------------------

    def _draw(self) -> None:
        model = self.session.model
        if model is None or not self._vectors or self._vector_key != (self.tokens, id(model)):
            return
        vectors = self._vectors[self.selection.layer]
        view = rope_view(model.config, vectors, self._labels, self.selection,
                         getattr(model, "inv_freq", None))  # fmt: skip
        self.view = view
        status = Text(view.status + "   (m/k move · o shift · . , turn)")
        self._paint.put("#rope-status", status.plain, lambda: status)
        dial_key = (
            view.selection.position,
            view.at_window_end,
            tuple((d.pair, tuple(d.lines), tuple(d.caption)) for d in view.dials),
        )
        self._paint.put("#rope-dials", dial_key, lambda: _dials(view), lines=DIAL_LINES)
        self._paint.put("#rope-proof", (tuple(view.proof_rows), view.proof_note),
                        lambda: _proof(view))  # fmt: skip
        v_text = Text("\n".join(view.v_lines))
        self._paint.put("#rope-v", v_text.plain, lambda: v_text)
        n = len(view.freq_rows)
        self._paint.put("#rope-freq-title", (view.head_dim, n), lambda: Text.assemble(
            (f"Every pair of a {view.head_dim}-wide head ", "bold"),
            (f"({n} rows; scroll to see them all)" if n > 8 else "", "italic"),
        ))  # fmt: skip
        self._paint.put(
            "#rope-freqs",
            (view.freq_header, tuple(view.freq_rows)),
            lambda: _table(view.freq_header, view.freq_rows),
            lines=n + 1,
        )
        self._paint.put("#rope-scaling", (view.scaling_title, tuple(view.scaling_rows),
                                          tuple(view.notes)), lambda: Group(
            Text(view.scaling_title),
            _table(("pair", "λ before", "λ after", "ratio"), view.scaling_rows),
            *(Text(note, style="italic") for note in view.notes),
        ))  # fmt: skip
        self._paint.put("#rope-conv", view.convention_example, lambda: Group(
            _table(("layout", "pairs", "used by"), view.convention_rows, wrap_last=True),
            Text(view.convention_example),
        ))  # fmt: skip

    def action_focus_prompt(self) -> None:
        self.add_class("-prompt-open")  # below 30 rows the prompt bar shows only while typing
        super().action_focus_prompt()

    def action_leave_prompt(self) -> None:
        self.remove_class("-prompt-open")
        super().action_leave_prompt()

    # -- actions -----------------------------------------------------------------------------

    def _move(self, **changes: int) -> None:
        if self.session.model is None or not self.tokens:
            return
        self.selection = replace(self.selection, **changes)
        self._request_vectors()

    def action_query(self, step: int) -> None:
        sel = self.selection
        follow = sel.position == sel.query  # arrows stay on the query unless moved
        q = max(0, min(sel.query + step, len(self.tokens) - 1))
        self._move(query=q, position=q if follow else sel.position)

    def action_key(self, step: int) -> None:
        self._move(key=max(0, min(self.selection.key + step, len(self.tokens) - 1)))

    def action_shift(self, step: int) -> None:
        self._move(shift=self.selection.shift + step)

    def action_position(self, step: int) -> None:
        self._move(position=max(0, self.selection.position + step))

    def action_reset_position(self) -> None:
        self._move(position=self.selection.query)

    def action_layer(self, step: int) -> None:
        self._move(layer=self.selection.layer + step)

    def action_head(self, step: int) -> None:
        self._move(head=self.selection.head + step)


def _vectors_for(model, tokens: tuple[int, ...]):  # noqa: ANN001, ANN202
    return (tokens, id(model)), all_layer_vectors(model, tokens)


def _table(header, rows, wrap_last: bool = False) -> Table:  # noqa: ANN001
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for i, name in enumerate(header):
        last = i == len(header) - 1
        table.add_column(name, justify="left" if i == 0 or (wrap_last and last) else "right",
                         no_wrap=not (wrap_last and last), overflow="fold")  # fmt: skip
    for row in rows:
        table.add_row(*row)
    return table


def _dials(view: RopeView) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2))
    for _ in view.dials:
        table.add_column(no_wrap=True)
    table.add_row(*(Text("\n".join(d.lines)) for d in view.dials))
    table.add_row(*(Text("\n".join(d.caption), style="dim") for d in view.dials))
    p = view.selection.position
    end = " (the window's end)" if view.at_window_end else ""
    caption = Text(
        f"Drawn at position {p}{end}; . and , turn them, r goes back to m.\n"
        "Each arrow is one pair of the query's numbers, turned by position × speed.",
        no_wrap=True, overflow="ellipsis",
    )  # fmt: skip
    return Group(table, caption)  # type: ignore[return-value]


def _proof(view: RopeView) -> Group:
    if view.proof is None:
        return Group(Text(view.proof_note, style="bold"))
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("q and k", no_wrap=True)
    table.add_column("q·k/√D", justify="right", no_wrap=True)
    table.add_column("", overflow="fold")
    for label, score, note in view.proof_rows:
        table.add_row(label, score, note)
    return Group(table, Text(view.proof_note))
