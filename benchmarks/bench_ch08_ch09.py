"""Key-to-repaint latency of chapters 8 (attention) and 9 (multi-head attention).

The app runs as a real process on a pseudo-terminal (80×24, xterm-256color), started the
way a person starts it, with the trained model (``$LLM_ANATOMY_MODEL`` or the shipped
one). Each key is timed from the write to the terminal until the text it must change has
been painted (escape codes stripped): the query row moving, the head and the layer
changing, the stage (chapter 9), and a generated token arriving (``s``: the shared
generation samples a token in its worker, the chapter extends its attention maps by one
row in its own worker, then repaints).

Three contexts per chapter: a medium prompt (~70 tokens), a long one (~200 tokens,
stepped towards the full window) and the full window (the prompt cut to 255 tokens,
stepped once to 256). Keys are paced so they never queue: each latency is one key's own.
The first step of a context includes the shared generation's prefill of the prompt (the
generation is built by the first op). Target: p95 ≤ 50 ms for every row.

Run::

    LLM_ANATOMY_MODEL=runs/mini-2500 .venv/bin/python benchmarks/bench_ch08_ch09.py [--keys 40]

Prints a Markdown table and exits non-zero if a target is missed (``--no-check``: report).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable

from _terminal import COLS, ROWS, Terminal, command, load_average, pct

P95_TARGET_MS = 50.0
UP, DOWN = b"\x1b[A", b"\x1b[B"

MEDIUM = (
    "Once upon a time, there was a little robot who wanted to read. Every night it rolled "
    "to the library, opened a big book and looked at the pictures. One day a girl named "
    "Mia sat next to it and said: let me show you the letters."
)
LONG = " ".join([MEDIUM] * 3)  # ~200 tokens: room for 40+ steps towards the full window
FULL = " ".join([MEDIUM] * 13)  # far more than 256 tokens: cut to the last 255


def wait_ready(term: Terminal, marker: str) -> None:
    term.read_until(lambda text: marker in text, timeout=30)
    term.drain(1.5)


def timed(term: Terminal, key: bytes, painted: Callable[[str], bool], pace: float) -> float:
    term.mark()
    sent = term.write(key)
    done = term.read_until(painted, timeout=10)
    term.drain(pace)
    return done - sent


def tokens_in(term: Terminal) -> int:
    """The context length from the status line (prompt + generated) as last painted."""
    found = re.findall(r"(\d+) prompt (?:tokens?|\+ (\d+) generated)", term.buffer)
    prompt, gen = found[-1]
    return int(prompt) + int(gen or 0)


def run_chapter(chapter: str, prompt: str, keys: int, pace: float) -> dict[str, list[float]]:
    term = Terminal([*command(), "--chapter", chapter, "--prompt", prompt], COLS, ROWS)
    results: dict[str, list[float]] = {}
    try:
        if chapter == "attention":
            term.read_until(lambda text: "toy example" in text, timeout=30)
            term.drain(1.0)
            term.mark()
            term.write(b"m")
        wait_ready(term, " prompt ")
        n = tokens_in_after_repaint(term)
        q = n - 1

        def query_painted(target: int) -> Callable[[str], bool]:
            return lambda text: f"query {target} “" in text

        ups = []
        for _ in range(min(keys, q)):
            ups.append(timed(term, UP, query_painted(q - 1), pace))
            q -= 1
        downs = []
        for _ in range(min(keys, n - 1 - q)):
            downs.append(timed(term, DOWN, query_painted(q + 1), pace))
            q += 1
        results["query ↑/↓"] = ups + downs

        heads, layers = [], []
        head = layer = 0
        for _ in range(keys // 2):
            head = (head + 1) % 4
            kv = head // 2
            if chapter == "attention":
                mark = f"head {head} → K/V head {kv}"
            else:
                mark = f"▶head {head} · K/V {kv}"
            heads.append(timed(term, b"h", lambda text, m=mark: m in text, pace))
        for _ in range(keys // 2):
            layer = (layer + 1) % 4
            layers.append(timed(term, b"l", lambda text, v=layer: f"layer {v} · " in text, pace))
        results["head h"] = heads
        results["layer l"] = layers
        if chapter == "multi-head":
            stages = []
            stage = 3
            for _ in range(keys // 2):
                stage = stage % 4 + 1
                stages.append(timed(term, b"x", lambda text, s=stage: f"stage {s}/4" in text,
                                    pace))  # fmt: skip
            results["stage x"] = stages
        steps = []
        generated = 0
        while len(steps) < keys and n + generated < 256:
            generated += 1
            mark = f"+ {generated} generated token"
            try:
                steps.append(timed(term, b"s", lambda text, m=mark: m in text, pace))
            except TimeoutError:  # the model ended its story (end-of-text): stop stepping
                break
        results["step s (token arrives)"] = steps
        results["_tokens"] = [float(n)]
    finally:
        term.close()
    return results


def tokens_in_after_repaint(term: Terminal) -> int:
    """Force a repaint of the status line (layer forward and back) and read the count."""
    term.mark()
    term.write(b"l")
    term.read_until(lambda text: "layer 1 · " in text)
    term.drain(0.3)
    term.mark()
    term.write(b"L")
    term.read_until(lambda text: "layer 0 · " in text and "prompt" in text)
    term.drain(0.3)
    return tokens_in(term)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=40, help="presses per measure (default 40)")
    parser.add_argument("--pace", type=float, default=0.12, help="seconds between keys")
    parser.add_argument("--no-check", action="store_true", help="report only, exit 0")
    args = parser.parse_args()
    if not os.environ.get("LLM_ANATOMY_MODEL"):
        print("note: LLM_ANATOMY_MODEL not set: using the shipped model", file=sys.stderr)

    load_before = load_average()
    rows = []
    for chapter in ("attention", "multi-head"):
        for label, prompt in (("medium", MEDIUM), ("long", LONG), ("full window", FULL)):
            res = run_chapter(chapter, prompt, args.keys, args.pace)
            n = int(res.pop("_tokens")[0])
            for measure, values in res.items():
                if values:
                    rows.append((chapter, f"{label} ({n} tokens)", measure, values))
    print(f"Chapters 8 and 9, key → repaint ({COLS}×{ROWS} pty, {os.cpu_count()} CPUs)")
    print(f"load average before: {load_before}; after: {load_average()}\n")
    print("| chapter | context | key | n | p50 ms | p95 ms | max ms | ok |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    ok_all = True
    for chapter, context, measure, values in rows:
        ms = [v * 1000 for v in values]
        ok = pct(ms, 95) <= P95_TARGET_MS
        ok_all &= ok
        print(
            f"| {chapter} | {context} | {measure} | {len(ms)} | {pct(ms, 50):.1f} | "
            f"{pct(ms, 95):.1f} | {max(ms):.1f} | {'yes' if ok else 'NO'} |"
        )
    print(f"\ntarget: p95 ≤ {P95_TARGET_MS:.0f} ms for every row")
    return 0 if ok_all or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
