"""The Rich text chapter 14 draws from its view-model data: the status and message lines,
the cache's arrays, the with/without comparison, the quantized cache and the memory
calculator. Plain data in, Rich renderables out; no screen here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.text import Text

from ..core.generation import kv_cache_bytes_for
from ..core.quant_kv import kv_bytes_per_token
from ..views.kv_inspect import CacheComparison, KVState, diff_text
from ..views.kv_memory import (
    DTYPE_NOTES,
    KVArch,
    bytes_per_token,
    bytes_text,
    format_bytes,
    format_gib,
    formula_text,
    kv_bytes,
)
from ..views.kv_text import macs_text as _m
from ..views.kv_text import ms_text as _ms
from ..views.kv_text import prefill_and_decode, right_aligned
from .line_plot import Series

TABLE_ROWS = 8
"""Recent steps listed in the tables (the plots show all of them)."""


def status_text(kv: KVState, use_cache: bool) -> Text:
    """The prefill/decode count and the cache's length (or that it is off)."""
    cfg = kv.config
    if use_cache:
        cache = f"{kv.snapshot.length} of {cfg.max_position_embeddings} positions, on"
    else:
        cache = f"OFF, nothing stored: every step feeds all {kv.n_tokens} tokens again"
    return Text.assemble(
        ("Prefill: ", "bold"),
        *prefill_and_decode(kv.n_prompt, kv.n_steps),
        "\n",
        ("cache: ", "bold"),
        cache,
    )


def message_lines(kv: KVState, measure_error: str) -> list[Text]:
    """Why generation stopped (or what the last op said), errors, and the context notice."""
    lines = []
    if kv.stop is not None:
        tail = (
            " Press x to start over, or shorten the prompt."
            if kv.stop.reason == "context_full"
            else " Press x to start over."
        )
        lines.append(Text.assemble(("Generation stopped: ", "bold"), kv.stop.message + ".",
                                   tail))  # fmt: skip
    elif kv.info:
        lines.append(Text(kv.info, style="bold"))
    for message in (kv.message, measure_error):
        if message:
            lines.append(Text(message, style="bold"))
    if kv.notice:
        lines.append(Text(kv.notice, style="italic"))
    return lines


def no_cache_text(kv: KVState) -> Text:
    """The arrays table with the cache off: nothing is kept between steps."""
    cfg = kv.config
    t = kv.n_tokens
    with_cache = kv_cache_bytes_for(cfg, t)
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append("Cache off: nothing is stored between steps (0 B).\n", style="bold")
    out.append(
        f"Every step feeds all {t} tokens again; each of the {cfg.num_hidden_layers} "
        "layers recomputes\n"
        f"K and V of shape [{cfg.num_key_value_heads}, {t}, {cfg.dim_head}], uses them "
        "once and drops them.\n"
    )
    out.append(
        f"With the cache on they would be kept: {with_cache:,} B for {t} positions.\n",
        style="dim",
    )
    out.append("Press c to show decoding with the cache.", style="italic")
    return out


