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
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

COLS, ROWS = 80, 24
FIRST_PAINT_TARGET = 1.0
TYPING_P95_TARGET = 0.050
WELCOME_MARKER = "Chapters"  # the border title of the chapter list on the welcome screen

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[P\]X^_].*?(?:\x07|\x1b\\)|\x1b.")

PROMPT_2000 = (
    "If the human brain were so simple that we could understand it, we would be so "
    "simple that we couldn't. Once upon a time, a small robot read every sign in town, "
    "counting letters, words and the spaces in between. "
)


def make_prompt(n: int = 2000) -> str:
    text = (PROMPT_2000 * (n // len(PROMPT_2000) + 1))[:n]
    return text


def command() -> list[str]:
    script = Path(sys.executable).with_name("llm-anatomy")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "llm_anatomy_tui.cli"]


class Terminal:
    """A child process on a pty, with a screen-text reader."""

    def __init__(self, argv: list[str]) -> None:
        self.start = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # child
            env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS))
            env.pop("NO_COLOR", None)
            os.execvpe(argv[0], argv, env)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.buffer = ""

    def read_until(self, predicate, timeout: float = 20.0) -> float:  # noqa: ANN001
        """Read output until ``predicate(text_since_mark)`` is true; return the time."""
        deadline = time.perf_counter() + timeout
        while True:
            if predicate(self.buffer):
                return time.perf_counter()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError(f"no match; last output: {self.buffer[-400:]!r}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    raise TimeoutError("the app exited") from None
                self.buffer += _ANSI.sub("", chunk.decode("utf-8", errors="replace"))

    def mark(self) -> None:
        self.buffer = ""

    def write(self, data: bytes) -> float:
        t = time.perf_counter()
        os.write(self.fd, data)
        return t

    def drain(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while (left := end - time.perf_counter()) > 0:
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    return
                self.buffer += _ANSI.sub("", chunk.decode("utf-8", errors="replace"))

    def close(self) -> None:
        try:
            os.write(self.fd, b"\x11")  # ctrl+q
            deadline = time.perf_counter() + 5
            while time.perf_counter() < deadline:
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    break
                self.drain(0.05)
            else:
                os.kill(self.pid, signal.SIGTERM)
                os.waitpid(self.pid, 0)
        finally:
            os.close(self.fd)


def first_paint(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        term = Terminal(command())
        t = term.read_until(lambda text: WELCOME_MARKER in text)
        times.append(t - term.start)
        term.drain(0.8)  # let the background loading finish before quitting
        term.close()
    return times


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
        latencies = []
        for i in range(1, keys + 1):
            expected = f"{2000 + i:,} characters"
            term.mark()
            sent = term.write(b"x")
            done = term.read_until(lambda text, e=expected: e in text, timeout=10)
            latencies.append(done - sent)
            term.drain(pace)
        return latencies
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
        latencies = []
        for i in range(1, keys + 1):
            expected = f"{2000 + i:,} characters"
            term.mark()
            sent = term.write(b"x")
            done = term.read_until(lambda text, e=expected: e in text, timeout=10)
            latencies.append(done - sent)
            term.drain(pace)
        return latencies
    finally:
        term.close()


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


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
