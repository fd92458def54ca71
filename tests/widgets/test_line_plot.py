"""Line plot: ticks, series, marks, no-colour glyphs; the widget re-renders."""

from __future__ import annotations

import numpy as np
import pytest
from widget_testing import Harness, render_text

from llm_anatomy_tui.widgets.line_plot import (
    LinePlot,
    LinePlotRenderable,
    Mark,
    Series,
    VLine,
    nice_ticks,
)

STEPS = np.arange(0, 2000, 10)
VAL_STEPS = np.arange(0, 2001, 100)
TRAIN = Series("train", 5 * np.exp(-STEPS / 300) + 1.5, STEPS)
VAL = Series("val", 5 * np.exp(-VAL_STEPS / 300) + 1.7, VAL_STEPS)


def test_nice_ticks():
    assert nice_ticks(0, 10, 5) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(1.5, 6.7, 2) == [2, 4, 6]  # never a single tick when two fit
    assert nice_ticks(0.0, 1.0, 4) == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    assert nice_ticks(3.0, 3.0, 4) == [3.0]


def test_axes_ticks_title_and_legend():
    text = render_text(
        LinePlotRenderable([TRAIN, VAL], title="loss", x_label="step", y_label="loss", height=16),
        80,
    )
    lines = text.splitlines()
    assert lines[0].startswith("loss") and lines[0].endswith("y: loss")
    assert any("┤" in line for line in lines)
    assert any(line.lstrip().startswith("└") for line in lines)
    assert "500" in text and "1000" in text and "1500" in text
    assert "step" in lines[-2]
    assert "train" in lines[-1] and "val" in lines[-1]
    assert len(lines) == 16


def test_series_is_drawn_with_braille_and_second_series_has_its_own_glyph_without_colour():
    text = render_text(LinePlotRenderable([TRAIN, VAL], height=12), 80)
    assert any("\u2800" < ch <= "\u28ff" for ch in text)
    assert "•" in text and "• val" in text


def test_block_mode_for_fonts_without_braille():
    text = render_text(LinePlotRenderable([TRAIN], height=10, dots="block"), 60)
    assert not any("\u2800" <= ch <= "\u28ff" for ch in text)
    assert "▀" in text or "▄" in text


def test_a_rising_line_rises():
    text = render_text(
        LinePlotRenderable([Series("up", [0, 1, 2, 3])], height=10, legend=False), 40
    )
    rows = [line for line in text.splitlines() if "│" in line or "┤" in line]
    top_row = next(
        i for i, line in enumerate(rows) if any("\u2800" < c <= "\u28ff" for c in line[3:])
    )
    first_col = [
        line[3:].find(next(c for c in line[3:] if c != " ")) for line in rows if line[3:].strip()
    ]
    assert top_row == 0
    assert first_col[0] > first_col[-1]  # the top of the plot is at the right end


def test_marks_and_vlines_are_labelled():
    z = np.linspace(-4, 4, 100)
    text = render_text(
        LinePlotRenderable([Series("silu", z / (1 + np.exp(-z)), z)],
                           marks=[Mark(1.0, 0.731, "z=1.00")], vlines=[VLine(-2.0, "phase")],
                           height=12),
        60,
    )  # fmt: skip
    assert "◆" in text and "z=1.00" in text
    assert "┊" in text and "phase" in text


def test_nan_breaks_the_line_and_empty_input_does_not_crash():
    y = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    assert render_text(LinePlotRenderable([Series("gap", y)], height=8), 40)
    assert render_text(LinePlotRenderable([], height=8), 40)
    assert render_text(LinePlotRenderable([Series("one", [2.0])], height=8), 40)
    with pytest.raises(ValueError):
        LinePlotRenderable([], dots="ascii")  # type: ignore[arg-type]


async def test_widget_rerenders_on_new_series():
    plot = LinePlot([TRAIN], title="loss")
    app = Harness(plot)
    async with app.run_test(size=(80, 20)) as pilot:
        renders = app.renders
        plot.series = [TRAIN, VAL]
        await pilot.pause()
        assert app.renders > renders
        text = render_text(plot.renderable(80, 12), 80)
        assert "val" in text.splitlines()[-1]
