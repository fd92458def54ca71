"""The KV cache as a picture: one row per layer and K/V, one cell per cached position,
shaded by the length of the cached vector (a glyph ramp under ``NO_COLOR``)."""

from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from ..views.kv_inspect import CacheSnapshot
from .colors import get_cmap


def picture_lines(
    snap: CacheSnapshot, n_prompt: int, width: int, color: bool = True
) -> list[list[Segment]]:
    """Rows L0 K, L0 V, … of cells, one per cached position (or per block of positions
    when there are more than fit), shaded by the length of the cached vector; a ruler
    marks where the prompt ends and which position is newest. Built as segments: it is
    redrawn on every step."""
    t = snap.length
    label_w = 6
    room = max(8, width - label_w - 1)
    block = max(1, -(-t // room))  # positions per cell
    cells = -(-t // block) if t else 0
    cmap = get_cmap("sequential")
    dim, bold = Style(dim=True), Style(bold=True)
    lines: list[list[Segment]] = []
    prompt_cells = min(cells, -(-n_prompt // block))
    ruler = "prompt (prefill)"[: max(0, prompt_cells)].ljust(prompt_cells)
    if cells > prompt_cells:
        ruler += ("│decoded" if cells - prompt_cells > 8 else "│")[: cells - prompt_cells]
    lines.append([Segment(" " * label_w + ruler, dim)])
    ranges = {}
    for kind in (0, 1):  # K rows share one shade range, V rows another
        vals = snap.norms[:, kind, :]
        ranges[kind] = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
    for layer in range(snap.norms.shape[0]):
        for kind in (0, 1):
            padded = np.full(cells * block, np.nan)
            padded[:t] = snap.norms[layer, kind, :]
            means = padded.reshape(cells, block)
            means = np.nanmean(means, axis=1) if block > 1 else means[:, 0]
            lo, hi = ranges[kind]
            line = [Segment(f"L{layer} {'KV'[kind]}".ljust(label_w), bold)]
            for i, v in enumerate(means):
                edge = i == prompt_cells and i > 0
                if color:
                    line.append(Segment("▏" if edge else " ", cmap.style(float(v), lo, hi)))
                else:
                    line.append(Segment("│" if edge else cmap.glyph(float(v), lo, hi)))
            lines.append(line)
    tail = f" newest (position {t - 1})"
    col = label_w + max(0, cells - 1)
    marker = (
        " " * col + "▲" + tail
        if col + 1 + len(tail) <= width
        else (" " * max(0, col - len(tail)) + tail.strip() + " ▲")
    )
    lines.append([Segment(marker, bold)])
    per = "each cell is one position" if block == 1 else f"each cell is {block} positions (mean)"
    # two short lines, so the legend fits 80 columns
    lines.append([Segment(f"{per}; shade = length of the cached vector", dim)])
    lines.append([Segment(
        f"(darker = shorter): K {ranges[0][0]:.2f}–{ranges[0][1]:.2f}, "
        f"V {ranges[1][0]:.2f}–{ranges[1][1]:.2f}", dim
    )])  # fmt: skip
    return lines


class CachePicture(Widget):
    """The cache as a picture (see :func:`picture_lines`); a fixed height, so a step
    repaints it without a new layout."""

    DEFAULT_CSS = "CachePicture { height: auto; width: 1fr; }"

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self._data: tuple[CacheSnapshot, int] | None = None
        self._lines: list[Strip] = []
        self._layers = 0

    def set_data(self, snap: CacheSnapshot, n_prompt: int) -> None:
        if self._data is not None and self._data[0] is snap and self._data[1] == n_prompt:
            return  # the same picture: a repaint would resend every cell (~10 KB over SSH)
        relayout = snap.norms.shape[0] != self._layers
        self._layers = snap.norms.shape[0]
        self._data = (snap, n_prompt)
        self._lines = []
        self.refresh(layout=relayout)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return 2 * self._layers + 4 if self._data else 1

    def text(self, width: int = 100) -> str:
        """The picture as plain text (for tests and for reading it aloud)."""
        if self._data is None:
            return ""
        lines = picture_lines(*self._data, width, color=False)
        return "\n".join("".join(seg.text for seg in line).rstrip() for line in lines)

    def render_line(self, y: int) -> Strip:
        # Every segment carries the widget's style: a segment without one (padding, a
        # glyph cell) reached Textual's NO_COLOR filter as None and crashed it.
        width = self.size.width
        base = self.rich_style
        if self._data is None or width <= 0:
            return Strip.blank(width, base)
        if not self._lines or self._lines[0].cell_length != width:
            lines = picture_lines(*self._data, width, color=not self.app.no_color)
            self._lines = [
                Strip(line).adjust_cell_length(width).apply_style(base) for line in lines
            ]
        return self._lines[y] if y < len(self._lines) else Strip.blank(width, base)
