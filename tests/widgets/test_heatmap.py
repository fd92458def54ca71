"""Heatmap: the Rich renderable rendered to text, and the widget driven by keys."""

from __future__ import annotations

import re

import numpy as np
import pytest
from rich.table import Table
from widget_testing import Harness, render_segments, render_text

from llm_anatomy_tui.widgets._format import fmt
from llm_anatomy_tui.widgets.colors import DIVERGING, MASK_GLYPH, SEQUENTIAL
from llm_anatomy_tui.widgets.heatmap import Heatmap, HeatmapRenderable

TOKENS = ["A", "·blue", "·car", "·crashed", "·into", "·a"]
T = len(TOKENS)
MASK = np.triu(np.ones((T, T), dtype=bool), 1)


def weights(t: int = T) -> np.ndarray:
    i = np.arange(t)[:, None]
    j = np.arange(t)[None, :]
    s = np.sin(1.3 * i + 0.7 * j)
    mask = np.triu(np.ones((t, t), dtype=bool), 1)
    z = np.exp(np.where(mask, -np.inf, s))
    return z / z.sum(axis=1, keepdims=True)


def grid_rows(text: str, labels: list[str]) -> dict[str, str]:
    """Map row label → the rest of its grid line."""
    out = {}
    for line in text.splitlines():
        for label in labels:
            if line[1:].startswith(label + " "):
                out[label] = line[1 + len(label) :]
    return out


def test_labels_values_and_decimals():
    w = weights()
    text = render_text(
        HeatmapRenderable(w, row_labels=TOKENS, col_labels=TOKENS, mask=MASK, decimals=3), 80
    )
    for tok in TOKENS:
        assert tok in text
    rows = grid_rows(text, ["·crashed"])
    numbers = re.findall(r"-?\d+\.\d+", rows["·crashed"])
    assert numbers == [fmt(v, 3) for v in w[3, :4]]  # exactly the given values, 3 places


def test_masked_cells_show_the_mask_glyph_never_a_value():
    w = weights()
    sentinel = w.copy()
    sentinel[MASK] = 0.777  # a value that must never appear
    text = render_text(
        HeatmapRenderable(sentinel, row_labels=TOKENS, col_labels=TOKENS, mask=MASK), 80
    )
    assert "0.78" not in text
    rows = grid_rows(text, TOKENS)
    for i, tok in enumerate(TOKENS):
        assert rows[tok].count(MASK_GLYPH) == int(MASK[i].sum())
    assert f"{MASK_GLYPH} masked" in text


def test_masked_cells_are_not_coloured_as_values():
    w = weights()
    r = HeatmapRenderable(w, row_labels=TOKENS, col_labels=TOKENS, mask=MASK, show_values=False)
    value_bgs = {s.bgcolor for s in SEQUENTIAL.bg_styles}
    for line in render_segments(r, 60):
        for seg in line:
            if MASK_GLYPH in seg.text:
                assert seg.style is None or seg.style.bgcolor not in value_bgs


def test_cursor_markers_and_status_line():
    w = weights()
    text = render_text(
        HeatmapRenderable(w, row_labels=TOKENS, col_labels=TOKENS, mask=MASK, cursor=(4, 2)), 80
    )
    lines = text.splitlines()
    row_line = next(line for line in lines if line.startswith("▶"))
    assert "·into" in row_line
    assert f"▸{fmt(w[4, 2], 2)}" in row_line
    assert any(line.strip() == "▼" for line in lines)
    assert f"[4,2] ·into → ·car: {fmt(w[4, 2], 2)}" in text


def test_cursor_on_masked_cell_says_masked():
    text = render_text(HeatmapRenderable(weights(), mask=MASK, cursor=(0, 3)), 80)
    assert "[0,3] 0 → 3: masked" in text


def test_legend_shows_range_and_diverging_is_symmetric():
    s = np.array([[-0.5, 1.25], [2.0, -1.0]])
    text = render_text(HeatmapRenderable(s, cmap="diverging", decimals=2), 60)
    assert "-2.00" in text and "2.00" in text
    text = render_text(HeatmapRenderable(s, cmap="sequential", vmin=0, vmax=3), 60)
    legend = [line for line in text.splitlines() if line.startswith("0.00")]
    assert legend and legend[0].endswith("3.00")


