"""Chapter 15's panels as Rich text: plain data in, renderables (or set_* arguments) out.

Every function here is pure: it knows the numbers it is given, not the screen that shows
them. The words come from :mod:`llm_anatomy_tui.views.quant_text`; the numbers are
written with the shared ``fmt``/``fmt_percent`` so one value is never rounded two ways.
"""

from __future__ import annotations

from rich.text import Text

from ..core.evaluate import ModelComparison
from ..core.quant import E4M3_VALUES, FORMAT_NAMES, FORMATS, QuantScheme, SizeRow
from ..core.quant_lab import SideBySide
from ..views.quant_matrix import MATRIX_KINDS, MATRIX_LABELS, GroupView, MatrixSummary
from ..views.quant_text import (
    GRANULARITY_LABELS,
    GROUP_WORDS,
    first_difference_note,
    pending_numbers,
    ratio,
    sample_code,
    sample_heads,
    samples_note,
    scale_note,
    sig,
    stage_words,
    wt,
)
from ._format import fmt, fmt_percent
from .quant_views import OptionGroup, TextCompareRenderable, TextRow

COMPUTING = "computing…"
METRIC_LABELS = ("range", "distinct", "scales", "error", "storage")
MODEL_NUMBERS = ("kl", "top1", "perplexity")


def computing() -> Text:
    """The placeholder of a number still being computed."""
    return Text(COMPUTING, style="italic")


def italic(message: str) -> Text:
    return Text(message, style="italic")


def format_groups(format_index: int) -> list[OptionGroup]:
    """The row of number formats."""
    labels = tuple(FORMATS[f].label for f in FORMAT_NAMES)
    return [OptionGroup("Format", labels, format_index)]


def scale_groups(granularity_index: int, e: QuantScheme) -> list[OptionGroup]:
    """The row of scale choices: per what, and sym/asym (off where they mean nothing)."""
    has_scale = e.granularity != "none"
    note = scale_note(FORMATS[e.format].label, e.format, e.granularity, e.llama_cpp_name)
    return [
        OptionGroup("Scale per", GRANULARITY_LABELS, granularity_index, has_scale),
        OptionGroup(
            "", ("sym", "asym"), 0 if e.symmetric else 1, has_scale and e.format != "fp8", note
        ),
    ]


def matrix_groups(kind_index: int, layer_index: int, layers: int) -> list[OptionGroup]:
    """The row of matrices and layers (no layer for the embedding)."""
    embedding = MATRIX_KINDS[kind_index] == "embedding"
    return [
        OptionGroup("Matrix", tuple(MATRIX_LABELS[k] for k in MATRIX_KINDS), kind_index),
        OptionGroup("layer", tuple(str(i) for i in range(layers)), layer_index, not embedding),
    ]


def size_8b_table(rows: list[SizeRow]) -> dict:
    """Arguments of ``QuantTable.set_table`` for the 8B-parameter model in every format."""
    return {
        "header": ("format", "codes only", "+ scales", "bits/weight", "Llama-3-8B"),
        "rows": [
            (
                r.label,
                f"{r.gb:.1f} GB",
                f"{r.gb_with_scales:.2f} GB",
                f"{r.bits_per_weight_with_scales:.1f}",
                f"{r.llama3_8b_gb:.2f} GB",
            )
            for r in rows
        ],
        "title": "An 8B-parameter model in each format (GB = 10⁹ bytes)",
        "note": "codes only: 8e9 × bits ÷ 8. + scales: one fp16 scale per 32 weights",
    }


def matrix_title(name: str, heading: str) -> Text:
    """The matrix's short name in bold, then its shape (one line, cut with an ellipsis)."""
    return Text.assemble((name, "bold"), heading, no_wrap=True, overflow="ellipsis")


def pending_metric_rows() -> list[tuple[str, Text]]:
    return [(label, computing()) for label in METRIC_LABELS]


