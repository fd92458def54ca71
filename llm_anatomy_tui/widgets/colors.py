"""Colour maps shared by every data widget: one place that maps a float to a Rich ``Style``.

A :class:`ColorMap` turns a value into one of a fixed number of *levels* (so styles are
built once and cached, never per cell), and each level has

- a background style (the cell colour, with a contrasting foreground for any number
  printed on it), a foreground style (for glyphs and coloured numbers), and
- a glyph for terminals without colour (``NO_COLOR``), so the meaning survives as ink
  density: sequential maps use ``" ░▒▓█"``; diverging maps use ``"-=≡"`` for negative and
  ``"+*#"`` for positive values (weak → strong), a blank near zero.

Colours are given in truecolor; Rich downgrades them itself on 256-colour terminals.
Whether to draw colour or glyphs is decided by :func:`use_color`: an explicit
``color_mode`` wins, otherwise the console says (``no_color``, no colour system, or only
16 colours → glyphs).

Nothing here imports Textual: renderables use it directly and are testable with a plain
``rich.console.Console``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
from rich.color import Color
from rich.console import Console
from rich.style import Style

ColorMode = Literal["auto", "color", "none"]
"""``"color"`` draws colours, ``"none"`` draws glyphs only, ``"auto"`` asks the console."""

RGB = tuple[int, int, int]

MASK_GLYPH = "·"
"""What a masked cell shows, in colour and without: never a value colour."""

SEQUENTIAL_GLYPHS = " ░▒▓█"
DIVERGING_NEGATIVE_GLYPHS = "-=≡"
DIVERGING_POSITIVE_GLYPHS = "+*#"


def use_color(console: Console, color_mode: ColorMode = "auto") -> bool:
    """Whether a renderable should draw colours (True) or glyphs (False) on ``console``.

    ``"auto"`` draws colours on truecolor and 256-colour consoles (Rich's downgrade keeps
    12–16 ordered steps of each map there) and glyphs on 16-colour ones, where a map
    collapses to 4–5 unordered colours and would mislead."""
    if color_mode == "color":
        return True
    if color_mode == "none":
        return False
    return not (console.no_color or console.color_system in (None, "standard", "windows"))


def _lerp(stops: tuple[RGB, ...], t: float) -> RGB:
    """Piecewise-linear interpolation through evenly spaced colour stops, t in [0, 1]."""
    t = min(1.0, max(0.0, t))
    pos = t * (len(stops) - 1)
    i = min(int(pos), len(stops) - 2)
    f = pos - i
    a, b = stops[i], stops[i + 1]
    return (
        round(a[0] + (b[0] - a[0]) * f),
        round(a[1] + (b[1] - a[1]) * f),
        round(a[2] + (b[2] - a[2]) * f),
    )


def _luminance(rgb: RGB) -> float:
    r, g, b = (c / 255 for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@dataclass(frozen=True, eq=False)
class ColorMap:
    """A sequential or diverging colour map quantised to ``levels`` steps.

    Args:
        name: Shown in legends ("sequential", "diverging").
        kind: ``"sequential"`` (low → high) or ``"diverging"`` (negative ← 0 → positive).
        stops: Evenly spaced RGB stops from the low end to the high end.
        levels: Number of quantisation steps (odd for diverging, so 0 has its own level).
    """

    name: str
    kind: Literal["sequential", "diverging"]
    stops: tuple[RGB, ...]
    levels: int = 32

    # -- range ---------------------------------------------------------------------------

    def auto_range(self, values: np.ndarray) -> tuple[float, float]:
        """Default (vmin, vmax) for finite ``values``: symmetric ±max|v| for diverging maps,
        min..max for sequential ones. Never an empty range."""
        finite = values[np.isfinite(values)] if values.size else values
        if finite.size == 0:
            return (-1.0, 1.0) if self.kind == "diverging" else (0.0, 1.0)
        if self.kind == "diverging":
            m = float(np.max(np.abs(finite)))
            m = m if m > 0 else 1.0
            return -m, m
        lo, hi = float(np.min(finite)), float(np.max(finite))
        if hi <= lo:
            hi = lo + 1.0
        return lo, hi

    # -- value → level ---------------------------------------------------------------

    def level(self, value: float, vmin: float, vmax: float) -> int:
        """The level (0 … levels-1) of one value; values outside the range are clipped."""
        span = vmax - vmin
        t = (value - vmin) / span if span > 0 else 0.5
        return int(min(self.levels - 1, max(0, round(t * (self.levels - 1)))))

    def level_array(self, values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
        """Vectorised :meth:`level`; non-finite values map to -1."""
        span = vmax - vmin
        with np.errstate(invalid="ignore"):
            t = (values - vmin) / span if span > 0 else np.full(values.shape, 0.5)
            lv = np.rint(np.clip(t, 0.0, 1.0) * (self.levels - 1))
        lv = np.where(np.isfinite(values), lv, -1)
        return lv.astype(np.int16)

    # -- level → colour / style / glyph -----------------------------------------------

    @cached_property
    def rgbs(self) -> tuple[RGB, ...]:
        return tuple(_lerp(self.stops, i / (self.levels - 1)) for i in range(self.levels))

    @cached_property
    def bg_styles(self) -> tuple[Style, ...]:
        """Per level: background = the colour, foreground = black or white for contrast."""
        out = []
        for rgb in self.rgbs:
            fg = (0, 0, 0) if _luminance(rgb) > 0.45 else (255, 255, 255)
            out.append(Style(color=Color.from_rgb(*fg), bgcolor=Color.from_rgb(*rgb)))
        return tuple(out)

    @cached_property
    def fg_styles(self) -> tuple[Style, ...]:
        """Per level: the colour as a foreground (for glyphs, bars and coloured numbers)."""
        return tuple(Style(color=Color.from_rgb(*rgb)) for rgb in self.rgbs)

    @cached_property
    def glyphs(self) -> tuple[str, ...]:
        """Per level: the no-colour glyph (see the module docstring)."""
        out = []
        mid = (self.levels - 1) / 2
        for i in range(self.levels):
            if self.kind == "sequential":
                t = i / (self.levels - 1)
                out.append(SEQUENTIAL_GLYPHS[min(4, int(t * 5))])
            else:
                m = (i - mid) / mid  # -1 … 1
                mag = abs(m)
                if mag < 0.125:
                    out.append(" ")
                    continue
                step = 0 if mag < 0.4 else 1 if mag < 0.7 else 2
                out.append(
                    (DIVERGING_NEGATIVE_GLYPHS if m < 0 else DIVERGING_POSITIVE_GLYPHS)[step]
                )
        return tuple(out)

    def style(self, value: float, vmin: float, vmax: float, *, background: bool = True) -> Style:
        """The one place a float becomes a Rich style (cached per level)."""
        lv = self.level(value, vmin, vmax)
        return (self.bg_styles if background else self.fg_styles)[lv]

    def glyph(self, value: float, vmin: float, vmax: float) -> str:
        return self.glyphs[self.level(value, vmin, vmax)]

    def legend_glyphs(self) -> str:
        """The no-colour ramp as shown in a legend, low end first."""
        if self.kind == "sequential":
            return SEQUENTIAL_GLYPHS.replace(" ", "␣", 1)
        return DIVERGING_NEGATIVE_GLYPHS[::-1] + "␣" + DIVERGING_POSITIVE_GLYPHS


SEQUENTIAL = ColorMap(
    "sequential",
    "sequential",
    # viridis-like: dark purple (still visible on a dark background) → teal → yellow
    stops=((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)),
    levels=32,
)
"""For values with a natural low end: attention weights 0..1, probabilities, norms."""

DIVERGING = ColorMap(
    "diverging",
    "diverging",
    # blue ← dark neutral → orange-red; the dark centre keeps near-zero values quiet on a
    # dark terminal, so attention goes to large magnitudes of either sign.
    stops=((110, 175, 255), (40, 95, 180), (48, 48, 52), (185, 70, 45), (255, 135, 90)),
    levels=33,
)
"""For signed values: raw attention scores, embeddings, weights, errors."""

COLORMAPS: dict[str, ColorMap] = {"sequential": SEQUENTIAL, "diverging": DIVERGING}

CMapLike = ColorMap | Literal["sequential", "diverging"]


def get_cmap(cmap: CMapLike) -> ColorMap:
    """A ColorMap from an instance or a name (``"sequential"`` / ``"diverging"``)."""
    if isinstance(cmap, ColorMap):
        return cmap
    try:
        return COLORMAPS[cmap]
    except KeyError:
        raise ValueError(f"unknown colour map {cmap!r}; use one of {sorted(COLORMAPS)}") from None


SERIES_COLORS: tuple[Style, ...] = (
    Style(color=Color.from_rgb(95, 175, 255)),
    Style(color=Color.from_rgb(255, 160, 60)),
    Style(color=Color.from_rgb(120, 210, 120)),
    Style(color=Color.from_rgb(230, 110, 200)),
    Style(color=Color.from_rgb(230, 220, 90)),
    Style(color=Color.from_rgb(160, 160, 160)),
)
"""Categorical colours for line-plot series and cumulative-strip segments."""


@dataclass(frozen=True)
class Chrome:
    """Styles for everything around the data: labels, the highlighted row/column/cell,
    dimmed things (masked cells, cut rows, notes) and titles.

    Widgets fill this from their ``COMPONENT_CLASSES`` (``<widget>--label``,
    ``--accent``, ``--dim``, ``--title``, ``--bar``); standalone renderables use the
    defaults.
    """

    label: Style = Style()
    accent: Style = Style(bold=True, color="bright_cyan")
    dim: Style = Style(color=Color.from_rgb(110, 110, 110))
    title: Style = Style(bold=True)
    bar: Style = Style(color=Color.from_rgb(95, 175, 255))


DEFAULT_CHROME = Chrome()
