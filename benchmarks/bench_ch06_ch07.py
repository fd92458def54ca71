"""Key-to-repaint in chapters 6 (Backpropagation) and 7 (Optimizers) while their heavy work
runs in a worker.

The app runs as a real process in a pseudo-terminal (100×50, so the timed lines are on screen) on the real model, as a person
starts it. Two rows:

1. **Chapter 7, while the real loss slice computes**: ``r`` starts a new slice (about a
   hundred forward passes in a worker, seconds), then ``.`` / ``,`` step the toy
   trajectories; each press is timed until the screen shows the new ``step N of M``. A new
   slice (new directions) is asked for every 5 presses, well before the last one could
   finish (a slice takes seconds), so the worker is busy throughout.
2. **Chapter 6, while the real gradient step and gradient check recompute**: ``+``/``-``
   change the learning rate (which restarts the real step in a worker) and ``r`` reveals
   the toy's next stage; each ``r`` is timed until the screen shows the new
   ``(N left)`` / ``start again`` line.

Target: p95 ≤ 50 ms. Run::

    .venv/bin/python benchmarks/bench_ch06_ch07.py [--presses 40] [--no-check]
"""

from __future__ import annotations

import argparse
import sys

from _terminal import Terminal, command, load_average, pct

P95_TARGET = 0.050


def bench_ch07(presses: int) -> list[float]:
    term = Terminal([*command(), "--chapter", "7"], cols=100, rows=50)
    try:
        term.read_until(lambda t: "step 30 of 30" in t, timeout=60)
        term.drain(0.5)
        latencies = []
        step = 30
        for i in range(presses):
            if i % 5 == 0:
                term.write(b"r")  # a new slice: the worker is busy again
                term.drain(0.1)
            term.mark()
            key, step = (b",", step - 1) if i % 2 == 0 else (b".", step + 1)
            sent = term.write(key)
            done = term.read_until(lambda t, s=step: f"step {s} of 30" in t, timeout=10)
            latencies.append(done - sent)
            term.drain(0.08)
        return latencies
    finally:
        term.close()


def bench_ch06(presses: int) -> list[float]:
    term = Terminal([*command(), "--chapter", "6"], cols=100, rows=50)
    try:
        term.read_until(lambda t: "5 left" in t, timeout=60)
        term.drain(0.5)
        latencies = []
        shown = 1
        for i in range(presses):
            term.write(b"+" if i % 2 == 0 else b"-")  # restarts the real step in a worker
            term.mark()
            sent = term.write(b"r")
            shown = shown % 6 + 1
            want = "start again" if shown == 6 else f"({6 - shown} left)"
            done = term.read_until(lambda t, w=want: w in t, timeout=10)
            latencies.append(done - sent)
            term.drain(0.08)
        return latencies
    finally:
        term.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--no-check", action="store_true")
    args = parser.parse_args()
    print(f"load average: {load_average()}")
    rows = []
    lat7 = bench_ch07(args.presses)
    rows.append(("ch7 . / , while the loss slice computes", lat7, ""))
    lat6 = bench_ch06(args.presses)
    rows.append(("ch6 r while the real step recomputes", lat6, ""))
    print(f"{'what':<44}{'n':>4}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  note")
    ok = True
    for name, lat, note in rows:
        p95 = pct(lat, 95)
        ok &= p95 <= P95_TARGET
        print(f"{name:<44}{len(lat):>4}{pct(lat, 50) * 1e3:>9.1f}{p95 * 1e3:>9.1f}"
              f"{max(lat) * 1e3:>9.1f}  {note}")  # fmt: skip
    return 0 if ok or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
