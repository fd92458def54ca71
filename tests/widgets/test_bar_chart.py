"""Bar chart and cumulative strip: renderables as text, the widget by keys."""

from __future__ import annotations

import numpy as np
from widget_testing import Harness, render_text

from llm_anatomy_tui.widgets._format import fmt, fmt_percent
from llm_anatomy_tui.widgets.bar_chart import (
    BarChart,
    BarChartRenderable,
    BarColumn,
    CumulativeStrip,
    CumulativeStripRenderable,
)

LABELS = ["·the", "·a", "·his", "·her", "·their", "·one"]
LOGITS = np.array([5.1, 4.3, 3.2, 3.0, 2.2, 1.9])
PROBS = np.exp(LOGITS - LOGITS.max()) / np.exp(LOGITS - LOGITS.max()).sum()
CUT = [None, None, None, "top-k", "top-p", "top-p"]


def chart(**kw) -> BarChartRenderable:
    args = dict(
        columns=[BarColumn("logit", LOGITS, 2), BarColumn("p", PROBS, 1, percent=True)],
        cut=CUT,
        highlight=1,
        cursor=2,
        label_header="token",
        bar_header="probability",
    )
    args.update(kw)
    return BarChartRenderable(LABELS, PROBS, **args)


def painted_text(widget) -> str:  # noqa: ANN001
    """What the widget paints now, line by line (the strips Textual asks it for)."""
    return "\n".join(
        "".join(seg.text for seg in widget.render_line(y)) for y in range(widget.size.height)
    )


def row_of(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line[1:].startswith(label + " "))


def test_labels_headers_and_numbers_exactly_as_given():
    text = render_text(chart(), 80)
    header = text.splitlines()[0]
    for h in ("token", "logit", "p", "probability"):
        assert h in header
    for i, label in enumerate(LABELS):
        line = row_of(text, label)
        assert fmt(LOGITS[i], 2) in line
        assert fmt_percent(PROBS[i], 1) in line


def test_cut_rows_are_marked_and_drawn_as_removed():
    text = render_text(chart(), 80)
    for label, reason in zip(LABELS, CUT, strict=True):
        line = row_of(text, label)
        if reason:
            assert f"✂ {reason}" in line
            assert "█" not in line  # cut bars are drawn in ░ only
        else:
            assert "✂" not in line
    assert "░" in row_of(text, "·her")


def test_highlight_and_cursor_are_distinct():
    text = render_text(chart(), 80)
    assert "◀ chosen" in row_of(text, "·a")
    assert sum("◀ chosen" in line for line in text.splitlines()) == 1
    assert text.splitlines()[3].startswith("▶·his")
    assert "▶" not in row_of(text, "·a")


def test_bar_lengths_are_proportional():
    r = BarChartRenderable(["a", "b", "c"], [1.0, 0.5, 0.25], scale_max=1.0)
    text = render_text(r, 50)
    lines = text.splitlines()
    full = lines[0].count("█")
    assert full > 20
    assert abs(lines[1].count("█") - full / 2) <= 1
    assert abs(lines[2].count("█") - full / 4) <= 1


def test_negative_values_draw_left_of_the_axis():
    r = BarChartRenderable(["neg", "pos"], [-1.0, 1.0])
    lines = render_text(r, 40).splitlines()
    neg_end = lines[0].rindex("█")
    pos_start = lines[1].index("█")
    assert neg_end < pos_start


def test_long_lists_scroll_to_the_cursor_and_say_so():
    labels = [f"t{i}" for i in range(50)]
    values = np.linspace(1, 0, 50)
    r = BarChartRenderable(labels, values, cursor=40, height=12)
    text = render_text(r, 60)
    a, b = r.last_window
    assert a <= 40 < b
    assert f"rows {a}–{b - 1} of 50" in text
    assert len(text.splitlines()) <= 12


def test_empty_chart():
    assert "(no rows)" in render_text(BarChartRenderable([], []), 40)


def test_cumulative_strip_names_the_segment_u_fell_in():
    kept = PROBS[:3] / PROBS[:3].sum()
    u = 0.9
    r = CumulativeStripRenderable(LABELS[:3], kept, u, decimals=3, width=60)
    text = render_text(r, 60)
    cdf = np.cumsum(kept)
    k = int(np.searchsorted(cdf, u, side="right"))
    assert r.segment_index == k
    lo, hi = (0.0 if k == 0 else cdf[k - 1]), cdf[k]
    assert f"u = {fmt(u, 3)} is in [{fmt(lo, 3)}, {fmt(hi, 3)}) → {LABELS[k]}" in text
    assert f"(p = {fmt(kept[k], 3)})" in text
    # the ▲ sits inside segment k's drawn columns
    lines = text.splitlines()
    strip, marker = lines[0], lines[1]
    col = marker.index("▲")
    starts = [i for i, ch in enumerate(strip) if ch == "│"]
    assert starts[k] <= col < (starts[k + 1] if k + 1 < len(starts) else len(strip))


