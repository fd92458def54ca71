"""A real terminal for benchmarks: the app as a child process on a pseudo-terminal.

Shared by the ``bench_*.py`` scripts that time what a person feels: we spawn
``llm-anatomy`` exactly as a person starts it, write key bytes to the terminal and read
back what it paints (escape codes stripped), timing from the write until an expected
text appears.
"""

from __future__ import annotations

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
from collections.abc import Callable
from pathlib import Path

COLS, ROWS = 80, 24

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[P\]X^_].*?(?:\x07|\x1b\\)|\x1b.")


def command() -> list[str]:
    script = Path(sys.executable).with_name("llm-anatomy")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "llm_anatomy_tui.cli"]


class Terminal:
    """A child process on a pty, with a screen-text reader."""

    def __init__(self, argv: list[str], cols: int = COLS, rows: int = ROWS) -> None:
        self.start = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # child
            env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
            env.pop("NO_COLOR", None)
            os.execvpe(argv[0], argv, env)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
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


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def time_keys(
    term: Terminal,
    key: bytes,
    presses: int,
    painted: Callable[[str, int], bool],
    pace: float = 0.1,
    timeout: float = 10.0,
) -> list[float]:
    """Press ``key`` ``presses`` times; time each from the write until the terminal output
    since that write satisfies ``painted(text, i)`` (i counts presses from 1).

    ``pace`` seconds pass between presses so keys never queue up: each latency is one
    key's own key-to-repaint time. Returns the latencies in seconds.
    """
    latencies = []
    for i in range(1, presses + 1):
        term.mark()
        sent = term.write(key)
        done = term.read_until(lambda text, i=i: painted(text, i), timeout=timeout)
        latencies.append(done - sent)
        term.drain(pace)
    return latencies
