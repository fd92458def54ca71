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
