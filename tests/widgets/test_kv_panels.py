"""Chapter 14's comparison panel keeps its height while steps are being measured: a panel
that grows row by row moves everything below it, and over SSH every move resends the
whole screen (generate-10 sent 62 KB in six repaints; now one)."""

from __future__ import annotations

import pytest

from llm_anatomy_tui.views.kv_inspect import CacheComparison
from llm_anatomy_tui.widgets.kv_panels import TABLE_ROWS, compare_text


def comparison(index: int, prompt: int = 5) -> CacheComparison:
    position = prompt + index - 1 if index else prompt - 1
    fed = prompt if index == 0 else 1
    return CacheComparison(
        index=index, position=position, ran_cached=True, cached_fed=fed,
        cached_macs=1_000_000 * fed, cached_seconds=0.001, uncached_fed=position + 1,
        uncached_macs=1_000_000 * (position + 1), uncached_seconds=0.002,
        max_abs_diff=1e-6, top1_same=True,
    )  # fmt: skip


@pytest.mark.parametrize("n_steps", [1, 2, 10, TABLE_ROWS + 5])
@pytest.mark.parametrize("on", [True, False])
def test_height_is_final_from_the_first_draw(n_steps, on):
    steps = [comparison(i) for i in range(n_steps)]
    heights = set()
    # measured newest first, as the chapter does: every stage from none to all
    for measured in range(n_steps + 1):
        done = steps[n_steps - measured :]
        pending = [(c.index, c.position) for c in steps[: n_steps - measured]]
        text = compare_text(done, on, pending)
        heights.add(len(text.plain.splitlines()))
        shown = {c.index for c in steps[-TABLE_ROWS:]}
        for index, position in (p for p in pending if p[0] in shown):
            assert any(
                line.split()[:3] == [str(index), str(position), "…"]
                for line in text.plain.splitlines()
            ), f"no waiting row for step {index}"
    assert len(heights) == 1, heights


def test_measured_rows_carry_their_numbers_and_the_totals():
    steps = [comparison(i) for i in range(3)]
    text = compare_text(steps, True, []).plain
    assert "every step measured both ways" in text
    assert "2 decode steps: 2.00 M multiply-adds with the cache, 13.00 M without (6.5×)" in text
    assert "…" not in text
    assert compare_text([], True, []).plain == "Take a step (s) to measure one both ways."
