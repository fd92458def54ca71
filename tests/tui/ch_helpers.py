"""Helpers for the chapter 5 and 14 Pilot tests: drive the shared generation to rest, and
read numbers back from what the screen draws."""

from __future__ import annotations

import asyncio
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


async def drain(pilot, rounds: int = 40) -> None:  # noqa: ANN001
    """Wait until the generation worker's queue is empty and every follow-up op has run."""
    app = pilot.app
    for _ in range(rounds):
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        if getattr(app.screen, "_catch_up_timer", None) is not None:
            await asyncio.sleep(0.2)  # chapter 14 catches up its measurements after a pause
            continue
        if not app._generation_ops and not app._generation_worker_busy:
            await pilot.pause()
            if not app._generation_ops and not app._generation_worker_busy:
                break
    for widget in app.screen.query("Input, TextArea"):
        widget.cursor_blink = False  # type: ignore[attr-defined]
    await pilot.pause()


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
