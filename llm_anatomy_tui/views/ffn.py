"""What chapter 4 (feed-forward network) shows, as plain data: the toy 2-3-2 net drawn
as nodes and edges, its matrix inspector, and the real SwiGLU FFN of one token (shapes,
top hidden units, the lens on its update).

The drawing is a list of rows of ``(text, kind)`` segments; the screen maps kinds to
styles. Firing and silent units differ in glyph (``●`` / ``○``) and their outgoing edges
in line style (``─`` / ``·``), so the picture reads without colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.lessons.dense_net import MATRICES, DenseNet
from ..core.neurons import FFNUpdate, ranked
from .embeddings import token_label

FIRE, QUIET, EDGE, DEAD_EDGE, LABEL, PLAIN = "fire", "quiet", "edge", "dead", "label", "plain"
"""Segment kinds of the drawing."""

Segment = tuple[str, str]

_IN_ROWS, _HID_ROWS, _OUT_ROWS = (1, 5), (0, 3, 6), (1, 5)
_BRAILLE_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [dy][dx]


def _braille_line(cells: dict, r1: int, c1: int, r2: int, c2: int, dotted: bool) -> None:  # noqa: ANN001
    """Add a straight edge between two cells' centres to a braille canvas (2×4 dots per
    cell); ``dotted`` keeps every third dot only. ``cells[(r, c)] = [bits, solid?]``."""
    x1, y1, x2, y2 = 2 * c1 + 1, 4 * r1 + 1.5, 2 * c2, 4 * r2 + 1.5
    n = int(max(abs(x2 - x1), abs(y2 - y1))) + 1
    for i in range(n + 1):
        if dotted and i % 3:
            continue
        t = i / n
        x, y = round(x1 + (x2 - x1) * t), round(y1 + (y2 - y1) * t)
        cell = cells.setdefault((y // 4, x // 2), [0, False])
        cell[0] |= _BRAILLE_BITS[y % 4][x % 2]
        cell[1] = cell[1] or not dotted


def net_diagram(net: DenseNet, decimals: int = 2) -> list[list[Segment]]:
    """The toy net as nodes and edges: x → h (firing ● or silent ○) → y.

    Edges are braille lines; the edges leaving a silent unit are dotted (it sends 0).

    >>> from llm_anatomy_tui.core.lessons.dense_net import run_net
    >>> rows = net_diagram(run_net())
    >>> [seg for seg in rows[3] if seg[1] in (FIRE, QUIET)]
    [('○', 'quiet')]
    """
    left, mid, right = 13, 27, 55
    hid_label = 15  # cells after a hidden node taken by its label
    width = right + 12
    cells: dict = {}
    firing = net.firing
    for r_in in _IN_ROWS:
        for r_h in _HID_ROWS:
            _braille_line(cells, r_in, left, r_h, mid, dotted=False)
    for j, r_h in enumerate(_HID_ROWS):
        for r_out in _OUT_ROWS:
            _braille_line(cells, r_h, mid + hid_label, r_out, right, dotted=not firing[j])
    grid = [[" "] * width for _ in range(7)]
    kinds = [[PLAIN] * width for _ in range(7)]
    for (r, c), (bits, solid) in cells.items():
        if 0 <= r < 7 and 0 <= c < width:
            grid[r][c] = chr(0x2800 + bits)
            kinds[r][c] = EDGE if solid else DEAD_EDGE

    def put(r: int, c: int, text: str, kind: str) -> None:
        for i, ch in enumerate(text):
            if c + i < width:
                grid[r][c + i] = ch
                kinds[r][c + i] = kind

    for i, r in enumerate(_IN_ROWS):
        put(r, 0, f"x{i + 1} {net.x[0, i]:>{decimals + 5}.{decimals}f} ", LABEL)
        put(r, left, "●", FIRE)
    for j, r in enumerate(_HID_ROWS):
        glyph, kind = ("●", FIRE) if firing[j] else ("○", QUIET)
        put(r, mid, glyph, kind)
        put(
            r,
            mid + 1,
            f" h{j + 1} {net.z1[0, j]:>5.{decimals}f}→{net.a1[0, j]:.{decimals}f} "[:hid_label],
            LABEL,
        )
    for k, r in enumerate(_OUT_ROWS):
        put(r, right, "●", FIRE)
        put(r, right + 1, f" y{k + 1} {net.z2[0, k]:.{decimals}f}"[:11], LABEL)
    out: list[list[Segment]] = []
    for row, krow in zip(grid, kinds, strict=True):
        segs: list[Segment] = []
        for ch, kind in zip(row, krow, strict=True):
            if segs and segs[-1][1] == kind:
                segs[-1] = (segs[-1][0] + ch, kind)
            else:
                segs.append((ch, kind))
        out.append(segs)
    return out


def firing_note(net: DenseNet) -> str:
    on = [f"h{j + 1}" for j in range(3) if net.firing[j]]
    off = [f"h{j + 1}" for j in range(3) if not net.firing[j]]
    parts = []
    if on:
        parts.append(f"● firing: {', '.join(on)}")
    if off:
        parts.append(f"○ silent (output 0, passes nothing on): {', '.join(off)}")
    return "   ".join(parts)


# -- the matrix inspector -----------------------------------------------------------------

MATRIX_NOTES = {
    "X": "the input: one row, two numbers",
    "W1": "weights from each input (row) to each hidden unit (column)",
    "Z1": "hidden sums: X · W1",
    "A1": "hidden activations: f(Z1)",
    "W2": "weights from each hidden unit (row) to each output (column)",
    "Z2": "the outputs: A1 · W2",
}
EDITABLE = ("X", "W1", "W2")
"""The matrices whose cells the person may change (the rest are computed)."""


@dataclass(frozen=True)
class Inspector:
    """Which matrix and cell the inspector points at."""

    matrix: str = "Z1"
    row: int = 0
    col: int = 0

    def shape(self, net: DenseNet) -> tuple[int, int]:
        return net.matrix(self.matrix).shape

    def cycle(self, delta: int) -> Inspector:
        i = (MATRICES.index(self.matrix) + delta) % len(MATRICES)
        return Inspector(MATRICES[i], 0, 0)

    def move(self, d_row: int, d_col: int, net: DenseNet) -> Inspector:
        rows, cols = self.shape(net)
        return Inspector(self.matrix, (self.row + d_row) % rows, (self.col + d_col) % cols)

    def unit_sum_target(self) -> tuple[str, int]:
        """Which weighted sum belongs to the selected cell: the unit the cell feeds (for a
        weight) or is (for a sum/activation). X's cells feed Z1's first unit."""
        if self.matrix in ("Z1", "A1"):
            return "Z1", self.col
        if self.matrix == "W1":
            return "Z1", self.col
        if self.matrix in ("Z2", "W2"):
            return "Z2", self.col
        return "Z1", 0


# -- the real FFN -------------------------------------------------------------------------


def shape_lines(d: int, f: int, layer: int, position: int, label: str) -> list[str]:
    return [
        f"token #{position} “{label}”, layer {layer}:  x [{d}] → gate, up [{f}] each → "
        f"silu(gate)·up [{f}] → down → update [{d}]",
        f"weights: W_gate, W_up [{f} × {d}],  W_down [{d} × {f}]",
    ]


@dataclass(frozen=True)
class UnitRow:
    unit: int
    gate: float
    silu_gate: float
    up: float
    hidden: float

    @property
    def cells(self) -> tuple[str, str, str, str, str]:
        """Shown strings: the factors to 4 places so their product checks against h (3)."""
        return (
            f"{self.unit}", f"{self.gate:+.4f}", f"{self.silu_gate:+.4f}", f"{self.up:+.4f}",
            f"{self.hidden:+.3f}",
        )  # fmt: skip


def unit_rows(upd: FFNUpdate) -> list[UnitRow]:
    """The top hidden units by |activation|, with gate, silu(gate), up and their product."""
    rows = []
    for j in upd.top_units:
        g = float(upd.gate[j])
        rows.append(
            UnitRow(int(j), g, g / (1.0 + np.exp(-g)), float(upd.up[j]), float(upd.hidden[j]))
        )
    return rows


@dataclass(frozen=True)
class LensRow:
    token: int
    label: str
    logit: float


def lens_rows(upd: FFNUpdate, encoding, k: int = 6) -> tuple[list[LensRow], list[LensRow]]:  # noqa: ANN001
    """The tokens the update pushes up most and down most, through final norm + head."""
    lens = upd.lens

    def rows(idx: Sequence[int]) -> list[LensRow]:
        return [LensRow(int(t), token_label(encoding, int(t)), float(lens[t])) for t in idx]

    return rows(ranked(lens, k)), rows(ranked(lens, k, largest=False))


def norm_line(upd: FFNUpdate) -> str:
    """How large the update is next to the residual it is added to."""
    n_in = float(np.linalg.norm(upd.resid_in))
    n_up = float(np.linalg.norm(upd.out))
    n_out = float(np.linalg.norm(upd.resid_out))
    share = n_up / n_in * 100 if n_in > 0 else float("nan")
    return (
        f"|residual in| {n_in:.3f}   + |update| {n_up:.3f} ({share:.0f}% of it)   "
        f"= |residual out| {n_out:.3f}"
    )