def arrays_text(kv: KVState, rows: Sequence[tuple[str, str, str, int, str]]) -> Text:
    """The cache's arrays layer by layer (``rows`` from ``array_rows``), their total, and
    the formula that must give the same number."""
    snap = kv.snapshot
    cfg = kv.config
    out = Text(no_wrap=True, overflow="ellipsis")
    t = snap.length
    cells = [(name, f"{k} {dtype}", f"{v} {dtype}", f"{nbytes:,}")
             for name, k, v, nbytes, dtype in rows]  # fmt: skip
    total = snap.nbytes
    header = ("", "K [H_kv, T, d_head]", "V [H_kv, T, d_head]", "bytes K + V")
    footer = ("all", "", "Σ nbytes", f"{total:,}")
    widths = [max(len(c[i]) for c in (header, footer, *cells)) for i in range(4)]

    def line(c: tuple[str, ...]) -> str:
        return "  ".join((c[0].ljust(widths[0]), c[1].ljust(widths[1]),
                          c[2].ljust(widths[2]), c[3].rjust(widths[3])))  # fmt: skip

    out.append(line(header) + "\n", style="bold")
    for c in cells:
        out.append(line(c) + "\n")
    out.append(line(footer) + "\n", style="bold")
    ok = "✓ equal" if total == snap.formula_bytes else "✗ they differ!"
    pad = " " * widths[0]
    out.append(f"{'formula':<{widths[0]}}  2 · L · H_kv · d_head · T · 4 B\n")
    out.append(
        f"{pad}  = 2 · {cfg.num_hidden_layers} · {cfg.num_key_value_heads} · "
        f"{cfg.dim_head} · {t} · 4 = {snap.formula_bytes:,} B  "
    )
    out.append(ok + "\n", style="bold")
    per = kv_cache_bytes_for(cfg, 1)
    full = kv_cache_bytes_for(cfg, cfg.max_position_embeddings)
    out.append(
        f"{per:,} B per token; the full {cfg.max_position_embeddings}-token window "
        f"takes {full:,} B ({format_bytes(full)})",
        style="dim",
    )
    # one note line, always present (blank if nothing to say): a step never changes
    # the table's height, so it repaints without a layout pass
    if t < kv.n_tokens and kv.stop is not None:
        note = "The newest token never ran (generation stopped): its K, V were not needed."
    else:
        note = ""
    out.append("\n" + note, style="italic")
    return out


def compare_text(
    comps: Sequence[CacheComparison], on: bool, pending: Sequence[tuple[int, int]] = ()
) -> Text:
    """The newest step both ways, the recent steps in a table and the totals; with the
    cache off (``on`` False), the table lists the work without it (the cached figures only
    as what the cache would have saved). ``pending``: (step, position) of the steps still
    to be measured, drawn as rows waiting for their numbers, so the table has its final
    height from the start (a panel that grows row by row moves everything below it, and
    each move resends the whole screen over SSH)."""
    out = Text(no_wrap=True, overflow="ellipsis")
    if not comps and not pending:
        out.append("Take a step (s) to measure one both ways.", style="italic")
        return out
    if comps:
        last = comps[-1]
        out.append(f"Step {last.index}", style="bold")
        if last.prefill:
            out.append(f": the prefill — both ways run all {last.cached_fed} prompt tokens.\n")
        elif on:
            out.append(f": with the cache {last.cached_fed} token fed, without it all "
                       f"{last.uncached_fed}.\n")  # fmt: skip
        else:
            out.append(f": without a cache all {last.uncached_fed} tokens fed (with it, "
                       f"{last.cached_fed}).\n")  # fmt: skip
        same = "same top token" if last.top1_same else "DIFFERENT top token"
        out.append(f"Logits with vs without: max |Δ| {diff_text(last.max_abs_diff)}, {same}.\n")
    else:
        out.append("Measuring the newest step both ways…\n\n", style="italic")
    if on:
        header = ("step", "T", "fed", "M MACs cached", "no cache", "ms cached", "no cache",
                  "max |Δ|")  # fmt: skip
    else:
        header = ("step", "T", "fed", "M MACs no cache", "ms no cache", "max |Δ| vs cache")
    rows = {}
    for index, position in pending:
        rows[index] = (str(index), str(position), "…") + ("",) * (len(header) - 3)
    for c in comps:
        if on:
            rows[c.index] = (str(c.index), str(c.position), f"{c.cached_fed}/{c.uncached_fed}",
                             _m(c.cached_macs), _m(c.uncached_macs), _ms(c.cached_seconds),
                             _ms(c.uncached_seconds), diff_text(c.max_abs_diff))  # fmt: skip
        else:
            rows[c.index] = (str(c.index), str(c.position), str(c.uncached_fed),
                             _m(c.uncached_macs), _ms(c.uncached_seconds),
                             diff_text(c.max_abs_diff))  # fmt: skip
    steps = sorted(rows)
    head, *body = right_aligned(header, [rows[i] for i in steps[-TABLE_ROWS:]])
    out.append(head + "\n", style="bold")
    for r in body:
        out.append(r + "\n")
    if len(steps) > TABLE_ROWS:
        out.append(f"(the last {TABLE_ROWS} of {len(steps)} steps; the plots show all)\n",
                   style="dim")  # fmt: skip
    decode = [c for c in comps if not c.prefill]
    if decode:
        cm = sum(c.cached_macs for c in decode)
        um = sum(c.uncached_macs for c in decode)
        ct = sum(c.cached_seconds for c in decode)
        ut = sum(c.uncached_seconds for c in decode)
        n = f"{len(decode)} decode step{'s' if len(decode) != 1 else ''}"
        if on:
            out.append(f"{n}: {_m(cm)} M multiply-adds with the cache, {_m(um)} M without "
                       f"({um / cm:.1f}×);\nmeasured {_ms(ct)} ms with the cache, "
                       f"{_ms(ut)} ms without.", style="bold")  # fmt: skip
        else:
            out.append(f"{n} without a cache: {_m(um)} M multiply-adds, {_ms(ut)} ms;\n"
                       f"the cache would have needed {_m(cm)} M ({um / cm:.1f}× fewer).",
                       style="bold")  # fmt: skip
    elif any(index > 0 for index, _ in pending):  # decode steps, none measured yet
        out.append("Totals over the decode steps once they are measured.\n", style="italic")
    if pending:
        n = len(pending)
        out.append(f"\nmeasuring {n} more step{'s' if n != 1 else ''} both ways…",
                   style="italic")  # fmt: skip
    else:
        out.append("\nevery step measured both ways", style="dim")
    return out


