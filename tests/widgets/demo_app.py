"""A small app showing every data widget with fixed data: used by the snapshot tests and
to look at the widgets by hand::

    .venv/bin/python tests/widgets/demo_app.py [heads|attention|long|sampling|tables]

Keys 1–5 switch pages; tab moves focus between widgets. The data are deterministic
formulas (no random generator), so snapshots do not depend on numpy's RNG streams.
"""

from __future__ import annotations

import sys

import numpy as np
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import ContentSwitcher, Footer

from llm_anatomy_tui.widgets.bar_chart import BarChart, BarColumn, CumulativeStrip
from llm_anatomy_tui.widgets.heatmap import Heatmap
from llm_anatomy_tui.widgets.line_plot import LinePlot, Mark, Series, VLine
from llm_anatomy_tui.widgets.matrix_view import MatrixView
from llm_anatomy_tui.widgets.vector_strip import VectorStrip

TOKENS = ["A", "·blue", "·car", "·crashed", "·into", "·a", "·concrete", "·wall", ",", "·it",
          "·was", "·speeding", "."]  # fmt: skip
PAGES = ("heads", "attention", "long", "sampling", "tables")


def causal_mask(t: int) -> np.ndarray:
    return np.triu(np.ones((t, t), dtype=bool), 1)


def scores(t: int, head: int) -> np.ndarray:
    i = np.arange(t)[:, None]
    j = np.arange(t)[None, :]
    return 2.0 * np.sin(1.3 * i + 0.7 * j + head) + np.cos(0.5 * (i - j) * (head + 1))


def softmax_masked(s: np.ndarray, mask: np.ndarray) -> np.ndarray:
    z = np.where(mask, -np.inf, s)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def sampling_data():
    labels = ["·the", "·a", "·his", "·her", "·their", "·one", "·my", "·that", "·this", "·an"]
    logits = np.array([5.1, 4.3, 3.2, 3.0, 2.2, 1.9, 1.5, 1.2, 0.8, 0.1])
    e = np.exp(logits - logits.max())
    probs = e / e.sum()
    cut = [None, None, None, None, "top-p", "top-p", "top-k", "top-k", "top-k", "top-k"]
    kept = probs[:4] / probs[:4].sum()
    return labels, logits, probs, cut, kept


