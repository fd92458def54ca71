"""Quantization views: the snapping histogram, choice rows, the aligned table, label/value
lines and text comparison — rendered with a Rich Console, then the widgets in a Pilot."""

from __future__ import annotations

import numpy as np
import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from widget_testing import render_segments, render_text

from llm_anatomy_tui.core.quant import QuantScheme, quantize
from llm_anatomy_tui.views.quant_matrix import group_view
from llm_anatomy_tui.widgets.colors import SERIES_COLORS
from llm_anatomy_tui.widgets.quant_views import (
    GUTTER,
    Facts,
    FactsRenderable,
    OptionGroup,
    OptionRow,
    OptionRowRenderable,
    QuantTable,
    QuantTableRenderable,
    SnapHistogram,
    SnapHistogramRenderable,
    TextCompareRenderable,
    TextRow,
)

RNG = np.random.default_rng(0)
W = RNG.normal(0, 0.05, (64, 128)).astype(np.float32)
W[3, 5] = 0.4  # an outlier


def histogram_for(scheme: QuantScheme, **kwargs) -> tuple[SnapHistogramRenderable, object]:
    r = quantize(W, scheme)
    g = group_view(r, 0, 0)
    return SnapHistogramRenderable(
        g.before, g.after, g.grid, lo=g.lo, hi=g.hi, grid_count=g.grid_count, **kwargs
    ), g


# -- the snapping histogram ----------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme",
    [QuantScheme("int4", "per-tensor"), QuantScheme("int2", "per-channel", False),
     QuantScheme("fp8", "per-tensor"), QuantScheme("int8", "per-block")],
    ids=lambda s: s.label,
)  # fmt: skip
def test_values_after_sit_exactly_under_the_ticks(scheme):
    h, g = histogram_for(scheme)
    for columns in (20, 61, 150):
        b = h.bins(columns)
        assert b.before.sum() == g.size == b.after.sum()
        assert b.grid.sum() == g.grid.size
        assert np.all(b.grid[b.after > 0] > 0)  # no value after quantization off the grid


def test_ticks_and_bars_are_drawn_where_the_counts_are():
    h, _ = histogram_for(QuantScheme("int4", "per-tensor"))
    text = render_text(h, 80)
    lines = text.splitlines()
    assert len(lines) == h.height
    grid_line = next(line for line in lines if line.startswith("grid"))
    b = h.bins(80 - GUTTER)
    ticks = [i for i, ch in enumerate(grid_line[GUTTER:]) if ch in "┬╥"]
    assert ticks == list(np.flatnonzero(b.grid))
    after_line = next(line for line in lines if line.startswith("after"))
    bars = [i for i, ch in enumerate(after_line[GUTTER:].ljust(80 - GUTTER)) if ch != " "]
    assert bars == list(np.flatnonzero(b.after))
    assert f"{W.size:,} weights · ┬ 16 grid values" in lines[-1]
    assert lines[-2].split()[0] == f"{h.lo:.3f}" and lines[-2].split()[-1] == f"{h.hi:.3f}"


def test_the_tallest_column_fills_its_rows():
    h, _ = histogram_for(QuantScheme("int4", "per-tensor"), before_rows=2, after_rows=2)
    lines = render_text(h, 60).splitlines()
    b = h.bins(60 - GUTTER)
    top = int(np.argmax(b.before))
    assert lines[0][GUTTER + top] == "█" and lines[1][GUTTER + top] == "█"
    deepest = int(np.argmax(b.after))
    assert lines[3][GUTTER + deepest] == "█" and lines[4][GUTTER + deepest] == "█"


def test_a_float_format_without_a_drawable_grid_says_how_fine_it_is():
    h, g = histogram_for(QuantScheme("bf16"), grid_name="BF16")
    text = render_text(h, 120)
    assert f"BF16 grid too fine to draw ({g.grid_count:,} values in range)" in text
    assert "┬" not in text and "╥" not in text


def test_captions_shrink_to_fit_and_colours_mark_before_and_after():
    h, _ = histogram_for(QuantScheme("int8", "per-channel"))
    assert "(╥ several per column)" in render_text(h, 160)
    narrow = render_text(h, 40).splitlines()[-1]
    assert len(narrow) <= 40 and "…" not in narrow
    segs = render_segments(h, 60)
    colours = {s.style.color for line in segs for s in line if s.style and s.text.strip("▀█ ")}
    assert SERIES_COLORS[0].color in colours  # the before bars
    hanging = {
        s.style.color for line in segs for s in line if s.text.strip() and set(s.text) <= set("▀█ ")
    }
    assert SERIES_COLORS[1].color in hanging  # the after bars