def samples_table(fmt_name: str, g: GroupView) -> dict:
    """Arguments of ``QuantTable.set_table`` for the group's sample weights."""
    code_head, after = sample_heads(fmt_name, FORMATS[fmt_name].kind == "int", g.offset is not None)
    rows = []
    for smp in g.samples:
        fp8 = float(E4M3_VALUES[smp.code]) if fmt_name == "fp8" else 0.0
        code = sample_code(fmt_name, smp.code, fp8)
        rows.append(
            (f"[{smp.row}, {smp.col}]", wt(smp.before, 6), code, wt(smp.after, 6),
             fmt(smp.error, 5))
        )  # fmt: skip
    return {
        "header": ("weight", "before", code_head, after, "error"),
        "rows": rows,
        "align": "lrrrr",
        "highlight": 0,
        "note": samples_note(g.scale, g.offset),
    }


def matrix_numbers(s: MatrixSummary) -> dict[str, str]:
    """The matrix's numbers as shown, keyed as in ``QuantizationScreen.shown``."""
    (lo0, hi0), (lo1, hi1) = s.original_range, s.dequantized_range
    shown = {
        "range": f"{wt(lo0)} … {wt(hi0)}  →  {wt(lo1)} … {wt(hi1)}",
        "unique_before": f"{s.unique_original:,}",
        "unique_after": f"{s.unique_values:,}",
        "rmse": sig(s.rmse),
        "rms": sig(s.rms),
        "relative": fmt_percent(s.relative_rmse, 1),
        "max_error": sig(s.max_abs_error),
        "storage": s.storage.explain(),
        "fp32_bytes": f"{s.fp32_nbytes:,}",
        "compression": ratio(s.fp32_nbytes, s.storage.nbytes),
    }
    e = s.scheme
    label = FORMATS[e.format].label
    group_word = GROUP_WORDS.get(e.granularity, "group")
    distinct = f"{shown['unique_before']} values before → {shown['unique_after']} after"
    if FORMATS[e.format].kind == "int" or e.format == "fp8":
        distinct += f" · codes used: {s.unique_codes:,} of {s.levels:,}"
        if s.n_groups > 1:
            distinct += f", at most {s.max_unique_per_group} in one {group_word}"
    if e.granularity == "none":
        scales = f"none: {label} rounds each weight on its own"
    else:
        kind = e.scale_dtype or "fp32"
        lo_d, hi_d = s.scale_abs_range or (0.0, 0.0)
        if s.n_groups == 1:
            scales = f"1 {kind} scale for all {s.n_values:,} weights, |d| = {sig(hi_d, 6)}"
        else:
            scales = (
                f"{s.n_groups:,} {kind} scales, one per {group_word}; "
                f"|d| from {sig(lo_d)} to {sig(hi_d)}"
            )
        if e.spec.kind == "int" and not e.symmetric:
            scales += f"; plus {s.n_groups:,} {kind} offsets m"
        per = s.n_values // s.n_groups
        scales += (
            f" · overhead {s.storage.overhead_bits_per_weight:.4g} bits/weight "
            f"({s.storage.scale_bits} bits ÷ {per:,} weights"
            + (" × 2 with offsets)" if s.storage.n_offsets else ")")
        )
    shown["scales"] = scales
    shown["distinct"] = distinct
    shown["error"] = (
        f"RMSE {shown['rmse']} = {shown['relative']} of the weights' RMS "
        f"({shown['rms']}) · largest error {shown['max_error']}"
    )
    shown["storage_line"] = (
        f"{shown['storage']} · FP32 {shown['fp32_bytes']} B is {shown['compression']} as large"
    )
    return shown


def metric_rows(shown: dict[str, str]) -> list[tuple[str, Text | str]]:
    """The matrix panel's rows from :func:`matrix_numbers`."""
    return [
        ("range", shown["range"]),
        ("distinct", shown["distinct"]),
        ("scales", shown["scales"]),
        ("error", shown["error"]),
        ("storage", shown["storage_line"]),
    ]


def llama3_line(n_params: int, nbytes: int, label: str) -> str:
    return (
        f"Llama-3-8B ({n_params / 1e9:.2f} billion weights) in your scheme, {label}: "
        f"{nbytes / 1e9:.2f} GB, {nbytes * 8 / n_params:.2f} bits per weight."
    )


