"""Start-up and typing latency of the app, measured the way a person feels them.

The app runs as a real process in a pseudo-terminal (80×24, xterm-256color), exactly as a
person starts it; we read what it writes to the terminal and strip the escape codes.

1. **First paint**: from just before the process is spawned until the welcome screen's
   text has been written to the terminal. Target: ≤ 1.0 s.
2. **Typing**: the tokenization chapter with a 2,000-character prompt. We type one
   character at a time (paced, so keys never queue up) and time each key from the write
   to the terminal until the repainted character count (``2,001 characters`` …) has come
   back. Every key re-encodes the whole text with three tokenizers and redraws the chips.
   Target: p95 ≤ 50 ms.

Run::

    .venv/bin/python benchmarks/bench_startup.py [--runs 5] [--keys 60] [--baseline]

Prints a table and exits non-zero if a target is missed (``--no-check`` to only report).
"""

from __future__ import annotations

import argparse
import os
import sys

from _terminal import COLS, ROWS, Terminal, command, load_average, pct, time_keys

FIRST_PAINT_TARGET = 1.0
TYPING_P95_TARGET = 0.050
WELCOME_MARKER = "Chapters"  # the border title of the chapter list on the welcome screen


PROMPT_2000 = (
    "If the human brain were so simple that we could understand it, we would be so "
    "simple that we couldn't. Once upon a time, a small robot read every sign in town, "
    "counting letters, words and the spaces in between. "
)


def make_prompt(n: int = 2000) -> str:
    text = (PROMPT_2000 * (n // len(PROMPT_2000) + 1))[:n]
    return text


def first_paint(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        term = Terminal(command())
        t = term.read_until(lambda text: WELCOME_MARKER in text)
        times.append(t - term.start)
        term.drain(0.8)  # let the background loading finish before quitting
        term.close()
    return times


def _count_painted(text: str, i: int) -> bool:
    """The i-th typed character shows as the repainted character count."""
    return f"{2000 + i:,} characters" in text


def typing(keys: int, pace: float) -> list[float]:
    prompt = make_prompt(2000)
    term = Terminal([*command(), "--chapter", "tokenization", "--prompt", prompt])
    try:
        # Ready when the tokenizers have loaded and the panels show token counts.
        term.read_until(
            lambda text: (
                "2,000 characters" in text
                and "tokens" in text
                and "loading" not in text.split("2,000 characters")[-1]
            )
        )
        term.drain(1.0)
        term.write(b"/")  # into the prompt bar (cursor at the end)
        term.drain(0.5)
        return time_keys(term, b"x", keys, _count_painted, pace)
    finally:
        term.close()


BASELINE_APP = """
import sys
from textual.app import App
from textual.widgets import Static, TextArea

class Baseline(App):
    CSS = "TextArea { height: auto; max-height: 6; }"

    def compose(self):
        yield TextArea(sys.argv[1], soft_wrap=True)
        yield Static(f"{len(sys.argv[1]):,} characters", id="count")

    def on_mount(self):
        area = self.query_one(TextArea)
        area.focus()
        area.move_cursor(area.document.end)

    def on_text_area_changed(self, event):
        self.query_one("#count", Static).update(f"{len(event.text_area.text):,} characters")

Baseline().run()
"""


def typing_baseline(keys: int, pace: float) -> list[float]:
    """The same measurement on a bare Textual app: a TextArea holding the same text and a
    character count. It shows the floor the framework itself sets on this machine now."""
    term = Terminal([sys.executable, "-c", BASELINE_APP, make_prompt(2000)])
    try:
        term.read_until(lambda text: "2,000 characters" in text)
        term.drain(1.0)
        return time_keys(term, b"x", keys, _count_painted, pace)
    finally:
        term.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="start-ups to time (default 5)")
    parser.add_argument("--keys", type=int, default=60, help="keystrokes to time (default 60)")
    parser.add_argument("--pace", type=float, default=0.12, help="seconds between keys")
    parser.add_argument("--no-check", action="store_true", help="report only, exit 0")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also time a bare Textual TextArea app the same way (the framework's floor)",
    )
    args = parser.parse_args()

    load_before = load_average()
    paint = first_paint(args.runs)
    keys = typing(args.keys, args.pace)
    base = typing_baseline(args.keys, args.pace) if args.baseline else None

    rows = [
        ("first paint (s)", paint, FIRST_PAINT_TARGET, pct(paint, 50)),
        (
            "keystroke → repaint (ms)",
            [k * 1000 for k in keys],
            TYPING_P95_TARGET * 1000,
            pct(keys, 95) * 1000,
        ),
    ]
    print(f"llm-anatomy start-up benchmark  ({COLS}×{ROWS} pty, {os.cpu_count()} CPUs)")
    print(f"load average before: {load_before}; after: {load_average()}")
    print(f"{'measure':<26}{'n':>4}{'p50':>10}{'p95':>10}{'max':>10}{'target':>10}  ok")
    ok_all = True
    for name, values, target, checked in rows:
        ok = checked <= target
        ok_all &= ok
        print(
            f"{name:<26}{len(values):>4}{pct(values, 50):>10.3f}{pct(values, 95):>10.3f}"
            f"{max(values):>10.3f}{target:>10.3f}  {'yes' if ok else 'NO'}"
        )
    if base is not None:
        ms = [b * 1000 for b in base]
        print(
            f"{'bare Textual TextArea (ms)':<26}{len(ms):>4}{pct(ms, 50):>10.3f}"
            f"{pct(ms, 95):>10.3f}{max(ms):>10.3f}{'—':>10}  (floor, not checked)"
        )
    print("checked: first paint p50 ≤ 1.0 s; keystroke p95 ≤ 50 ms (2,000-character prompt)")
    return 0 if ok_all or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
