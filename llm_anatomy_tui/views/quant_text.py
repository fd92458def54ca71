"""Chapter 15's prose (plain data) and how it writes its numbers.

>>> sig(0.000123456), wt(-0.2434651), ratio(16384 * 4, 9216)
('0.000123', '-0.24347', '7.11×')
"""

from __future__ import annotations

import math

LEAD = (
    "Fewer bits per weight: a short code times a scale shared by a group. See a real "
    "matrix snap to the grid, and what that costs the whole model."
)

EXPLAINER: tuple[tuple[str, str], ...] = (
    (
        "Why fewer bits",
        "An FP32 weight takes 4 bytes, so 8 billion weights take 32 GB: more than most "
        "graphics cards hold, and producing each token means reading every one of them from "
        "memory. In 4 bits they take an eighth of that, and the reading shrinks with them. "
        "The price is precision: each weight moves to the nearest value the short format "
        "can hold.",
    ),
    (
        "What a scale is",
        "An integer code only counts steps; the scale d says how long one step is, and the "
        "weight becomes code × d. The scale is chosen so the group's largest weight lands on "
        "the last code (INT8: d = largest |w| / 127); every other weight rounds to the "
        "nearest step, so none moves by more than half a step. For INT4, INT3 and INT2 the "
        "rule of llama.cpp's Q4_0 gives d whichever sign puts the largest weight exactly on "
        "the most negative code (so d can be negative) and uses every code; a rare weight "
        "more than 7.5 steps out on the other side is clipped to the last code. "
        "Asymmetric groups also store an offset m, "
        "their smallest weight, and spread the codes from their minimum to their maximum: "
        "code × d + m.",
    ),
    (
        "Why blocks help",
        "With one scale for a whole matrix, its single largest weight sets the step for all "
        "the others, and small weights collapse onto zero. Press x to jump to the largest "
        "weight, then g to compare per tensor, per row and per block. A scale per block of "
        "32 weights, as in llama.cpp's Q8_0 and Q4_0, fits the step to its neighbourhood; "
        "the cost is the scales themselves: a 16-bit scale shared by 32 weights adds half a "
        "bit to each, which is why Q4_0 costs 4.5 bits per weight, not 4.",
    ),
    (
        "Floating-point formats",
        "FP16, BF16 and FP8 are grids too, but their steps grow with the number: fine near "
        "zero, coarse far from it. BF16 keeps FP32's range with 8 significant bits; FP16 has "
        "11 but stops at 65,504; FP8 (E4M3) has 4 and stops at 448, so here it gets a scale "
        "per group like the integers.",
    ),
    (
        "How the whole model is measured",
        "Every matrix (the embedding, which is also the output layer, and all projections) "
        "is quantized with the chosen scheme; the norm gains stay FP32. Both models then "
        "read the first 2,048 tokens of 50 held-out stories the model never trained on, in "
        "windows as long as its context; every token but the first of a window is predicted "
        "(2,040 with anatomy-mini's 256), and all three figures count those. KL "
        "divergence measures how far the quantized model's next-token probabilities move "
        "away from FP32's (0 means identical); top-1 agreement counts how often both rank "
        "the same token first; perplexity measures how surprised each model is by the "
        "true next token (lower is better).",
    ),
    (
        "Simulated, not accelerated",
        "Here the codes are decoded back to FP32 and the model computes in FP32: you see "
        "exactly the rounding error a format causes, but no speed-up. A real runtime keeps "
        "the packed codes in memory and multiplies with them directly. The byte counts are "
        "those of the packed codes and scales, as a model file holds them.",
    ),
)