class WidgetDemo(App):
    CSS = """
    Screen { layout: vertical; }
    ContentSwitcher { height: 1fr; }
    #heads { grid-size: 4; grid-gutter: 0 1; }
    #attention { layout: horizontal; }
    #attention > Heatmap { width: 3fr; }
    #attention > Vertical { width: 2fr; }
    #long Heatmap { height: 1fr; }
    #sampling BarChart { height: auto; max-height: 14; }
    #tables { layout: vertical; }
    #tables Horizontal { height: auto; }
    #tables LinePlot { height: 1fr; min-height: 8; }
    """

    BINDINGS = [
        Binding("1", "page('heads')", "Heads", id="demo.heads", tooltip="All heads side by side"),
        Binding("2", "page('attention')", "Attention", id="demo.attention",
                tooltip="One head with numbers"),
        Binding("3", "page('long')", "Long", id="demo.long", tooltip="256 positions"),
        Binding("4", "page('sampling')", "Sampling", id="demo.sampling",
                tooltip="Bars and the draw"),
        Binding("5", "page('tables')", "Tables", id="demo.tables",
                tooltip="Matrix, vector, plot"),
    ]  # fmt: skip

    def __init__(self, page: str = "heads") -> None:
        super().__init__()
        self.page = page

    def compose(self) -> ComposeResult:
        t = len(TOKENS)
        mask = causal_mask(t)
        labels, logits, probs, cut, kept = sampling_data()
        with ContentSwitcher(initial=self.page):
            with Grid(id="heads"):
                for h in range(4):
                    yield Heatmap(
                        softmax_masked(scores(t, h), mask),
                        mask=mask,
                        row_labels=TOKENS,
                        col_labels=TOKENS,
                        compact=True,
                        title=f"head {h}",
                        cursor=(t - 1, 2),
                        vmin=0.0,
                        vmax=1.0,
                        id=f"head{h}",
                    )
            with Horizontal(id="attention"):
                yield Heatmap(
                    softmax_masked(scores(t, 1), mask),
                    mask=mask,
                    row_labels=TOKENS,
                    col_labels=TOKENS,
                    title="layer 0 · head 1 · weights",
                    cursor=(9, 2),
                    vmin=0.0,
                    vmax=1.0,
                    id="attn",
                )
                with Vertical():
                    yield Heatmap(
                        np.where(mask, 0.0, scores(t, 1)),
                        mask=mask,
                        row_labels=TOKENS,
                        col_labels=TOKENS,
                        cmap="diverging",
                        show_values=False,
                        title="raw scores",
                        cursor=(9, 2),
                        id="scores",
                    )
            with Vertical(id="long"):
                yield Heatmap(
                    softmax_masked(scores(256, 0), causal_mask(256)),
                    mask=causal_mask(256),
                    title="head 0 over 256 positions",
                    cursor=(100, 60),
                    vmin=0.0,
                    vmax=1.0,
                    id="long-map",
                )
            with Vertical(id="sampling"):
                yield BarChart(
                    labels,
                    probs,
                    columns=[BarColumn("logit", logits, 2), BarColumn("p", probs, 1, percent=True)],
                    cut=cut,
                    highlight=1,
                    label_header="token",
                    bar_header="probability",
                    title="next token after “Once upon a time there was”",
                    id="bars",
                )
                yield CumulativeStrip(
                    labels[:4], kept, 0.7125, title="seeded draw (top-p kept 4)", id="cdf"
                )
            with Vertical(id="tables"):
                with Horizontal():
                    yield MatrixView(
                        np.array([[0.5, -1.25, 0.75], [1.0, 0.25, -0.5]]),
                        row_labels=["x1", "x2"],
                        col_labels=["h1", "h2", "h3"],
                        decimals=2,
                        title="W1",
                        cursor=(1, 2),
                        id="w1",
                    )
                    yield MatrixView(
                        np.sin(np.arange(6 * 384).reshape(6, 384) * 0.37),
                        decimals=3,
                        title="W_up",
                        show_cursor=False,
                        id="wup",
                    )
                yield VectorStrip(
                    np.sin(np.arange(128) * 0.37) * np.linspace(1.2, 0.2, 128),
                    title="embedding of ·bank (128-d)",
                    show_cursor=False,
                    id="emb",
                )
                steps = np.arange(0, 2000, 10)
                val_steps = np.arange(0, 2001, 100)
                yield LinePlot(
                    [
                        Series(
                            "train", 5 * np.exp(-steps / 300) + 1.5 + 0.05 * np.sin(steps), steps
                        ),
                        Series("val", 5 * np.exp(-val_steps / 300) + 1.7, val_steps),
                    ],
                    title="anatomy-mini loss",
                    x_label="step",
                    y_label="loss",
                    vlines=[VLine(600, "plateau")],
                    marks=[Mark(1000, 5 * np.exp(-1000 / 300) + 1.7, "val 1.88")],
                    id="loss",
                )
        yield Footer()

    def on_mount(self) -> None:
        self._focus_page()

    def action_page(self, page: str) -> None:
        self.query_one(ContentSwitcher).current = page
        self.page = page
        self._focus_page()

    def _focus_page(self) -> None:
        """Focus the first focusable widget of the page on show (the keys act on it)."""
        page = self.query_one(f"#{self.page}")
        focusable = [w for w in page.query("*") if w.can_focus]
        if focusable:
            focusable[0].focus()


if __name__ == "__main__":
    WidgetDemo(sys.argv[1] if len(sys.argv) > 1 else "heads").run()
