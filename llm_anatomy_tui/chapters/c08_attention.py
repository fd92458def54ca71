"""Chapter 8: Attention — Q, K, V on a toy sentence, then on the real model.

Part 1 is a toy (and says so): the seed's sentence "A blue car crashed into a concrete
wall, it was speeding." with hand-made 4-number vectors from
:mod:`llm_anatomy_tui.core.lessons.toy_attention`. The person picks a query word and sees
q, every key, every q·k, the division by √4, the softmax weights (adding up to 100%), the
values and their weighted sum, and the word it looks at most; the causal mask can be
switched on.

Part 2 is the real model on the shared context (the prompt plus every generated token):
layer, head and query position chosen by keys; the weights of that head as a heatmap with
future keys greyed out; for the query row, its q vector, the keys it weights most (score,
weight, the softmax normaliser so each weight can be checked), and what the head hands on.
The maps follow the shared generation: a step taken in any chapter adds a row here, and
the newest token is the default query.

Below 150 columns the parts take turns (``m``); from 150 they stand side by side and
``m`` moves the keys between them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from ..core.lessons import toy_attention as toy
from ..views.attention_tracker import AttentionSnapshot, context_summary
from ..views.attention_view import (
    SCORE_DECIMALS,
    WEIGHT_DECIMALS,
    KeyTable,
    colour_top,
    key_table,
    toy_lines,
    vec_text,
)
from ..widgets.heatmap import Heatmap
from ..widgets.prompt_bar import PromptBar
from ..widgets.vector_strip import VectorStrip
from .attention_common import AttentionContextMixin
from .base import ChapterScreen

# -- small widgets ----------------------------------------------------------------------------


class Body(VerticalScroll, can_focus=False):
    """A scrolling column that never takes the keyboard (the screen owns every key)."""


class Map(Heatmap, can_focus=False):
    """A heatmap driven by the screen's keys rather than its own. The screen moves its
    cursor and knows where it is, so no CellSelected message is posted (each would be
    dispatched up the whole DOM on every key)."""

    def watch_cursor(self, old: tuple[int, int], new: tuple[int, int]) -> None:
        pass


class Strip(VectorStrip, can_focus=False):
    """A vector strip that is only shown, never explored."""

    def watch_cursor(self, cursor: int) -> None:
        pass


def set_text(static: Static, text: Text) -> None:
    """Replace a Static's text, asking for a layout only when its number of lines changed:
    a layout pass of these screens costs 10–40 ms on a busy 2-core machine, a repaint
    about one (for one-line-per-row, unwrapped texts)."""
    if text == static.content:
        return  # the same text: not even a repaint
    lines = text.plain.count("\n") + 1
    old = getattr(static, "_text_lines", None)
    static.update(text, layout=old != lines)
    static._text_lines = lines  # type: ignore[attr-defined]


# -- the toy, as text -------------------------------------------------------------------------

TOY_TITLE = "Part 1 · toy example: hand-made vectors of 4 features, not the model"
TOY_LEAD = (
    "Each word makes a query (what it looks for), a key (what it can be found by) and a "
    "value (what it passes on). Softmax turns the query·key scores into weights that add "
    "up to 100%, and the word takes in that mix of values."
)
TOY_DIM_LABELS = ("veh", "sol", "desc", "back")
"""Column heads for the toy's four features: vehicle, solid, describes, points back."""


