"""Inference speed of the numpy core, against this machine's own measured limits.

Run:  .venv/bin/python benchmarks/bench_inference.py [--repeats N] [--quick]

For the default model's shape (the trained anatomy-mini if it is installed, else random
weights of the same shape) and two larger Llama shapes with random weights, it measures:

- cached decode at context 64 and 256 (tokens/s, GFLOP/s, weight bytes streamed per second);
- decode without a cache (every step recomputes the whole context) at the same contexts;
- prefill of 128 tokens;
- a full forward pass of a 256-token prompt with every intermediate traced;
- ``Generation.step()`` including sampling (what a screen pays per key press).

and, in the same run, the two limits these are compared with:

- the float32 matrix-multiply peak: best large ``sgemm`` (numpy's BLAS, all threads);
- memory read bandwidth: the fastest of several read-only passes over 512 MB (numpy
  reductions on 1 and 2 threads, BLAS ``sdot`` on 1 and all threads), i.e. what a
  program can actually stream.

Each figure is the median of ``--repeats`` timed runs (best in brackets). The machine may
be shared: the load average and the busiest other processes are printed first.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_anatomy_tui.core import blas  # noqa: E402
from llm_anatomy_tui.core.config import LlamaConfig  # noqa: E402
from llm_anatomy_tui.core.generation import (  # noqa: E402
    Generation,
    decode_step_macs,
    forward_macs,
)
from llm_anatomy_tui.core.model import (  # noqa: E402
    KVCache,
    Model,
    ModelLoadError,
    Trace,
    default_model_dir,
    forward,
    init_random,
    load_model,
    one_blas_thread,
)
from llm_anatomy_tui.core.sampling import SamplingSettings  # noqa: E402

# anatomy-mini's shape (the "anatomy-mini" preset in core/train/trainer.py)
DEFAULT_SHAPE = LlamaConfig(
    vocab_size=8193, hidden_size=128, intermediate_size=384, num_hidden_layers=4,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
)  # fmt: skip
LARGER_SHAPES = {
    # llama2.c's stories15M shape
    "dim 288 / 6 layers / vocab 32000": LlamaConfig(
        vocab_size=32000, hidden_size=288, intermediate_size=768, num_hidden_layers=6,
        num_attention_heads=6, num_key_value_heads=6, max_position_embeddings=512,
    ),
    # GPT-2-small-sized Llama: FFN width 8/3 x 768, tied embeddings
    "dim 768 / 12 layers / vocab 50257": LlamaConfig(
        vocab_size=50257, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
        num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=1024,
    ),
}  # fmt: skip


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, best) seconds of ``fn`` over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


# -- machine ----------------------------------------------------------------------------------


def machine_report() -> list[str]:
    lines = [f"CPUs: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} (1 min)"]
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), ""
            )
        lines.append(f"CPU: {model}")
    except OSError:
        pass
    lines.append(
        f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    try:
        ps = subprocess.run(
            ["ps", "-eo", "pcpu,pid,args", "--sort=-pcpu", "--no-headers"],
            capture_output=True, text=True, timeout=5, check=False,
        ).stdout.splitlines()  # fmt: skip
        busy = [ln.strip() for ln in ps if ln.strip() and float(ln.split()[0]) >= 5.0]
        busy = [ln for ln in busy if str(os.getpid()) not in ln.split()[1:2]]
        lines.append("other busy processes (>= 5% CPU): " + ("none" if not busy else ""))
        lines += [f"  {ln[:110]}" for ln in busy[:5]]
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return lines


def matmul_peak(repeats: int) -> dict[str, float]:
    """Best float32 GFLOP/s of large square matrix products (BLAS sgemm), on all threads
    and on one (the core's default)."""
    out = {}
    for label, ctx in (("all threads", contextlib.nullcontext), ("1 thread", one_blas_thread)):
        best = 0.0
        with ctx():
            for n in (1024, 2048):
                a = np.random.default_rng(0).random((n, n), dtype=np.float32)
                _, t = timed(lambda a=a: a @ a, repeats)
                best = max(best, 2 * n**3 / t / 1e9)
        out[label] = best
    return out


def read_bandwidth(repeats: int) -> dict[str, float]:
    """GB/s of read-only passes over 512 MB, by several methods."""
    a = np.random.default_rng(0).random(128 * 1024 * 1024, dtype=np.float32)  # 512 MB
    halves = (a[: a.size // 2], a[a.size // 2 :])

    def two_threads() -> None:
        ts = [threading.Thread(target=np.add.reduce, args=(h,)) for h in halves]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    x, y = halves
    out = {
        "numpy sum, 1 thread": a.nbytes / timed(lambda: np.add.reduce(a), repeats)[1],
        "numpy sum, 2 threads": a.nbytes / timed(two_threads, repeats)[1],
        "BLAS sdot": a.nbytes / timed(lambda: x @ y, repeats)[1],
    }
    with one_blas_thread():
        out["BLAS sdot, 1 thread"] = a.nbytes / timed(lambda: x @ y, repeats)[1]
    return {k: v / 1e9 for k, v in out.items()}


# -- model measurements -----------------------------------------------------------------------


@dataclass
class Row:
    what: str
    median_s: float
    best_s: float
    tokens: int = 1
    flops: float = 0.0
    bytes_read: float = 0.0

    def tok_s(self) -> str:
        return f"{self.tokens / self.median_s:,.0f} ({self.tokens / self.best_s:,.0f})"


def weight_bytes_per_token(model: Model) -> int:
    """Bytes of weights one decode step reads: every matrix once (the embedding table only
    through the head when tied; a single row otherwise)."""
    total = model.nbytes
    if not model.config.tie_word_embeddings:
        total -= model.embed.nbytes - model.embed[0].nbytes
    return total


@contextlib.contextmanager
def all_blas_threads():
    """Let OpenBLAS use every thread for every model (small ones run on one by default)."""
    before = blas.SMALL_MODEL_BYTES
    blas.SMALL_MODEL_BYTES = -1
    try:
        yield
    finally:
        blas.SMALL_MODEL_BYTES = before


def measure_model(model: Model, repeats: int, steps: int) -> tuple[list[Row], float]:
    cfg = model.config
    rng = np.random.default_rng(0)
    tokens = [int(t) for t in rng.integers(0, min(cfg.vocab_size, 8192), 300)]
    rows: list[Row] = []
    wbytes = weight_bytes_per_token(model)
    variants = [(64, False), (256, False), (64, True)]  # True: all BLAS threads, for comparison
    window = cfg.max_position_embeddings
    for ctx, every_thread in variants:
        # "context N": the step's token sits at position N - 1 and attends to N keys
        if ctx > window:
            continue
        cache = KVCache(cfg)
        forward(model, tokens[: ctx - 1], cache)

        def decode(cache=cache, ctx=ctx) -> None:
            # `steps` decode steps, each at context ctx (the cache is rewound each time)
            for i in range(steps):
                cache.truncate(ctx - 1)
                forward(model, [tokens[i]], cache)

        with all_blas_threads() if every_thread else contextlib.nullcontext():
            med, best = timed(decode, repeats)
        label = f"cached decode, context {ctx}"
        if every_thread:
            label += ", all BLAS threads (not the default)"
        rows.append(Row(label, med / steps, best / steps,
                        flops=2 * decode_step_macs(cfg, ctx - 1), bytes_read=wbytes))  # fmt: skip
    for ctx in (64, 256):
        if ctx > window:
            continue
        med, best = timed(lambda ctx=ctx: forward(model, tokens[:ctx], all_logits=False), repeats)
        rows.append(Row(f"no-cache decode, context {ctx}", med, best,
                        flops=2 * decode_step_macs(cfg, ctx - 1, cached=False)))  # fmt: skip

    def prefill() -> None:
        forward(model, tokens[:128], KVCache(cfg), all_logits=False)  # window >= 128 assumed

    med, best = timed(prefill, repeats)
    rows.append(Row("prefill 128 tokens", med, best, tokens=128, flops=2 * forward_macs(cfg, 128)))
    with all_blas_threads():
        med, best = timed(prefill, repeats)
    rows.append(Row("prefill 128 tokens, all BLAS threads (not the default)", med, best,
                    tokens=128, flops=2 * forward_macs(cfg, 128)))  # fmt: skip
    n = min(256, window)
    med, best = timed(lambda: forward(model, tokens[:n], trace=Trace()), max(3, repeats // 2))
    rows.append(Row(f"traced forward, {n} tokens", med, best, tokens=n,
                    flops=2 * forward_macs(cfg, n, all_logits=True)))  # fmt: skip
    return rows, wbytes


def measure_generation(model: Model, repeats: int, steps: int) -> list[Row]:
    """Decode steps through Generation.step(): model, sampling and record keeping."""
    prompt = list(range(100, 164))
    steps = min(steps, model.config.max_position_embeddings - len(prompt) - 1)
    rows = []
    for label, settings in (
        ("Generation.step() incl. sampling, temperature 1", SamplingSettings()),
        ("Generation.step() incl. sampling, T 0.8 top-k 40 top-p 0.9",
         SamplingSettings(0.8, 40, 0.9)),
    ):  # fmt: skip
        gen = Generation(model, prompt, settings, stop_tokens=())
        gen.step()  # the prefill, not timed

        def run(gen=gen) -> None:
            gen.rewind(1)
            gen.generate(steps)

        med, best = timed(run, repeats)
        rows.append(Row(label, med / steps, best / steps))
    return rows


def print_table(name: str, rows: list[Row], peak: float, bandwidth: float) -> None:
    print(f"\n### {name}\n")
    print(
        "| measurement | tokens/s median (best) | ms / call | GFLOP/s | % of matmul peak | weights GB/s | % of read bandwidth |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ms = r.median_s * 1e3
        gflops = r.flops / r.best_s / 1e9 if r.flops else 0.0
        gbs = r.bytes_read / r.best_s / 1e9 if r.bytes_read else 0.0
        print(
            f"| {r.what} | {r.tok_s()} | {ms:.3f} | "
            + (f"{gflops:.1f} | {100 * gflops / peak:.0f}% | " if gflops else "| | ")
            + (f"{gbs:.1f} | {100 * gbs / bandwidth:.0f}% |" if gbs else "| |")
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps")
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats

    print("## Machine\n")
    for line in machine_report():
        print(line)
    peaks = matmul_peak(repeats)
    peak = max(peaks.values())
    bw = read_bandwidth(repeats)
    bandwidth = max(bw.values())
    print(
        "\nfloat32 matmul peak (sgemm 1024/2048, best): "
        + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items())
    )
    print(f"  -> using the fastest, {peak:.1f} GFLOP/s")
    print("memory read bandwidth: " + ", ".join(f"{k} {v:.1f} GB/s" for k, v in bw.items()))
    print(f"  -> using the fastest, {bandwidth:.1f} GB/s")

    try:
        default = load_model(default_model_dir())
        label = f"default model: trained {default.name}"
    except ModelLoadError:
        default = init_random(DEFAULT_SHAPE, seed=0)
        label = "default model shape (anatomy-mini not installed: random weights)"
    shapes: list[tuple[str, Model, int]] = [(label, default, 50 if args.quick else 200)]
    for name, cfg in LARGER_SHAPES.items():
        shapes.append(
            (f"{name} (random weights)", init_random(cfg, seed=0), 5 if args.quick else 12)
        )
    for name, model, steps in shapes:
        cfg = model.config
        rows, wbytes = measure_model(model, repeats, steps)
        if model is default:
            rows += measure_generation(model, repeats, steps)
        print_table(name, rows, peak, bandwidth)
        print(
            f"\n{cfg.parameter_count() / 1e6:.1f} M parameters; a decode step reads "
            f"{wbytes / 1e6:.1f} MB of weights; hidden {cfg.hidden_size}, "
            f"{cfg.num_hidden_layers} layers, {cfg.num_attention_heads} heads / "
            f"{cfg.num_key_value_heads} KV heads, FFN {cfg.intermediate_size}, "
            f"vocab {cfg.vocab_size}."
        )
        del model
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