def model_title(label: str) -> Text:
    return Text.assemble(("The whole model in ", "bold"), (label, "bold"))


def model_rows(
    nbytes: int,
    fp32: int,
    copy_bytes: int | None,
    comparison: ModelComparison | None,
    unavailable: str | None,
) -> tuple[list[tuple[str, Text | str]], dict[str, str]]:
    """The whole-model panel's rows (but its status) and their texts for ``shown``.

    ``copy_bytes``: the FP32 copy's size when worth saying; ``unavailable``: why the
    comparison cannot be made (None while it is merely still coming)."""
    n_params = fp32 // 4
    size = f"{nbytes:,} B = {nbytes * 8 / n_params:.2f} bits/weight"
    versus = f"{fp32:,} B: {ratio(fp32, nbytes)} as large"
    shown = {"model_size": size, "model_fp32": versus}
    rows: list[tuple[str, Text | str]] = [("size", size), ("FP32 size", versus)]
    if copy_bytes is not None:
        rows.append(("memory", f"+{copy_bytes / 2**20:,.0f} MB: the copy runs as FP32"))
    c = comparison
    if c is not None:
        kl = f"{sig(c.kl_mean)} nats per token, worst {sig(c.kl_max)}"
        top1 = (
            f"{fmt_percent(c.top1_agreement, 2)} of {c.n_predictions:,} held-out tokens: "
            "same first choice"
        )
        ppl = (
            f"{c.perplexity_candidate:.3f} vs FP32 {c.perplexity_reference:.3f} "
            f"(the same {c.n_predictions:,} tokens)"
        )
        shown.update({"kl": kl, "top1": top1, "perplexity": ppl})
        rows += [("KL vs FP32", kl), ("top-1", top1), ("perplexity", ppl)]
    else:
        missing = italic(f"unavailable: {unavailable}") if unavailable is not None else computing()
        shown.update({k: missing.plain for k in MODEL_NUMBERS})
        rows += [("KL vs FP32", missing), ("top-1", missing), ("perplexity", missing)]
    return rows, shown


def status_text(
    stage: str, error: str, texts_missing: bool, comparison_missing: bool, done: int, total: int
) -> Text:
    """The whole-model panel's status: final, failed, or what is still computing."""
    if stage == "error":
        return Text(f"✗ {error}", style="bold")
    if stage == "done":
        return Text("✓ final (cached: coming back is instant)")
    return Text.assemble(
        ("⧗ still computing: ", "bold"),
        pending_numbers(texts_missing, comparison_missing),
        f" — {stage_words(stage, done, total)}",
    )


def texts_head(n_new: int, seed: int) -> Text:
    return Text(
        f"Both models continue your prompt: {n_new} tokens, seed {seed}",
        style="bold",
        no_wrap=True,
        overflow="ellipsis",
    )


def texts_compare(t: SideBySide, scheme: QuantScheme) -> TextCompareRenderable:
    """FP32's continuation over the quantized model's, the part after their shared start marked."""
    common = t.common_text
    label = texts_label(scheme)
    return TextCompareRenderable(
        [
            TextRow("FP32", common, t.reference.text[len(common) :]),
            TextRow(
                label if scheme.format != "fp32" else "FP32 again",
                common,
                t.candidate.text[len(common) :],
                True,
            ),
        ],
        max_lines=3,
    )


def texts_label(scheme: QuantScheme) -> str:
    return "FP32" if scheme.format == "fp32" else FORMATS[scheme.format].label


def texts_note(t: SideBySide, scheme: QuantScheme) -> str:
    """Where the two continuations part, the sampler, and who stopped early."""
    message = first_difference_note(t.first_difference, len(t.reference.tokens))
    message += f" Sampler: {t.settings.describe()}, same for both."
    for who, gen in (("FP32", t.reference), (texts_label(scheme), t.candidate)):
        if gen.stop:
            message += f" {who} stopped early: {gen.stop}."
            break
    return message