def compare_series(
    comps: Sequence[CacheComparison], on: bool
) -> tuple[tuple[Series, ...], tuple[Series, ...], float, float]:
    """The two plots' series (multiply-adds in millions, time in ms) and their y maxima."""
    xs = [c.index for c in comps]
    macs = [Series("no cache", [c.uncached_macs / 1e6 for c in comps], xs)]
    times = [Series("no cache", [c.uncached_seconds * 1000 for c in comps], xs)]
    if on:
        macs.append(Series("cache", [c.cached_macs / 1e6 for c in comps], xs))
        times.append(Series("cache", [c.cached_seconds * 1000 for c in comps], xs))
    macs_top = max(c.uncached_macs for c in comps) / 1e6 * 1.05
    top = max(max(c.uncached_seconds, c.cached_seconds if on else 0.0) for c in comps)
    return tuple(macs), tuple(times), macs_top, top * 1000 * 1.05


def quant_text(kv: KVState) -> Text:
    """The quantized cache: off, being fed, or its bytes and its drift per step."""
    out = Text(no_wrap=True, overflow="ellipsis")
    cfg = kv.config
    if kv.bits is None:
        out.append("Off. ", style="bold")
        out.append(
            f"Press k to run an 8-bit copy of the cache beside the float32 one\n"
            f"({kv_bytes_per_token(cfg, 8):,} B per token instead of "
            f"{kv_bytes_per_token(cfg):,}); k again for 4-bit "
            f"({kv_bytes_per_token(cfg, 4):,} B),\nonce more for off.",
        )
        return out
    if not kv.drift:
        out.append("Feeding the tokens so far to the quantized cache…", style="italic")
        return out
    step_index, last = kv.drift[-1]
    t = last.length
    bits = kv.bits
    fp32 = last.fp32_nbytes
    q = last.quantized_nbytes
    block = "block of 32" if cfg.dim_head % 32 == 0 else f"head ({cfg.dim_head} numbers)"
    out.append(f"{bits}-bit cache", style="bold")
    out.append(f", one fp16 scale per {block}, {t} positions:\n")
    n_blocks = cfg.dim_head // (32 if cfg.dim_head % 32 == 0 else cfg.dim_head)
    L, H = cfg.num_hidden_layers, cfg.num_key_value_heads  # noqa: N806
    out.append(
        f"  codes   2 · {L} · {H} · {t} · {cfg.dim_head} · {bits}/8 B"
        f" = {kv.quant_codes_bytes:,} B\n"
        f"  scales  2 · {L} · {H} · {t} · {n_blocks} × 2 B = {kv.quant_scales_bytes:,} B\n"
        f"  total   {q:,} B = codes + scales; float32 holds {fp32:,} B\n"
        f"  saved   {fp32 - q:,} B ({last.saved_fraction * 100:.1f}%)\n"
    )
    rows = kv.drift
    agree = sum(1 for _, d in rows if d.top1_match)
    mean_kl = float(np.mean([d.kl for _, d in rows]))
    worst = max(d.max_abs_logit_diff for _, d in rows)
    out.append("Drift of the next-token logits versus the float32 cache:\n", style="bold")
    out.append(
        f"top token the same in {agree} of {len(rows)}; mean KL {mean_kl:.1e} nats; "
        f"worst max |Δlogit| {worst:.4f}\n"
    )
    header = ("for step", "T", "float32 B", f"{bits}-bit B", "max |Δlogit|", "KL (nats)",
              "top-1")  # fmt: skip
    table = []
    for i, d in rows[-TABLE_ROWS:]:
        label = f"{i} (prefill)" if i == 0 else (f"{i} (next)" if i == kv.n_steps else str(i))
        table.append((label, str(d.length), f"{d.fp32_nbytes:,}", f"{d.quantized_nbytes:,}",
                      f"{d.max_abs_logit_diff:.4f}", f"{d.kl:.1e}",
                      "same" if d.top1_match else "DIFF"))  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    out.append("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)) + "\n",
               style="bold")  # fmt: skip
    for r in table:
        out.append("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + "\n")
    if len(rows) > TABLE_ROWS:
        out.append(f"(the last {TABLE_ROWS} of {len(rows)})\n", style="dim")
    if kv.quant_pending:
        out.append(f"feeding {kv.quant_pending} more tokens…", style="italic")
    return out


def presets_text(presets: Sequence[KVArch]) -> Text:
    """The preset architectures as a table, with what their columns mean."""
    header = ("model", "L", "H", "H_kv", "d_head", "T", "dtype", "B/token", "all T")
    rows = []
    for a in presets:
        rows.append((a.name, str(a.layers), str(a.attention_heads), str(a.kv_heads),
                     str(a.head_dim), f"{a.context:,}", a.dtype,
                     f"{float(bytes_per_token(a)):,.0f}", format_bytes(kv_bytes(a))))  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(line(header) + "\n", style="bold")
    for r in rows:
        out.append(line(r) + "\n")
    out.append(
        "Numbers from the public checkpoints' configs: H query heads, T the context\n"
        "window. Under GQA, H / H_kv query heads share one K/V head: the cache\n"
        "shrinks by that factor.",
        style="dim",
    )
    return out


def calc_text(arch: KVArch | None, errors: Sequence[str]) -> Text:
    """The calculator's result for ``arch`` (None: only the field errors), in bytes."""
    out = Text()
    if errors:
        for err in errors:
            out.append(err + "\n", style="bold red")
    if arch is None:
        return out
    total = kv_bytes(arch)
    out.append("2 · L · H_kv · d_head · T · bytes", style="bold")
    out.append(f" = {formula_text(arch)} = ")
    out.append(f"{total:,} B", style="bold")
    out.append(f" ({format_bytes(total)}, {format_gib(total)})\n")
    per = bytes_per_token(arch)
    per_text = f"{per.numerator:,}" if per.denominator == 1 else bytes_text(per)
    out.append(f"{per_text} B per token; {arch.dtype}: {DTYPE_NOTES[arch.dtype]}", style="dim")
    if arch.gqa_group > 1 and arch.name != "custom":
        out.append(
            f"; without GQA ({arch.attention_heads} K/V heads) it would be "
            f"{format_bytes(total * arch.gqa_group)}",
            style="dim",
        )
    return out