def test_cumulative_strip_rest_segment():
    r = CumulativeStripRenderable(["x", "y"], [0.5, 0.3], 0.95, decimals=2)
    text = render_text(r, 50)
    assert r.segment_index == 2
    assert "→ rest" in text and "(p = 0.20)" in text
    assert "u = 0.95 is in [0.80, 1.00)" in text


def test_cumulative_strip_without_a_draw():
    text = render_text(CumulativeStripRenderable(["x"], [1.0], None), 30)
    assert "▲" not in text and " 0" in text


# -- widgets ----------------------------------------------------------------------------


async def test_bar_chart_widget_keys_messages_and_rerender():
    bars = BarChart(
        LABELS, PROBS, columns=[BarColumn("p", PROBS, 1, percent=True)], cut=CUT, highlight=0
    )
    app = Harness(bars)
    async with app.run_test(size=(80, 24)) as pilot:
        assert bars.has_focus
        await pilot.press("down", "down")
        assert bars.cursor == 2
        assert isinstance(app.messages[-1], BarChart.RowHighlighted)
        assert app.messages[-1].index == 2
        await pilot.press("enter")
        assert isinstance(app.messages[-1], BarChart.RowChosen)
        assert app.messages[-1].index == 2
        await pilot.press("end")
        assert bars.cursor == len(LABELS) - 1
        await pilot.press("home")
        assert bars.cursor == 0

        painted = painted_text(bars)
        bars.set_data(["x", "y"], [0.7, 0.3], columns=[BarColumn("p", [0.7, 0.3], 2)])
        await pilot.pause()
        assert painted_text(bars) != painted and "0.70" in painted_text(bars)
        assert bars.cursor == 0
        text = render_text(bars.renderable(60), 60)
        assert "0.70" in text and "·the" not in text


async def test_cumulative_strip_widget_rerenders():
    strip = CumulativeStrip(["a", "b"], [0.5, 0.5], 0.25)
    app = Harness(strip)
    async with app.run_test(size=(60, 10)) as pilot:
        painted = painted_text(strip)
        strip.set_data(["a", "b"], [0.5, 0.5], 0.75)
        await pilot.pause()
        assert painted_text(strip) != painted and "u=0.750" in painted_text(strip)
        assert strip.renderable(60).segment_index == 1
        assert strip.size.height == 3


def test_bar_chart_bindings_declare_ids_and_tooltips():
    for binding in BarChart.BINDINGS:
        assert binding.id and binding.id.startswith("barchart.")
        assert binding.tooltip


def test_row_tags_and_not_applicable_cells():
    r = BarChartRenderable(
        ["a", "b", "c", "d"],
        [0.6, 0.3, 0.1, 0.05],
        columns=[BarColumn("p′", [0.6, 0.3, None, 0.05], 1, percent=True)],
        cut=[None, None, "top-k", None],
        highlight=0,
        tags=["▼ penalty", "▼ penalty", "ignored", None],
    )
    lines = render_text(r, 60).splitlines()
    assert lines[1].rstrip().endswith("◀ chosen")  # the highlight's own tag wins
    assert lines[2].rstrip().endswith("▼ penalty")
    assert lines[3].rstrip().endswith("✂ top-k") and "—" in lines[3]  # the cut reason wins
    assert "▼" not in lines[4] and "5.0%" in lines[4]


def test_tags_default_to_none_and_keep_the_old_layout():
    plain = render_text(chart(), 80)
    assert plain == render_text(chart(tags=None), 80)


async def test_bar_chart_widget_sets_tags_with_the_data():
    bars = BarChart(["x", "y"], [0.5, 0.5])
    app = Harness(bars)
    async with app.run_test(size=(60, 10)) as pilot:
        bars.set_data(["x", "y"], [0.7, 0.3], tags=[None, "▲ boost"])
        await pilot.pause()
        text = render_text(bars.renderable(60), 60)
        assert "▲ boost" in text.splitlines()[1]


async def test_cumulative_strip_grows_and_shrinks_with_the_draw():
    strip = CumulativeStrip(["a", "b"], [0.5, 0.5], None)
    app = Harness(strip)
    async with app.run_test(size=(60, 10)) as pilot:
        await pilot.pause()
        assert strip.size.height == 2  # no draw: the strip and its 0 … 1 line
        strip.set_data(["a", "b"], [0.5, 0.5], 0.75)
        await pilot.pause()
        assert strip.size.height == 3  # the ▲ line and the caption
        strip.set_data(["a", "b"], [0.5, 0.5], None)
        await pilot.pause()
        assert strip.size.height == 2


async def test_new_data_places_the_window_around_the_cursor_afresh():
    labels = [f"t{i}" for i in range(50)]
    bars = BarChart(labels, np.linspace(1, 0, 50))
    app = Harness(bars)
    async with app.run_test(size=(60, 12)) as pilot:
        await pilot.press("end")
        await pilot.pause()
        assert "rows" in painted_text(bars) and "t49" in painted_text(bars)
        bars.set_data(labels, np.linspace(1, 0, 50))
        bars.cursor = 2
        await pilot.pause()
        text = painted_text(bars)
        assert "t0 " in text and "t49" not in text  # not left scrolled to the old cursor
