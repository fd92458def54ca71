"""Key-to-repaint latency of chapters 10 (RoPE) and 11 (transformer block).

The app runs as a real process on a pseudo-terminal (80×24), started as a person starts
it, with the trained model (``$LLM_ANATOMY_MODEL`` or the shipped one). Each key is timed
from the write until the text it must change has been painted:

- chapter 10: the query (m), the layer (l), the head (h), turning the arrows (.), and —
  scrolled down to the proof — the shift (o);
- chapter 11: selecting a part of the diagram (b), then, scrolled to the lens table, the
  position (,) and a generation step (s: the shared generation samples a token, the
  lens reads the new position in a worker, the table repaints).

Two contexts: the default prompt and one cut to the full window (255 tokens). Keys are
paced so they never queue. Target: p95 ≤ 50 ms for every row.

Run::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_ch10_ch11.py [--keys 30]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import select
import sys
import time

from _terminal import _ANSI, COLS, ROWS, command, load_average, pct
from _terminal import Terminal as _Terminal

P95_TARGET_MS = 50.0
PAGE_DOWN = b"\x1b[6~"
DOWN = b"\x1b[B"
SHORT = "Once upon a time, there was a little robot who wanted to read."
FULL = " ".join(["The cat sat on the mat and looked at the dog."] * 40)


def _squash(text: str) -> str:
    """Text without whitespace: Textual may move the cursor over unchanged blank cells
    instead of writing spaces, so markers are matched with all whitespace removed."""
    return re.sub(r"\s+", "", text)


class Terminal(_Terminal):
    """The shared pty terminal, stripping escape codes from everything read since the
    mark rather than chunk by chunk (a chunk may end inside an escape sequence, which then
    leaks into the text and can split the very words a benchmark waits for), and
    squashing whitespace (see :func:`_squash`)."""

    def mark(self) -> None:
        self.raw = ""
        self.buffer = ""

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:
            raise TimeoutError("the app exited") from None
        self.raw = getattr(self, "raw", "") + chunk.decode("utf-8", errors="replace")
        self.buffer = _squash(_ANSI.sub("", self.raw))
        return True

    def read_until(self, predicate, timeout: float = 20.0) -> float:  # noqa: ANN001
        deadline = time.perf_counter() + timeout
        while not predicate(self.buffer):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"no match; last output: {self.buffer[-400:]!r}")
            self._read(remaining)
        return time.perf_counter()

    def drain(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while (left := end - time.perf_counter()) > 0:
            try:
                self._read(left)
            except TimeoutError:
                return


def time_keys(term: Terminal, key: bytes, presses: int, painted, pace: float,  # noqa: ANN001
              timeout: float = 10.0) -> list[float]:  # fmt: skip
    """Press ``key`` ``presses`` times, timing each until ``painted(text, i)`` holds."""
    out = []
    for i in range(1, presses + 1):
        term.mark()
        sent = term.write(key)
        out.append(term.read_until(lambda t, i=i: painted(t, i), timeout=timeout) - sent)
        term.drain(pace)
    return out


def _ready(term: Terminal, marker: str) -> None:
    term.read_until(lambda text: marker in text, timeout=60)
    term.drain(1.5)


def _scroll_to(term: Terminal, markers: tuple[str, ...]) -> None:
    """Scroll down a line at a time until every marker is on the screen."""
    for _ in range(60):
        term.mark()
        term.write(DOWN)
        term.drain(0.15)
        if all(m in term.buffer for m in markers):
            return
    raise TimeoutError(f"never saw {markers}")


def _page_down(term: Terminal) -> None:
    term.mark()
    term.write(PAGE_DOWN)
    term.drain(0.8)


def _alternate(term: Terminal, keys: tuple[bytes, bytes], presses: int, marker, pace: float):  # noqa: ANN001, ANN202
    """Press the two keys in turn (forward, back …) so the value never sticks at a bound;
    ``marker(i)`` is the text press i must paint."""
    out = []
    for i in range(1, presses + 1):
        term.mark()
        sent = term.write(keys[(i - 1) % 2])
        out.append(term.read_until(lambda text, i=i: marker(i) in text, timeout=10) - sent)
        term.drain(pace)
    return out


def rope(prompt: str, keys: int, pace: float) -> dict[str, list[float]]:
    term = Terminal([*command(), "--chapter", "10", "--prompt", prompt], COLS, ROWS)
    out: dict[str, list[float]] = {}
    try:
        _ready(term, "m−n=")
        m = int(re.findall(r"atm=(\d+)", term.buffer)[-1])
        out["turn ./,"] = _alternate(term, (b".", b","), keys,
                                     lambda i: f"turned{math.degrees(m + i % 2) % 360:.1f}°",
                                     pace)  # fmt: skip
        term.write(b"r")
        term.drain(0.5)
        presses = min(keys, m)
        out["query M"] = time_keys(term, b"M", presses, lambda t, i: f"atm={m - i}·" in t, pace)
        out["layer l/L"] = _alternate(term, (b"l", b"L"), keys, lambda i: f"layer{i % 2}·", pace)
        out["head h/H"] = _alternate(term, (b"h", b"H"), keys, lambda i: f"head{i % 2}(", pace)
        _page_down(term)
        s0 = int(re.findall(r"Shifts=([+-]\d+)", term.buffer)[-1])
        out["shift o/O"] = _alternate(term, (b"o", b"O"), keys,
                                      lambda i: f"Shifts={s0 + i % 2:+d}", pace)  # fmt: skip
    finally:
        term.close()
    return out


def block(prompt: str, keys: int, pace: float) -> dict[str, list[float]]:
    from llm_anatomy_tui.views.block_view import BLOCK_PARTS

    term = Terminal([*command(), "--chapter", "11", "--prompt", prompt], COLS, ROWS)
    out: dict[str, list[float]] = {}
    try:
        _ready(term, "stages")
        roles = [_squash(p.role[:20]) for p in BLOCK_PARTS]
        out["part b"] = time_keys(term, b"b", keys,
                                  lambda t, i: roles[(2 + i) % len(roles)] in t, pace)  # fmt: skip
        _scroll_to(term, ("Position", "stage", "L0FFN"))
        pos, last = map(int, re.findall(r"Position(\d+)of0\.\.(\d+)", term.buffer)[-1])
        presses = min(keys, pos)
        out["position ,"] = time_keys(term, b",", presses,
                                      lambda t, i: f"Position{pos - i}of" in t, pace)  # fmt: skip
        term.write(b"e")
        term.drain(0.5)
        steps = min(10, 255 - last)
        out["step s"] = time_keys(
            term, b"s", steps, lambda t, i: f"Position{last + i}of0..{last + i}" in t, pace,
            timeout=20,
        )  # fmt: skip
    finally:
        term.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=30)
    parser.add_argument("--pace", type=float, default=0.12)
    parser.add_argument("--no-check", action="store_true")
    args = parser.parse_args()
    load_before = load_average()
    rows = []
    for label, prompt in (("default prompt", SHORT), ("full window", FULL)):
        for chapter, fn in (("10 RoPE", rope), ("11 block", block)):
            for measure, values in fn(prompt, args.keys, args.pace).items():
                rows.append((chapter, label, measure, values))
    print(f"Chapters 10 and 11, key → repaint ({COLS}×{ROWS} pty, {os.cpu_count()} CPUs)")
    print(f"load average before: {load_before}; after: {load_average()}\n")
    print("| chapter | context | key | n | p50 ms | p95 ms | max ms | ok |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    ok_all = True
    for chapter, context, measure, values in rows:
        ms = [v * 1000 for v in values]
        ok = pct(ms, 95) <= P95_TARGET_MS
        ok_all &= ok
        print(f"| {chapter} | {context} | {measure} | {len(ms)} | {pct(ms, 50):.1f} | "
              f"{pct(ms, 95):.1f} | {max(ms):.1f} | {'yes' if ok else 'NO'} |")  # fmt: skip
    print(f"\ntarget: p95 ≤ {P95_TARGET_MS:.0f} ms for every row")
    return 0 if ok_all or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
