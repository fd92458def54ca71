"""Chapter 9: Multi-head attention — every head of a layer side by side, stage by stage.

The four query heads of one layer as heatmaps side by side, at one of four stages of the
computation (``x`` moves between them): raw scores q·k/√32 for every query/key pair →
the causal mask (future keys out) → the row softmax (weights) → the value mixing (each
head's output vectors). Under them, the selected head's query row as numbers at every
stage; the whole pipeline with the tensor shapes of the real config and context; and
grouped-query attention: which query heads share which K/V head, and what that saves in
the KV cache (bytes per token and at the full context, from the config).

Every array comes from :class:`~llm_anatomy_tui.views.attention_tracker.AttentionTracker`
(the model's own traced forward pass); the maps follow the shared generation like
chapter 8's.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Static

from ..core.config import LlamaConfig
from ..views.attention_tracker import AttentionSnapshot, context_summary
from ..views.multihead import (
    MASKED,
    MIXED,
    SCORES,
    WEIGHTS,
    ShapeRow,
    cache_figures,
    gqa_groups,
    pipeline,
)
from ..views.readout import softmax_readout
from ..widgets.matrix_view import MatrixView
from ..widgets.prompt_bar import PromptBar
from .attention_common import AttentionContextMixin
from .base import ChapterScreen
from .c08_attention import Body, Map, Strip, colour_top, set_text

STAGE_NAMES = ("raw scores", "masked scores", "weights", "value mixing")
SCORE_DECIMALS = 4
MIX_ROWS = 3
"""Keys listed one by one in the value-mixing table (the rest are added up in one row)."""


class Table(MatrixView, can_focus=False):
    """A matrix view driven by the screen's keys (no CellSelected messages: see Map)."""

    def watch_cursor(self, cursor: tuple[int, int]) -> None:
        pass


# -- numbers the screen shows, computed without Textual --------------------------------------


def gqa_text(cfg: LlamaConfig, tokens: int) -> Text:
    h, hkv, dh, n_layers = (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.dim_head,
                            cfg.num_hidden_layers)  # fmt: skip
    fig = cache_figures(cfg, tokens)
    out = Text(end="")
    out.append("Grouped-query attention", style="bold")
    out.append(f"  ({h} query heads share {hkv} K/V heads, {cfg.group_size} each)\n", style="dim")
    for kv, qs in gqa_groups(cfg):
        heads = ", ".join(str(q) for q in qs)
        out.append(f"  K/V head {kv} ← query heads {heads}\n")
    out.append(
        "Each query head still asks its own question; the heads of a group compare it "
        "against the same keys and mix the same values. Only K and V are cached while "
        "generating, so fewer K/V heads mean a smaller cache.\n",
        style="dim",
    )
    b = fig.bytes_per_value
    out.append("KV cache per token", style="bold")
    out.append(f": 2 (K, V) × {n_layers} layers × {hkv} K/V heads × {dh} numbers × {b} bytes\n")
    out.append(f"  = {fig.per_token:,} bytes", style="bold")
    out.append(" (float32, as this cache holds them)\n", style="dim")
    out.append(f"  one K/V head per query head ({h}) would need {fig.per_token_full:,} bytes: ")
    out.append(f"GQA saves {fig.saved:.0%}\n", style="bold")
    out.append(f"  now, {fig.now_tokens} tokens: {fig.now:,} bytes (vs {fig.now_full:,})\n")
    out.append(
        f"  full context, {fig.context} tokens: {fig.at_context:,} bytes "
        f"(vs {fig.at_context_full:,})",
    )
    return out


def shapes_text(rows: list[ShapeRow], stage: int, width: int) -> Text:
    """The pipeline as aligned lines; a note that does not fit goes on a line of its own."""
    out = Text(end="", no_wrap=True, overflow="ellipsis")
    formula_w = max(len(r.formula) for r in rows) + 2
    shape_w = max(len(r.shapes) for r in rows) + 2
    for i, r in enumerate(rows):
        mark = "▶" if r.stage == stage else " "
        style = "bold" if r.stage == stage else ""
        line = f"{mark} {r.formula:<{formula_w}}{r.shapes}"
        out.append(line, style=style)
        if len(line) + 2 + len(r.note) <= width:
            out.append(" " * (2 + formula_w + shape_w - len(line)) if 2 + formula_w + shape_w
                       + len(r.note) <= width else "  ")  # fmt: skip
            out.append(r.note, style="dim")
        else:
            out.append(f"\n    {r.note}", style="dim")
        if i < len(rows) - 1:
            out.append("\n")
    return out


