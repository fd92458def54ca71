"""Training throughput: tokens/s for forward+backward at the shipped config, and the share
of this machine's float32 matrix-multiply peak that it reaches.

    .venv/bin/python benchmarks/bench_train.py [--config anatomy-mini] [--batch 16] [--repeats 5]

Prints Markdown tables:

1. The matmul peak, measured in the same run: the best GFLOP/s of numpy's float32
   ``a @ b`` on square matrices (512 to 2048), with as many BLAS threads as numpy uses.
2. One training step (forward + backward, then forward + backward + clip + AdamW) on a
   batch of B windows of the model's context: median seconds, tokens/s, the step's
   matrix-multiply work in GFLOP (counted from the shapes, masked attention cells
   included because they are computed) and the share of the peak it reaches.
3. Where a step's time goes, per part of the model.

The share of peak is below 100% for good reasons: at this size the matrices are thin
(128 wide), the softmax over 8,193 logits and the attention's softmax are elementwise work
that BLAS does not do, and numpy runs each elementwise op on one core.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_anatomy_tui.core.config import LlamaConfig  # noqa: E402
from llm_anatomy_tui.core.model import init_random  # noqa: E402
from llm_anatomy_tui.core.train import backward as bw  # noqa: E402
from llm_anatomy_tui.core.train.optim import (  # noqa: E402
    OptimizerSettings,
    clip_by_global_norm,
    init_state,
    optimizer_step,
)
from llm_anatomy_tui.core.train.trainer import PRESETS, machine_info, resolve_config  # noqa: E402


def matmul_peak(sizes=(512, 1024, 1536, 2048), repeats: int = 5) -> tuple[float, int]:
    """Best float32 GFLOP/s of ``a @ b`` over a few square sizes -> (GFLOP/s, size)."""
    rng = np.random.default_rng(0)
    best, best_n = 0.0, 0
    for n in sizes:
        a = rng.random((n, n), dtype=np.float32)
        b = rng.random((n, n), dtype=np.float32)
        a @ b  # warm up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
        gflops = 2 * n**3 / min(times) / 1e9
        if gflops > best:
            best, best_n = gflops, n
    return best, best_n


def step_matmul_flops(config: LlamaConfig, batch: int, length: int) -> float:
    """Multiply-add work of one forward+backward step, counted from the matrix shapes.

    Forward: 2 FLOPs per weight per token for every projection and the tied head, plus the
    attention's q·k and weights·v products over all T x T cells (the masked half included:
    it is computed). Backward: twice the forward (one product for the input gradient, one
    for the weight gradient).
    """
    d, f, v = config.hidden_size, config.intermediate_size, config.vocab_size
    n = batch * length
    per_layer = d * (config.q_width + 2 * config.kv_width) + config.q_width * d + 3 * d * f
    projections = 2 * n * (config.num_hidden_layers * per_layer + v * d)
    attention = 2 * 2 * batch * config.num_attention_heads * length * length * config.dim_head
    forward = projections + config.num_hidden_layers * attention
    return 3.0 * forward


def time_it(fn, repeats: int) -> float:
    fn()  # warm up (first-touch allocations, BLAS thread start)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def profile_parts(model, tokens, targets, repeats: int) -> dict[str, float]:
    """Median seconds per step spent in each backward.py function (wrapped with timers)."""
    names = {
        "output head + loss (fwd+bwd)": ["head_loss_and_backward"],
        "projections, backward": ["linear_backward"],
        "attention scores + weights·v": [
            "grouped_scores", "grouped_mix", "grouped_scores_backward", "grouped_mix_backward",
        ],
        "attention softmax": ["masked_softmax_forward", "softmax_backward"],
        "SwiGLU backward": ["swiglu_backward"],
        "RMSNorm backward": ["rms_norm_backward"],
        "RoPE backward": ["rope_backward"],
        "embedding backward": ["embedding_backward"],
    }  # fmt: skip
    spent: dict[str, float] = {}
    originals = {}
    for label, funcs in names.items():
        for name in funcs:
            original = getattr(bw, name)
            originals[name] = original

            def timed(*a, _f=original, _label=label, **k):
                t0 = time.perf_counter()
                out = _f(*a, **k)
                spent[_label] = spent.get(_label, 0.0) + time.perf_counter() - t0
                return out

            setattr(bw, name, timed)
    try:
        bw.loss_and_grads(model, tokens, targets)
        spent.clear()
        t0 = time.perf_counter()
        for _ in range(repeats):
            bw.loss_and_grads(model, tokens, targets)
        total = (time.perf_counter() - t0) / repeats
    finally:
        for name, original in originals.items():
            setattr(bw, name, original)
    parts = {label: s / repeats for label, s in spent.items()}
    parts["everything else (forward matmuls, elementwise)"] = total - sum(parts.values())
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="anatomy-mini", help="preset or config.json")
    parser.add_argument("--batch", type=int, default=16, help="windows per step")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    config = resolve_config(args.config)
    length = config.max_position_embeddings
    info = machine_info()
    print(f"# Training benchmark: {args.config}, batch {args.batch} x {length} tokens\n")
    print(
        f"Machine: {info['cpu']}, {info['cores']} cores; numpy {info['numpy']}, "
        f"BLAS {info['blas']}\n"
    )

    peak, peak_n = matmul_peak()
    print("| float32 matmul peak | GFLOP/s |\n|---|---:|")
    print(f"| best of square {512}..{2048} (n={peak_n}) | {peak:.1f} |\n")

    model = init_random(config, seed=0)
    rng = np.random.default_rng(0)
    windows = rng.integers(0, config.vocab_size, size=(args.batch, length + 1))
    tokens, targets = windows[:, :-1], windows[:, 1:]
    n_tokens = tokens.size
    flops = step_matmul_flops(config, args.batch, length)
    settings = OptimizerSettings()
    params = bw.parameters(model)
    state = init_state(settings, params)
    drop_rng = np.random.default_rng(1)

    def fwd_bwd():
        bw.loss_and_grads(model, tokens, targets, 0.1, drop_rng)

    def full_step():
        _, grads = bw.loss_and_grads(model, tokens, targets, 0.1, drop_rng)
        grads, _ = clip_by_global_norm(grads, 1.0)
        optimizer_step(settings, state, params, grads, 1e-4)

    print("| step | median s | tokens/s | GFLOP (matmul) | GFLOP/s | share of peak |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, fn in (("forward + backward", fwd_bwd), ("+ clip + AdamW", full_step)):
        seconds = time_it(fn, args.repeats)
        rate = flops / seconds / 1e9
        print(
            f"| {label} | {seconds:.3f} | {n_tokens / seconds:,.0f} | {flops / 1e9:.1f} | "
            f"{rate:.1f} | {rate / peak:.0%} |"
        )
    print(f"\nParameters: {config.parameter_count():,} (tied embedding counted once).\n")

    print("| part of a forward+backward step (no dropout) | ms | share |\n|---|---:|---:|")
    parts = profile_parts(model, tokens, targets, args.repeats)
    total = sum(parts.values())
    for label, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"| {label} | {seconds * 1e3:.0f} | {seconds / total:.0%} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in PRESETS:  # allow `bench_train.py tiny`
        sys.argv[1:2] = ["--config", sys.argv[1]]
    main()
