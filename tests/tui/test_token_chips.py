"""The token-chips renderable on its own, rendered with a plain Rich console."""

from __future__ import annotations

import io

from rich.console import Console
from rich.style import Style

from llm_anatomy_tui.core.tokenizers import load_encoding
from llm_anatomy_tui.views.token_pieces import tokenize
from llm_anatomy_tui.widgets.token_chips import Chip, TokenChipsRenderable, chips_from_pieces

SEED = (
    "If the human brain were so simple that we could understand it, "
    "we would be so simple that we couldn't."
)


def render(renderable, width: int = 60) -> list[str]:  # noqa: ANN001
    console = Console(width=width, file=io.StringIO(), color_system=None, record=True)
    console.print(renderable)
    return console.export_text().rstrip("\n").split("\n")


def seed_chips() -> tuple[Chip, ...]:
    return chips_from_pieces(tokenize(load_encoding("o200k_base"), SEED).pieces)


def test_labels_over_ids_wrapped_to_width():
    lines = render(TokenChipsRenderable(seed_chips()), width=60)
    assert lines[0].startswith("If   ·the ·human ·brain")
    assert lines[1].startswith("3335 290  5396   12891")
    assert all(len(line) <= 60 for line in lines)
    assert len(lines) % 2 == 0  # label line + ID line per row
    ids = [int(tok) for line in lines[1::2] for tok in line.split()]
    assert ids == [c.token_id for c in seed_chips()]


def test_line_budget_draws_what_fits_and_says_how_much_is_left():
    chips = seed_chips()
    lines = render(TokenChipsRenderable(chips, max_lines=3), width=60)
    assert len(lines) == 3
    assert lines[-1].startswith("… ") and "more tokens not drawn" in lines[-1]
    drawn = len(lines[1].split())
    assert f"showing {drawn} of 22" in lines[-1]


def test_total_beyond_the_chips_given_is_reported():
    chips = seed_chips()[:5]
    lines = render(TokenChipsRenderable(chips, total=250_000, show_ids=False), width=80)
    assert lines[0].split() == ["If", "·the", "·human", "·brain", "·were"]
    assert lines[-1] == "… 249,995 more tokens not drawn (showing 5 of 250,000)"


def test_lines_needed_matches_what_is_drawn():
    chips = seed_chips()
    r = TokenChipsRenderable(chips)
    for width in (10, 25, 40, 80, 200):
        assert r.lines_needed(width) == len(render(TokenChipsRenderable(chips), width))
        assert r.lines_needed(width, 3) == min(3, r.lines_needed(width))


def test_wide_characters_and_byte_pieces_keep_alignment():
    pieces = tokenize(load_encoding("model"), "世界 東京 👍🏽").pieces
    lines = render(TokenChipsRenderable(chips_from_pieces(pieces)), width=30)
    assert "‹E4 B8›" in lines[0]
    from rich.cells import cell_len

    assert all(cell_len(line) <= 30 for line in lines)


def test_a_chip_wider_than_the_line_is_cut_with_an_ellipsis():
    chip = Chip("x" * 50, 7)
    lines = render(TokenChipsRenderable([chip]), width=12)
    assert lines[0] == "x" * 11 + "…"


def test_empty_and_styles():
    assert render(TokenChipsRenderable((), empty="(nothing)")) == ["(nothing)"]
    red = Style(bgcolor="red")
    r = TokenChipsRenderable([Chip([("a", "text"), ("·", "marker")], 1)], chip_styles=[red])
    segments = [s for line in r.segment_lines(10, None) for s in line]
    assert segments[0].style == red
    assert segments[1].style.dim  # markers are dimmed so a real "·" stays distinguishable
