"""Helpers for the chapter 5 and 14 Pilot tests: drive the shared generation to rest, and
read numbers back from what the screen draws."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.console import Console
from textual.widgets import Static
from tui_helpers import make_model_session

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.widgets.bar_chart import BarChart


def model_app(chapter: str, prompt: str | None = None) -> LLMAnatomyApp:
    """The app on ``chapter`` with the real model (``$LLM_ANATOMY_MODEL`` or the shipped one)."""
    session = make_model_session(prompt) if prompt is not None else make_model_session()
    return LLMAnatomyApp(chapter=chapter, session=session, load_resources=False)


async def drain(pilot, rounds: int = 40) -> None:  # noqa: ANN001, ARG001
    """Wait until the app has settled (no pending compute, no generation op, no worker),
    with cursors not blinking (``rounds`` is kept for old callers)."""
    app = pilot.app
    await pilot.pause()
    await app.wait_until_settled()
    for widget in app.screen.query("Input, TextArea"):
        widget.cursor_blink = False  # type: ignore[attr-defined]
    await pilot.pause()
    await app.wait_until_settled()


def plain(renderable, width: int = 120) -> str:  # noqa: ANN001
    console = Console(width=width, color_system=None, record=True, file=_Null())
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())


def static_text(screen, selector: str) -> str:  # noqa: ANN001
    """The text a Static was last given (a Rich ``Text`` or a string), as plain text."""
    widget = screen.query_one(selector, Static)
    content = widget.content
    return content.plain if hasattr(content, "plain") else str(content)


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass


@dataclass
class BarRow:
    label: str
    cells: dict[str, str]
    tag: str


def bar_rows(bars: BarChart, width: int = 110) -> list[BarRow]:
    """The rows of a bar chart exactly as drawn, sliced by the chart's own column widths."""
    r = bars.renderable(width, None)
    label_w, col_ws, bar_w, tag_w = r._widths(width)
    lines = plain(r, width).splitlines()
    headers = [c.header for c in r.columns]
    rows = []
    for line in lines[1:]:
        if not line or line.startswith("rows "):
            continue
        line = line.ljust(width)
        label = line[1 : 1 + label_w].rstrip()
        pos = 1 + label_w
        cells = {}
        for h, w in zip(headers, col_ws, strict=True):
            cells[h] = line[pos + 1 : pos + 1 + w].strip()
            pos += w + 1
        tag = line[pos + 1 + bar_w :].strip() if tag_w else ""
        rows.append(BarRow(label, cells, tag))
    return rows


_NUM = r"(-?\d+\.\d+)"


def norm_values(text: str) -> tuple[str, str | None]:
    """(lse, lse′) as printed under the bars: the numbers in ``exp(logit − lse)`` and
    ``exp(z − lse′)`` (the second is None when nothing was cut or changed)."""
    found = re.findall(r"exp\((?:logit|z) − " + _NUM + r"\)", text)
    assert found, text
    return found[0], (found[1] if len(found) > 1 else None)


async def edit_prompt(pilot, text: str) -> None:  # noqa: ANN001
    """Edit the shared prompt as a person does: ``/``, End, type ``text``, Esc; then wait
    until the app has settled."""
    await pilot.press("slash", "end")
    await pilot.press(*["space" if ch == " " else ch for ch in text])
    await pilot.press("escape")
    await pilot.app.wait_until_settled()


def header_text(app) -> str:  # noqa: ANN001
    """The chapter header line as drawn (title and status)."""
    from llm_anatomy_tui.chapters.base import ChapterHeader

    return app.screen.query_one(ChapterHeader).render().plain


class _Clock:
    """Stands in for ``time`` in the core modules that measure steps: every reading is
    0.5 ms after the one before, so snapshot tables do not change from run to run."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.0005
        return self.now


def steady_clock(monkeypatch) -> None:  # noqa: ANN001
    import llm_anatomy_tui.core.generation as generation
    import llm_anatomy_tui.views.kv_inspect as kv_inspect

    clock = _Clock()
    monkeypatch.setattr(generation, "time", clock)
    monkeypatch.setattr(kv_inspect, "time", clock)
