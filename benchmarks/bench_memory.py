"""Peak memory of the whole app after opening every registered chapter (anatomy-mini).

Starts ``llm-anatomy`` on a pseudo-terminal, opens each chapter in the registry by number,
lets it compute, then reads the process's peak resident set size (``VmHWM`` in
``/proc/PID/status``, Linux) and the current one (``VmRSS``).

    python benchmarks/bench_memory.py [--settle 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _terminal import Terminal, command  # noqa: E402

from llm_anatomy_tui.chapters import CHAPTERS  # noqa: E402


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measure(settle: float = 3.0, peaks: dict[str, float] | None = None) -> dict[str, float]:
    """MB after start-up, after each chapter, and the peak; keys are chapter slugs.

    ``peaks``, when given, receives the peak so far after each chapter (which chapter
    raised it, and by how much, is where to look for a transient)."""
    term = Terminal([*command()])
    out: dict[str, float] = {}
    try:
        term.read_until(lambda t: "llm-anatomy" in t, timeout=30)
        term.drain(settle)
        out["(start)"] = status_kb(term.pid, "VmRSS") / 1024
        for chapter in CHAPTERS:
            term.write(b"\x1b")  # leave any field
            term.drain(0.3)
            term.write(str(chapter.number).encode())
            term.drain(settle)
            out[chapter.slug] = status_kb(term.pid, "VmRSS") / 1024
            if peaks is not None:
                peaks[chapter.slug] = status_kb(term.pid, "VmHWM") / 1024
        out["peak"] = status_kb(term.pid, "VmHWM") / 1024
    finally:
        term.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=3.0)
    args = parser.parse_args()
    peaks: dict[str, float] = {}
    result = measure(args.settle, peaks)
    print("resident memory (MB) after opening each chapter, in order: now / peak so far")
    for name, mb in result.items():
        peak = f"{peaks[name]:7.1f}" if name in peaks else ""
        print(f"  {name:<16} {mb:7.1f} {peak}")


if __name__ == "__main__":
    main()
