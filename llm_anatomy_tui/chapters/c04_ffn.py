"""Chapter 4: Feed-forward network — a toy 2-3-2 net, then one token through the loaded
model's SwiGLU FFN.

Part 1 (a toy, labelled so): ``X (1×2) · W1 (2×3) = Z1``, ``A1 = f(Z1)``,
``A1 · W2 (3×2) = Z2`` drawn as nodes and edges (firing units ●, silent ones ○ with
dotted outgoing edges), and a matrix inspector over X, W1, Z1, A1, W2, Z2 that writes out
the weighted sum behind the selected cell; cells of X, W1 and W2 can be typed.

Part 2 (the real model): for one prompt token in a chosen layer, the shapes
``d → f → d``, the top hidden units by |silu(gate)·up| with gate, silu(gate) and up, the
update the FFN adds to the residual, and a logit lens on that update (final norm + output
head): the next tokens it pushes up and down — an interpretation, not a mechanism.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Input, Static

from ..core.lessons.dense_net import TOY_W1, TOY_W2, TOY_X, run_net, worked_sum
from ..core.lessons.neuron import ACTIVATIONS
from ..core.model import Trace
from ..core.neurons import FFNUpdate, ffn_update, prompt_trace
from ..views import ffn as fv
from ..views.embeddings import token_label
from ..views.neurons import parse_toy_value
from ..widgets.matrix_view import MatrixView
from ..widgets.prompt_bar import PromptBar
from .base import ChapterScreen
from .c02_embeddings import set_text

LEAD = (
    "A feed-forward layer is many neurons side by side, followed by a second layer that mixes "
    "their outputs back down to the model's width. Every token passes through it on its own; "
    "attention, before it, is where tokens look at each other."
)
TOY_TITLE = "Part 1 · toy network 2 → 3 → 2: hand-set numbers, not the model"
REAL_TITLE = "Part 2 · one token through the loaded model's SwiGLU FFN"
LENS_NOTE = (
    "Lens, not mechanism: this sends the update alone through the final norm and the output "
    "head, as if nothing came after this layer. It hints at what the update pushes towards; "
    "the layers after it may use it quite differently."
)
LENS_INLINE_LIMIT = 4_000_000
"""Largest vocab × d_model whose lens is computed on the UI thread (anatomy-mini: 1.05M,
about 0.1 ms); larger heads run in a worker."""
KIND_STYLE = {fv.FIRE: "bold green", fv.QUIET: "red", fv.EDGE: "", fv.DEAD_EDGE: "dim",
              fv.LABEL: "", fv.PLAIN: ""}  # fmt: skip


class Inspector(MatrixView, can_focus=False):
    """The toy's matrix inspector, moved by the screen's keys."""


class FFNScreen(ChapterScreen):
    NEEDS_MODEL = True
    AUTO_FOCUS = "#f-body"
    CSS_PATH = "c04_ffn.tcss"
    BINDINGS = [
        Binding("m", "matrix(1)", "Matrix", id="ffn.matrix",
                tooltip="Inspect the next matrix: X, W1, Z1, A1, W2, Z2"),
        Binding("M", "matrix(-1)", "Prev matrix", show=False, id="ffn.matrix-prev",
                tooltip="Inspect the previous matrix"),
        Binding("c", "cell(1)", "Cell", id="ffn.cell",
                tooltip="Select the next cell of the inspected matrix"),
        Binding("C", "cell(-1)", "Prev cell", show=False, id="ffn.cell-prev",
                tooltip="Select the previous cell"),
        Binding("e", "edit", "Type value", id="ffn.edit",
                tooltip="Type the selected cell of X, W1 or W2 (Enter applies, Esc cancels)"),
        Binding("f", "activation", "Function", id="ffn.function",
                tooltip="Next activation function for the toy's hidden layer"),
        Binding("r", "reset", "Reset toy", id="ffn.reset",
                tooltip="Put the toy's numbers back"),
        Binding("comma", "token(-1)", "◀ token", id="ffn.prev-token",
                tooltip="The previous prompt token (real FFN)"),
        Binding("full_stop", "token(1)", "token ▶", id="ffn.next-token",
                tooltip="The next prompt token (real FFN)"),
        Binding("l", "layer(1)", "Layer", id="ffn.layer",
                tooltip="Next layer of the real model"),
        Binding("L", "layer(-1)", "Prev layer", show=False, id="ffn.layer-prev",
                tooltip="Previous layer of the real model"),
    ]  # fmt: skip

    def __init__(self, chapter) -> None:  # noqa: ANN001
        super().__init__(chapter)
        self.toy = {"X": TOY_X.copy(), "W1": TOY_W1.copy(), "W2": TOY_W2.copy()}
        self.activation = "relu"
        self.net = run_net()
        """The toy net as shown."""
        self.inspector = fv.Inspector()
        """Which matrix and cell the inspector shows."""
        self.real_update: FFNUpdate | None = None
        """The real FFN step shown (layer, position, every vector)."""
        self.real_layer = 0
        self.real_position = -1  # -1: the last token
        self._trace: Trace | None = None
        self.notice = ""
        """Why the model reads something other than the typed prompt (or "")."""
        self._editing = False

    def compose_chapter(self) -> ComposeResult:
        with VerticalScroll(id="f-body"):
            yield Static(LEAD, classes="lead")
            yield Static(TOY_TITLE, classes="h")
            yield Static(id="f-net", classes="nowrap")
            yield Static(id="f-firing")
            yield Inspector(id="f-matrix", decimals=2)
            yield Input(id="f-input", classes="-hidden")
            yield Static(id="f-sum")
            yield Static(REAL_TITLE, classes="h")
            yield PromptBar(
                self.session.prompt, title="Prompt (shared by every chapter)", id="prompt"
            )
            yield Static(id="f-shapes", classes="nowrap")
            yield Static(id="f-units", classes="nowrap")
            yield Static(id="f-norm", classes="nowrap")
            yield Static(id="f-lens", classes="nowrap")
            yield Static(LENS_NOTE, classes="note")

    def on_mount(self) -> None:
        self.draw_toy()

    # -- part 1 ------------------------------------------------------------------------------

    def draw_toy(self) -> None:
        self.compute("toy", run_net, self.toy["X"], self.toy["W1"], self.toy["W2"], self.activation,
                     then=self._draw_toy, inline=True)  # fmt: skip

    def _draw_toy(self, net) -> None:  # noqa: ANN001
        self.net = net
        out = Text(no_wrap=True, overflow="ellipsis")
        for row in fv.net_diagram(net):
            for text, kind in row:
                out.append(text, style=KIND_STYLE[kind])
            out.append("\n")
        out.append(f"inputs x → hidden h (z → {net.activation}(z)) → outputs y", style="dim")
        set_text(self.query_one("#f-net", Static), out)
        set_text(self.query_one("#f-firing", Static), fv.firing_note(net))
        self.draw_inspector()

    def draw_inspector(self) -> None:
        ins, net = self.inspector, self.net
        values = net.matrix(ins.matrix)
        rows, cols = values.shape
        view = self.query_one("#f-matrix", Inspector)
        prefix = {"X": "x", "W1": "w1_", "Z1": "z1_", "A1": "a1_", "W2": "w2_", "Z2": "z2_"}[
            ins.matrix
        ]
        editable = " · e types this cell" if ins.matrix in fv.EDITABLE else " · computed"
        view.set_data(
            values,
            row_labels=[f"row {i + 1}" for i in range(rows)],
            col_labels=[f"col {j + 1}" for j in range(cols)],
            title=f"{ins.matrix}: {fv.MATRIX_NOTES[ins.matrix]}{editable}",
        )
        view.cursor = (ins.row, ins.col)
        target, unit = ins.unit_sum_target()
        cell = f"{prefix}{ins.row + 1}{ins.col + 1}" if rows > 1 else f"{prefix}{ins.col + 1}"
        text = Text.assemble(
            (f"selected {cell} = {values[ins.row, ins.col]:.4g}", "bold"),
            "   (m: matrix, c: cell)\n",
            worked_sum(net, target, unit),
        )
        if target == "Z1":
            a = net.a1[0, unit]
            text.append(f"\na1_{unit + 1} = {net.activation}(z1_{unit + 1}) = {a:.4g}"
                        f"   {'● fires' if a > 0 else '○ silent'}")  # fmt: skip
        set_text(self.query_one("#f-sum", Static), text)

    # -- part 2 ------------------------------------------------------------------------------

    def session_changed(self, changes: frozenset[str]) -> None:
        if not self.model_ready():
            return
        self.real_layer = min(
            self.real_layer, self.session.require_model().config.num_hidden_layers - 1
        )
        if changes & {"prompt", "model", "tokenizers"}:
            model, enc = self.session.require_model(), self.session.encoding("model")
            ids, self.notice = self.context_ids(enc, model.config.max_position_embeddings)
            self.compute("trace", prompt_trace, model, ids, then=self._got_trace)

    def _got_trace(self, trace: Trace) -> None:
        self._trace = trace
        self.ask_update()

    def ask_update(self) -> None:
        if self._trace is None or not self.model_ready():
            return
        n = len(self._trace.tokens)
        pos = n - 1 if self.real_position < 0 else min(self.real_position, n - 1)
        model = self.session.require_model()
        # the lens is a [V, d] product: inline for a small model, a worker for a large one
        cheap = model.config.vocab_size * model.config.hidden_size <= LENS_INLINE_LIMIT
        self.compute("update", ffn_update, model, self._trace, self.real_layer, pos,
                     then=self.draw_update, inline=cheap)  # fmt: skip

    def draw_update(self, upd: FFNUpdate) -> None:
        self.real_update = upd
        model, enc = self.session.require_model(), self.session.encoding("model")
        cfg = model.config
        assert self._trace is not None
        label = token_label(enc, int(self._trace.tokens[upd.position]))
        lines = fv.shape_lines(
            cfg.hidden_size, cfg.intermediate_size, upd.layer, upd.position, label
        )
        head = Text("\n".join(lines), no_wrap=True, overflow="ellipsis")
        if self.notice:
            head.append("\n" + self.notice, style="italic")
        head.append(
            f"\n(, . token  l layer {upd.layer} of 0–{cfg.num_hidden_layers - 1})", style="dim"
        )
        set_text(self.query_one("#f-shapes", Static), head)
        units = Text(no_wrap=True, overflow="ellipsis")
        units.append(
            f"top {len(upd.top_units)} of {cfg.intermediate_size} hidden units by |silu(gate)·up|:\n",
            style="bold",
        )
        units.append(
            f"{'unit':>6} {'gate':>9} {'silu(gate)':>11} {'up':>9} {'h = silu·up':>12}\n",
            style="underline",
        )
        for r in fv.unit_rows(upd):
            u, g, s, up, h = r.cells
            units.append(f"{u:>6} {g:>9} {s:>11} {up:>9} {h:>12}\n")
        active = (
            int(np.sum(np.abs(upd.hidden) > 0.1 * np.abs(upd.hidden).max()))
            if upd.hidden.size
            else 0
        )
        units.append(
            f"{active} of {cfg.intermediate_size} units are above 10% of the largest |h|.",
            style="dim",
        )
        set_text(self.query_one("#f-units", Static), units)
        set_text(self.query_one("#f-norm", Static),
                 Text("update = W_down · h, added to the residual:\n" + fv.norm_line(upd),
                      no_wrap=True, overflow="ellipsis"))  # fmt: skip
        up_rows, down_rows = fv.lens_rows(upd, enc)
        lens = Text(no_wrap=True, overflow="ellipsis")
        lens.append(
            f"lens on the update of token #{upd.position}, layer {upd.layer}: final norm + "
            "output head → pushes up ▲ / down ▼\n",
            style="bold",
        )
        for a, b in zip(up_rows, down_rows, strict=True):
            lens.append(f"▲ {a.label:<14.14} {a.logit:+8.3f}    ")
            lens.append(f"▼ {b.label:<14.14} {b.logit:+8.3f}\n")
        set_text(self.query_one("#f-lens", Static), lens)

    # -- actions -----------------------------------------------------------------------------

    def action_matrix(self, delta: int) -> None:
        self.inspector = self.inspector.cycle(delta)
        self.draw_inspector()

    def action_cell(self, delta: int) -> None:
        rows, cols = self.inspector.shape(self.net)
        flat = (self.inspector.row * cols + self.inspector.col + delta) % (rows * cols)
        self.inspector = fv.Inspector(self.inspector.matrix, flat // cols, flat % cols)
        self.draw_inspector()

    def action_activation(self) -> None:
        names = list(ACTIVATIONS)
        self.activation = names[(names.index(self.activation) + 1) % len(names)]
        self.draw_toy()

    def action_reset(self) -> None:
        self.toy = {"X": TOY_X.copy(), "W1": TOY_W1.copy(), "W2": TOY_W2.copy()}
        self.activation = "relu"
        self.draw_toy()

    def action_edit(self) -> None:
        ins = self.inspector
        if ins.matrix not in fv.EDITABLE:
            self.notify(
                f"{ins.matrix} is computed from the others; inspect X, W1 or W2 (m) to type a value."
            )
            return
        self._editing = True
        box = self.query_one("#f-input", Input)
        box.placeholder = f"new value for {ins.matrix} row {ins.row + 1} col {ins.col + 1} (within ±100, 2 decimals), Enter"
        box.value = ""
        box.remove_class("-hidden")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            value = round(parse_toy_value(event.value), 2)
        except ValueError as exc:
            self.notify(str(exc), severity="warning", title="Not applied")
            return
        ins = self.inspector
        m = self.toy[ins.matrix].copy()
        m[ins.row, ins.col] = value
        self.toy[ins.matrix] = m
        self._close_input()
        self.draw_toy()

    def _close_input(self) -> None:
        self._editing = False
        self.query_one("#f-input", Input).add_class("-hidden")
        self.focus_body()

    def action_leave_prompt(self) -> None:
        if self._editing:
            self._close_input()
        else:
            super().action_leave_prompt()

    def action_token(self, delta: int) -> None:
        if self._trace is None:
            return
        n = len(self._trace.tokens)
        cur = n - 1 if self.real_position < 0 else min(self.real_position, n - 1)
        self.real_position = (cur + delta) % n
        self.ask_update()

    def action_layer(self, delta: int) -> None:
        if self.model_ready():
            self.real_layer = (
                self.real_layer + delta
            ) % self.session.require_model().config.num_hidden_layers
            self.ask_update()