def toy_sentence(query: int, causal: bool) -> Text:
    """The sentence with the query word in brackets; words it cannot see dimmed."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    for i, word in enumerate(toy.WORDS):
        if i:
            text.append(" ")
        hidden = causal and i > query
        if i == query:
            text.append(f"[{word}]", style="bold reverse")
        else:
            text.append(word, style="dim strike" if hidden else "")
        if word == "wall":
            text.append(",", style="dim" if hidden else "")
        elif word == "speeding":
            text.append(".", style="dim" if hidden else "")
    return text


def toy_table(r: toy.ToyAttention, width: int) -> Text:
    """The toy's computation for one query word, laid out for ``width`` columns."""
    lines = toy_lines(r)
    show_k = width >= 56
    show_v = width >= 76
    bar_w = max(0, min(20, width - 80)) if show_v else 0
    out = Text(no_wrap=True, overflow="ellipsis", end="")
    mask_note = "mask: causal, earlier words only" if r.causal else "mask: none, all words"
    out.append(f"q({r.word}) = x·Wq = {vec_text(r.q)}", style="bold")
    out.append(f"   {mask_note} (c)\n", style="dim")
    header = f"{'key':<9}"
    dims = "[" + " ".join(f"{d:>4}" for d in TOY_DIM_LABELS) + "]"
    sub = " " * 9
    if show_k:
        header += f"{'k = x·Wk':<22}"
        sub += f"{dims:<22}"
    header += f"{'q·k':>6}{'÷√4':>8}{'weight':>8}"
    sub += " " * 22
    if show_v:
        header += f"  {'v = x·Wv':<21}"
        sub += f"  {dims}"
    out.append(header.rstrip() + "\n", style="bold")
    if show_k:
        out.append(sub.rstrip() + "\n", style="dim underline")
    for j, word in enumerate(toy.WORDS):
        visible = bool(r.visible[j])
        style = "" if visible else "dim"
        if j == r.top:
            style = "bold"
        row = f"{word:<9}"
        if show_k:
            row += f"{vec_text(r.keys[j])} "
        row += f"{lines.dots[j]:>6}{lines.scaled[j]:>8}{lines.weights[j]:>8}"
        out.append(row, style=style)
        if show_v:
            out.append(f"  {vec_text(r.values[j])}", style=style)
        if bar_w and visible:
            n = round(float(r.weights[j]) * bar_w)
            out.append(" " + "█" * n, style="bold" if j == r.top else "")
        out.append("\n")
    out.append(f"{'':<9}{lines.sum_line}\n", style="dim")
    out.append(f"output = Σ weight × v = {lines.output}\n", style="bold")
    out.append("→ " + lines.top_line, style="bold")
    return out


# -- the real model, as text ------------------------------------------------------------------


def key_table_text(table: KeyTable, cursor_key: int, width: int) -> Text:
    label_w = max(6, min(14, width - 28))
    out = Text(no_wrap=True, overflow="ellipsis", end="")
    out.append(f"{'pos':>4} {'key':<{label_w}}{'score':>9}{'weight':>9}\n", style="bold underline")
    for row in table.rows:
        style = "bold reverse" if row.position == cursor_key else ""
        label = row.label if len(row.label) <= label_w else row.label[: label_w - 1] + "…"
        out.append(f"{row.position:>4} {label:<{label_w}}{row.score:>9}{row.weight:>9}\n",
                   style=style)  # fmt: skip
    if table.rest_count:
        what = f"+ {table.rest_count} more key" + ("s" if table.rest_count != 1 else "")
        out.append(f"{'':>4} {what:<{label_w + 9}}{table.rest_weight:>9}\n", style="dim")
    out.append(f"weight = exp(score − {table.lse})\n", style="dim")
    if table.printed_total != f"{100:.{WEIGHT_DECIMALS}f}%":  # else a blank line: no layout
        out.append(f"(rounded, these add to {table.printed_total})", style="dim")
    return out


MODEL_TITLE = "Part 2 · the real model on your prompt · weights are clues, not explanations"
CAVEAT = (
    "Read the weights as clues, not explanations: what a head passes on also depends on "
    "the values it mixes, and the layers after it mix everything again."
)
HEAD_NOTE = (
    "The head's output (Σ weight × v) is one of 4 pieces of 32 numbers; o_proj turns the "
    "four into the update added to this token's vector."
)


# -- the screen -------------------------------------------------------------------------------


