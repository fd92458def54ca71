"""A loss surface as terminal characters: shading by loss band plus optimizer tracks.

The drawing is a grid of cells, each a character and a *role* (a loss band ``"band3"``, an
optimizer ``"sgd"``, ``"start"``, ``"min"``); the chapter maps roles to colours. Meaning
never rests on colour: bands use a density ramp of glyphs, and each optimizer leaves its own
letter (S, M, A; ``*`` where tracks share a cell).

Bands are quantiles of the values drawn, so both a smooth toy valley and the real slice use
every shade.

>>> art = draw_surface(np.array([[0.0, 1.0], [2.0, 3.0]]), (0, 1), (0, 1), {}, 4, 2, bands=2)
>>> ["".join(c for c, _ in row) for row in art.rows]
['    ', '@@@@']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RAMP = " .:-=+*#%@"
"""Band glyphs, lowest loss first."""
MARKS = {"sgd": "S", "momentum": "M", "adam": "A"}
SHARED = "&"
START = "o"
MINIMUM = "x"

Cell = tuple[str, str]


@dataclass(frozen=True)
class SurfaceArt:
    """The drawn grid and what its bands mean."""

    rows: list[list[Cell]]
    edges: np.ndarray
    """Band boundaries [bands + 1]: band k holds losses in [edges[k], edges[k+1])."""
    glyphs: str
    outside: tuple[str, ...]
    """Optimizers whose track left the drawn area at some point."""

    def lines(self) -> list[str]:
        return ["".join(ch for ch, _ in row) for row in self.rows]


def cell_of(
    x: float,
    y: float,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    width: int,
    height: int,
) -> tuple[int, int] | None:
    """(row, column) of a point, y upwards; None outside the drawn area.

    >>> cell_of(0.0, 0.0, (-1, 1), (-1, 1), 5, 3), cell_of(2.0, 0.0, (-1, 1), (-1, 1), 5, 3)
    ((1, 2), None)
    """
    fx = (x - xlim[0]) / (xlim[1] - xlim[0])
    fy = (ylim[1] - y) / (ylim[1] - ylim[0])
    if not (0.0 <= fx <= 1.0 and 0.0 <= fy <= 1.0):
        return None
    return int(round(fy * (height - 1))), int(round(fx * (width - 1)))


def resample(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest grid value for every cell: each computed point fills a block of cells."""
    rows = np.clip(np.round(np.linspace(0, values.shape[0] - 1, height)).astype(int), 0, None)
    cols = np.clip(np.round(np.linspace(0, values.shape[1] - 1, width)).astype(int), 0, None)
    return values[np.ix_(rows, cols)]


def draw_surface(
    values: np.ndarray,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    tracks: dict[str, np.ndarray],
    width: int,
    height: int,
    bands: int = len(RAMP),
    minimum: tuple[float, float] | None = None,
) -> SurfaceArt:
    """Shade ``values`` [rows, cols] (row 0 = top = largest y) and draw ``tracks``.

    ``tracks`` maps an optimizer name to its points [n, 2] in (x, y) units; the first
    point is the shared start.
    """
    cells = resample(np.asarray(values, dtype=np.float64), width, height)
    finite = cells[np.isfinite(cells)]
    glyphs = (
        RAMP if bands == len(RAMP) else RAMP[:: max(1, len(RAMP) // bands)][: bands - 1] + RAMP[-1]
    )
    edges = (
        np.quantile(finite, np.linspace(0, 1, bands + 1)) if finite.size else np.zeros(bands + 1)
    )
    level = np.clip(np.searchsorted(edges[1:-1], cells, side="right"), 0, bands - 1)
    rows: list[list[Cell]] = [
        [(glyphs[int(k)], f"band{int(k)}") for k in level_row] for level_row in level
    ]
    owners: dict[tuple[int, int], set[str]] = {}
    outside = []
    start_cell = None
    for name, points in tracks.items():
        left = False
        for x, y in np.asarray(points):
            cell = cell_of(float(x), float(y), xlim, ylim, width, height)
            if cell is None:
                left = True
                continue
            owners.setdefault(cell, set()).add(name)
        if left:
            outside.append(name)
        if len(points) and start_cell is None:
            start_cell = cell_of(
                float(points[0][0]), float(points[0][1]), xlim, ylim, width, height
            )
    for (r, c), names in owners.items():
        if len(names) == 1:
            name = next(iter(names))
            rows[r][c] = (MARKS.get(name, "?"), name)
        else:
            rows[r][c] = (SHARED, "shared")
    if minimum is not None:
        cell = cell_of(minimum[0], minimum[1], xlim, ylim, width, height)
        if cell is not None:
            rows[cell[0]][cell[1]] = (MINIMUM, "min")
    if start_cell is not None:
        rows[start_cell[0]][start_cell[1]] = (START, "start")
    return SurfaceArt(rows, edges, glyphs, tuple(outside))


def legend(art: SurfaceArt, decimals: int = 2) -> str:
    """One line: each band glyph and the loss where it starts ("' ' 0.00  '.' 0.39 …")."""
    parts = [f"'{g}'≥{art.edges[k]:.{decimals}f}" for k, g in enumerate(art.glyphs)]
    return " ".join(parts)
