"""The glossary data file and its search."""

from __future__ import annotations

import re
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_anatomy_tui.chapters import CHAPTERS
from llm_anatomy_tui.views.glossary import (
    GLOSSARY_PATH,
    GlossaryError,
    edit_distance,
    load_glossary,
    parse_glossary,
    search,
)

PLANNED = set(range(17))  # chapters 0–16 of CHAPTERS.md


def test_glossary_ships_inside_the_package() -> None:
    package = GLOSSARY_PATH.parents[1]
    assert package.name == "llm_anatomy_tui" and GLOSSARY_PATH.is_file()


def test_size_and_shape() -> None:
    g = load_glossary()
    assert 60 <= len(g.terms) <= 110
    for term in g.terms:
        sentences = re.findall(r"[.!?](?:\s|$)", term.text)
        assert 1 <= len(sentences) <= 4, term.name
        assert term.related, f"{term.name} has no related terms"


def test_every_terms_chapter_is_registered_or_pending() -> None:
    g = load_glossary()
    registered = {c.number for c in CHAPTERS}
    assert g.pending_chapters <= PLANNED
    stale = g.pending_chapters & registered
    assert not stale, (
        f"chapters {sorted(stale)} are registered now: remove them from pending_chapters"
    )
    for term in g.terms:
        assert term.chapter in registered | g.pending_chapters, (term.name, term.chapter)


def test_names_and_aliases_are_unambiguous() -> None:
    g = load_glossary()
    owner: dict[str, str] = {}
    for term in g.terms:
        for name in term.names:
            key = name.casefold()
            assert owner.setdefault(key, term.name) == term.name, (name, owner[key], term.name)
            assert g.get(name) is term


def test_bad_files_are_refused() -> None:
    with pytest.raises(GlossaryError, match="related"):
        parse_glossary('[[term]]\nname="A"\nchapter=1\ntext="x."\nrelated=["B"]\n')
    with pytest.raises(GlossaryError, match="text"):
        parse_glossary('[[term]]\nname="A"\nchapter=1\n')
    with pytest.raises(GlossaryError, match="twice"):
        parse_glossary('[[term]]\nname="A"\nchapter=1\ntext="x."\n' * 2)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("GQA", "Grouped-query attention"),
        ("grouped query", "Grouped-query attention"),
        ("logti", "Logit"),  # swapped letters
        ("atnetion", "Attention"),  # two typos
        ("temprature", "Temperature"),  # a dropped letter
        ("q4_0", "Q4_0"),
        ("nucleus", "Top-p"),  # an alias
        ("kv cache", "KV cache"),
        ("  SoftMax ", "Softmax"),
    ],
)
def test_search_finds_the_term(query: str, expected: str) -> None:
    assert search(load_glossary(), query)[0].term.name == expected


def test_search_without_a_match_is_empty_and_empty_query_lists_all() -> None:
    g = load_glossary()
    assert search(g, "zzzzqx") == []
    assert [m.term for m in search(g, "")] == list(g.terms)


def test_search_by_a_word_of_the_definition() -> None:
    hits = [m.term.name for m in search(load_glossary(), "bandwidth")]
    assert hits == ["Decode"]


@cache
def _slow_osa(a: str, b: str) -> int:
    """Reference: the same distance by plain recursion."""
    if not a or not b:
        return len(a) + len(b)
    best = min(
        _slow_osa(a[:-1], b) + 1,
        _slow_osa(a, b[:-1]) + 1,
        _slow_osa(a[:-1], b[:-1]) + (a[-1] != b[-1]),
    )
    if len(a) > 1 and len(b) > 1 and a[-1] == b[-2] and a[-2] == b[-1]:
        best = min(best, _slow_osa(a[:-2], b[:-2]) + 1)
    return best


@given(st.text("abcd", max_size=7), st.text("abcd", max_size=7))
def test_edit_distance_matches_recursive_reference(a: str, b: str) -> None:
    assert edit_distance(a, b) == _slow_osa(a, b)


@given(st.text("abcd", max_size=7), st.text("abcd", max_size=7), st.integers(0, 3))
def test_edit_distance_with_a_limit_is_capped_but_exact_below_it(a: str, b: str, k: int) -> None:
    assert edit_distance(a, b, k) == min(_slow_osa(a, b), k + 1)