class AttentionScreen(AttentionContextMixin, ChapterScreen):
    """Chapter 8: Q, K and V on a toy sentence, then on the real model."""

    NEEDS_MODEL = True
    AUTO_FOCUS = ""  # nothing focused: the screen owns the keys ("" since Textual reads
    # None as "use the app's default", which focuses the first focusable widget)
    CSS_PATH = Path(__file__).with_suffix(".tcss")
    HORIZONTAL_BREAKPOINTS = [(0, "-tiny"), (70, "-narrow"), (150, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (38, "-tall")]
    BINDINGS = [
        Binding("m", "switch_part", "Toy/model", id="attention.part",
                tooltip="Switch between the toy example and the real model"),
        Binding("left", "left", "Word/key left", id="attention.left", show=False,
                group=Binding.Group("Word/key"),
                tooltip="Toy: the previous word as query. Model: the key on the left"),
        Binding("right", "right", "Word/key right", id="attention.right", show=False,
                group=Binding.Group("Word/key"),
                tooltip="Toy: the next word as query. Model: the key on the right"),
        Binding("c", "toggle_causal", "Mask", id="attention.causal",
                tooltip="Toy: switch the causal mask on or off (earlier words only)"),
        Binding("up", "query(-1)", "Query up", id="attention.query-up", show=False,
                group=Binding.Group("Query"),
                tooltip="Model: the previous token as query (the row above)"),
        Binding("down", "query(1)", "Query down", id="attention.query-down", show=False,
                group=Binding.Group("Query"),
                tooltip="Model: the next token as query (the row below)"),
        Binding("l", "layer(1)", "Layer", id="attention.layer-next",
                tooltip="Model: the next layer (numbered from 0; wraps around)"),
        Binding("L", "layer(-1)", "Layer back", id="attention.layer-prev", show=False,
                tooltip="Model: the previous layer"),
        Binding("h", "head(1)", "Head", id="attention.head-next",
                tooltip="Model: the next query head (numbered from 0; wraps around)"),
        Binding("H", "head(-1)", "Head back", id="attention.head-prev", show=False,
                tooltip="Model: the previous query head"),
        Binding("e", "newest", "Newest", id="attention.newest", show=False,
                tooltip="Model: the newest token as query, and the key it weights most"),
        Binding("home", "key_home", "First key", id="attention.key-first", show=False,
                tooltip="Model: the first key (position 0)"),
        Binding("end", "key_end", "Own key", id="attention.key-self", show=False,
                tooltip="Model: the query's own key (the diagonal)"),
        Binding("s", "step", "Step", id="attention.step",
                tooltip="Generate one token (shared with chapters 5, 9 and 14); "
                "its row appears here"),
        Binding("a", "toggle_blocks", "Blocks", id="attention.blocks", show=False,
                tooltip="Model: long contexts scroll around the cursor, or show as blocks"),
        Binding("v", "toggle_values", "Numbers", id="attention.values", show=False,
                tooltip="Model: print each weight in the heatmap when there is room"),
        Binding("pagedown", "page(1)", "Page down", id="attention.page-down", show=False,
                tooltip="Scroll the chapter down (small terminals)"),
        Binding("pageup", "page(-1)", "Page up", id="attention.page-up", show=False,
                tooltip="Scroll the chapter up (small terminals)"),
    ]  # fmt: skip

    part: reactive[str] = reactive("toy")
    """Which part takes the keys (and, below 150 columns, which is shown): toy / model."""

    MODEL_WAITING = "The real model appears here once it has loaded."

    def __init__(self, chapter) -> None:  # noqa: ANN001
        super().__init__(chapter)
        self.toy_query = toy.WORDS.index("it")
        self.toy_causal = False
        self.row_labels: list[str] = []
        self.key_rows: KeyTable | None = None
        """The key table as shown (for tests and readers)."""

    # -- layout --------------------------------------------------------------------------------

    def compose_chapter(self) -> ComposeResult:
        with Horizontal(id="att-parts"):
            with Body(id="toy-part", classes="part"):
                yield Static(Text(TOY_TITLE, style="bold"), id="toy-title", classes="part-title")
                yield Static(Text(TOY_LEAD), id="toy-lead", classes="prose")
                yield Static(id="toy-sentence")
                yield Static(id="toy-table")
                yield Map(cmap="sequential", vmin=0.0, vmax=1.0, decimals=2, show_values=True,
                          title="every word at once: weights, query × key (toy)",
                          id="toy-map")  # fmt: skip
            with Body(id="model-part", classes="part"):
                yield Static(Text(MODEL_TITLE, style="bold"), id="model-title",
                             classes="part-title")  # fmt: skip
                yield PromptBar(self.session.prompt, title="Prompt (shared)", id="prompt")
                yield Static(id="model-status")
                yield Static(id="model-notice")
                with Horizontal(id="model-main"):
                    yield Map(cmap="sequential", vmin=0.0, decimals=2, id="attn-map")
                    with Vertical(id="attn-detail"):
                        yield Static(id="attn-query")
                        yield Static(id="attn-keys")
                        yield Strip(show_cursor=False, id="attn-q")
                        yield Strip(show_cursor=False, id="attn-out")
                yield Static(Text(HEAD_NOTE), id="model-head-note", classes="prose")
                yield Static(Text(CAVEAT, style="italic"), id="model-caveat", classes="prose")

    def on_mount(self) -> None:
        self._map = self.query_one("#attn-map", Map)
        self._status = self.query_one("#model-status", Static)
        self._notice = self.query_one("#model-notice", Static)
        self._detail_query = self.query_one("#attn-query", Static)
        self._keys = self.query_one("#attn-keys", Static)
        self._q_strip = self.query_one("#attn-q", Strip)
        self._out_strip = self.query_one("#attn-out", Strip)
        self._apply_part()
        self.refresh_toy()

    def on_resize(self) -> None:
        self.refresh_toy()
        self.call_after_refresh(self._fit_main)

    def _fit_main(self) -> None:
        """Give the heatmap and its details the rest of the first screenful; the notes
        below it are one PgDn away in small terminals."""
        body = self.query_one("#model-part", Body)
        height = body.scrollable_content_region.height
        if not height:
            return
        above = sum(
            w.outer_size.height
            for w in (self.query_one("#model-title"), self.query_one("#prompt"),
                      self._status, self._notice)
            if w.display
        )  # fmt: skip
        main = self.query_one("#model-main")
        if self.has_class("-tiny"):  # heatmap and details stacked: the page scrolls
            if main.styles.has_rule("height"):
                main.styles.clear_rule("height")
                self.call_after_refresh(self._show_details)
            return
        want = max(12, height - above)
        if main.styles.height is None or main.styles.height.value != want:
            main.styles.height = want
            self.call_after_refresh(self._show_details)

    def watch_part(self) -> None:
        if self.is_mounted:
            self._apply_part()

    def _apply_part(self) -> None:
        self.set_class(self.part == "model", "-model")
        self.refresh_bindings()
        self.call_after_refresh(self._fit_main)

    # -- the toy -----------------------------------------------------------------------------------

    def toy_result(self) -> toy.ToyAttention:
        return toy.attend(self.toy_query, self.toy_causal)

    def refresh_toy(self) -> None:
        table = self.query_one("#toy-table", Static)
        width = table.content_region.width or max(20, self.app.size.width - 4)
        set_text(
            self.query_one("#toy-sentence", Static),
            Text.assemble(
                toy_sentence(self.toy_query, self.toy_causal),
                ("   ←→ query word", "dim"),
                no_wrap=True,
                overflow="ellipsis",
            ),
        )
        set_text(table, toy_table(self.toy_result(), width))
        toy_map = self.query_one("#toy-map", Map)
        weights = toy.attention_weights(self.toy_causal)
        mask = ~np.tri(len(toy.WORDS), dtype=bool) if self.toy_causal else None
        toy_map.set_data(weights, mask=mask, row_labels=toy.WORDS, col_labels=toy.WORDS)
        toy_map.cursor = (self.toy_query, self.toy_result().top)

    # -- the model: data ---------------------------------------------------------------------

    def _show_snapshot(self, snap: AttentionSnapshot, new_context: bool) -> None:
        if new_context:
            w = len(str(len(self.labels) - 1))
            self.row_labels = [f"{i:>{w}} {label}" for i, label in enumerate(self.labels)]
        self._keep_cursor_in_context(snap)
        self._show_map(data=True)
        self._show_details()

    def _show_notice(self, text: str) -> bool:
        changed = super()._show_notice(text)
        if changed:  # the heatmap gets the rows the notice gave up or takes
            self.call_after_refresh(self._fit_main)
        return changed

    # -- the model: drawing --------------------------------------------------------------------

    def _show_map(self, data: bool = False) -> None:
        snap = self.snapshot
        if snap is None:
            return
        m = self._map
        t = snap.n_tokens
        if data:
            m.vmax = colour_top(snap.weights[self.layer_i, self.head_i])
            m.set_data(
                snap.weights[self.layer_i, self.head_i],
                mask=~snap.mask,
                row_labels=self.row_labels,
            )  # columns get a ruler of positions: token texts written downwards are unreadable
        m.title = f"weights [{t}×{t}], query × key"
        m.cursor = (self.query_pos, self.key_pos)

    def _status_text(self) -> Text:
        snap = self.snapshot
        assert snap is not None
        return Text.assemble(
            ("layer ", "dim"), (f"{self.layer_i}", "bold"),
            (" · head ", "dim"), (f"{self.head_i}", "bold"),
            (f" → K/V head {snap.kv_head(self.head_i)}", "dim"),
            (" · ", "dim"), context_summary(self.n_prompt, snap.n_tokens),
            no_wrap=True, overflow="ellipsis",
        )  # fmt: skip

    def _show_details(self) -> None:
        snap = self.snapshot
        if snap is None or not hasattr(self, "_status"):  # before on_mount: nothing to draw on
            return
        set_text(self._status, self._status_text())
        q, k, layer, head = self.query_pos, self.key_pos, self.layer_i, self.head_i
        labels = self.labels
        where = (
            "newest token"
            if q == snap.n_tokens - 1
            else f"{q - snap.n_tokens + 1:+d} from the newest"
        )
        kind = "prompt" if q < self.n_prompt else "generated"
        head_line = Text.assemble(
            ("query ", "dim"), (f"{q} “{labels[q]}”", "bold"), (f"  {kind}, {where}", "dim"),
            no_wrap=True, overflow="ellipsis",
        )  # fmt: skip
        detail = self.query_one("#attn-detail")
        width = detail.size.width or 36
        # the rows that fit beside the heatmap: the detail column less its other lines
        n_rows = 5 if self.has_class("-tiny") else max(3, min(16, (detail.size.height or 17) - 13))
        table = key_table(snap, layer, head, q, labels, n_rows)
        if k <= q:
            # read out like the table: exp(printed score − printed normaliser)
            score = f"{float(snap.scores[layer, head, q, k]):.{SCORE_DECIMALS}f}"
            w = math.exp(float(score) - float(table.lse))
            head_line.append(
                f"\nkey {k} “{labels[k]}”: score {score} → {w * 100:.{WEIGHT_DECIMALS}f}%"
            )
        else:
            head_line.append(f"\nkey {k} “{labels[k]}”: later than the query, masked (weight 0)",
                             style="dim")  # fmt: skip
        set_text(self._detail_query, head_line)
        self.key_rows = table
        set_text(self._keys, key_table_text(table, k, width))
        dim = snap.config.dim_head
        self._q_strip.title = f"q of “{labels[q]}” after RoPE [{dim}]"
        self._q_strip.values = snap.q[layer, head, q]
        self._out_strip.title = f"head output = Σ weight × v [{dim}]"
        self._out_strip.values = snap.heads[layer, head, q]

    # -- actions (query and newest: AttentionContextMixin) -------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        model_only = {"query", "layer", "head", "newest", "key_home", "key_end",
                      "toggle_blocks", "toggle_values"}  # fmt: skip
        if action in model_only:
            return self.part == "model" or self.has_class("-wide") or False
        if action == "toggle_causal":
            return self.part == "toy" or self.has_class("-wide") or False
        return super().check_action(action, parameters)

    def action_switch_part(self) -> None:
        self.part = "model" if self.part == "toy" else "toy"

    def action_left(self) -> None:
        self._sideways(-1)

    def action_right(self) -> None:
        self._sideways(1)

    def _sideways(self, step: int) -> None:
        if self.part == "toy":
            self.toy_query = (self.toy_query + step) % len(toy.WORDS)
            self.refresh_toy()
        elif self.snapshot is not None:
            self.key_pos = min(max(0, self.key_pos + step), self.snapshot.n_tokens - 1)
            self._cursor_moved()

    def action_toggle_causal(self) -> None:
        self.toy_causal = not self.toy_causal
        self.refresh_toy()

    def action_key_home(self) -> None:
        self.key_pos = 0
        self._cursor_moved()

    def action_key_end(self) -> None:
        self.key_pos = self.query_pos
        self._cursor_moved()

    def action_layer(self, step: int) -> None:
        if self.snapshot is None:
            return
        self.layer_i = (self.layer_i + step) % self.snapshot.config.num_hidden_layers
        self._show_map(data=True)
        self._show_details()

    def action_head(self, step: int) -> None:
        if self.snapshot is None:
            return
        self.head_i = (self.head_i + step) % self.snapshot.config.num_attention_heads
        self._show_map(data=True)
        self._show_details()

    def _cursor_moved(self) -> None:
        self._show_map()
        self._show_details()

    def action_toggle_blocks(self) -> None:
        self._map.action_toggle_overflow()

    def action_toggle_values(self) -> None:
        self._map.action_toggle_values()

    def action_page(self, step: int) -> None:
        for body in self.query(Body):
            if body.display and body.size.height:
                if step > 0:
                    body.scroll_page_down()
                else:
                    body.scroll_page_up()