def test_constant_and_empty_groups_do_not_break():
    text = render_text(SnapHistogramRenderable([0.5] * 4, [0.5] * 4, [0.5]), 60)
    assert "4 weights · ┬ 1 grid value ·" in text
    assert render_text(SnapHistogramRenderable([], [], empty_text="computing…"), 30) == "computing…"
    assert len(render_text(SnapHistogramRenderable(W[0], W[0]), 8).splitlines()) == 8


# -- choices -----------------------------------------------------------------------------------

FORMATS = ("FP32", "FP16", "BF16", "FP8", "INT8", "INT4", "INT3", "INT2")


def test_the_chosen_option_is_bracketed_without_colour_and_reversed_with_it():
    row = OptionRowRenderable([OptionGroup("Format", FORMATS, 5)], hint="f F", label_width=8)
    text = render_text(row, 80)
    assert text.startswith("Format  ") and "[INT4]" in text and text.endswith("f F")
    assert text.count("[") == 1
    segs = render_segments(row, 80)
    chosen = [s for line in segs for s in line if s.text == " INT4 "]
    assert chosen and chosen[0].style.reverse


def test_options_wrap_when_narrow_and_keep_every_option():
    groups = [
        OptionGroup("Scale", ("per tensor", "per channel", "per block of 32"), 2),
        OptionGroup("", ("sym", "asym"), 0, enabled=False, note="FP16 needs no scale"),
    ]
    row = OptionRowRenderable(groups, hint="g a", label_width=8)
    assert len(row.layout_lines(200)) == 1
    lines = row.layout_lines(30)
    assert len(lines) > 1
    text = render_text(row, 30)
    for word in ("per tensor", "per channel", "per block of 32", "sym", "asym", "g a"):
        assert word in text.replace("\n  ", " ")
    assert all(len(line) <= 30 for line in text.splitlines())


# -- the aligned table -----------------------------------------------------------------------


def test_table_aligns_columns_and_marks_the_highlighted_row():
    t = QuantTableRenderable(
        ("format", "GB"), [("FP32", "32.0"), ("INT4", "4.0")], highlight=1,
        title="An 8B model", note="GB = 10⁹ bytes",
    )  # fmt: skip
    lines = render_text(t, 40).splitlines()
    assert lines == [
        "An 8B model",
        "  format    GB",
        "  FP32    32.0",
        "▶ INT4     4.0",
        "GB = 10⁹ bytes",
    ]
    assert t.height == 5
    assert render_text(QuantTableRenderable((), ()), 20) == ""
    with pytest.raises(ValueError):
        QuantTableRenderable(("a", "b"), [("1",)])


def test_table_lines_are_cut_to_the_width():
    t = QuantTableRenderable(("a", "b"), [("x" * 30, "y" * 30)])
    assert all(len(line) <= 20 for line in render_text(t, 20).splitlines())


# -- facts and texts ---------------------------------------------------------------------------


def test_facts_wrap_under_their_value_column():
    f = FactsRenderable(
        [("range", "-0.4 … 0.4"), ("storage", "16,384 weights × 4 bits = 8,192 B " * 3)],
        title="Matrix",
    )
    lines = render_text(f, 50).splitlines()
    assert lines[0] == "Matrix" and lines[1].startswith("range    -0.4")
    assert lines[2].startswith("storage  16,384") and lines[3].startswith("         ")
    assert all(len(line) <= 50 for line in lines)
    narrow = render_text(f, 16).splitlines()
    assert narrow[1] == "range" and narrow[2].startswith("-0.4")


def test_text_compare_marks_only_where_the_texts_part():
    rows = [
        TextRow("FP32", " Once upon a time a ", "dog ran home."),
        TextRow("INT4", " Once upon a time a ", "cat sat.\nThe end.", mark_rest=True),
    ]
    r = TextCompareRenderable(rows, max_lines=None)
    text = render_text(r, 80)
    assert text.splitlines() == [
        "FP32 Once upon a time a dog ran home.",
        "INT4 Once upon a time a cat sat.⏎The end.",
    ]
    segs = render_segments(r, 80)
    marked = "".join(s.text for s in segs[1] if s.style and s.style.underline)
    assert marked == "cat sat.⏎The end." and not any(s.style and s.style.underline for s in segs[0])
    cut = render_text(TextCompareRenderable(rows, max_lines=1), 20).splitlines()
    assert len(cut) == 2 and cut[0].endswith("…") and all(len(x) <= 20 for x in cut)


