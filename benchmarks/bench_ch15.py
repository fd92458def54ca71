"""Chapter 15 (Quantization): key-to-repaint when switching schemes, and how long the
whole-model numbers take, measured the way a person feels them.

The app runs as a real process in a pseudo-terminal (``_terminal.Terminal``), started as a
person starts it, on the model named by ``$LLM_ANATOMY_MODEL`` (or the shipped one).

1. **Key → repaint** at 80×24. Each key is timed from the write to the terminal until the
   text that proves the new selection was painted has come back:

   - ``f`` (format): the histogram caption names the new grid (``┬ 16 grid values`` for
     INT4, ``BF16 grid too fine`` …);
   - ``g`` (granularity): the group line (``Block 1 of 512``, ``Row 0 of 128``,
     ``The whole matrix``);
   - ``m`` (matrix): the matrix title (``k_proj ·`` …).

   Keys are paced (``--pace``, default 0.12 s) so they never queue: each latency is one
   key's own. Every format or granularity key also starts a whole-model job in a worker
   (cancelled by the next key), so these are latencies *while that work runs*.
   Target: p95 ≤ 50 ms.
2. **Whole-model numbers** at 160×45 (where the whole-model panel is on screen): after a
   key selects a scheme not seen before, the time until ``✓ final`` is painted (quantize
   the 38 tensors, generate 2 × 32 tokens, compare on 2,048 held-out tokens); then the
   same scheme again (served from the cache).

Run::

    LLM_ANATOMY_MODEL=runs/mini-2500 .venv/bin/python benchmarks/bench_ch15.py [--presses 48]

Prints Markdown tables; exits 1 if the p95 target is missed (``--no-check`` to only report).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from _terminal import Terminal, command, load_average, pct, time_keys

P95_TARGET_MS = 50.0

FORMAT_ORDER = ("FP32", "FP16", "BF16", "FP8", "INT8", "INT4", "INT3", "INT2")
FORMAT_MARKERS = {
    "FP32": "FP32 grid too fine",
    "FP16": "FP16 grid too fine",
    "BF16": "BF16 grid too fine",
    "FP8": "┬ 253 grid values",
    "INT8": "┬ 255 grid values",
    "INT4": "┬ 16 grid values",
    "INT3": "┬ 8 grid values",
    "INT2": "┬ 4 grid values",
}
GRANULARITY_MARKERS = ("The whole matrix", "Row 0 of 128", "Block 1 of 512")  # after g from blocks
MATRIX_MARKERS = (
    "k_proj ·", "v_proj ·", "o_proj ·", "gate_proj ·", "up_proj ·", "down_proj ·",
    "embed_tokens ·", "q_proj ·",
)  # fmt: skip


def start(cols: int, rows: int) -> Terminal:
    term = Terminal([*command(), "--chapter", "quantization"], cols=cols, rows=rows)
    term.read_until(lambda text: "┬ 16 grid values" in text, timeout=60)  # Q4_0, drawn
    term.drain(0.3)
    return term


def wait_final(term: Terminal, timeout: float = 120.0) -> float:
    """Seconds from now until the whole-model status says final."""
    t0 = time.perf_counter()
    term.read_until(lambda text: "✓ final" in text, timeout=timeout)
    return time.perf_counter() - t0


def key_latencies(presses: int, pace: float) -> dict[str, list[float]]:
    term = start(80, 24)
    try:
        wait_final_hidden(term)
        out: dict[str, list[float]] = {}
        start_at = FORMAT_ORDER.index("INT4")
        expected = [FORMAT_ORDER[(start_at + i) % 8] for i in range(1, presses + 1)]
        out["f (format)"] = time_keys(
            term, b"f", presses, lambda text, i: FORMAT_MARKERS[expected[i - 1]] in text, pace
        )
        # back on INT4 when presses % 8 == 0; either way g cycles tensor → channel → block
        out["g (granularity)"] = time_keys(
            term, b"g", presses, lambda text, i: GRANULARITY_MARKERS[(i - 1) % 3] in text, pace
        )
        out["m (matrix)"] = time_keys(
            term, b"m", presses, lambda text, i: MATRIX_MARKERS[(i - 1) % 8] in text, pace
        )
        return out
    finally:
        term.close()


def wait_final_hidden(term: Terminal) -> None:
    """At 80×24 the whole-model panel is below the fold: give the first job time to end."""
    term.drain(3.0)


WHOLE_MODEL_STEPS = (
    ("f", "INT3 · per-block-32"),
    ("f", "INT2 · per-block-32"),
    ("a", "INT2 · per-block-32 · asym"),
    ("g", "INT2 · per-tensor · asym"),
    ("f", "FP32"),
)


def whole_model_times(repeats: int = 6) -> tuple[list[tuple[str, float]], list[float]]:
    """Seconds until ``✓ final`` after opening and after each key of WHOLE_MODEL_STEPS
    (schemes never computed before), then for ``repeats`` presses of F / f that move
    between two schemes already computed (served from the cache)."""
    term = start(160, 45)
    rows = []
    try:
        rows.append(("INT4 · per-block-32 (Q4_0), on opening", wait_final(term)))
        for key, label in WHOLE_MODEL_STEPS:
            term.drain(0.2)
            term.mark()
            t0 = term.write(key.encode())
            term.read_until(lambda text: "✓ final" in text, timeout=120)
            rows.append((label, time.perf_counter() - t0))
        cached = []
        for i in range(repeats):
            term.drain(0.2)
            term.mark()
            t0 = term.write(b"F" if i % 2 == 0 else b"f")
            term.read_until(lambda text: "✓ final" in text, timeout=120)
            cached.append(time.perf_counter() - t0)
        return rows, cached
    finally:
        term.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presses", type=int, default=48, help="presses per key (default 48)")
    parser.add_argument("--pace", type=float, default=0.12, help="seconds between keys")
    parser.add_argument("--no-check", action="store_true", help="report only, exit 0")
    args = parser.parse_args()

    print("# Chapter 15 benchmark\n")
    print(
        f"{os.cpu_count()} CPUs; model {os.environ.get('LLM_ANATOMY_MODEL') or 'shipped'}; "
        f"load average before: {load_average()}\n"
    )
    latencies = key_latencies(args.presses, args.pace)
    print("## Key → repaint (80×24, ms)\n")
    print("| key | n | p50 | p95 | max |")
    print("|---|---:|---:|---:|---:|")
    worst_p95 = 0.0
    everything = []
    for name, values in latencies.items():
        ms = [v * 1000 for v in values]
        everything += ms
        worst_p95 = max(worst_p95, pct(ms, 95))
        print(f"| {name} | {len(ms)} | {pct(ms, 50):.1f} | {pct(ms, 95):.1f} | {max(ms):.1f} |")
    print(
        f"| all | {len(everything)} | {pct(everything, 50):.1f} | {pct(everything, 95):.1f} | "
        f"{max(everything):.1f} |\n"
    )

    rows, cached = whole_model_times()
    print("## Whole-model numbers (160×45): s from the key until `✓ final` is painted\n")
    print("| scheme (never computed before) | s |")
    print("|---|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} |")
    ms = [c * 1000 for c in cached]
    print(
        f"\nSwitching between two schemes already computed (cached), {len(ms)} presses: "
        f"p50 {pct(ms, 50):.0f} ms, max {max(ms):.0f} ms.\n"
    )
    print(f"load average after: {load_average()}")
    ok = worst_p95 <= P95_TARGET_MS
    print(
        f"checked: key → repaint p95 ≤ {P95_TARGET_MS:.0f} ms for every key: {'yes' if ok else 'NO'}"
    )
    return 0 if ok or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
