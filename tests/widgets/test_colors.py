"""Colour maps and the shared text helpers."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from llm_anatomy_tui.widgets._format import (
    fit,
    fmt,
    fmt_cells,
    fmt_percent,
    sanitize_label,
    span_note,
    window,
)
from llm_anatomy_tui.widgets.colors import (
    DIVERGING,
    SEQUENTIAL,
    get_cmap,
    use_color,
)


def test_levels_cover_the_range_and_clip():
    assert SEQUENTIAL.level(0.0, 0.0, 1.0) == 0
    assert SEQUENTIAL.level(1.0, 0.0, 1.0) == SEQUENTIAL.levels - 1
    assert SEQUENTIAL.level(-5.0, 0.0, 1.0) == 0
    assert SEQUENTIAL.level(5.0, 0.0, 1.0) == SEQUENTIAL.levels - 1


def test_diverging_zero_is_the_middle_level_and_blank_without_colour():
    mid = DIVERGING.level(0.0, -2.0, 2.0)
    assert mid == (DIVERGING.levels - 1) // 2
    assert DIVERGING.glyph(0.0, -2.0, 2.0) == " "
    assert DIVERGING.glyph(-2.0, -2.0, 2.0) == "≡"
    assert DIVERGING.glyph(2.0, -2.0, 2.0) == "#"
    assert DIVERGING.glyph(-0.5, -2.0, 2.0) == "-"
    assert DIVERGING.glyph(0.5, -2.0, 2.0) == "+"


def test_sequential_glyphs_run_from_blank_to_full_block():
    assert SEQUENTIAL.glyph(0.0, 0.0, 1.0) == " "
    assert SEQUENTIAL.glyph(1.0, 0.0, 1.0) == "█"


def test_level_array_matches_level_and_marks_nan():
    values = np.array([-1.0, -0.3, 0.0, 0.42, 1.0, np.nan, np.inf])
    levels = DIVERGING.level_array(values, -1.0, 1.0)
    for v, lv in zip(values[:5], levels[:5], strict=True):
        assert lv == DIVERGING.level(float(v), -1.0, 1.0)
    assert levels[5] == -1 and levels[6] == -1


def test_styles_are_cached_objects():
    a = SEQUENTIAL.style(0.5, 0.0, 1.0)
    b = SEQUENTIAL.style(0.5, 0.0, 1.0)
    assert a is b
    assert a.bgcolor is not None
    fg = SEQUENTIAL.style(0.5, 0.0, 1.0, background=False)
    assert fg.bgcolor is None and fg.color is not None


def test_contrast_foreground_on_bright_cells():
    bright = SEQUENTIAL.bg_styles[-1]  # yellow
    dark = SEQUENTIAL.bg_styles[0]  # dark purple
    assert bright.color.get_truecolor() == (0, 0, 0)
    assert dark.color.get_truecolor() == (255, 255, 255)


def test_auto_range():
    assert DIVERGING.auto_range(np.array([-0.5, 2.0])) == (-2.0, 2.0)
    assert SEQUENTIAL.auto_range(np.array([0.2, 0.7])) == (0.2, 0.7)
    assert SEQUENTIAL.auto_range(np.array([])) == (0.0, 1.0)
    lo, hi = SEQUENTIAL.auto_range(np.array([3.0, 3.0]))
    assert hi > lo


def test_use_color_follows_console_or_explicit_mode():
    assert not use_color(Console(color_system=None))
    assert not use_color(Console(color_system="truecolor", no_color=True))
    assert use_color(Console(color_system="truecolor", force_terminal=True))
    assert use_color(Console(color_system="256", force_terminal=True))
    assert not use_color(Console(color_system="standard", force_terminal=True))  # 16 colours
    assert use_color(Console(color_system=None), "color")
    assert not use_color(Console(color_system="truecolor", force_terminal=True), "none")


def test_256_colour_downgrade_keeps_ordered_steps():
    from rich.color import ColorSystem

    for cmap in (SEQUENTIAL, DIVERGING):
        numbers = [s.bgcolor.downgrade(ColorSystem.EIGHT_BIT).number for s in cmap.bg_styles]
        runs = [numbers[0]] + [b for a, b in zip(numbers, numbers[1:], strict=False) if a != b]
        assert len(set(numbers)) >= 10
        assert len(runs) == len(set(runs))  # no colour comes back: the order survives


def test_get_cmap():
    assert get_cmap("diverging") is DIVERGING
    assert get_cmap(SEQUENTIAL) is SEQUENTIAL
    with pytest.raises(ValueError, match="unknown colour map"):
        get_cmap("rainbow")  # type: ignore[arg-type]


def test_fmt_is_exact_to_decimals():
    assert fmt(0.12345, 3) == "0.123"
    assert fmt(2, 2) == "2.00"
    assert fmt(-0.001, 2) == "-0.00"
    assert fmt(float("nan"), 2) == "nan"
    assert fmt(float("-inf"), 2) == "-inf"
    assert fmt_percent(0.53125, 1) == "53.1%"


def test_fmt_cells_is_fmt_right_aligned():
    values = [0.125, -0.001, 2.5, 1e6, float("nan"), float("inf"), float("-inf"), -0.0]
    for d in (0, 2, 3):
        cells = fmt_cells(values, d, 12)
        assert [c.strip() for c in cells] == [fmt(v, d) for v in values]
        assert all(len(c) == 12 for c in cells)


def test_sanitize_label_makes_control_characters_visible():
    assert sanitize_label("a\nb\tc") == "a⏎b⇥c"
    assert sanitize_label("\x00") == "␀"
    assert sanitize_label("·car") == "·car"


def test_fit_pads_and_cuts_with_ellipsis():
    assert fit("car", 5) == "car  "
    assert fit("car", 5, "right") == "  car"
    assert fit("crashed", 4) == "cra…"
    assert fit("漢字漢字", 5) == "漢字…"  # wide characters are measured in cells
    assert fit("x", 0) == ""


def test_window_keeps_focus_inside():
    assert window(10, 20, 3) == (0, 10)
    assert window(256, 24, 0) == (0, 24)
    assert window(256, 24, 255) == (232, 256)
    start, stop = window(256, 24, 100)
    assert start <= 100 < stop and stop - start == 24
    assert span_note("rows", 40, 64, 256) == "rows 40–63 of 256"
