"""Text snapshots for screens whose printed numbers depend on the BLAS kernel.

A 4-decimal float32 score moves by up to ~3e-5 between OpenBLAS kernels (Haswell versus
SkylakeX: another summation order), and a row of thirty printed numbers nearly always
holds one closer than that to a rounding boundary. Such a screen cannot be an SVG
snapshot that passes on every machine. Its layout is compared here as text with every
decimal number replaced by ``N``; the numbers themselves are checked against the core,
to display precision, by the chapter's Pilot tests.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

# Not under ``__snapshots__``: syrupy counts every file there as one of its own and fails
# the run on one it did not write ("1 snapshot unused").
SNAPSHOT_DIR = Path(__file__).parent / "text_snapshots"
NUMBER = re.compile(r"[-−]?\d[\d,]*\.\d+(e[-+]?\d+)?")


def screen_rows(svg: str) -> list[str]:
    """The screen's text, row by row, from a Textual SVG screenshot."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text[^>]*x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        text = html.unescape(re.sub("<[^>]+>", "", m.group(3))).replace("\xa0", " ")
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), text))
    return ["".join(t for _, t in sorted(cells)) for _, cells in sorted(rows.items())]


def masked(rows: list[str]) -> str:
    """Rows with every decimal number as ``N`` and runs of spaces folded.

    >>> masked(["q·k   5.8726  -6.0041", "÷√32 −1.0e-05 ok"])
    'q·k N N\\n÷√32 N ok'
    """
    return "\n".join(" ".join(NUMBER.sub("N", row).split()) for row in rows)


def assert_text_snapshot(svg: str, name: str, update: bool) -> None:
    """Compare the masked screen text with ``text_snapshots/<name>.txt`` (write it when
    ``update``, as ``--snapshot-update`` does for SVG snapshots). A missing file fails."""
    path = SNAPSHOT_DIR / f"{name}.txt"
    text = masked(screen_rows(svg)) + "\n"
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no text snapshot {path.name}: run pytest --snapshot-update"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"screen text differs from {path.name}:\n{text}"