def sig(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits (0.00797, 1.96e-05, 0)."""
    return "0" if x == 0 else f"{x:.{digits}g}"


def wt(x: float, decimals: int = 5) -> str:
    """A weight value: 5 decimals (6 where a reader may redo the arithmetic)."""
    x = float(x)
    if math.isnan(x) or math.isinf(x):  # as widgets._format.fmt writes them
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return f"{x:.{decimals}f}"


def ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}×" if b else "—"


# -- the choices ------------------------------------------------------------------------------

GRANULARITY_LABELS = ("tensor", "channel", "block of 32")
GROUP_WORDS = {"per-tensor": "tensor", "per-channel": "row", "per-block": "block of 32"}


def scale_note(fmt_label: str, fmt_name: str, granularity: str, llama_cpp_name: str) -> str:
    """The note after sym/asym: why it is off, or the llama.cpp name of the scheme.

    >>> scale_note("FP16", "fp16", "none", "")
    '(FP16: no scale)'
    >>> scale_note("FP8", "fp8", "per-block", ""), scale_note("INT4", "int4", "per-block", "Q4_0")
    ('(FP8: always sym)', '= Q4_0')
    """
    if granularity == "none":
        return f"({fmt_label}: no scale)"
    if fmt_name == "fp8":
        return "(FP8: always sym)"
    return f"= {llama_cpp_name}" if llama_cpp_name else ""


# -- one matrix ---------------------------------------------------------------------------------


def group_where(kind: str, index: int, count: int, rows: tuple[int, int], cols: tuple[int, int],
                n_rows: int) -> str:  # fmt: skip
    """Where the shown scale group sits in its matrix.

    >>> group_where("block", 2, 1536, (0, 1), (64, 96), 96)
    'Block 3 of 1,536 (row 0, columns 64–95)'
    >>> group_where("channel", 5, 96, (5, 6), (0, 512), 96)
    'Row 5 of 96'
    """
    if kind == "block":
        return f"Block {index + 1:,} of {count:,} (row {rows[0]}, columns {cols[0]}–{cols[1] - 1})"
    if kind == "channel":
        return f"Row {rows[0]} of {n_rows:,}"
    return "The whole matrix"


def group_line(where: str, scale: float | None, offset: float | None, grid_count: int | None,
               used: int, has_grid: bool, fmt_label: str) -> str:  # fmt: skip
    """The line above the histogram: the group, its scale (and offset), the grid it uses.

    >>> group_line("Row 1 of 4", 0.5, None, 16, 7, True, "INT4")
    'Row 1 of 4 · d = 0.5 · uses 7 of its 16 values'
    >>> group_line("The whole matrix", None, None, None, 0, False, "BF16")
    'The whole matrix · BF16 rounds each weight on its own'
    """
    line = where
    if scale is not None:
        line += f" · d = {sig(scale, 7)}"
        if offset is not None:
            line += f", m = {sig(offset, 7)}"
    if has_grid:
        line += f" · uses {used} of its {grid_count} values"
    else:
        line += f" · {fmt_label} rounds each weight on its own"
    return line


def sample_heads(fmt_name: str, is_int: bool, has_offset: bool) -> tuple[str, str]:
    """(the code column's heading, the after column's heading) of the sample table.

    >>> sample_heads("int4", True, True), sample_heads("bf16", False, False)
    (('code', 'code × d + m'), ('bf16 bits', 'after'))
    """
    if is_int:
        after = "code × d + m" if has_offset else "code × d"
    elif fmt_name == "fp8":
        after = "code × d"
    else:
        after = "after"
    code_head = {"fp8": "E4M3 value", "fp16": "fp16 bits", "bf16": "bf16 bits"}.get(
        fmt_name, "fp32 bits" if fmt_name == "fp32" else "code"
    )
    return code_head, after


def sample_code(fmt_name: str, code: int, fp8_value: float = 0.0) -> str:
    """One stored code as the sample table writes it (``fp8_value``: what an FP8 code means).

    >>> sample_code("fp16", 15360), sample_code("fp32", 1), sample_code("int4", -8)
    ('0x3C00', '0x00000001', '-8')
    >>> sample_code("fp8", 56, 1.0)
    '1'
    """
    if fmt_name == "fp8":
        return f"{float(fp8_value):g}"
    if fmt_name in ("fp16", "bf16"):
        return f"0x{code:04X}"
    if fmt_name == "fp32":
        return f"0x{code:08X}"
    return str(code)


def samples_note(scale: float | None, offset: float | None) -> str:
    """The note under the sample table: what the highlighted (largest) weight sets."""
    if scale is None:
        return "▶ the group's largest |w|"
    if offset is None:  # symmetric: d = largest |w| / the largest code
        return "▶ the group's largest |w|: it sets d"
    return "▶ the group's largest |w|; its min and max set d and m"  # asymmetric


# -- the whole model ------------------------------------------------------------------------------

STAGE_WORDS = {
    "waiting": "starting",
    "quantize": "quantizing tensor {done} of {total}",
    "quantized": "generating text",
    "generated": "comparing on held-out text",
    "compare": "comparing window {done} of {total}",
}


def stage_words(stage: str, done: int, total: int) -> str:
    """What a whole-model job is doing, with an 8-step bar when its length is known.

    >>> stage_words("compare", 2, 8)
    'comparing window 2 of 8  ▰▰▱▱▱▱▱▱'
    >>> stage_words("quantized", 0, 0)
    'generating text'
    """
    what = STAGE_WORDS.get(stage, stage).format(done=done, total=total)
    if total:
        filled = round(8 * done / total)
        what += "  " + "▰" * filled + "▱" * (8 - filled)
    return what


def pending_numbers(texts_missing: bool, comparison_missing: bool) -> str:
    """The numbers still to come, in reading order.

    >>> pending_numbers(True, True)
    'text, KL, top-1, perplexity'
    """
    pending = ["text"] if texts_missing else []
    if comparison_missing:
        pending += ["KL", "top-1", "perplexity"]
    return ", ".join(pending)


def first_difference_note(k: int | None, n: int) -> str:
    """Where two continuations part (``k``: their first different token; ``n``: length).

    >>> first_difference_note(None, 1), first_difference_note(3, 32)
    ('Both texts are identical (1 token).', 'Identical for the first 3 tokens, then they part (underlined).')
    """
    if k is None:
        return f"Both texts are identical ({n} token{'' if n == 1 else 's'})."
    if k == 0:
        return "Different from the first token on (underlined)."
    if k == 1:
        return "Same first token, then they part (underlined)."
    return f"Identical for the first {k} tokens, then they part (underlined)."
