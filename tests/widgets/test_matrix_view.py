"""Matrix view: shape, decimals, highlight, honest truncation; the widget by keys."""

from __future__ import annotations

import re

import numpy as np
from widget_testing import Harness, render_text

from llm_anatomy_tui.widgets._format import fmt
from llm_anatomy_tui.widgets.matrix_view import MatrixView, MatrixViewRenderable

W1 = np.array([[0.5, -1.25, 0.75], [1.0, 0.25, -0.5]])
BIG = np.sin(np.arange(128 * 384).reshape(128, 384) * 0.37)


def test_title_shape_labels_and_decimals():
    text = render_text(
        MatrixViewRenderable(W1, title="W1", row_labels=["x1", "x2"], col_labels=["h1", "h2", "h3"],
                             decimals=3),
        60,
    )  # fmt: skip
    lines = text.splitlines()
    assert lines[0] == "W1 [2×3]"
    assert all(h in lines[1] for h in ("h1", "h2", "h3"))
    for i, label in enumerate(["x1", "x2"]):
        row = next(line for line in lines if line[1:].startswith(label))
        assert re.findall(r"-?\d+\.\d+", row) == [fmt(v, 3) for v in W1[i]]
    assert "showing" not in text


def test_highlight_cell_row_and_column():
    text = render_text(MatrixViewRenderable(W1, cursor=(1, 2), decimals=2), 60)
    lines = text.splitlines()
    assert "▼" in lines[1] and lines[1].index("▼") < lines[1].index("2")
    row = next(line for line in lines if line.startswith("▶"))
    assert "▸-0.50" in row


def test_big_matrix_head_and_tail_with_honest_note():
    r = MatrixViewRenderable(BIG, title="W_up", decimals=3)
    text = render_text(r, 80)
    lay = r.layout(80, None)
    shown = [j for j in lay.cols if j >= 0]
    assert text.splitlines()[0] == "W_up [128×384]"
    assert "…" in text.splitlines()[1]
    header_numbers = [int(x) for x in re.findall(r"\d+", text.splitlines()[1])]
    assert header_numbers == shown
    assert shown[0] == 0 and shown[-1] == 383
    note = text.splitlines()[-1]
    assert note.startswith(f"showing {len(shown)} of 384 columns (0–")
    assert note.endswith("383)")


def test_rows_are_cut_with_a_vertical_ellipsis_when_height_is_short():
    r = MatrixViewRenderable(BIG, decimals=2, height=12)
    text = render_text(r, 80)
    assert "⋮" in text
    assert len(text.splitlines()) <= 12
    lay = r.layout(80, 12)
    n_rows = len([i for i in lay.rows if i >= 0])
    assert f"{n_rows} of 128 rows" in text


def test_cursor_window_follows_the_cursor():
    r = MatrixViewRenderable(BIG, decimals=3, cursor=(60, 200), height=12)
    text = render_text(r, 80)
    lay = r.layout(80, 12)
    cols = [j for j in lay.cols if j >= 0]
    assert 200 in cols and cols == list(range(cols[0], cols[-1] + 1))
    assert f"({cols[0]}–{cols[-1]})" in text
    assert f"▸{fmt(BIG[60, 200], 3)}" in text


def test_vector_shape_is_one_dimensional():
    text = render_text(MatrixViewRenderable(np.arange(5.0), title="b", decimals=1), 40)
    assert text.splitlines()[0] == "b [5]"
    assert "4.0" in text


async def test_widget_cursor_keys_messages_and_rerender():
    view = MatrixView(W1, decimals=2, title="W1")
    app = Harness(view)
    async with app.run_test(size=(60, 12)) as pilot:
        assert view.has_focus
        await pilot.press("down", "right", "right")
        assert view.cursor == (1, 2)
        msg = app.messages[-1]
        assert isinstance(msg, MatrixView.CellSelected)
        assert (msg.row, msg.col, msg.value) == (1, 2, -0.5)
        await pilot.press("home")
        assert view.cursor == (1, 0)
        await pilot.press("end")
        assert view.cursor == (1, 2)

        renders = app.renders
        view.set_data(np.ones((4, 4)) * 0.125, title="Z1")
        await pilot.pause()
        assert app.renders > renders
        text = render_text(view.renderable(60), 60)
        assert text.splitlines()[0] == "Z1 [4×4]" and fmt(0.125, 2) in text


def test_bindings_declare_ids_and_tooltips():
    for binding in MatrixView.BINDINGS:
        assert binding.id and binding.id.startswith("matrixview.") and binding.tooltip


async def test_auto_height_follows_the_number_of_rows():
    view = MatrixView(np.zeros((2, 3)), title="M")
    app = Harness(view)
    async with app.run_test(size=(60, 30)) as pilot:
        await pilot.pause()
        before = view.size.height
        view.set_data(np.zeros((6, 3)))
        await pilot.pause()
        assert view.size.height == before + 4
