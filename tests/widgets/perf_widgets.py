"""Render timings of the data widgets (not a test: run it by hand).

    .venv/bin/python tests/widgets/perf_widgets.py

Each row builds the renderable from numpy data and renders it to lines of segments with
``Console.render_lines`` — what Textual does with a widget's ``render()`` result — and
reports the median wall-clock and CPU time of 30 runs in milliseconds.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from rich.console import Console

from llm_anatomy_tui.widgets.bar_chart import (
    BarChartRenderable,
    BarColumn,
    CumulativeStripRenderable,
)
from llm_anatomy_tui.widgets.heatmap import HeatmapRenderable
from llm_anatomy_tui.widgets.line_plot import LinePlotRenderable, Series
from llm_anatomy_tui.widgets.matrix_view import MatrixViewRenderable
from llm_anatomy_tui.widgets.vector_strip import VectorStripRenderable


def attention(t: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(t)[:, None]
    j = np.arange(t)[None, :]
    mask = j > i
    s = np.where(mask, -np.inf, np.sin(1.3 * i + 0.7 * j))
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), mask


def timed(
    make, width: int, height: int, color_system: str | None = "truecolor"
) -> tuple[float, float]:
    """(median wall ms, median CPU ms) over 30 renders after one warm-up. CPU time is this
    process's own work, so it stays meaningful on a machine shared with other jobs."""
    console = Console(width=width, height=height, color_system=color_system, file=_Null())
    options = console.options.update(width=width, height=height)
    wall, cpu = [], []
    for _ in range(31):
        t0, c0 = time.perf_counter(), time.process_time()
        console.render_lines(make(width, height), options, pad=False)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(wall[1:]), statistics.median(cpu[1:])


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def main() -> None:
    w256, m256 = attention(256)
    w13, m13 = attention(13)
    labels256 = [f"tok{i}" for i in range(256)]
    logits = np.linspace(8, -4, 256)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    cut = [None] * 20 + ["top-k"] * 236
    steps = np.arange(0, 20000, 10)
    train = 5 * np.exp(-steps / 3000) + 1.5 + 0.05 * np.sin(steps)
    big = np.sin(np.arange(128 * 384).reshape(128, 384) * 0.37)
    cases = {
        "heatmap 256×256 scroll": lambda w, h: HeatmapRenderable(
            w256,
            mask=m256,
            row_labels=labels256,
            col_labels=labels256,
            cursor=(128, 100),
            height=h,
        ),
        "heatmap 256×256 aggregate": lambda w, h: HeatmapRenderable(
            w256,
            mask=m256,
            row_labels=labels256,
            col_labels=labels256,
            cursor=(128, 100),
            overflow="aggregate",
            height=h,
        ),
        "heatmap 13×13 numbers": lambda w, h: HeatmapRenderable(
            w13, mask=m13, cursor=(5, 2), height=h, show_values=True
        ),
        "heatmap 13×13 compact ×1": lambda w, h: HeatmapRenderable(
            w13, mask=m13, cursor=(5, 2), compact=True, width=19, height=h
        ),
        "bar chart 20 rows": lambda w, h: BarChartRenderable(
            labels256[:20],
            probs[:20],
            columns=[BarColumn("logit", logits[:20], 2), BarColumn("p", probs[:20], 1, True)],
            cut=cut[:20],
            highlight=3,
            cursor=1,
            height=h,
        ),
        "bar chart 256 rows (scrolls)": lambda w, h: BarChartRenderable(
            labels256,
            probs,
            columns=[BarColumn("logit", logits, 2), BarColumn("p", probs, 1, True)],
            cut=cut,
            highlight=3,
            cursor=100,
            height=h,
        ),
        "cumulative strip 20": lambda w, h: CumulativeStripRenderable(
            labels256[:20], probs[:20] / probs[:20].sum(), 0.7
        ),
        "vector strip 128": lambda w, h: VectorStripRenderable(
            np.sin(np.arange(128.0)), cursor=5, height=h
        ),
        "vector strip 128 numbers": lambda w, h: VectorStripRenderable(
            np.sin(np.arange(128.0)), cursor=5, show_values=True, height=h
        ),
        "matrix view 128×384": lambda w, h: MatrixViewRenderable(
            big, decimals=3, cursor=(60, 200), height=h
        ),
        "line plot 2 series, 2000 pts": lambda w, h: LinePlotRenderable(
            [Series("train", train, steps), Series("val", train[::10] + 0.2, steps[::10])],
            height=h,
        ),
    }
    sizes = [(80, 24), (120, 40), (200, 60)]
    print(f"{'widget':32}" + "".join(f"{w}×{h:<14}" for w, h in sizes))
    for name, make in cases.items():
        cells = []
        for w, h in sizes:
            wall, cpu = timed(make, w, h)
            cells.append(f"{wall:5.2f} ({cpu:5.2f})  ")
        print(f"{name:32}" + "".join(cells))
    print("ms: median wall-clock (median CPU) of 30 renders, truecolor console")


if __name__ == "__main__":
    main()
