"""A drawn loss surface (:class:`~llm_anatomy_tui.views.surface_art.SurfaceArt`) as Rich text.

Colour only adds to what the glyphs already say: bands shade from dark to light, each
optimizer's letter gets its own colour, the start is reversed.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from ..views.surface_art import SurfaceArt

ROLE_STYLES: dict[str, Style] = {
    "sgd": Style(color="red", bold=True),
    "momentum": Style(color="green", bold=True),
    "adam": Style(color="magenta", bold=True),
    "shared": Style(color="yellow", bold=True),
    "start": Style(bold=True, reverse=True),
    "min": Style(color="cyan", bold=True),
}
BAND_COLORS = ("#1d3557", "#23486f", "#2a5b86", "#31709c", "#3a86b0", "#4f9cbf", "#6bb1c9",
               "#8dc5d1", "#b3d8da", "#dcebe4")  # fmt: skip


def band_style(k: int, bands: int) -> Style:
    index = round(k * (len(BAND_COLORS) - 1) / max(1, bands - 1))
    return Style(color=BAND_COLORS[index])


def surface_text(art: SurfaceArt) -> Text:
    """One line per row; styles are dropped by the console under NO_COLOR."""
    text = Text(no_wrap=True, overflow="crop")
    bands = len(art.glyphs)
    styles = {f"band{k}": band_style(k, bands) for k in range(bands)} | ROLE_STYLES
    for r, row in enumerate(art.rows):
        if r:
            text.append("\n")
        run, run_role = [], None
        for ch, role in row:  # one span per run of equal roles: a few dozen per row
            if role != run_role and run:
                text.append("".join(run), styles.get(run_role))
                run = []
            run.append(ch)
            run_role = role
        if run:
            text.append("".join(run), styles.get(run_role))
    return text


def marks_legend(centre: str = "minimum") -> Text:
    """The key to the letters on the surface; ``centre`` names what ``x`` marks."""
    return Text.assemble(
        ("S", ROLE_STYLES["sgd"]), " SGD  ", ("M", ROLE_STYLES["momentum"]), " Momentum  ",
        ("A", ROLE_STYLES["adam"]), " Adam  ", ("&", ROLE_STYLES["shared"]), " shared  ",
        ("o", ROLE_STYLES["start"]), " start  ", ("x", ROLE_STYLES["min"]), f" {centre}",
    )  # fmt: skip
