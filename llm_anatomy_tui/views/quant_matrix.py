"""Chapter 15's view of one weight matrix through a quantization scheme.

:func:`summarize` turns a :class:`~llm_anatomy_tui.core.quant.QuantResult` into the
numbers the chapter prints (range, distinct values, scales, errors, bytes), computed once.
:func:`group_view` cuts out the *scale group* holding one weight — the whole tensor, one
row, or one block of 32 — with its values before and after (sorted, ready to be binned
into a histogram at any width), the grid its values can snap to, its scale and offset,
and a few sample weights with their codes.

Pure Python over numpy (no Textual, no Rich). The whole-model half (quantize every matrix,
generate side by side, compare on held-out text) is :mod:`llm_anatomy_tui.core.quant_lab`.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from dataclasses import dataclass

import numpy as np

from ..core.config import LlamaConfig
from ..core.model import expected_shapes
from ..core.quant import (
    NO_SCALE,
    QuantResult,
    QuantScheme,
    StorageCost,
    as_scheme,
    bf16_decode,
    bf16_encode,
    fp16_decode,
    fp16_encode,
    is_quantized_tensor,
    root_mean_square,
    storage_cost,
)

# -- picking a matrix ----------------------------------------------------------------------

MATRIX_KINDS: tuple[str, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    "embedding",
)
"""The matrices one can pick: a projection of a chosen layer, or the token embedding."""

MATRIX_LABELS: dict[str, str] = {
    "q_proj": "q",
    "k_proj": "k",
    "v_proj": "v",
    "o_proj": "o",
    "gate_proj": "gate",
    "up_proj": "up",
    "down_proj": "down",
    "embedding": "embedding",
}


def tensor_name(kind: str, layer: int) -> str:
    """The Hugging Face name of a matrix.

    >>> tensor_name("q_proj", 2), tensor_name("down_proj", 0), tensor_name("embedding", 3)
    ('model.layers.2.self_attn.q_proj.weight', 'model.layers.0.mlp.down_proj.weight', 'model.embed_tokens.weight')
    """
    if kind == "embedding":
        return "model.embed_tokens.weight"
    if kind not in MATRIX_KINDS:
        raise ValueError(f"unknown matrix {kind!r}; choose one of {', '.join(MATRIX_KINDS)}")
    block = "self_attn" if kind in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
    return f"model.layers.{layer}.{block}.{kind}.weight"


def short_name(name: str) -> str:
    """``model.layers.0.self_attn.q_proj.weight`` -> ``layers.0.self_attn.q_proj``."""
    if name.startswith("model."):
        name = name[len("model.") :]
    if name.endswith(".weight"):
        name = name[: -len(".weight")]
    return name


def model_nbytes_fast(config: LlamaConfig, scheme: QuantScheme | str) -> int:
    """:func:`.quant.model_nbytes`, costing each distinct tensor shape once (Llama-3-8B's
    291 tensors have 6 shapes: ~0.1 ms instead of ~10 ms, fast enough for a key press).

    >>> from ..core.quant import LLAMA_3_8B, model_nbytes
    >>> model_nbytes_fast(LLAMA_3_8B, "Q4_0") == model_nbytes(LLAMA_3_8B, "Q4_0")
    True
    """
    e = as_scheme(scheme).effective()
    shapes = Counter(expected_shapes(config).values())
    total = 0
    for shape, count in shapes.items():
        if is_quantized_tensor("", shape):
            total += storage_cost(shape, e).nbytes * count
        else:
            total += math.prod(shape) * 4 * count
    return total


# -- one matrix: the numbers ----------------------------------------------------------------


@dataclass(frozen=True)
class MatrixSummary:
    """Everything the chapter prints about one quantized matrix (plain numbers)."""

    name: str
    shape: tuple[int, ...]
    scheme: QuantScheme  # effective
    n_values: int
    original_range: tuple[float, float]
    dequantized_range: tuple[float, float]
    unique_original: int  # distinct float values before
    unique_values: int  # distinct float values after
    unique_codes: int  # distinct codes used anywhere
    levels: int  # 2**bits: the most one scale group can use
    max_unique_per_group: int  # the most distinct codes any one group uses
    n_groups: int  # scale groups (1 without a scale)
    scale_abs_range: tuple[float, float] | None  # smallest and largest |scale|
    rmse: float
    max_abs_error: float
    relative_rmse: float
    storage: StorageCost
    rms: float = 0.0
    """The weights' own RMS, sqrt(mean(w²)): what :attr:`relative_rmse` divides by
    (read directly, so an exact format's RMSE of 0 still shows the real RMS)."""

    @property
    def fp32_nbytes(self) -> int:
        return self.n_values * 4


def summarize(result: QuantResult, name: str) -> MatrixSummary:
    """The numbers of one quantized matrix (sorts the tensor twice: ~2 ms per 50k weights)."""
    if result.scales is not None:
        n_groups = int(result.scales.size)
        mags = np.abs(result.scales)
        scale_range: tuple[float, float] | None = (float(mags.min()), float(mags.max()))
        per_group = int(result.unique_per_group().max())
    else:
        n_groups, scale_range = 1, None
        per_group = result.unique_codes
    return MatrixSummary(
        name=name,
        shape=tuple(result.original.shape),
        scheme=result.scheme,
        n_values=result.n_values,
        original_range=result.original_range,
        dequantized_range=result.dequantized_range,
        unique_original=result.unique_original_values,
        unique_values=result.unique_values,
        unique_codes=result.unique_codes,
        levels=result.levels,
        max_unique_per_group=per_group,
        n_groups=n_groups,
        scale_abs_range=scale_range,
        rmse=result.rmse,
        max_abs_error=result.max_abs_error,
        relative_rmse=result.relative_rmse,
        storage=result.storage,
        rms=root_mean_square(result.original),
    )


@dataclass(frozen=True, eq=False)
class MatrixResult:
    """One matrix through one scheme, as chapter 15 shows it: the quantized tensor, its
    numbers, and the scale group around the chosen weight."""

    name: str
    scheme: QuantScheme
    result: QuantResult
    summary: MatrixSummary
    group: GroupView


def matrix_result(name: str, array: np.ndarray, scheme: QuantScheme, cell: tuple[int, int],
                  result: QuantResult | None = None,
                  summary: MatrixSummary | None = None) -> MatrixResult:  # fmt: skip
    """Quantize ``array`` (unless ``result`` is given), summarize it (unless ``summary``
    is) and cut out the group holding ``cell``."""
    from ..core.quant import quantize

    result = result if result is not None else quantize(array, scheme)
    summary = summary if summary is not None else summarize(result, name)
    return MatrixResult(name, scheme, result, summary, group_view(result, *cell))


class MatrixCache:
    """What chapter 15 computed per matrix and scheme: the last few quantized tensors (they
    are large), every summary, and the last groups seen (by the anchor of the group)."""

    MAX_RESULTS = 6
    MAX_GROUPS = 48

    def __init__(self) -> None:
        self.results: OrderedDict[tuple[str, QuantScheme], QuantResult] = OrderedDict()
        self.summaries: dict[tuple[str, QuantScheme], MatrixSummary] = {}
        self.groups: OrderedDict[tuple, GroupView] = OrderedDict()

    def clear(self) -> None:
        self.results.clear()
        self.summaries.clear()
        self.groups.clear()

    @staticmethod
    def anchor(shape: tuple[int, ...], scheme: QuantScheme, cell: tuple[int, int]) -> tuple:
        """The first weight of the group holding ``cell``: the same for every cell in it."""
        _, _, _, (r0, _), (c0, _) = group_bounds(shape, scheme, *cell)
        return r0, c0

    def lookup(self, name: str, shape: tuple[int, ...], scheme: QuantScheme,
               cell: tuple[int, int]) -> tuple[QuantResult | None, MatrixSummary | None,
                                               GroupView | None]:  # fmt: skip
        """(quantized tensor, summary, group holding ``cell``), each None if not kept."""
        key = (name, scheme)
        group = self.groups.get((name, scheme, self.anchor(shape, scheme, cell)))
        return self.results.get(key), self.summaries.get(key), group

    def keep(self, m: MatrixResult, cell: tuple[int, int]) -> None:
        """Keep ``m`` (its group filed under ``cell``'s group), dropping the oldest."""
        key = (m.name, m.scheme)
        self.results[key] = m.result
        self.results.move_to_end(key)
        while len(self.results) > self.MAX_RESULTS:
            self.results.popitem(last=False)
        self.summaries[key] = m.summary
        shape = m.result.original.shape
        self.groups[(m.name, m.scheme, self.anchor(shape, m.scheme, cell))] = m.group
        while len(self.groups) > self.MAX_GROUPS:
            self.groups.popitem(last=False)


# -- one matrix: the scale group around a weight ------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One weight of a group: where it is, its value, its code, its value after."""

    row: int
    col: int
    before: float
    code: int
    after: float

    @property
    def error(self) -> float:
        return self.after - self.before


@dataclass(frozen=True, eq=False)
class GroupView:
    """The weights that share one scale (or, without a scale, the whole matrix).

    ``before`` / ``after`` are the group's values sorted (float32), ready to be binned;
    ``grid`` every value the group can hold (sorted; ``None`` for fp16/bf16/fp32, whose
    grids are too fine to list — ``grid_count`` then counts their values in the shown
    range). ``scale`` / ``offset`` as stored; the sample weights come with their codes.
    """

    kind: str  # "tensor", "channel", "block" or "none"
    index: int  # this group's number, 0-based
    count: int  # groups in the matrix
    rows: tuple[int, int]  # [start, stop) in the matrix
    cols: tuple[int, int]
    before: np.ndarray
    after: np.ndarray
    grid: np.ndarray | None
    grid_count: int  # values of the format inside [lo, hi]
    scale: float | None
    offset: float | None
    samples: tuple[Sample, ...]
    lo: float  # the range a histogram should span: values and grid
    hi: float

    @property
    def size(self) -> int:
        return int(self.before.size)

    @property
    def label(self) -> str:
        """Where the group is, e.g. ``row 3, columns 32–63``."""
        r0, (c0, c1) = self.rows[0], self.cols
        if self.kind in ("tensor", "none"):
            return "the whole matrix"
        if self.kind == "channel":
            return f"row {r0}"
        return f"row {r0}, columns {c0}–{c1 - 1}"


def group_bounds(
    shape: tuple[int, int], scheme: QuantScheme, row: int, col: int
) -> tuple[str, int, int, tuple[int, int], tuple[int, int]]:
    """(kind, index, count, rows, cols) of the scale group holding matrix cell (row, col).

    >>> group_bounds((4, 100), QuantScheme("int4", "per-block"), 1, 70)
    ('block', 6, 16, (1, 2), (64, 96))
    """
    rows, cols = shape
    e = scheme.effective()
    row, col = min(max(row, 0), rows - 1), min(max(col, 0), cols - 1)
    if e.granularity == "per-channel":
        return "channel", row, rows, (row, row + 1), (0, cols)
    if e.granularity == "per-block":
        b = e.block_size
        per_row = -(-cols // b)
        c0 = (col // b) * b
        return (
            "block",
            row * per_row + col // b,
            rows * per_row,
            (row, row + 1),
            (c0, min(cols, c0 + b)),
        )
    kind = "tensor" if e.granularity == "per-tensor" else "none"
    return kind, 0, 1, (0, rows), (0, cols)


def step_group(
    shape: tuple[int, int], scheme: QuantScheme, row: int, col: int, delta: int
) -> tuple[int, int]:
    """The top-left cell of the group ``delta`` groups after the one holding (row, col),
    wrapping around the matrix (reading order: along a row, then down).

    >>> step_group((4, 100), QuantScheme("int4", "per-block"), 0, 96, 1)
    (1, 0)
    >>> step_group((4, 100), QuantScheme("int8", "per-channel"), 0, 5, -1)
    (3, 0)
    """
    rows, cols = shape
    kind, index, count, _, _ = group_bounds(shape, scheme, row, col)
    new = (index + delta) % count
    if kind == "channel":
        return new, 0
    if kind == "block":
        b = scheme.effective().block_size
        per_row = -(-cols // b)
        return new // per_row, (new % per_row) * b
    return 0, 0


def float_grid_count(lo: float, hi: float, fmt: str) -> int:
    """How many distinct fp16 / bf16 / fp32 values lie in ``[lo, hi]``.

    Non-negative floats sort like their bit patterns, so a count is a difference of codes
    on each side of zero (+0 and -0 are one value).

    >>> float_grid_count(1.0, 2.0, "bf16")   # 1 + 128 steps of 2**-7
    129
    >>> float_grid_count(-1.0, 1.0, "fp16")  # 15,360 codes on each side of zero, plus 0
    30721
    """
    if lo > hi:
        lo, hi = hi, lo
    if lo >= 0:
        return _codes_up_to(hi, fmt) + 1 - _codes_below(lo, fmt)
    if hi <= 0:
        return _codes_up_to(-lo, fmt) + 1 - _codes_below(-hi, fmt)
    return _codes_up_to(hi, fmt) + 1 + _codes_up_to(-lo, fmt)


def _encode_decode(x: float, fmt: str) -> tuple[int, float]:
    """(the nearest code of |x|, that code's value) for a non-negative finite x."""
    v = np.array([abs(x)], dtype=np.float32)
    if fmt == "fp16":
        code = int(fp16_encode(v)[0])
        return code, float(fp16_decode(np.array([code]))[0])
    if fmt == "bf16":
        code = int(bf16_encode(v)[0])
        return code, float(bf16_decode(np.array([code]))[0])
    if fmt == "fp32":
        return int(v.view(np.uint32)[0]), float(v[0])
    raise ValueError(f"float_grid_count needs fp16, bf16 or fp32, got {fmt!r}")


def _codes_up_to(x: float, fmt: str) -> int:
    """The largest code whose value is <= x (x >= 0)."""
    code, value = _encode_decode(x, fmt)
    return code - 1 if value > x else code


def _codes_below(x: float, fmt: str) -> int:
    """How many codes have a value < x (x >= 0): the smallest code whose value is >= x."""
    if x <= 0:
        return 0
    code, value = _encode_decode(x, fmt)
    return code + 1 if value < x else code


def group_view(result: QuantResult, row: int, col: int, n_samples: int = 4) -> GroupView:
    """The scale group of ``result`` holding matrix cell (row, col), ready to draw."""
    shape2 = _as_matrix_shape(result.original.shape)
    original = result.original.reshape(shape2)
    decoded = result.dequantized.reshape(shape2)
    codes = result.codes.reshape(shape2)
    kind, index, count, (r0, r1), (c0, c1) = group_bounds(shape2, result.scheme, row, col)
    block = np.s_[r0:r1, c0:c1]
    before = np.sort(original[block], axis=None)
    after = np.sort(decoded[block], axis=None)
    scale = offset = None
    grid = None
    if result.scales is not None:
        gi = result.group_index((r0, c0))
        scale = float(result.scales[gi])
        offset = float(result.offsets[gi]) if result.offsets is not None else None
    grid = result.grid((r0, c0)) if result.scheme.format not in ("fp32", "fp16", "bf16") else None
    lo = float(min(before[0], after[0]))
    hi = float(max(before[-1], after[-1]))
    if grid is not None and grid.size:
        lo, hi = min(lo, float(grid[0])), max(hi, float(grid[-1]))
        grid_count = int(grid.size)
    else:
        grid_count = float_grid_count(lo, hi, result.scheme.format)
    samples = _samples(original, decoded, codes, (r0, r1), (c0, c1), n_samples)
    return GroupView(
        kind, index, count, (r0, r1), (c0, c1), before, after, grid, grid_count,
        scale, offset, samples, lo, hi,
    )  # fmt: skip


def _as_matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    rows = 1
    for s in shape[:-1]:
        rows *= s
    return rows, shape[-1]


def _samples(
    original: np.ndarray,
    decoded: np.ndarray,
    codes: np.ndarray,
    rows: tuple[int, int],
    cols: tuple[int, int],
    n: int,
) -> tuple[Sample, ...]:
    """The group's largest-magnitude weight (it sets the scale) and the first few others."""
    (r0, r1), (c0, c1) = rows, cols
    part = original[r0:r1, c0:c1]
    width = c1 - c0
    flat_max = int(np.argmax(np.abs(part)))
    picks = [flat_max] + [i for i in range(min(part.size, n + 1)) if i != flat_max]

    def sample(i: int) -> Sample:
        r, c = r0 + i // width, c0 + i % width
        return Sample(r, c, float(original[r, c]), int(codes[r, c]), float(decoded[r, c]))

    return tuple(sample(i) for i in picks[:n])


def outlier_cell(matrix: np.ndarray) -> tuple[int, int]:
    """(row, col) of the weight with the largest magnitude."""
    m = matrix.reshape(_as_matrix_shape(matrix.shape))
    r, c = np.unravel_index(int(np.argmax(np.abs(m))), m.shape)
    return int(r), int(c)


__all__ = [
    "MATRIX_KINDS",
    "MATRIX_LABELS",
    "NO_SCALE",
    "GroupView",
    "MatrixResult",
    "MatrixSummary",
    "Sample",
    "float_grid_count",
    "group_bounds",
    "group_view",
    "matrix_result",
    "model_nbytes_fast",
    "outlier_cell",
    "short_name",
    "step_group",
    "summarize",
    "tensor_name",
]
