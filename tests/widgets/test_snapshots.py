"""SVG snapshots of the widget demo app (fixed data, no blinking cursor) at 80×24 and
120×40, plus one without colour and one after driving the cursor by keys.

Update after an intended visual change with ``pytest tests/widgets --snapshot-update``
and look at the new SVGs before committing them."""

from __future__ import annotations

import pytest
from demo_app import PAGES, WidgetDemo

SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
@pytest.mark.parametrize("page", PAGES)
def test_demo_page(snap_compare, page, size):
    assert snap_compare(WidgetDemo(page), terminal_size=size)


def test_demo_without_colour(snap_compare, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(WidgetDemo("attention"), terminal_size=(80, 24))


def test_demo_after_keys(snap_compare):
    # move the weights cursor up two rows and right one column, then show the numbers
    assert snap_compare(
        WidgetDemo("attention"), press=["up", "up", "right", "v"], terminal_size=(120, 40)
    )
