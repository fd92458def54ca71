"""Chapter 3: Neuron activation — a toy neuron, six activation functions, why stacking
linear layers needs them, then the loaded model's own FFN units on the prompt.

Part 1 (a toy, and labelled so): ``z = w·x + b``, ``out = f(z)`` with three inputs,
three weights and a bias changed by keys or typed; the chosen function's curve with the
current z marked, and every function's value at that z; two linear layers collapsing
into their product matrix, and a ReLU between them breaking that.

Part 2 (the real model): pick a layer and one of its SwiGLU hidden units; its activation
``silu(gate)·up`` on every prompt token (from the model's trace), and the tokens of the
shipped held-out stories that fire it most (one scan per layer covers every unit; a
worker with progress, cached).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Input, Static

from ..core.lessons.neuron import ACTIVATIONS, activate, collapse_demo, curve
from ..core.model import Trace
from ..core.neurons import LayerScan, prompt_trace, unit_activations
from ..views import neurons as nv
from ..views.embeddings import token_label
from ..widgets.line_plot import LinePlot, Mark, Series
from ..widgets.prompt_bar import PromptBar
from .base import ChapterScreen
from .c02_embeddings import set_text

TOP_K = 8
LEAD = (
    "A neuron multiplies each input by a weight, adds them up with a bias, and bends the sum "
    "with an activation function. The bend matters: without it, any stack of layers folds "
    "into a single one."
)

TOY_TITLE = "Part 1 · toy neuron: hand-set numbers, not the model"
REAL_TITLE = "Part 2 · the loaded model's own neurons (FFN hidden units)"


def mat(m) -> str:  # noqa: ANN001
    return "[" + "; ".join(" ".join(f"{v:g}" for v in row) for row in m) + "]"


class NeuronsScreen(ChapterScreen):
    NEEDS_MODEL = True
    AUTO_FOCUS = "#n-body"
    CSS_PATH = "c03_neurons.tcss"
    BINDINGS = [
        Binding("comma", "field(-1)", "◀ value", id="neurons.prev-value",
                tooltip="Select the previous toy value (x1 x2 x3 w1 w2 w3 b)"),
        Binding("full_stop", "field(1)", "value ▶", id="neurons.next-value",
                tooltip="Select the next toy value"),
        Binding("minus", "nudge(-1)", "−0.25", id="neurons.down",
                tooltip="Lower the selected toy value by 0.25"),
        Binding("plus,equals_sign", "nudge(1)", "+0.25", id="neurons.up",
                tooltip="Raise the selected toy value by 0.25"),
        Binding("e", "edit", "Type value", id="neurons.edit",
                tooltip="Type the selected toy value (Enter applies, Esc cancels)"),
        Binding("f", "activation(1)", "Function", id="neurons.function",
                tooltip="Next activation function: ReLU, GELU, SiLU, tanh, sigmoid, linear"),
        Binding("F", "activation(-1)", "Prev function", show=False, id="neurons.function-prev",
                tooltip="Previous activation function"),
        Binding("a", "all_curves", "All curves", id="neurons.all-curves",
                tooltip="Plot all six activation functions together, or only the chosen one"),
        Binding("l", "layer(1)", "Layer", id="neurons.layer",
                tooltip="Next layer of the real model"),
        Binding("L", "layer(-1)", "Prev layer", show=False, id="neurons.layer-prev",
                tooltip="Previous layer of the real model"),
        Binding("u", "unit(1)", "Unit", id="neurons.unit",
                tooltip="Next hidden unit of the layer"),
        Binding("U", "unit(-1)", "Prev unit", show=False, id="neurons.unit-prev",
                tooltip="Previous hidden unit of the layer"),
        Binding("g", "goto_unit", "Go to unit", id="neurons.goto",
                tooltip="Type a hidden unit's number (Enter)"),
    ]  # fmt: skip

    def __init__(self, chapter) -> None:  # noqa: ANN001
        super().__init__(chapter)
        self.toy = nv.ToyNeuron()
        """The toy neuron's state (values, selected field, activation)."""
        self.all_curves = False
        """True: the plot draws every activation function, not only the chosen one."""
        self.choice = nv.UnitChoice()
        """The real layer and hidden unit shown."""
        self.acts = None
        """The chosen unit's activation on each prompt token, as shown (np.ndarray)."""
        self.scan: LayerScan | None = None
        """The held-out scan of the chosen layer, once it has landed."""
        self._trace: Trace | None = None
        self.notice = ""
        """Why the model reads something other than the typed prompt (or "")."""
        self._scans: dict[tuple[int, int], LayerScan] = {}
        self._editing = ""  # "value" or "unit" while the input is open

    def compose_chapter(self) -> ComposeResult:
        with VerticalScroll(id="n-body"):
            yield Static(LEAD, classes="lead")
            yield Static(TOY_TITLE, classes="h")
            yield Static(id="n-toy")
            yield Input(id="n-input", classes="-hidden")
            yield LinePlot(id="n-curve", x_label="z", y_label="f(z)")
            yield Static(id="n-all")
            yield Static("Why not leave f out? Two linear layers are one layer", classes="h")
            yield Static(id="n-collapse")
            yield Static(REAL_TITLE, classes="h")
            yield PromptBar(
                self.session.prompt, title="Prompt (shared by every chapter)", id="prompt"
            )
            yield Static(id="n-unit", classes="nowrap")
            yield Static(id="n-notice")
            yield Static(id="n-acts", classes="nowrap")
            yield Static(id="n-top", classes="nowrap")

    def on_mount(self) -> None:
        self.draw_toy()
        self.draw_collapse()

    # -- part 1 ------------------------------------------------------------------------------

    def draw_toy(self) -> None:
        self.compute("toy", self._toy_values, self.toy, self.all_curves, then=self._draw_toy,
                     inline=True, on_error=self._toy_error)  # fmt: skip

    @staticmethod
    def _toy_values(toy: nv.ToyNeuron, all_curves: bool):  # noqa: ANN205
        r = toy.result()
        lo, hi = nv.plot_range(r.z)
        names = list(ACTIVATIONS) if all_curves else [toy.activation]
        curves = [(name, *curve(name, lo, hi)) for name in names]
        at_z = {name: float(activate(name, r.z)) for name in ACTIVATIONS}
        return r, curves, at_z

    def _toy_error(self, message: str) -> None:
        self.notify(message, severity="warning")

    def _draw_toy(self, values) -> None:  # noqa: ANN001
        r, curves, at_z = values
        act = ACTIVATIONS[r.activation]
        out = Text()  # wraps: extreme typed values make the sum line long
        cells = []
        for i, name in enumerate(nv.TOY_FIELDS):
            v = self.toy.values[i]
            sel = i == self.toy.selected
            cells.append((f"{'▶' if sel else ' '}{name} {v:+.2f} ", "bold reverse" if sel else ""))
        out.append("inputs  ")
        for c in cells[:3]:
            out.append(*c)
        out.append("\nweights ")
        for c in cells[3:6]:
            out.append(*c)
        out.append("\nbias    ")
        out.append(*cells[6])
        out.append("\n" + nv.sum_line(r) + "\n")
        out.append(f"out = {act.name}(z) = {act.formula} = {r.out:.4f}", style="bold")
        set_text(self.query_one("#n-toy", Static), out)
        plot = self.query_one("#n-curve", LinePlot)
        plot.series = tuple(Series(name, nv.clip_for_plot(y), z) for name, z, y in curves)
        plot.marks = tuple(
            Mark(r.z, at_z[name], f"z={r.z:.2f}" if name == r.activation else "")
            for name, _, _ in curves
        )
        if self.all_curves:
            plot.title = "all six functions   ◆ each at the current z   (a: only the chosen one)"
        else:
            plot.title = f"{act.name}(z) = {act.formula}   ◆ the current z   (a: all six)"
        table = "  ".join(f"{'▶' if n == r.activation else ''}{n} {v:.4f}" for n, v in at_z.items())
        set_text(
            self.query_one("#n-all", Static), Text(f"at z = {r.z:.4f}:  {table}", no_wrap=False)
        )

    def draw_collapse(self) -> None:
        d = collapse_demo()
        ok = "✓ same" if (d.stacked == d.single).all() else "✗"
        out = Text()
        out.append(f"W1 = {mat(d.w1)}   W2 = {mat(d.w2)}   W1·W2 = {mat(d.product)}\n")
        out.append("x            (x·W1)·W2      x·(W1·W2)      ReLU(x·W1)·W2\n", style="bold")
        for x, st, si, rl, diff in zip(
            d.inputs, d.stacked, d.single, d.with_relu, d.differs, strict=True
        ):
            out.append(f"{mat([x]):<12} {mat([st]):<14} {mat([si]):<14} {mat([rl]):<12} "
                       f"{'≠ product' if diff else '= product'}\n")  # fmt: skip
        out.append(f"Without f the two layers are one matrix ({ok} for every input). With a ReLU "
                   f"between them the output is not x·M for any matrix M: for x = {mat([d.inputs[0]])}, "
                   f"g(x) + g(−x) = {d.odd_gap:g}, but x·M + (−x)·M = 0 always.")  # fmt: skip
        set_text(self.query_one("#n-collapse", Static), out)

    # -- part 2 ------------------------------------------------------------------------------

    def session_changed(self, changes: frozenset[str]) -> None:
        if not self.model_ready():
            return
        cfg = self.session.require_model().config
        self.choice = self.choice.clamp(cfg.num_hidden_layers, cfg.intermediate_size)
        if "model" in changes:
            self._scans.clear()
        if changes & {"prompt", "model", "tokenizers"}:
            self.ask_trace()
            self.ask_scan()

    def ask_trace(self) -> None:
        model, enc = self.session.require_model(), self.session.encoding("model")
        ids, self.notice = self.context_ids(enc, model.config.max_position_embeddings)
        self.compute("trace", prompt_trace, model, ids, then=self._got_trace)

    def _got_trace(self, trace: Trace) -> None:
        self._trace = trace
        self.draw_unit()

    def draw_unit(self) -> None:
        model, enc = self.session.require_model(), self.session.encoding("model")
        cfg = model.config
        c = self.choice
        set_text(self.query_one("#n-unit", Static), Text.assemble(
            (f"layer {c.layer} of 0–{cfg.num_hidden_layers - 1}, hidden unit {c.unit} of "
             f"0–{cfg.intermediate_size - 1}", "bold"),
            f"\nh = silu(gate·x) × (up·x), x = the normed residual [{cfg.hidden_size}]",
            no_wrap=True, overflow="ellipsis",
        ))  # fmt: skip
        if self._trace is None:
            return
        self.acts = unit_activations(self._trace, c.layer, c.unit)
        labels = [token_label(enc, int(t)) for t in self._trace.tokens]
        set_text(self.query_one("#n-notice", Static), Text(self.notice, style="italic"))
        self.query_one("#n-notice", Static).display = bool(self.notice)
        out = Text(no_wrap=True, overflow="ellipsis")
        chips = nv.activation_chips(labels, self.acts)
        width = max(
            20, self.query_one("#n-acts", Static).content_region.width or self.size.width - 4
        )
        for line in nv.wrap_chips([chip.text for chip in chips], width):
            for k, i in enumerate(line):
                chip = chips[i]
                style = "green" if chip.value > 0 else "red" if chip.value < 0 else ""
                out.append(("  " if k else "") + chip.text, style=style)
            out.append("\n")
        out.append(nv.activation_summary(self.acts, labels), style="dim")
        set_text(self.query_one("#n-acts", Static), out)
        self.draw_top()

    def ask_scan(self) -> None:
        model = self.session.require_model()
        key = (id(model), self.choice.layer)
        if key in self._scans:
            self.cancel_compute("scan")
            self._got_scan(self._scans[key])
            return
        self.scan = None
        set_text(
            self.query_one("#n-top", Static), Text("scanning the held-out stories…", style="dim")
        )
        self.compute("scan", nv.scan_for, model, self.session.encoding("model"), self.choice.layer, TOP_K,
                     then=self._got_scan, on_progress=self._scan_progress)  # fmt: skip

    def _scan_progress(self, report) -> None:  # noqa: ANN001
        set_text(self.query_one("#n-top", Static),
                 Text(f"scanning the held-out stories for layer {self.choice.layer}: {report.fraction:.0%}", style="dim"))  # fmt: skip

    def _got_scan(self, scan: LayerScan) -> None:
        self._scans[(id(self.session.require_model()), scan.layer)] = scan
        if scan.layer == self.choice.layer:
            self.scan = scan
            self.draw_top()

    def draw_top(self) -> None:
        scan = self.scan
        if scan is None or scan.layer != self.choice.layer:
            return
        enc = self.session.encoding("model")
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(f"Held-out tokens that fire unit {self.choice.unit} most\n", style="bold")
        out.append(f"({scan.tokens.size:,} tokens of 50 held-out TinyStories stories, read in "
                   "context)\n", style="dim")  # fmt: skip
        for r in nv.top_rows(scan, self.choice.unit, enc):
            out.append(f"{r.shown:>8}  ")
            out.append(f"…{r.before[-28:]:>28}", style="dim")
            out.append(f"[{r.token}]", style="bold reverse")
            out.append("\n")
        set_text(self.query_one("#n-top", Static), out)

    # -- actions -----------------------------------------------------------------------------

    def action_field(self, delta: int) -> None:
        self.toy = self.toy.select(delta)
        self.draw_toy()

    def action_nudge(self, steps: int) -> None:
        self.toy = self.toy.nudge(steps)
        self.draw_toy()

    def action_all_curves(self) -> None:
        self.all_curves = not self.all_curves
        self.draw_toy()

    def action_activation(self, delta: int) -> None:
        self.toy = self.toy.next_activation(delta)
        self.draw_toy()

    def _open_input(self, kind: str, placeholder: str) -> None:
        self._editing = kind
        box = self.query_one("#n-input", Input)
        box.placeholder = placeholder
        box.value = ""
        box.remove_class("-hidden")
        box.focus()

    def action_edit(self) -> None:
        name = nv.TOY_FIELDS[self.toy.selected]
        self._open_input(
            "value", f"new value for {name} (within ±{nv.TOY_LIMIT:g}, 2 decimals), Enter"
        )

    def action_goto_unit(self) -> None:
        if self.model_ready():
            n = self.session.require_model().config.intermediate_size
            self._open_input("unit", f"hidden unit 0–{n - 1}, Enter")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            if self._editing == "value":
                value = nv.parse_toy_value(event.value)
                self.toy = self.toy.with_value(self.toy.selected, value)
                self.draw_toy()
            elif self._editing == "unit" and self.model_ready():
                n = self.session.require_model().config.intermediate_size
                text = event.value.strip()
                if not text.isdigit() or not 0 <= int(text) < n:
                    raise ValueError(
                        f"“{text[:20]}” is not a hidden unit: type a whole number 0–{n - 1}."
                    )
                self.choice = nv.UnitChoice(self.choice.layer, int(text))
                self.draw_unit()
        except ValueError as exc:
            self.notify(str(exc), severity="warning", title="Not applied")
            return  # the input stays open with the text, to fix
        self._close_input()

    def _close_input(self) -> None:
        self._editing = ""
        self.query_one("#n-input", Input).add_class("-hidden")
        self.focus_body()

    def action_leave_prompt(self) -> None:
        if self._editing:
            self._close_input()
        else:
            super().action_leave_prompt()

    def action_layer(self, delta: int) -> None:
        if self.model_ready():
            cfg = self.session.require_model().config
            self.choice = self.choice.move(delta, 0, cfg.num_hidden_layers, cfg.intermediate_size)
            self.draw_unit()
            self.ask_scan()

    def action_unit(self, delta: int) -> None:
        if self.model_ready():
            cfg = self.session.require_model().config
            self.choice = self.choice.move(0, delta, cfg.num_hidden_layers, cfg.intermediate_size)
            self.draw_unit()
