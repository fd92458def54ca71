"""Vector strip: wrapping, numbers, legend, glyphs; the widget by keys."""

from __future__ import annotations

import re

import numpy as np
from widget_testing import Harness, render_segments, render_text

from llm_anatomy_tui.widgets._format import fmt
from llm_anatomy_tui.widgets.colors import DIVERGING
from llm_anatomy_tui.widgets.vector_strip import VectorStrip, VectorStripRenderable

V = np.sin(np.arange(128) * 0.37) * np.linspace(1.2, 0.2, 128)


def test_wraps_to_the_width_with_line_indices():
    r = VectorStripRenderable(V, legend=False)
    text = render_text(r, 40)
    lay = r.layout(40, None)
    starts = [int(m) for m in re.findall(r"^ *(\d+) ", text, flags=re.M)]
    assert starts == list(range(0, 128, lay.per_line))
    assert all(len(line) <= 40 for line in text.splitlines())


def test_numbers_under_cells_to_the_decimals():
    v = np.array([0.1234, -0.5, 0.9, 0.0])
    text = render_text(VectorStripRenderable(v, show_values=True, decimals=3), 60)
    numbers = re.findall(r"-?\d+\.\d{3}", text.splitlines()[1])
    assert numbers == [fmt(x, 3) for x in v]


def test_legend_min_max_and_range():
    text = render_text(VectorStripRenderable(V, decimals=2), 80)
    i_min, i_max = int(np.argmin(V)), int(np.argmax(V))
    assert f"min {fmt(V[i_min], 2)} @{i_min}" in text
    assert f"max {fmt(V[i_max], 2)} @{i_max}" in text
    m = fmt(np.abs(V).max(), 2)
    assert f"-{m}" in text and f" {m}" in text


def test_no_color_glyphs_carry_sign_and_size():
    text = render_text(VectorStripRenderable([-1.0, 0.0, 1.0], legend=False), 30)
    cells = text.splitlines()[0][2:]
    assert "≡" in cells and "#" in cells
    assert cells.index("≡") < cells.index("#")


def test_colour_cells_use_the_diverging_map():
    segs = render_segments(VectorStripRenderable([-1.0, 1.0], legend=False), 20)
    bgs = {seg.style.bgcolor for line in segs for seg in line if seg.style and seg.style.bgcolor}
    assert DIVERGING.bg_styles[0].bgcolor in bgs and DIVERGING.bg_styles[-1].bgcolor in bgs


def test_cursor_and_status():
    text = render_text(VectorStripRenderable(V, cursor=17), 80)
    assert f"dim 17 = {fmt(V[17], 2)}" in text
    assert "◆" in text


def test_height_cut_says_which_dims_are_shown():
    r = VectorStripRenderable(V, show_values=True, cursor=100, height=10)
    text = render_text(r, 80)
    lay = r.layout(80, 10)
    a = lay.line_start * lay.per_line
    b = min(128, lay.line_stop * lay.per_line)
    assert a <= 100 < b
    assert f"dims {a}–{b - 1} of 128" in text
    assert len(text.splitlines()) <= 10


def test_shared_range_for_comparison():
    a = render_text(VectorStripRenderable([0.5], vmin=-2, vmax=2), 40)
    assert "-2.00" in a and "2.00" in a


def test_empty_vector():
    assert "(empty vector)" in render_text(VectorStripRenderable([]), 40)


async def test_widget_cursor_keys_messages_and_rerender():
    strip = VectorStrip(V, title="emb")
    app = Harness(strip)
    async with app.run_test(size=(80, 24)) as pilot:
        assert strip.has_focus
        await pilot.press("right", "right", "right")
        assert strip.cursor == 3
        msg = app.messages[-1]
        assert isinstance(msg, VectorStrip.DimSelected)
        assert (msg.index, msg.value) == (3, float(V[3]))
        await pilot.press("down")
        per_line = strip.renderable(80).layout(80, None).per_line
        assert strip.cursor == 3 + per_line
        await pilot.press("end")
        assert strip.cursor == 127
        await pilot.press("v")
        assert strip.show_values

        renders = app.renders
        strip.values = np.array([0.25, -0.25])
        await pilot.pause()
        assert app.renders > renders
        assert strip.cursor == 1  # clamped
        assert "dim 1 = -0.25" in render_text(strip.renderable(60), 60)


def test_bindings_declare_ids_and_tooltips():
    for binding in VectorStrip.BINDINGS:
        assert binding.id and binding.id.startswith("vectorstrip.") and binding.tooltip


async def test_auto_height_follows_numbers_and_length():
    strip = VectorStrip(np.arange(8.0), title="v")
    app = Harness(strip)
    async with app.run_test(size=(40, 20)) as pilot:
        await pilot.pause()
        before = strip.size.height
        strip.show_values = True  # a line of numbers under each line of cells
        await pilot.pause()
        with_numbers = strip.size.height
        assert with_numbers > before
        strip.values = np.arange(200.0)  # wraps onto more lines
        await pilot.pause()
        assert strip.size.height > with_numbers