def test_no_color_uses_glyphs_so_meaning_survives():
    s = np.array([[-2.0, 0.0, 2.0]])
    text = render_text(HeatmapRenderable(s, cmap="diverging", show_values=False), 40)
    grid = [line for line in text.splitlines() if line.startswith(" 0 ")]
    assert grid, text
    row = grid[0][3:]
    assert "≡" in row and "#" in row
    assert row.index("≡") < row.index("#")
    assert "≡=-␣+*#" in text  # the glyph legend
    # an explicit "none" mode draws glyphs even on a colour console
    segs = render_segments(
        HeatmapRenderable(s, cmap="diverging", show_values=False, color_mode="none"), 40
    )
    assert any("≡" in seg.text for line in segs for seg in line)


def test_colour_cells_carry_the_colour_map_style():
    s = np.array([[0.0, 1.0]])
    segs = render_segments(HeatmapRenderable(s, show_values=False, vmin=0, vmax=1), 40)
    bgs = [seg.style.bgcolor for line in segs for seg in line if seg.style and seg.style.bgcolor]
    assert SEQUENTIAL.bg_styles[0].bgcolor in bgs
    assert SEQUENTIAL.bg_styles[-1].bgcolor in bgs


def test_large_matrix_scrolls_around_cursor_and_says_so():
    big = np.linspace(0, 1, 256 * 256).reshape(256, 256)
    r = HeatmapRenderable(big, cursor=(100, 60), height=20)
    text = render_text(r, 80)
    lay = r.last_layout
    assert lay is not None
    assert lay.row_start <= 100 < lay.row_stop and lay.col_start <= 60 < lay.col_stop
    note = f"rows {lay.row_start}–{lay.row_stop - 1} of 256 · cols {lay.col_start}–{lay.col_stop - 1} of 256"
    assert note in text
    assert len(text.splitlines()) <= 20
    # the row labels shown are exactly the window's rows
    shown = [int(m) for m in re.findall(r"^[ ▶](\d+) ", text, flags=re.M)]
    assert shown == list(range(lay.row_start, lay.row_stop))


