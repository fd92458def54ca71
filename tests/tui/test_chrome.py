"""The chrome every chapter shares — header, footer — and the welcome screen's path, driven
the way a person uses them (keyboard only), plus chapter 14 under ``NO_COLOR``."""

from __future__ import annotations

from ch_helpers import drain, model_app
from textual.widgets import Footer
from tui_helpers import settle

from llm_anatomy_tui.chapters import CHAPTERS
from llm_anatomy_tui.chapters.base import ChapterHeader

BUILT = [c for c in CHAPTERS if c.number > 0]


async def test_header_counts_the_registered_chapters(make_app):
    app = make_app(chapter=BUILT[0].slug)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for place, chapter in enumerate(BUILT, start=1):
            app.goto_chapter(chapter.slug)
            await settle(pilot)
            header = app.screen.query_one(ChapterHeader)
            text = header.render().plain
            # N/total while no chapter before it is missing; otherwise the book's number,
            # then the place among what is built (the numbers have gaps)
            if place == chapter.number:
                assert text.startswith(f" Chapter {chapter.number}/{len(BUILT)} · ")
            else:
                assert text.startswith(f" Chapter {chapter.number} · {place} of {len(BUILT)} · ")


async def test_footer_palette_key_fills_the_last_column(make_app):
    for width in (80, 97, 120):
        app = make_app(chapter="tokenization")
        async with app.run_test(size=(width, 24)) as pilot:
            await settle(pilot)
            footer = app.screen.query_one(Footer)
            palette = footer.query_one(".-command-palette")
            # a gap at the right edge showed a letter of the key list scrolling under it
            assert palette.region.right == footer.region.right == width


async def test_path_diagram_opens_chapters_by_keyboard(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        path = app.screen.query_one("#welcome-path")
        for _ in range(6):  # Tab reaches it
            if path.has_focus:
                break
            await pilot.press("tab")
        assert path.has_focus
        assert path.chapter_slug == "tokenization"  # the first built stage: tokens [1]
        await pilot.press("right")
        assert path.chapter_slug != "tokenization"
        target = path.chapter_slug
        await pilot.press("enter")
        await settle(pilot)
        assert app.current_mode == target


async def test_kv_cache_chapter_draws_under_no_color(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = model_app("kv-cache")
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.no_color
        await drain(pilot)
        await pilot.press("c")  # the cache-off story fits too
        await drain(pilot)
        for selector in ("#kv-status", "#kv-arrays", "#kv-compare"):
            _fits(app.screen, selector)
        await pilot.press("c")
        await drain(pilot)
        picture = app.screen.query_one("#kv-map")
        picture.scroll_visible(animate=False)
        await pilot.press("s")
        await drain(pilot)
        assert "L0 K" in picture.text()
    assert app.return_code in (None, 0)


# -- 80×24: every panel reachable, nothing clipped ------------------------------------------


def _fits(screen, selector: str) -> None:  # noqa: ANN001
    """Every line of a Static's text fits its width (nothing cut off at the end)."""
    widget = screen.query_one(selector)
    content = widget.content
    text = content.plain if hasattr(content, "plain") else str(content)
    width = widget.content_region.width
    for line in text.splitlines():
        assert len(line) <= width, (selector, width, line)


async def test_80x24_toy_map_of_chapter_8_scrolls_into_view():
    """Before: below 36 rows the toy's map was hidden, and the part could not scroll to it."""
    app = model_app("attention")
    async with app.run_test(size=(80, 24)) as pilot:
        await drain(pilot)
        toy_map = app.screen.query_one("#toy-map")
        part = app.screen.query_one("#toy-part")
        assert toy_map.display and toy_map.region.height > 0
        assert toy_map.region.y >= part.region.bottom  # below the fold at first
        await pilot.press("pagedown", "pagedown")
        await pilot.pause()
        assert part.scroll_y > 0
        visible = part.region
        assert toy_map.region.y < visible.bottom and toy_map.region.bottom > visible.y


async def test_80x24_chapter_9_shows_the_normaliser_whole():
    """Before: "weight = exp(masked − …" — the number to check the weights with was cut."""
    app = model_app("multi-head")
    async with app.run_test(size=(80, 24)) as pilot:
        await drain(pilot)
        _fits(app.screen, "#mh-row-title")
        title = app.screen.query_one("#mh-row-title").content.plain
        assert "weight = exp(masked − " in title and title.rstrip().endswith(")")


async def test_80x24_chapter_14_labels_fit_and_the_model_list_does_not_wrap():
    app = model_app("kv-cache")
    async with app.run_test(size=(80, 24)) as pilot:
        await drain(pilot)
        await pilot.press("s", "s")
        await drain(pilot)
        for selector in ("#kv-status", "#kv-arrays", "#kv-compare", "#kv-quant", "#kv-presets"):
            _fits(app.screen, selector)
        await pilot.press("c")  # the cache-off story fits too
        await drain(pilot)
        for selector in ("#kv-status", "#kv-arrays", "#kv-compare"):
            _fits(app.screen, selector)
        await pilot.press("c")
        await drain(pilot)
        picture = app.screen.query_one("#kv-map")
        for line in picture.text(picture.content_region.width).splitlines():
            assert len(line) <= picture.content_region.width, line
        await pilot.press("m", "enter")  # the model list, opened by keys
        await pilot.pause()
        from textual.widgets._select import SelectOverlay

        overlay = app.screen.query_one(SelectOverlay)
        longest = max(len(str(option.prompt)) for option in overlay.options)
        assert overlay.content_region.width >= longest
