"""Bracketed pastes arrive whole and in order (issue 15: a pasted ESC turned the rest of
the paste into key presses, reordered it, and NUL vanished)."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st
from textual import events
from textual._xterm_parser import XTermParser

from llm_anatomy_tui.terminal import (
    PASTE_END,
    PASTE_START,
    PasteSafeParser,
    decode_paste,
    encode_paste,
)


def _events(parser: XTermParser, chunks: list[str], wait: bool = True) -> list[tuple[str, str]]:
    out = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    if wait:
        time.sleep(0.12)  # past the hold-back and Textual's escape delay
        out.extend(parser.tick())
    return [
        ("paste", e.text) if isinstance(e, events.Paste) else ("key", e.key)
        for e in out
        if isinstance(e, events.Paste | events.Key)
    ]


HOSTILE = "ab\x1bcd\x00e\x1b[Afg\x1b[200~h\x07\r\n\x7fi"


def test_paste_with_escape_sequences_is_one_paste_event() -> None:
    stream = "x" + PASTE_START + HOSTILE + PASTE_END + "y"
    assert _events(PasteSafeParser(), [stream]) == [
        ("key", "x"),
        ("paste", HOSTILE),
        ("key", "y"),
    ]


def test_textual_parser_alone_turned_the_paste_into_keys() -> None:
    """Documents the failure the wrapper fixes (if Textual fixes it, this can go)."""
    stream = "x" + PASTE_START + HOSTILE + PASTE_END + "y"
    got = _events(XTermParser(), [stream])
    assert ("paste", HOSTILE) not in got


def test_split_markers_and_arrow_keys() -> None:
    stream = "\x1b[A" + PASTE_START + "p\x1bq" + PASTE_END + "\x1b[B"
    for cut in range(1, len(stream)):
        got = _events(PasteSafeParser(), [stream[:cut], stream[cut:]])
        assert ("paste", "p\x1bq") in got, cut
        assert got[-1] == ("key", "down"), (cut, got)


@settings(max_examples=150, deadline=None)
@given(
    text=st.lists(
        st.one_of(
            st.characters(codec="utf-8", exclude_categories=("Cs",)),
            st.sampled_from(["\x1b", "\x00", "\ue000", "\x1b[201", "\x1b[200~", "\r", "\x7f"]),
        ),
        max_size=40,
    ).map("".join),
    cuts=st.lists(st.integers(min_value=1, max_value=80), max_size=4),
)
def test_any_paste_survives_any_chunking(text: str, cuts: list[int]) -> None:
    if PASTE_END in text:
        return  # a paste cannot contain its own end marker (terminals strip it)
    stream = PASTE_START + text + PASTE_END
    chunks, pos = [], 0
    for cut in sorted(set(cuts)):
        if pos < cut < len(stream):
            chunks.append(stream[pos:cut])
            pos = cut
    chunks.append(stream[pos:])
    pastes = [v for kind, v in _events(PasteSafeParser(), chunks, wait=False) if kind == "paste"]
    assert pastes == [text]


def test_encoding_round_trip() -> None:
    for text in ["", "\ue000", "\ue000e", "\x1b\x00\ue000", "plain"]:
        assert decode_paste(encode_paste(text)) == text
        assert "\x1b" not in encode_paste(text) and "\x00" not in encode_paste(text)