LEAD = (
    "A layer runs several heads at once, each with its own Wq, Wk, Wv: its own way to match "
    "queries with keys. Wo then mixes what the heads found."
)
CAVEAT = (
    "Heads are not tidy modules with one job each. Some patterns are easy to name (look at "
    "the previous token, at the first token, at a repeated word); most heads do several "
    "things, share work with others, and change meaning from prompt to prompt."
)


# -- the screen -------------------------------------------------------------------------------


class MultiHeadScreen(AttentionContextMixin, ChapterScreen):
    """Chapter 9: every head of a layer, the pipeline with shapes, grouped-query attention."""

    NEEDS_MODEL = True
    AUTO_FOCUS = ""  # the screen owns the keys (see chapter 8)
    CSS_PATH = Path(__file__).with_suffix(".tcss")
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("x", "stage(1)", "Stage", id="multi-head.stage-next",
                tooltip="Next stage: raw scores → masked → weights → value mixing"),
        Binding("X", "stage(-1)", "Stage back", id="multi-head.stage-prev", show=False,
                tooltip="Previous stage"),
        Binding("l", "layer(1)", "Layer", id="multi-head.layer-next",
                tooltip="The next layer (numbered from 0; wraps around)"),
        Binding("L", "layer(-1)", "Layer back", id="multi-head.layer-prev", show=False,
                tooltip="The previous layer"),
        Binding("h", "head(1)", "Head", id="multi-head.head-next",
                tooltip="Select the next head: its row is shown as numbers below the maps"),
        Binding("H", "head(-1)", "Head back", id="multi-head.head-prev", show=False,
                tooltip="Select the previous head"),
        Binding("up", "query(-1)", "Query up", id="multi-head.query-up", show=False,
                group=Binding.Group("Query"), tooltip="The previous token as query (row above)"),
        Binding("down", "query(1)", "Query down", id="multi-head.query-down", show=False,
                group=Binding.Group("Query"), tooltip="The next token as query (row below)"),
        Binding("left", "column(-1)", "Column left", id="multi-head.column-left", show=False,
                group=Binding.Group("Key"),
                tooltip="The key on the left (value mixing: the previous dimension)"),
        Binding("right", "column(1)", "Column right", id="multi-head.column-right", show=False,
                group=Binding.Group("Key"),
                tooltip="The key on the right (value mixing: the next dimension)"),
        Binding("e", "newest", "Newest", id="multi-head.newest", show=False,
                tooltip="The newest token as query"),
        Binding("s", "step", "Step", id="multi-head.step",
                tooltip="Generate one token (shared with chapters 5, 8 and 14); its row "
                "appears in every head"),
        Binding("a", "toggle_blocks", "Blocks", id="multi-head.blocks", show=False,
                tooltip="Long contexts: scroll the maps around the cursor, or show blocks"),
        Binding("pagedown", "page(1)", "Page down", id="multi-head.page-down", show=False,
                tooltip="Scroll the chapter down: shapes, grouped-query attention, caveat"),
        Binding("pageup", "page(-1)", "Page up", id="multi-head.page-up", show=False,
                tooltip="Scroll the chapter up"),
    ]  # fmt: skip

    MODEL_WAITING = "The heads appear here once the model has loaded."

    def __init__(self, chapter) -> None:  # noqa: ANN001
        super().__init__(chapter)
        self.stage = WEIGHTS
        self.dim_pos = 0
        self.shape_rows: list[ShapeRow] = []
        """The pipeline as shown (for tests and readers)."""
        self.row_values: np.ndarray | None = None
        """The numbers of the selected head's row as shown in the table below the maps."""

    # -- layout --------------------------------------------------------------------------------

    def compose_chapter(self) -> ComposeResult:
        with Body(id="mh-body"):
            yield PromptBar(self.session.prompt, title="Prompt (shared)", id="prompt")
            yield Static(id="mh-status")
            yield Static(id="mh-notice")
            yield Static(id="mh-stage")
            with Horizontal(id="mh-heads"):
                for h in range(4):
                    yield Map(compact=True, id=f"mh-map-{h}", classes="head-map")
            yield Static(id="mh-row-title")
            yield Table(decimals=SCORE_DECIMALS, id="mh-row")
            yield Strip(show_cursor=False, id="mh-out")
            yield Static(Text(LEAD), id="mh-lead", classes="heading")
            yield Static(Text("The whole layer, step by step", style="bold"),
                         classes="heading")  # fmt: skip
            yield Static(id="mh-shapes")
            yield Static(id="mh-gqa", classes="heading")
            yield Static(Text(CAVEAT, style="italic"), id="mh-caveat", classes="heading")

    def on_mount(self) -> None:
        self._status = self.query_one("#mh-status", Static)
        self._notice = self.query_one("#mh-notice", Static)
        self._stage = self.query_one("#mh-stage", Static)
        self._maps = [self.query_one(f"#mh-map-{h}", Map) for h in range(4)]
        self._row_title = self.query_one("#mh-row-title", Static)
        self._row = self.query_one("#mh-row", Table)
        self._out = self.query_one("#mh-out", Strip)
        self._shapes = self.query_one("#mh-shapes", Static)
        self._first_drawn = -1
        self._gqa = self.query_one("#mh-gqa", Static)

    # -- data ------------------------------------------------------------------------------------

    def _show_snapshot(self, snap: AttentionSnapshot, new_context: bool) -> None:
        cfg, t = snap.config, snap.n_tokens
        self.head_i = min(self.head_i, cfg.num_attention_heads - 1)
        self.layer_i = min(self.layer_i, cfg.num_hidden_layers - 1)
        self._keep_cursor_in_context(snap)  # after the clamps: it reads layer and head
        self.dim_pos = min(self.dim_pos, cfg.dim_head - 1)
        self.shape_rows = pipeline(cfg, t)
        set_text(self._gqa, gqa_text(cfg, t))
        self._draw(data=True)

    # -- drawing ---------------------------------------------------------------------------------

    def first_head(self) -> int:
        """The first head shown: models with more heads than maps show a window of
        heads that keeps the selected one in view."""
        assert self.snapshot is not None
        n, shown = self.snapshot.config.num_attention_heads, len(self._maps)
        if n <= shown:
            return 0
        return min(max(0, self.head_i - shown // 2), n - shown)

    def stage_values(self, head: int) -> tuple[np.ndarray, np.ndarray | None]:
        """What head ``head``'s map shows at the current stage: values, and the mask
        (True = hidden) if any."""
        snap = self.snapshot
        assert snap is not None
        layer = self.layer_i
        if self.stage == SCORES:
            return snap.scores[layer, head], None
        if self.stage == MASKED:
            return snap.scores[layer, head], ~snap.mask
        if self.stage == WEIGHTS:
            return snap.weights[layer, head], ~snap.mask
        return snap.heads[layer, head], None

    def _draw(self, data: bool = False) -> None:
        snap = self.snapshot
        if snap is None or not hasattr(self, "_status"):  # before on_mount: nothing to draw on
            return
        cfg = snap.config
        layer = self.layer_i
        first = self.first_head()
        if data or first != self._first_drawn:
            if self.stage in (SCORES, MASKED):
                vals = snap.scores[layer]
                visible = vals if self.stage == SCORES else vals[:, snap.mask]
                top = float(np.abs(visible).max()) if visible.size else 1.0
                lo, hi = -top, top
            elif self.stage == WEIGHTS:
                lo, hi = 0.0, max(colour_top(snap.weights[layer, h])
                                  for h in range(cfg.num_attention_heads))  # fmt: skip
            else:
                top = float(np.abs(snap.heads[layer]).max())
                lo, hi = -top, top
        for i, m in enumerate(self._maps):
            h = first + i
            if h >= cfg.num_attention_heads:
                m.display = False
                continue
            if data or first != self._first_drawn:
                values, mask = self.stage_values(h)
                m.cmap = "sequential" if self.stage == WEIGHTS else "diverging"
                m.vmin, m.vmax = lo, hi
                m.decimals = 2
                m.set_data(values, mask=mask, row_labels=self.labels)
            kv = snap.kv_head(h)
            chosen = h == self.head_i
            m.title = f"{'▶' if chosen else ' '}head {h} · K/V {kv}"
            m.highlight = "cell" if chosen else "row"
            col = self.dim_pos if self.stage == MIXED else self.key_pos
            m.cursor = (self.query_pos, col)
        self._first_drawn = first
        set_text(self._status, self._status_text())
        set_text(self._stage, self._stage_text())
        self._draw_row()
        width = self._shapes.content_region.width or self.app.size.width - 3
        set_text(self._shapes, shapes_text(self.shape_rows, self.stage, width))

    def _status_text(self) -> Text:
        snap = self.snapshot
        assert snap is not None
        q = self.query_pos
        n = snap.config.num_attention_heads
        shown = min(n, len(self._maps))
        first = self.first_head()
        heads = "" if shown == n else f" · heads {first}–{first + shown - 1} of {n}"
        return Text.assemble(
            ("layer ", "dim"), (str(self.layer_i), "bold"), (heads, "dim"),
            (" · query ", "dim"), (f"{q} “{self.labels[q]}”", "bold"),
            (" · ", "dim"), context_summary(self.n_prompt, snap.n_tokens),
            no_wrap=True, overflow="ellipsis",
        )  # fmt: skip

    def _stage_text(self) -> Text:
        snap = self.snapshot
        assert snap is not None
        row = next(r for r in self.shape_rows if r.stage == self.stage)
        return Text.assemble(
            (f"stage {self.stage + 1}/4 (x): ", "dim"),
            (f"{row.formula}  {row.shapes}", "bold"),
            (f"\n{row.note}", "dim"),
        )

    def _draw_row(self) -> None:
        """The selected head's query row in numbers (stages 1–3), or its value mixing."""
        snap = self.snapshot
        assert snap is not None
        layer, head, q = self.layer_i, self.head_i, self.query_pos
        t = snap.n_tokens
        dh = snap.config.dim_head
        labels = [f"{j} {self.labels[j]}"[:10] for j in range(t)]
        if self.stage != MIXED:
            # printed numbers derive from printed numbers: q·k (rounded) → ÷√D → rounded
            # score → weight = exp(score − normaliser), so a calculator agrees everywhere
            root = math.sqrt(dh)
            dots = np.round(snap.scores[layer, head, q].astype(np.float64) * root,
                            SCORE_DECIMALS)  # fmt: skip
            allowed = np.arange(t) <= q
            readout = softmax_readout(dots / root, list(range(t)), keep=allowed,
                                      decimals=SCORE_DECIMALS)  # fmt: skip
            shown_scores = np.array(readout.logits)
            masked = np.where(allowed, shown_scores, -np.inf)
            weights = np.array(readout.probs)
            values = np.stack([dots, shown_scores, masked, weights])
            self.row_values = values
            self._row.set_data(
                values,
                row_labels=["q·k", f"÷√{dh}", "masked", "weight"],
                col_labels=labels,
                title=f"head {head}, query {q}: its row at stages 1–3",
            )
            self._row.cursor = (min(self.stage, 2) + 1, self.key_pos)
            set_text(
                self._row_title,
                Text.assemble(
                    # two lines: at 80 columns the normaliser, the one number a reader
                    # needs to check the weights, was cut off the end of one
                    (f"score = q·k/√{dh} · masked: keys after the query → −∞\n", "dim"),
                    (f"weight = exp(masked − {readout.lse:.{SCORE_DECIMALS}f})", "dim"),
                    no_wrap=True,
                    overflow="ellipsis",
                ),  # fmt: skip
            )
        else:
            w = snap.weights[layer, head, q, : q + 1].astype(np.float64)  # [S]
            v = snap.v[layer, snap.kv_head(head), : q + 1].astype(np.float64)  # [S, D]
            parts = w[:, None] * v  # each key's share: weight × value  [S, D]
            top = np.argsort(-w, kind="stable")[:MIX_ROWS]
            rest = np.setdiff1d(np.arange(q + 1), top)
            rows = [parts[i] for i in top]
            names = [f"{labels[i]} ×{w[i]:.2f}"[:16] for i in top]
            if rest.size:
                rows.append(parts[rest].sum(axis=0))
                names.append(f"{rest.size} other keys")
            rows.append(snap.heads[layer, head, q].astype(np.float64))
            names.append("= output")
            values = np.stack(rows)
            self.row_values = values
            self._row.set_data(
                values,
                row_labels=names,
                col_labels=[str(i) for i in range(dh)],
                title=f"head {head}, query {q}: weight × v per key, and their sum",
            )
            self._row.cursor = (0, self.dim_pos)
            set_text(
                self._row_title,
                Text(
                    f"value mixing: output = Σ weight × v\nover the {q + 1} keys it may see",
                    style="dim",
                    no_wrap=True,
                    overflow="ellipsis",
                ),  # fmt: skip
            )
        self._out.title = f"head {head} output for query {q} [{dh}]"
        self._out.values = snap.heads[layer, head, q]

    # -- actions (query and newest: AttentionContextMixin) -------------------------------------

    def action_stage(self, step: int) -> None:
        self.stage = (self.stage + step) % 4
        self._draw(data=True)

    def action_layer(self, step: int) -> None:
        if self.snapshot is None:
            return
        self.layer_i = (self.layer_i + step) % self.snapshot.config.num_hidden_layers
        self._draw(data=True)

    def action_head(self, step: int) -> None:
        if self.snapshot is None:
            return
        self.head_i = (self.head_i + step) % self.snapshot.config.num_attention_heads
        self._draw()

    def action_column(self, step: int) -> None:
        snap = self.snapshot
        if snap is None:
            return
        if self.stage == MIXED:
            self.dim_pos = min(max(0, self.dim_pos + step), snap.config.dim_head - 1)
        else:
            self.key_pos = min(max(0, self.key_pos + step), snap.n_tokens - 1)
        self._draw()

    def _cursor_moved(self) -> None:
        self._draw()

    def action_toggle_blocks(self) -> None:
        for m in self._maps:
            m.action_toggle_overflow()

    def action_page(self, step: int) -> None:
        body = self.query_one("#mh-body", Body)
        if step > 0:
            body.scroll_page_down()
        else:
            body.scroll_page_up()
