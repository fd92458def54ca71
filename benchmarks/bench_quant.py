"""Quantization benchmark and quality table (chapters 14 and 15).

    .venv/bin/python benchmarks/bench_quant.py [--model DIR] [--max-tokens N] [--repeats N]
                                               [--sections 12345] [--quick]

Prints Markdown tables:

1. Per-matrix round trip (quantize -> dequantize + the metrics the chapter shows) for the
   largest matrix of the model (the 8,193-row embedding) and a typical projection, per
   format / granularity: the chapter must repaint within 50 ms of a key press.
2. Time to quantize the whole model, per scheme.
3. Quality per format × granularity: size, bits/weight, KL(FP32 ‖ quantized), top-1
   agreement and perplexity on the shipped held-out stories.
4. The quantized KV cache (8 / 4 bit): bytes per token and logit drift over a run.
5. The size of an 8B model per format.

Uses the trained model (``assets/models/anatomy-mini``) when present; otherwise a seeded
random model of the same shape, and says so — its quality numbers mean nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_anatomy_tui.core.config import LlamaConfig  # noqa: E402
from llm_anatomy_tui.core.evaluate import (  # noqa: E402
    ComparisonAccumulator,
    eval_tokens,
    split_windows,
)
from llm_anatomy_tui.core.model import Model, default_model_dir, forward, init_random, load_model  # noqa: E402
from llm_anatomy_tui.core.quant import (  # noqa: E402
    FORMAT_NAMES,
    GRANULARITIES,
    QuantScheme,
    iter_quantize_model,
    quantize,
    size_table,
)
from llm_anatomy_tui.core.quant_kv import kv_bytes_per_token, kv_cache_drift  # noqa: E402

# The starting-point config of issue 6, used only when the trained model is absent.
FALLBACK_CONFIG = LlamaConfig(
    vocab_size=8193,
    hidden_size=128,
    intermediate_size=384,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
)

INT_FORMATS = ("int8", "int4", "int3", "int2")


def all_schemes() -> list[QuantScheme]:
    """Every distinct combination the chapter can show."""
    schemes = [QuantScheme("fp16"), QuantScheme("bf16"), QuantScheme("fp8", "none")]
    schemes += [QuantScheme("fp8", g) for g in GRANULARITIES]
    for fmt in INT_FORMATS:
        for symmetric in (True, False):
            schemes += [QuantScheme(fmt, g, symmetric) for g in GRANULARITIES]
    return schemes


def load(model_dir: str | None) -> tuple[Model, bool]:
    path = Path(model_dir) if model_dir else default_model_dir()
    if (path / "model.safetensors").exists():
        return load_model(path), True
    return init_random(FALLBACK_CONFIG, seed=0, name="random (untrained)"), False


def timed(fn, repeats: int) -> tuple[float, float]:
    """(median, p95) wall time in ms over ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def screen_round_trip(w: np.ndarray, scheme: QuantScheme):
    """What the chapter computes on a key press: quantize, decode, the cheap metrics."""

    def run():
        r = quantize(w, scheme)
        return r.rmse, r.max_abs_error, r.unique_codes, r.dequantized_range, r.nbytes

    return run


