"""Key-to-repaint latency of chapters 2 (embeddings), 3 (neuron activation) and 4
(feed-forward network).

The app runs as a real process on a pseudo-terminal (80×24, xterm-256color) with the
trained model (``$LLM_ANATOMY_MODEL`` or the shipped one). Each key is timed from the
write until the text it must change has been painted (escape codes stripped):

- chapter 2: ``.`` selects the next prompt token (its row, strip and norm; its
  neighbours come from a worker, or the cache);
- chapter 3: ``+`` raises the toy's x1, ``f`` switches the activation function, and at
  the end of the page ``u`` moves to the next hidden unit (activations over the prompt
  and its top held-out tokens, from the cached scan of the layer);
- chapter 4: ``f`` switches the toy net's activation, ``c`` walks the inspector's cells,
  and at the end of the page ``,`` moves the real FFN to the previous token (its top
  units and the lens over the whole vocabulary).

Two prompts: the default one (18 tokens) and one longer than the context window (cut to
its last 255 tokens). Keys are paced so they never queue. Target: p95 ≤ 50 ms per row.

Run::

    .venv/bin/python benchmarks/bench_ch02_ch04.py [--keys 30]

Prints a Markdown table and exits non-zero if a target is missed (``--no-check``: report).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from _terminal import COLS, ROWS, Terminal, command, load_average, pct

P95_TARGET_MS = 50.0
END = b"\x1b[F"
DEFAULT = "Once upon a time, there was a little robot who wanted to read."
FULL = " ".join(
    [
        "Once upon a time, there was a little robot who wanted to read. Every night it "
        "rolled to the library, opened a big book and looked at the pictures."
    ]
    * 12
)
ACTS = ["relu", "gelu", "silu", "tanh", "sigmoid", "linear"]


def timed(term: Terminal, key: bytes, painted: Callable[[str], bool], pace: float) -> float:
    term.mark()
    sent = term.write(key)
    done = term.read_until(painted, timeout=10)
    term.drain(pace)
    return done - sent


def start(chapter: str, prompt: str, ready: str) -> Terminal:
    term = Terminal([*command(), "--chapter", chapter, "--prompt", prompt], COLS, ROWS)
    term.read_until(lambda text: ready in text, timeout=60)
    term.drain(3.0)  # let the workers (trace, neighbours, scan) land
    return term


def bench_ch2(prompt: str, keys: int, pace: float) -> dict[str, list[float]]:
    term = start("embeddings", prompt, "embed_tokens")
    try:
        out = []
        for i in range(1, keys + 1):  # the lookup's 7-row window follows the selection
            out.append(timed(term, b".", lambda t, j=i: f"▶ #{j} " in t, pace))
        return {"ch2 . next token": out}
    finally:
        term.close()


def bench_ch3(prompt: str, keys: int, pace: float) -> dict[str, list[float]]:
    term = start("neurons", prompt, "toy neuron")
    try:
        plus = []
        v = 1.0
        for _ in range(keys):
            v += 0.25
            plus.append(timed(term, b"+", lambda t, s=f"▶x1 {v:+.2f}": s in t, pace))
        funcs = []
        for i in range(1, keys + 1):
            name = ACTS[i % len(ACTS)]
            funcs.append(timed(term, b"f", lambda t, s=f"out = {name}(z)": s in t, pace))
        term.write(END)
        term.drain(1.0)
        units = []
        for u in range(1, keys + 1):
            units.append(timed(term, b"u", lambda t, s=f"fire unit {u} most": s in t, pace))
        return {"ch3 + toy value": plus, "ch3 f function": funcs, "ch3 u unit (real)": units}
    finally:
        term.close()


def bench_ch4(prompt: str, n_tokens: int, keys: int, pace: float) -> dict[str, list[float]]:
    term = start("ffn", prompt, "toy network")
    try:
        funcs = []
        for i in range(1, keys + 1):
            name = ACTS[i % len(ACTS)]
            funcs.append(timed(term, b"f", lambda t, s=f"z → {name}(z)": s in t, pace))
        cells = []
        for i in range(1, keys + 1):
            j = i % 3 + 1
            cells.append(timed(term, b"c", lambda t, s=f"selected z1_{j} ": s in t, pace))
        term.write(END)
        term.drain(1.0)
        tokens = []
        pos = n_tokens - 1
        for _ in range(keys):
            pos = (pos - 1) % n_tokens
            tokens.append(timed(term, b",", lambda t, s=f"update of token #{pos},": s in t, pace))
        return {"ch4 f function": funcs, "ch4 c cell": cells, "ch4 , token (real)": tokens}
    finally:
        term.close()


def n_tokens(prompt: str) -> int:
    from llm_anatomy_tui.core.tokenizers import load_encoding

    return min(len(load_encoding("model").encode_ordinary(prompt)), 255)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=30, help="presses per measure (default 30)")
    parser.add_argument("--pace", type=float, default=0.12, help="seconds between keys")
    parser.add_argument("--no-check", action="store_true", help="report only, exit 0")
    args = parser.parse_args()
    load_before = load_average()
    rows = []
    for label, prompt in (("default", DEFAULT), ("full window", FULL)):
        n = n_tokens(prompt)
        keys2 = min(args.keys, n - 1)  # no wrap-around to token 0
        for res in (bench_ch2(prompt, keys2, args.pace), bench_ch3(prompt, args.keys, args.pace),
                    bench_ch4(prompt, n, args.keys, args.pace)):  # fmt: skip
            for measure, values in res.items():
                rows.append((measure, f"{label} ({n} tokens)", values))
    print(f"Chapters 2-4, key → repaint ({COLS}×{ROWS} pty, {os.cpu_count()} CPUs)")
    print(f"load average before: {load_before}; after: {load_average()}\n")
    print("| key | prompt | n | p50 ms | p95 ms | max ms | ok |")
    print("|---|---|---:|---:|---:|---:|---|")
    ok_all = True
    for measure, context, values in rows:
        ms = [v * 1000 for v in values]
        ok = pct(ms, 95) <= P95_TARGET_MS
        ok_all &= ok
        print(f"| {measure} | {context} | {len(ms)} | {pct(ms, 50):.1f} | {pct(ms, 95):.1f} | "
              f"{max(ms):.1f} | {'yes' if ok else 'NO'} |")  # fmt: skip
    print(f"\ntarget: p95 ≤ {P95_TARGET_MS:.0f} ms for every row")
    return 0 if ok_all or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