# -- the widgets in an app ---------------------------------------------------------------------


class ViewsApp(App):
    def compose(self) -> ComposeResult:
        yield OptionRow(id="row", label_width=8)
        yield SnapHistogram(id="hist")
        yield QuantTable(id="table")
        yield Facts(id="facts")


async def test_widgets_update_in_place_and_grow_only_when_needed():
    app = ViewsApp()
    async with app.run_test(size=(60, 30)) as pilot:
        row, hist = app.query_one("#row", OptionRow), app.query_one("#hist", SnapHistogram)
        table, facts = app.query_one("#table", QuantTable), app.query_one("#facts", Facts)
        row.set_groups([OptionGroup("Format", FORMATS, 0)], hint="f F")
        r = quantize(W, QuantScheme("int4", "per-tensor"))
        g = group_view(r, 0, 0)
        hist.set_data(g.before, g.after, g.grid, lo=g.lo, hi=g.hi, grid_count=g.grid_count)
        table.set_table(header=("format", "GB"), rows=[("FP32", "32.0"), ("INT4", "4.0")])
        facts.set_rows([("rmse", "0.001"), ("max", Text("computing…", style="italic"))])
        await pilot.pause()
        assert row.size.height == 1 and hist.size.height == 8
        assert table.size.height == 3 and facts.size.height == 2
        hist_text = render_text(hist.renderable(60), 60)
        assert "16 grid values" in hist_text
        table.set_table(highlight=1)
        await pilot.pause()
        assert table.highlight == 1 and table.size.height == 3
        row.set_groups([OptionGroup("Format", FORMATS * 3, 2)])  # now it has to wrap
        await pilot.pause()
        assert row.size.height > 1
        hist.clear("computing…")
        await pilot.pause()
        assert render_text(hist.renderable(60), 60) == "computing…"
        assert "rmse  0.001" in facts.plain()


async def test_no_color_draws_brackets(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = ViewsApp()
    async with app.run_test(size=(80, 10)) as pilot:
        row = app.query_one("#row", OptionRow)
        row.set_groups([OptionGroup("Format", FORMATS, 4)])
        await pilot.pause()
        renderable = row.renderable(80)
        assert renderable.color_mode == "none"  # decided by the app, not the console
        assert "[INT8]" in render_segments_text(renderable)


def render_segments_text(renderable) -> str:  # noqa: ANN001
    """Text of a renderable drawn on a truecolor console (its own colour mode decides)."""
    return "".join(s.text for line in render_segments(renderable, 80) for s in line)


def test_module_doctests():
    import doctest

    from llm_anatomy_tui.widgets import quant_views

    assert doctest.testmod(quant_views).failed == 0


def test_histogram_title_keeps_its_rows_whatever_its_length():
    h, _ = histogram_for(QuantScheme("int4", "per-block"))
    cases = [
        ("", ""),
        ("Block 1 of 512", "Block 1 of 512"),
        (
            "Block 1 of 512 (row 0, columns 0–31) · d = 0.02 " * 3,
            "Block 1 of 512 (row 0, columns 0–31) · d",
        ),
    ]
    for title, first_line in cases:
        r = SnapHistogramRenderable(h.before, h.after, h.grid, title=title, title_rows=2)
        lines = render_text(r, 40).split("\n")
        assert len(lines) == r.height == h.height + 2
        assert lines[0] == first_line
    long = SnapHistogramRenderable(h.before, h.after, h.grid, title="word " * 40, title_rows=2)
    assert render_text(long, 40).splitlines()[1].endswith("…")


def test_facts_count_lines_without_rendering_matches_the_render():
    rows = [
        ("range", "-0.40447 … 0.36524  →  -0.40454 … 0.36523"),
        ("storage", Text("16,384 weights × 4 bits = 8,192 B + 512 fp16 scales = 1,024 B " * 2)),
        ("status", Text("⧗ still computing: text, KL, top-1, perplexity — starting")),
    ]
    for width in (16, 30, 45, 80, 140):
        f = FactsRenderable(rows, title="The whole model in INT4 · per-block-32 · sym (Q4_0)")
        assert f.count_lines(width) == len(render_text(f, width).split("\n")), width