def table_round_trip(model: Model, repeats: int) -> None:
    tensors = model.tensors()
    largest = max(tensors, key=lambda k: tensors[k].size)
    typical = "model.layers.0.self_attn.q_proj.weight"
    print("## 1. One matrix: quantize + dequantize + metrics (ms)\n")
    print(
        "`round trip` = quantize, decode, RMSE, max error, codes used, range, bytes; "
        "`unique` = additionally counting distinct decoded values (a sort).\n"
    )
    for name in (largest, typical):
        w = tensors[name]
        print(f"### `{name}` {list(w.shape)} ({w.size:,} weights)\n")
        print("| scheme | round trip p50 | p95 | + unique values p50 |")
        print("|---|---:|---:|---:|")
        for scheme in [QuantScheme("fp32"), *all_schemes()]:
            p50, p95 = timed(screen_round_trip(w, scheme), repeats)
            u50, _ = timed(lambda s=scheme, m=w: quantize(m, s).unique_values, max(3, repeats // 4))
            print(f"| {scheme.label} | {p50:.1f} | {p95:.1f} | {u50:.1f} |")
        print()


def table_whole_model(model: Model, schemes: list[QuantScheme]) -> None:
    print("## 2. Quantizing the whole model (s)\n")
    print("| scheme | time | tensors |")
    print("|---|---:|---:|")
    for scheme in schemes:
        t = time.perf_counter()
        events = list(iter_quantize_model(model, scheme))
        print(f"| {scheme.label} | {time.perf_counter() - t:.3f} | {events[-1].total} |")
    print()


def table_quality(model: Model, trained: bool, schemes: list[QuantScheme], max_tokens: int) -> None:
    tokens = eval_tokens(max_tokens=max_tokens or None)
    windows = split_windows(tokens, model.config.max_position_embeddings)
    t = time.perf_counter()
    reference = [forward(model, w[:-1]) for w in windows]  # cached: compared against each scheme
    ref_time = time.perf_counter() - t
    n_pred = sum(len(w) - 1 for w in windows)
    print("## 3. Quality on held-out text\n")
    if not trained:
        print(
            "**Random, untrained weights: these quality numbers mean nothing about a real model.**\n"
        )
    print(
        f"Model `{model.name}`, {model.config.parameter_count():,} parameters; "
        f"{n_pred:,} predicted tokens of the shipped validation stories in {len(windows)} "
        f"windows of {model.config.max_position_embeddings} (FP32 pass: {ref_time:.1f} s). "
        "KL = mean KL(P_fp32 ‖ P_quantized) per token, nats. Sizes count every tensor "
        "(matrices in the scheme, norms fp32, tied embedding once).\n"
    )
    print("| scheme | bytes | bits/weight | KL | top-1 agree | perplexity |")
    print("|---|---:|---:|---:|---:|---:|")
    fp32_nll = None
    for scheme in [QuantScheme("fp32"), *schemes]:
        result = None
        for event in iter_quantize_model(model, scheme):
            result = event.result
        acc = ComparisonAccumulator()
        for ref, w in zip(reference, windows, strict=True):
            acc.add(ref, forward(result.model, w[:-1]), w[1:])
        c = acc.result()
        fp32_nll = fp32_nll or c.nll_reference
        print(
            f"| {scheme.label} | {result.nbytes:,} | {result.bits_per_weight:.3f} | "
            f"{c.kl_mean:.2e} | {100 * c.top1_agreement:.1f}% | {c.perplexity_candidate:.3f} |"
        )
    print()


def table_kv(model: Model, n_tokens: int) -> None:
    tokens = eval_tokens(max_tokens=min(n_tokens, model.config.max_position_embeddings))
    cfg = model.config
    print("## 4. Quantized KV cache\n")
    print(
        f"{tokens.size} held-out tokens fed one at a time after a 1-token prefill; "
        "drift = the newest position's logits, quantized cache vs float32 cache.\n"
    )
    print(
        "| cache | bytes/token | saved | mean KL | max KL | max abs Δlogit | top-1 same | ms/step |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| float32 | {kv_bytes_per_token(cfg):,} | — | — | — | — | — | — |")
    for bits in (8, 4):
        t = time.perf_counter()
        steps = kv_cache_drift(model, tokens, bits=bits, prefill=1)
        ms = (time.perf_counter() - t) * 1e3 / len(steps)
        kls = [s.kl for s in steps]
        print(
            f"| {bits}-bit | {kv_bytes_per_token(cfg, bits):,} | "
            f"{100 * steps[-1].saved_fraction:.1f}% | {np.mean(kls):.2e} | {max(kls):.2e} | "
            f"{max(s.max_abs_logit_diff for s in steps):.4f} | "
            f"{100 * np.mean([s.top1_match for s in steps]):.1f}% | {ms:.1f} (both caches) |"
        )
    print()


def table_8b() -> None:
    print("## 5. An 8B-parameter model (GB = 10^9 bytes)\n")
    print(
        "| format | bits | 8e9 weights | + fp16 scale per 32 | bits/weight | Llama-3-8B (8.03e9), same blocks |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in size_table():
        print(
            f"| {r.label} | {r.bits} | {r.gb:.1f} GB | {r.gb_with_scales:.2f} GB | "
            f"{r.bits_per_weight_with_scales:.2f} | {r.llama3_8b_gb:.2f} GB |"
        )
    print()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: the shipped anatomy-mini)")
    parser.add_argument("--max-tokens", type=int, default=2048, help="held-out tokens (0 = all)")
    parser.add_argument("--repeats", type=int, default=20, help="timing repeats per matrix")
    parser.add_argument("--quick", action="store_true", help="fewer schemes, fewer tokens")
    parser.add_argument(
        "--sections", default="12345", help="which tables to print, e.g. 13 (default: all)"
    )
    args = parser.parse_args(argv)
    model, trained = load(args.model)
    print(f"# Quantization benchmark — model `{model.name}`" + ("" if trained else " (RANDOM)"))
    print(f"\nnumpy {np.__version__}, formats: {', '.join(FORMAT_NAMES)}\n")
    schemes = all_schemes()
    if args.quick:
        schemes = [s for s in schemes if s.symmetric and s.granularity in ("per-block", "none")]
        args.max_tokens, args.repeats = min(args.max_tokens or 512, 512), 5
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CPUs: {os.cpu_count()}, load average at start: {load_avg:.2f}\n")
    if "1" in args.sections:
        table_round_trip(model, args.repeats)
    if "2" in args.sections:
        table_whole_model(model, schemes)
    if "3" in args.sections:
        table_quality(model, trained, schemes, args.max_tokens)
    if "4" in args.sections:
        table_kv(model, 256 if not args.quick else 64)
    if "5" in args.sections:
        table_8b()


if __name__ == "__main__":
    main()
