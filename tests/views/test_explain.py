"""The explain texts: well-formed, and filed under chapters that exist."""

from __future__ import annotations

import pytest

from llm_anatomy_tui.chapters import CHAPTERS
from llm_anatomy_tui.views.explain import (
    COMMON,
    ExplainError,
    find_explanation,
    load_explanations,
    parse_explanations,
)


def test_every_section_is_a_registered_chapter_or_common() -> None:
    slugs = {c.slug for c in CHAPTERS} | {COMMON}
    assert set(load_explanations()) <= slugs


def test_the_chapters_this_issue_covers_have_texts() -> None:
    texts = load_explanations()
    for slug in ("welcome", "tokenization", "sampling", "attention", "multi-head",
                 "kv-cache", "quantization", "closing"):  # fmt: skip
        assert texts.get(slug), slug


def test_texts_are_a_few_sentences() -> None:
    for panels in load_explanations().values():
        for wid, panel in panels.items():
            for field in (panel.shows, panel.read, panel.check):
                assert 20 <= len(field) <= 500, wid


def test_chapter_text_wins_over_common_and_nearest_id_first() -> None:
    texts = parse_explanations(
        """
        [common.prompt]
        title = "c"
        shows = "s"
        read = "r"
        check = "k"
        [x.prompt]
        title = "own"
        shows = "s"
        read = "r"
        check = "k"
        [x.body]
        title = "body"
        shows = "s"
        read = "r"
        check = "k"
        """
    )
    assert find_explanation(texts, "x", ["prompt", "body"]).title == "own"
    assert find_explanation(texts, "y", ["prompt", "body"]).title == "c"
    assert find_explanation(texts, "x", ["inner", "body"]).title == "body"
    assert find_explanation(texts, "x", []) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[x.a]\ntitle = "t"\nshows = "s"\nread = "r"\n', "no check"),
        ('[x.a]\ntitle = "t"\nshows = "s"\nread = "r"\ncheck = "k"\nextra = "e"\n', "unknown"),
        ("x = 1\n", "table of panels"),
        ("[x\n", "not valid TOML"),
    ],
)
def test_malformed_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(ExplainError, match=message):
        parse_explanations(text)
