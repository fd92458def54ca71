"""Reading the terminal safely: bracketed pastes arrive whole, whatever they contain.

Textual's terminal parser looks for escape sequences inside a bracketed paste too. A
pasted ESC (from a log file, ``cat -v`` output, a copied terminal screen …) therefore
starts a "sequence" that swallows the following characters and, when it cannot be
understood, re-issues them as *key presses* — before the rest of the paste, so text is
reordered and keys run commands (issue 15: a paste erased the prompt). It also drops NUL
characters from pastes without a word.

:class:`PasteSafeParser` wraps that parser: it finds the paste markers itself and hands
the paste's content through in a form that contains no ESC or NUL, then restores the
exact text in the :class:`~textual.events.Paste` event. Everything outside pastes goes
through Textual's parser untouched. :func:`install` makes Textual's drivers use it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from textual import constants, events
from textual._xterm_parser import XTermParser
from textual.message import Message

PASTE_START = "\x1b[200~"
PASTE_END = "\x1b[201~"

_MARK = "\ue000"  # a private-use character: the escape of the stand-in encoding
_ENCODE = {"\x1b": _MARK + "e", "\x00": _MARK + "0", _MARK: _MARK + "m"}
_DECODE = {v[1]: k for k, v in _ENCODE.items()}
_ENCODE_RE = re.compile("[\x1b\x00\ue000]")
_DECODE_RE = re.compile(_MARK + "(.)", re.DOTALL)

HOLD_SECONDS = constants.ESCAPE_DELAY
"""How long a possible start of a paste marker cut in two by a read is held back before
it is handed on as ordinary input. A lone ESC (the Escape key) is then finished at once,
so Escape is not slower than with Textual's own parser, which waits as long for it."""


def encode_paste(text: str) -> str:
    r"""Paste content with ESC, NUL (and the stand-in character itself) replaced.

    >>> encode_paste("a\x1bb\x00c")
    'a\ue000eb\ue0000c'
    >>> decode_paste(encode_paste("x\ue000y\x1b[201~")) == "x\ue000y\x1b[201~"
    True
    """
    return _ENCODE_RE.sub(lambda m: _ENCODE[m.group()], text)


def decode_paste(text: str) -> str:
    """Undo :func:`encode_paste`."""
    return _DECODE_RE.sub(lambda m: _DECODE.get(m.group(1), m.group(1)), text)


def _held_prefix(text: str, marker: str, min_len: int) -> int:
    """Length of the longest end of ``text`` that is a proper start of ``marker``."""
    for n in range(min(len(marker) - 1, len(text)), min_len - 1, -1):
        if text.endswith(marker[:n]):
            return n
    return 0


class PasteSafeParser(XTermParser):
    """Textual's parser, with bracketed pastes taken out of its hands (see module doc)."""

    def __init__(self, debug: bool = False) -> None:
        super().__init__(debug)
        self._in_paste = False
        self._held = ""
        self._held_since = 0.0

    def _base_feed(self, data: str) -> Iterable[Message]:
        for event in super().feed(data):
            if isinstance(event, events.Paste):
                event = events.Paste(decode_paste(event.text))
            yield event

    def feed(self, data: str) -> Iterable[Message]:
        if not data:  # end of input: flush what is held, then let the base finish
            held, self._held = self._held, ""
            if held:
                yield from self._base_feed(encode_paste(held) if self._in_paste else held)
            yield from self._base_feed("")
            return
        text = self._held + data
        self._held = ""
        out: list[str] = []
        while text:
            if self._in_paste:
                end = text.find(PASTE_END)
                if end < 0:
                    keep = _held_prefix(text, PASTE_END, 1)
                    body, self._held = text[: len(text) - keep], text[len(text) - keep :]
                    out.append(encode_paste(body))
                    break
                out.append(encode_paste(text[:end]) + PASTE_END)
                self._in_paste = False
                text = text[end + len(PASTE_END) :]
            else:
                start = text.find(PASTE_START)
                if start < 0:
                    # ESC, "\x1b[" … at the very end may be a marker cut in two: wait
                    keep = _held_prefix(text, PASTE_START, 1)
                    out.append(text[: len(text) - keep])
                    self._held = text[len(text) - keep :]
                    break
                out.append(text[: start + len(PASTE_START)])
                self._in_paste = True
                text = text[start + len(PASTE_START) :]
        if self._held:
            self._held_since = time.monotonic()
        joined = "".join(out)
        if joined:
            yield from self._base_feed(joined)

    def tick(self) -> Iterable[Message]:
        waited = time.monotonic() - self._held_since
        if self._held and not self._in_paste and waited >= HOLD_SECONDS:
            held, self._held = self._held, ""
            yield from self._base_feed(held)
            # Nothing followed within the escape delay: a lone ESC is the Escape key,
            # "\x1b[" is Alt+[ — let the base parser decide now, not one delay later.
            if self._timeout_time is not None:  # the base waits on its escape delay
                self._timeout_time = 0.0
        for event in super().tick():
            if isinstance(event, events.Paste):
                event = events.Paste(decode_paste(event.text))
            yield event


def install() -> None:
    """Make Textual's terminal and browser drivers read input with :class:`PasteSafeParser`."""
    import importlib

    for name in ("linux_driver", "linux_inline_driver", "web_driver"):
        try:
            module = importlib.import_module(f"textual.drivers.{name}")
        except ImportError:  # e.g. termios on Windows
            continue
        if getattr(module, "XTermParser", None) is XTermParser:
            module.XTermParser = PasteSafeParser  # type: ignore[attr-defined]
