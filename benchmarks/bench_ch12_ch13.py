"""Key-to-repaint in chapters 12 (Training phases) and 13 (Post-training) while training.

The app runs as a real process in a pseudo-terminal (120×40, xterm-256color) on the real
model, exactly as a person starts it, scrolled to the bottom of the chapter (``End``).

- **Chapter 12**: ``s`` (to 50 steps), then ``g`` starts a live run in a worker; while
  it trains, ``+`` / ``-`` alternate the learning rate of the *next* run, each timed from
  its write until the plan line shows the new rate (``learning rate 3e-3`` / ``1e-3``).
  Presses that land after the run ended are not counted; ``g`` is pressed again then.
- **Chapter 13**: ``d`` takes DPO steps in a worker; while they run, ``+`` / ``-``
  alternate β, timed until the DPO panel shows the new ``β = …``.
- Also: the time one live step and one press of DPO steps take (from the screens' own
  progress), and how long ``x`` takes to stop a run (write → "Stopped after step").

Target: p95 ≤ 50 ms for the keys while training, on this 2-core machine.

Run::

    .venv/bin/python benchmarks/bench_ch12_ch13.py [--presses 40] [--no-check]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable

from _terminal import Terminal, command, load_average, pct

P95_TARGET = 0.050
PROMPT = "Once upon a time, there was a little robot who wanted to read."
COLS, ROWS = 120, 40


def start(chapter: str, ready: str) -> Terminal:
    term = Terminal([*command(), "--chapter", chapter, "--prompt", PROMPT], COLS, ROWS)
    term.read_until(lambda text: ready in text, timeout=60)
    term.drain(1.0)
    term.write(b"\x1b[F")  # End: scroll the body to the bottom
    term.drain(0.5)
    return term


def keys_while_busy(
    term: Terminal,
    busy_key: bytes,
    finished: Callable[[int], str],
    keys: list[tuple[bytes, str]],
    presses: int,
) -> list[float]:
    """Start work with ``busy_key`` and time ``keys`` (byte, expected text) in turn while
    it runs. Run r (from 1) has ended once the output shows ``finished(r)``; a press whose
    repaint arrives after that is not counted, and the work is started again."""
    latencies: list[float] = []
    run, log = 1, ""
    term.mark()
    term.write(busy_key)
    i = 0
    while len(latencies) < presses:
        key, expected = keys[i % len(keys)]
        i += 1
        term.mark()
        sent = term.write(key)
        done = term.read_until(lambda text, e=expected: e in text, timeout=20)
        log += term.buffer
        if finished(run) not in log:
            latencies.append(done - sent)
        else:
            run += 1
            log = ""
            term.mark()
            term.write(busy_key)
        term.drain(0.08)
        log += term.buffer
    return latencies


def stop_latency(term: Terminal) -> float:
    term.mark()
    term.write(b"g")
    # any "step k/50" with k >= 1: repaints are throttled to 5 a second, so a given k may
    # never be drawn (waiting for "step 2/" timed out when steps were faster than that)
    term.read_until(lambda text: re.search(r"step [1-9]\d*/50", text) is not None, timeout=30)
    term.mark()
    sent = term.write(b"x")
    done = term.read_until(lambda text: "Stopped after step" in text, timeout=10)
    return done - sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--no-check", action="store_true")
    args = parser.parse_args()
    print(f"load average at start: {load_average()}\n")
    rows = []

    term = start("12", "Training phases")
    term.write(b"s")  # 30 -> 50 steps
    term.drain(0.3)
    t0 = time.perf_counter()
    lat12 = keys_while_busy(
        term, b"g", lambda run: "Done.",
        [(b"+", "learning rate 3e-3"), (b"-", "learning rate 1e-3")], args.presses,
    )  # fmt: skip
    rows.append(("12 · `+`/`-` while training", lat12))
    term.read_until(lambda text: "Done." in text, timeout=120)
    elapsed = time.perf_counter() - t0
    stop = stop_latency(term)
    term.close()

    term = start("13", "Post-training")
    lat13 = keys_while_busy(
        term, b"d", lambda run: f"after {5 * run} DPO steps",
        [(b"+", "β = 0.3 "), (b"-", "β = 0.1 ")], args.presses,
    )  # fmt: skip
    rows.append(("13 · `+`/`-` (β) while DPO steps run", lat13))
    term.close()

    print("| keys | n | p50 ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for name, lat in rows:
        ms = [v * 1000 for v in lat]
        print(f"| {name} | {len(ms)} | {pct(ms, 50):.1f} | {pct(ms, 95):.1f} | {max(ms):.1f} |")
    print(f"\nchapter 12: presses spread over {elapsed:.1f} s of training (50-step runs)")
    print(f"chapter 12: `x` to 'Stopped after step': {stop * 1000:.0f} ms")
    bad = [name for name, lat in rows if pct(lat, 95) > P95_TARGET]
    if bad and not args.no_check:
        print(f"p95 over {P95_TARGET * 1000:.0f} ms: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
