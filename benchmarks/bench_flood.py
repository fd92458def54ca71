"""A typed flood into the prompt: how long until the screen has caught up.

Not a bracketed paste: the characters arrive as ordinary key presses, as when someone
holds a key down, a program types into the terminal, or ``tmux send-keys -l`` sends text.
For each registered chapter that has a prompt bar, and each size, it writes the characters
to the app's terminal at once and times until the last of them is painted and the output
has been quiet for a moment (the chapter finished recomputing).

    python benchmarks/bench_flood.py [--sizes 3000,10000] [--chapters 1,5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _terminal import Terminal, command, load_average  # noqa: E402

from llm_anatomy_tui.chapters import CHAPTERS  # noqa: E402

MARK = "QZXJ"


def flood(chapter: int, size: int, timeout: float = 120.0) -> tuple[float, float] | None:
    """Seconds until the end marker is painted, and until output is quiet for 0.6 s."""
    term = Terminal([*command(), "--chapter", str(chapter), "--prompt", ""])
    try:
        term.read_until(lambda t: "Chapter" in t or "llm-anatomy" in t, timeout=20)
        term.drain(1.5)  # let the model load
        term.mark()
        term.write(b"/")
        term.drain(0.5)
        text = ("abcd efgh " * (size // 10 + 1))[: size - len(MARK)] + MARK
        term.mark()
        data = text.encode()
        sent = time.perf_counter()
        for i in range(0, len(data), 4096):  # read while writing: a full pty would deadlock
            term.write(data[i : i + 4096])
            term.drain(0)
        try:
            shown = term.read_until(lambda t: MARK in t, timeout=timeout) - sent
        except TimeoutError:
            return None
        last = time.perf_counter()
        while True:
            before = len(term.buffer)
            term.drain(0.6)
            if len(term.buffer) - before < 100:  # a blinking cursor is not catching up
                break
            last = time.perf_counter()
            if last - sent > timeout:
                break
        return shown, last - sent
    finally:
        term.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000,10000")
    parser.add_argument("--chapters", default=",".join(str(c.number) for c in CHAPTERS[1:]))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"typed flood into the prompt · load average {load_average()}")
    print(f"{'chapter':>8} {'chars':>7} {'last char painted':>18} {'caught up':>10}")
    for number in [int(c) for c in args.chapters.split(",")]:
        for size in sizes:
            result = flood(number, size)
            if result is None:
                print(f"{number:>8} {size:>7,} {'(no prompt / timeout)':>29}")
            else:
                print(f"{number:>8} {size:>7,} {result[0]:>17.2f}s {result[1]:>9.2f}s")


if __name__ == "__main__":
    main()