def test_large_matrix_aggregates_and_says_so():
    big = np.zeros((256, 256))
    big[37, 200] = 5.0
    r = HeatmapRenderable(big, overflow="aggregate", height=20, reduce="max", cursor=(0, 0))
    text = render_text(r, 80)
    lay = r.last_layout
    assert lay is not None and lay.aggregated
    shape = f"{lay.row_stop}×{lay.col_stop} blocks of {lay.block_rows}×{lay.block_cols} (max)"
    assert f"256×256 shown as {shape}" in text
    assert "[0,0] 0 → 0: 0.00" in text  # the status shows the exact cell, not its block
    # the spike survives the max-reduction: exactly one full cell, in the spike's block row
    grid = [line for line in text.splitlines() if re.match(r"^[ ▶]\d+ ", line)]
    assert sum(line.count("█") for line in grid) == 1
    spike_line = next(line for line in grid if "█" in line)
    assert spike_line.split()[0].lstrip("▶") == str((37 // lay.block_rows) * lay.block_rows)


def test_aggregate_mean_ignores_masked_cells():
    from llm_anatomy_tui.widgets.heatmap import _reduce_blocks

    v = np.array([[1.0, np.nan], [3.0, np.nan]])
    assert _reduce_blocks(v, 2, 2, "mean")[0, 0] == pytest.approx(2.0)
    assert np.isnan(_reduce_blocks(np.full((2, 2), np.nan), 2, 2, "max")[0, 0])


def test_compact_heads_fit_side_by_side_at_80_columns():
    t = 13
    mask = np.triu(np.ones((t, t), dtype=bool), 1)
    tokens = ["A", "·blue", "·car", "·crashed", "·into", "·a", "·concrete", "·wall", ",",
              "·it", "·was", "·speeding", "."]  # fmt: skip
    grid = Table.grid(padding=(0, 1))
    renderables = []
    for h in range(4):
        r = HeatmapRenderable(
            weights(t), mask=mask, row_labels=tokens, compact=True, title=f"head {h}",
            cursor=(12, 2), width=19,
        )  # fmt: skip
        renderables.append(r)
        grid.add_column(width=19)
    grid.add_row(*renderables)
    text = render_text(grid, 80)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert len(lines) <= 22  # room for a footer and a header at 80×24
    for r in renderables:
        lay = r.last_layout
        assert lay is not None and lay.col_stop - lay.col_start == t and not lay.aggregated
    assert text.count("head ") == 4
    assert "rows" not in text and "cols" not in text  # nothing cut, so no note


def test_short_height_drops_chrome_before_rows():
    r = HeatmapRenderable(weights(13), mask=np.triu(np.ones((13, 13), bool), 1), cursor=(5, 2),
                          title="t", height=8)  # fmt: skip
    text = render_text(r, 60)
    lay = r.last_layout
    assert lay is not None and lay.row_stop - lay.row_start >= 4
    assert len(text.splitlines()) <= 8


def test_control_characters_in_labels_do_not_break_lines():
    text = render_text(HeatmapRenderable(np.eye(2), row_labels=["a\nb", "c"]), 40)
    assert "a⏎b" in text


def test_bad_mask_shape_and_empty_matrix():
    with pytest.raises(ValueError, match="mask shape"):
        HeatmapRenderable(np.eye(3), mask=np.zeros((2, 2), bool))
    assert "(empty)" in render_text(HeatmapRenderable(np.zeros((0, 0))), 40)


def test_vertical_column_labels_skip_space_markers():
    w = weights()
    text = render_text(
        HeatmapRenderable(w, row_labels=TOKENS, col_labels=TOKENS, show_values=False), 40
    )
    header = text.splitlines()[0]
    assert "b" in header and "c" in header  # ·blue, ·car start with their letters


# -- the widget ---------------------------------------------------------------------------


async def test_widget_cursor_keys_messages_and_rerender():
    w = weights()
    heatmap = Heatmap(w, mask=MASK, row_labels=TOKENS, col_labels=TOKENS, cursor=(2, 0))
    app = Harness(heatmap)
    async with app.run_test(size=(80, 24)) as pilot:
        assert heatmap.has_focus
        await pilot.press("down", "right")
        assert heatmap.cursor == (3, 1)
        last = app.messages[-1]
        assert isinstance(last, Heatmap.CellSelected)
        assert (last.row, last.col, last.value, last.masked) == (3, 1, float(w[3, 1]), False)
        await pilot.press("end")
        assert heatmap.cursor == (3, T - 1)
        assert app.messages[-1].masked and app.messages[-1].value is None
        await pilot.press("home", "up", "up", "up", "up", "up")
        assert heatmap.cursor == (0, 0)  # clamped at the edge

        renders = app.renders
        new = np.full((3, 3), 0.5)
        heatmap.set_data(new, row_labels=["x", "y", "z"], col_labels=["p", "q", "r"])
        await pilot.pause()
        assert app.renders > renders
        text = render_text(heatmap.renderable(60, 20), 60)
        assert "x" in text and "0.50" in text

        heatmap.cursor = (10, 10)
        assert heatmap.cursor == (2, 2)  # clamped to the new shape

        await pilot.press("v")
        assert heatmap.show_values is False
        await pilot.press("v")
        assert heatmap.show_values is True
        await pilot.press("a")
        assert heatmap.overflow == "aggregate"


async def test_widget_pages_through_a_long_matrix():
    big = np.linspace(0, 1, 256 * 256).reshape(256, 256)
    heatmap = Heatmap(big, cursor=(0, 0))
    app = Harness(heatmap)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("pagedown")
        assert heatmap.cursor[0] > 5
        for _ in range(30):
            await pilot.press("pagedown")
        assert heatmap.cursor[0] == 255
        await pilot.pause()
        r = heatmap.renderable(heatmap.content_region.width, heatmap.content_region.height)
        text = render_text(r, heatmap.content_region.width)
        assert "of 256" in text and "255" in text


def test_widget_bindings_declare_ids_and_tooltips():
    for binding in Heatmap.BINDINGS:
        assert binding.id and binding.id.startswith("heatmap.")
        assert binding.tooltip


def test_diverging_map_is_used_by_name():
    r = HeatmapRenderable(np.array([[-1.0, 1.0]]), cmap="diverging")
    assert r.cmap is DIVERGING


def test_unmasked_non_finite_values_are_not_drawn_as_masked():
    v = np.array([[0.5, np.nan], [-np.inf, 0.25]])
    glyphs = render_text(HeatmapRenderable(v, show_values=False), 40)
    assert "?" in glyphs and MASK_GLYPH + " masked" not in glyphs
    numbers = render_text(HeatmapRenderable(v, show_values=True), 40)
    assert "nan" in numbers and "-inf" in numbers


def test_row_highlight_marks_both_ends():
    text = render_text(HeatmapRenderable(weights(), cursor=(2, 1), highlight="row"), 60)
    row = next(line for line in text.splitlines() if line.startswith("▶"))
    assert row.rstrip().endswith("◀")
    assert "▼" not in text and "▸" not in text


async def test_widget_draws_glyphs_when_the_app_runs_without_colour(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    heatmap = Heatmap(np.array([[-1.0, 1.0]]), cmap="diverging", show_values=False)
    app = Harness(heatmap)
    async with app.run_test(size=(40, 10)):
        assert app.no_color
        r = heatmap.renderable(40, 10)
        assert r.color_mode == "none"
        segs = render_segments(r, 40)
        assert any("≡" in seg.text for line in segs for seg in line)


@pytest.mark.parametrize("term", ["dumb", "xterm", "xterm-256color"])
async def test_widget_colours_do_not_depend_on_term(monkeypatch, term):
    monkeypatch.setenv("TERM", term)
    monkeypatch.delenv("NO_COLOR", raising=False)
    heatmap = Heatmap(np.array([[0.0, 1.0]]), show_values=False)
    app = Harness(heatmap)
    async with app.run_test(size=(40, 10)):
        r = heatmap.renderable(40, 10)
        assert r.color_mode == "color"
        segs = render_segments(r, 40)
        assert any(seg.style and seg.style.bgcolor for line in segs for seg in line)


async def test_auto_height_follows_new_data_and_stops_at_max_height():
    """Data with more rows gets a taller widget (a new layout), but only while the height
    is not capped: a 200-row matrix in a max-height box asks for no layout at all."""
    heatmap = Heatmap(title="grows")
    app = Harness(heatmap)
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.pause()
        assert heatmap.size.height <= 3  # title, "(empty)", legend
        heatmap.set_data(weights(4), mask=np.triu(np.ones((4, 4), dtype=bool), 1))
        await pilot.pause()
        small = heatmap.size.height
        assert small >= 4 + 2  # four grid rows plus chrome
        heatmap.set_data(weights(12), mask=np.triu(np.ones((12, 12), dtype=bool), 1))
        await pilot.pause()
        assert heatmap.size.height == small + 8
        heatmap.styles.max_height = 10
        await pilot.pause()
        assert heatmap.size.height == 10
        layouts = []
        original = heatmap.refresh

        def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            layouts.append(kwargs.get("layout", False))
            return original(*args, **kwargs)

        heatmap.refresh = spy  # type: ignore[method-assign]
        heatmap.set_data(weights(200), mask=np.triu(np.ones((200, 200), dtype=bool), 1))
        heatmap.set_data(weights(201), mask=np.triu(np.ones((201, 201), dtype=bool), 1))
        await pilot.pause()
        assert heatmap.size.height == 10
        assert not any(layouts), "a capped height never asks for a layout"
        heatmap.title = None  # one line less of chrome: still capped, still no layout
        await pilot.pause()
        assert not any(layouts)


async def test_chrome_is_cached_until_focus_or_css_changes():
    from llm_anatomy_tui.widgets.heatmap import cached_chrome

    heatmap = Heatmap(weights(), title="t")
    app = Harness(heatmap)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        focused = cached_chrome(heatmap, "heatmap")
        assert cached_chrome(heatmap, "heatmap") is focused  # remembered
        heatmap.blur()
        await pilot.pause()
        blurred = cached_chrome(heatmap, "heatmap")
        assert blurred is not focused and blurred.title != focused.title  # :focus title style
        heatmap.add_class("other")
        assert cached_chrome(heatmap, "heatmap") is not blurred
