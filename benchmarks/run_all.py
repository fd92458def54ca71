"""Every benchmark, one table: ``python benchmarks/run_all.py [--quick]``.

Rows: start-up to first paint; key-to-repaint p50/p95 for every registered chapter (a
real terminal, the chapter's own first key and the arrow keys); decode tokens/s with and
without the KV cache; a traced forward pass; training tokens/s; quantizing the whole
model; peak RSS after opening every chapter; bytes per key over SSH (max over the
non-switch keys of each chapter; needs openssh-server, else "n/a"). The machine is named
at the top. The per-topic scripts beside this one go deeper (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
from _terminal import Terminal, command, load_average, pct  # noqa: E402

from llm_anatomy_tui.chapters import CHAPTERS  # noqa: E402

ROWS: list[tuple[str, str]] = []


def row(name: str, value: str) -> None:
    ROWS.append((name, value))
    print(f"  {name:<44} {value}", flush=True)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"numpy {np.__version__}, load average {load_average()}"
    )


def timed(fn, repeats: int) -> float:  # noqa: ANN001
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def startup(runs: int) -> None:
    times = []
    for _ in range(runs):
        term = Terminal([*command()])
        try:
            t = term.read_until(lambda text: "llm-anatomy" in text, timeout=30)
            times.append(t - term.start)
        finally:
            term.close()
    row("start-up to first paint (median)", f"{statistics.median(times) * 1000:.0f} ms")


def key_latency(presses: int) -> None:
    """Per chapter: its own single-letter keys and the arrows, each pressed ``presses``
    times; a press counts when output follows within 1 s (a key with nothing to change
    paints nothing and is left out)."""
    for chapter in CHAPTERS:
        own = []
        for b in chapter.load().BINDINGS:
            key = b.key.split(",")[0]
            if not (b.id or "").startswith("nav.") and len(key) == 1 and key not in "qntp?":
                own.append(key.encode())
        candidates = [*own[:4], b"\x1b[B", b"\x1b[A"]
        term = Terminal([*command(), "--chapter", chapter.slug])
        lat: list[float] = []
        try:
            term.read_until(lambda text: "Chapter" in text or "llm-anatomy" in text, timeout=30)
            term.drain(3.0)
            for key in candidates:
                for _ in range(presses):
                    term.mark()
                    sent = term.write(key)
                    with contextlib.suppress(TimeoutError):
                        lat.append(term.read_until(lambda text: len(text) > 0, timeout=1.0) - sent)
                    term.drain(0.15)
        finally:
            term.close()
        name = f"key-to-repaint ch{chapter.number} {chapter.slug} (p50/p95)"
        if lat:
            row(name, f"{pct(lat, 50) * 1000:.0f} / {pct(lat, 95) * 1000:.0f} ms (n={len(lat)})")
        else:
            row(name, "no key repainted")


def core_numbers() -> None:
    from llm_anatomy_tui.core.kv_cache import KVCache
    from llm_anatomy_tui.core.model import (
        Trace,
        decode_token,
        default_model_dir,
        forward,
        load_model,
    )
    from llm_anatomy_tui.core.quant import quantize_model
    from llm_anatomy_tui.core.train.backward import loss_and_grads, parameters
    from llm_anatomy_tui.core.train.optim import (
        OptimizerSettings,
        clip_by_global_norm,
        init_state,
        optimizer_step,
    )

    model = load_model(default_model_dir())
    cfg = model.config
    rng = np.random.default_rng(0)
    prompt = rng.integers(0, cfg.vocab_size, 16).tolist()
    steps = min(128, cfg.max_position_embeddings - len(prompt) - 1)

    def cached() -> None:
        cache = KVCache(cfg)
        forward(model, prompt, cache)
        for t in range(steps):
            decode_token(model, (t * 7) % cfg.vocab_size, cache)

    def uncached() -> None:
        ids = list(prompt)
        for t in range(steps // 4):
            forward(model, ids, all_logits=False)
            ids.append((t * 7) % cfg.vocab_size)

    row("decode, KV cache", f"{steps / timed(cached, 3):,.0f} tokens/s")
    row("decode, no cache (recompute)", f"{(steps // 4) / timed(uncached, 3):,.0f} tokens/s")
    ids = rng.integers(0, cfg.vocab_size, 128)
    row(
        "traced forward, 128 tokens",
        f"{timed(lambda: forward(model, ids, trace=Trace()), 5) * 1000:.1f} ms",
    )
    batch, window = 16, min(128, cfg.max_position_embeddings)
    x = rng.integers(0, cfg.vocab_size, (batch, window))
    y = rng.integers(0, cfg.vocab_size, (batch, window))
    params = parameters(model)
    settings = OptimizerSettings()
    state = init_state(settings, params)

    def train_step() -> None:
        loss, grads = loss_and_grads(model, x, y, 0.0, rng)
        grads, _ = clip_by_global_norm(grads, 1.0)
        optimizer_step(settings, state, params, grads, 0.0)  # lr 0: the weights stay

    row(
        f"training, batch {batch}x{window}",
        f"{batch * window / timed(train_step, 3):,.0f} tokens/s",
    )
    row(
        "quantize whole model, Q8_0",
        f"{timed(lambda: quantize_model(model, 'Q8_0'), 3) * 1000:.0f} ms",
    )
    row(
        "quantize whole model, Q4_0",
        f"{timed(lambda: quantize_model(model, 'Q4_0'), 3) * 1000:.0f} ms",
    )


def memory() -> None:
    from bench_memory import measure

    result = measure()
    row("peak RSS after every chapter (anatomy-mini)", f"{result['peak']:.0f} MB")


def ssh() -> None:
    if not (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()):
        row("SSH bytes per key", "n/a (no sshd)")
        return
    import bench_ssh

    sshd = bench_ssh.SSHD()
    try:
        for chapter in CHAPTERS:
            _, results = bench_ssh.measure(sshd, chapter, f"PYTHONPATH={HERE.parent}")
            keys = [b for _, b in results[1:-1] if b >= 0]
            row(
                f"SSH KB per key ch{chapter.number} {chapter.slug} (mean/max)",
                f"{sum(keys) / len(keys) / 1024:.1f} / {max(keys) / 1024:.1f} KB"
                f" (switch {results[-1][1] / 1024:.1f})",
            )
    finally:
        sshd.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--skip", default="", help="comma list of: startup,keys,core,memory,ssh")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    print(f"machine: {machine()}")
    parts = {
        "startup": lambda: startup(2 if args.quick else 5),
        "keys": lambda: key_latency(4 if args.quick else 12),
        "core": core_numbers,
        "memory": memory,
        "ssh": ssh,
    }
    for name, fn in parts.items():
        if name not in skip:
            fn()
    print()
    print("| measure | value |\n|---|---|")
    for name, value in ROWS:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
