"""Chapter 1: Tokenization — the prompt cut into tokens by three tokenizers, side by side.

o200k_base (GPT-4o), cl100k_base (GPT-4) and the model's own 8k vocabulary encode the
same text; each token is a coloured chip with its ID. Counts per encoding, the share of a
chosen context window and the cost at a price the person types.

Results come through the base class's one compute path (``self.compute``): short texts
are tokenized inline on every keystroke (three encodings of a 2,000-character text take
about a millisecond), long ones (a pasted megabyte) in a thread worker, and only the
chips that can be seen are built. This module is the pattern new chapters copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Input, Label, Select, Static

from ..core.session import NotReady
from ..core.tokenizers import ENCODING_NAMES
from ..views.token_pieces import (
    CONTEXT_WINDOWS,
    PriceError,
    Tokenized,
    cost,
    format_cost,
    format_ratio,
    format_share,
    parse_price,
    tokenize,
    window_share,
)
from ..widgets.prompt_bar import PromptBar
from ..widgets.token_chips import TokenChips, chips_from_pieces
from .base import ChapterScreen

if TYPE_CHECKING:
    from tiktoken import Encoding

SEED_SENTENCE = (
    "If the human brain were so simple that we could understand it, "
    "we would be so simple that we couldn't."
)

PRESETS: tuple[tuple[str, str], ...] = (
    ("Brain quote (seed)", SEED_SENTENCE),
    (
        "Common, rare words",
        "The cat sat on the mat. The ornithopter's cantilevered empennage was "
        "unflinchingly idiosyncratic.",
    ),
    ("Numbers, prices", "In 2024 it cost $1,234.56; by 2025, 98765.4321 (+7.89%)."),
    ("Code: tabs, lines", "def add(a, b):\n\treturn a + b\n\nprint(add(2, 40))\n"),
    ("Chinese, Japanese", "我喜欢学习新的语言。東京は日本の首都です。"),
    ("Emoji, joiners", "Family 👨‍👩‍👧‍👦, thumbs up 👍🏽, heart ❤️, flag 🇳🇱."),
    ("Hebrew, Arabic", "שלום עולם — مرحبا بالعالم"),
    ("Accents, compounds", "Crème brûlée, naïve café; Donaudampfschifffahrt."),
    ("Whitespace", "two  spaces,\tone tab,\n\nblank line,   trailing spaces   "),
    ("Control chars", "NUL:\x00 BEL:\x07 ESC:\x1b[31m DEL:\x7f end"),
)

OWN_TEXT = -1
"""Select value of the entry that restores what the person typed before picking a preset."""

LEAD = (
    "A model never reads letters: a tokenizer cuts the text into pieces from a fixed "
    "vocabulary and swaps each for its number. Three tokenizers, one text:"
)

LEGEND = Text.assemble(
    ("·", "bold"),
    " space  ",
    ("⏎", "bold"),
    " newline  ",
    ("⇥", "bold"),
    " tab  ",
    ("‹E4 B8›", "bold italic"),
    " bytes of a split character  ",
    ("␀ ␛", "bold"),
    " controls",
)

EXPLAINER = (
    (
        "Tokens and IDs",
        (
            "Each chip is one token; the number under it is its ID. The ID is all the model "
            "receives: it picks out one row of the model's embedding table, and from there on "
            "the text exists only as numbers."
        ),
    ),
    (
        "Where the vocabulary comes from",
        (
            "Byte-pair encoding starts from the 256 possible bytes and, over a large corpus, "
            "keeps merging the most frequent pair of neighbouring tokens into a new one. "
            "Frequent words become single tokens, usually with the space in front of them "
            "(·the); rare words are assembled from several pieces."
        ),
    ),
    (
        "Why the counts differ",
        (
            "A larger vocabulary covers more text with whole pieces, so it needs fewer tokens. "
            "The built-in anatomy-mini keeps only the first 8,192 entries of o200k_base (the 256 "
            "single bytes and the 7,936 earliest merges), so its IDs are o200k IDs but it needs more of "
            "them, and characters it never merged (many Chinese characters, most emoji) are "
            "spelled out byte by byte: ‹E4 B8› is two bytes of a three-byte character whose "
            "last byte sits in the next chip."
        ),
    ),
    (
        "Why it matters",
        (
            "Context windows and API prices are measured in tokens, not characters. The table "
            "shows this text's share of the chosen window and its cost at the price you type "
            "(per million tokens, in any currency; no prices are built in)."
        ),
    ),
)

SYNC_LIMIT = 20_000
"""Texts longer than this are tokenized in a worker thread instead of on every keystroke."""


@dataclass(frozen=True)
class CountRow:
    """One row of the counts table, as shown."""

    name: str
    label: str
    vocab: str
    tokens: str
    chars_per_token: str
    share: str
    cost: str


@dataclass(frozen=True)
class Result:
    """One encoding's result, or why there is none."""

    name: str
    tokenized: Tokenized | None
    error: str | None
    vocab: int | None


def tokenize_all(
    encodings: tuple[tuple[str, Encoding | None, str | None], ...],
    text: str,
    markers: bool,
    budget: int,
) -> list[Result]:
    """Encode ``text`` with every available encoding (pure: safe in a worker thread).

    ``encodings`` holds (name, encoding or None, why it is missing); at most ``budget``
    pieces are built per encoding (the counts always cover the whole text)."""
    results = []
    for name, enc, error in encodings:
        if enc is None:
            results.append(Result(name, None, error, None))
            continue
        tokenized = tokenize(enc, text, max_pieces=budget, markers=markers)
        results.append(Result(name, tokenized, None, enc.n_vocab))
    return results


LABEL_WIDTH = 22
"""The longest encoding label the count table shows (o200k_base's is 19)."""


def short_label(label: str, width: int = LABEL_WIDTH) -> str:
    """``label`` cut to ``width`` characters, keeping its last parenthesis.

    >>> short_label("SmolLM2-135M-Instruct.Q4_1 (49k)")
    'SmolLM2-135M-In… (49k)'
    >>> short_label("o200k_base (GPT-4o)")
    'o200k_base (GPT-4o)'
    """
    if len(label) <= width:
        return label
    head, sep, tail = label.rpartition(" (")
    if not sep:
        return label[: width - 1] + "…"
    keep = max(1, width - len(tail) - 3)
    return f"{head[:keep]}… ({tail}"


class PriceInput(Input):
    """The price field. Pasted text keeps only its printable characters (a pasted escape
    sequence must never reach the terminal)."""

    def _on_paste(self, event: events.Paste) -> None:
        clean = (
            "".join(ch for ch in event.text.splitlines()[0] if ch.isprintable())
            if event.text
            else ""
        )
        event.prevent_default()
        event.stop()
        if clean:
            self.insert_text_at_cursor(clean)


def _num(n: int) -> str:
    return f"{n:,}"


def counts_text(summary: Text, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> Text:
    """The counts table as plain aligned text (a Rich Table costs ~6 ms per keystroke).

    The first column is left-aligned, the others right-aligned, two spaces apart.
    """
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: tuple[str, ...]) -> str:
        parts = [cells[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(parts)

    out = Text(no_wrap=True, overflow="ellipsis", end="")
    out.append_text(summary)
    out.append("\n")
    out.append(line(header), style="bold")
    for row in rows:
        out.append("\n")
        out.append(line(row))
    return out


class TokenizationScreen(ChapterScreen):
    """Chapter 1: the shared prompt under o200k_base, cl100k_base and the model vocabulary."""

    CSS_PATH = "c01_tokenization.tcss"
    AUTO_FOCUS = "#tok-body"
    HORIZONTAL_BREAKPOINTS = [(0, "-tiny"), (80, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding(
            "w",
            "toggle_markers",
            "Markers",
            id="tokenization.markers",
            tooltip="Show spaces, newlines and tabs as · ⏎ ⇥ (or as blank cells)",
        ),
        Binding(
            "i",
            "toggle_ids",
            "IDs",
            id="tokenization.ids",
            tooltip="Show or hide the token ID under each chip",
        ),
    ]

    markers: reactive[bool] = reactive(True)
    show_ids: reactive[bool] = reactive(True)

    def __init__(self, chapter) -> None:  # noqa: ANN001
        super().__init__(chapter)
        self._results: list[Result] = []
        self._price: Decimal | None = None
        self._own_text: str | None = None
        self._applying_preset = False
        self.count_rows: list[CountRow] = []
        """The counts table as shown (for tests and for anyone reading the screen)."""

    # -- layout ----------------------------------------------------------------------------

    def compose_chapter(self) -> ComposeResult:
        with VerticalScroll(id="tok-body"):
            yield Static(Text(LEAD), id="tok-lead", classes="prose")
            yield PromptBar(
                self.session.prompt, title="Text to tokenize (shared prompt)", id="prompt"
            )
            with Horizontal(id="tok-controls"):
                yield Label("Preset", classes="control-label")
                yield Select(
                    [("Your own text", OWN_TEXT)]
                    + [(label, i) for i, (label, _) in enumerate(PRESETS)],
                    prompt="Pick a text…",
                    compact=True,
                    id="preset",
                )
                yield Label("Window", classes="control-label")
                yield Select(
                    [(f"{w:,} tokens", w) for w in CONTEXT_WINDOWS],
                    value=128_000,
                    allow_blank=False,
                    compact=True,
                    id="window",
                )
                yield Label("Price/1M", classes="control-label")
                yield PriceInput(placeholder="e.g. 2.50", compact=True, id="price", max_length=24)
            yield Static(id="price-error")
            yield Static(id="tok-counts")
            yield Static(LEGEND, id="tok-legend")
            yield Static(id="tok-long-note")
            with Horizontal(id="token-panels"):
                for name in ENCODING_NAMES:
                    with Vertical(classes="token-panel", id=f"panel-{name}"):
                        yield Static(
                            self._label(name),
                            classes="panel-title",
                            id=f"title-{name}",
                        )
                        yield TokenChips(id=f"chips-{name}")
            with Vertical(id="tok-explainer"):
                for heading, body in EXPLAINER:
                    yield Static(Text(heading, style="bold"), classes="heading")
                    yield Static(Text(body), classes="prose")

    def on_mount(self) -> None:
        # Looked up once: the widgets are redrawn on every keystroke.
        self._chips = {n: self.query_one(f"#chips-{n}", TokenChips) for n in ENCODING_NAMES}
        self._titles = {n: self.query_one(f"#title-{n}", Static) for n in ENCODING_NAMES}
        self._counts = self.query_one("#tok-counts", Static)
        self._long_note = self.query_one("#tok-long-note", Static)
        self._window_select = self.query_one("#window", Select)

    def on_resize(self) -> None:
        # A bigger terminal can show more chips than were built for a long text.
        budget = self._piece_budget()
        if any(
            r.tokenized is not None and r.tokenized.truncated and r.tokenized.shown < budget
            for r in self._results
        ):
            self.refresh_tokens()

    # -- session ---------------------------------------------------------------------------

    def session_changed(self, changes: frozenset[str]) -> None:
        if "prompt" in changes and not self._applying_preset:
            preset = self.query_one("#preset", Select)
            if preset.value is not Select.BLANK and self.session.prompt != self._preset_text(
                preset.value
            ):
                preset.clear()
        self.refresh_tokens()

    def _preset_text(self, value: object) -> str | None:
        if isinstance(value, int) and 0 <= value < len(PRESETS):
            return PRESETS[value][1]
        return None

    # -- tokenizing ------------------------------------------------------------------------

    def _piece_budget(self) -> int:
        """How many pieces to build: as many chips as the panels could show."""
        chips = getattr(self, "_chips", None)
        if chips:
            return max(64, max(widget.capacity() for widget in chips.values()))
        width, height = self.app.size
        return max(200, (width // 2) * height)

    def _label(self, name: str) -> str:
        """An encoding's name as shown; a long model name is cut (its vocabulary size kept)
        so the table still fits 80 columns."""
        return short_label(self.session.encoding_label(name))

    def refresh_tokens(self) -> None:
        """Ask for the prompt's tokens under every encoding: inline for a short text (so
        the keystroke repaints in its own frame), in a worker for a long paste."""
        text = self.session.prompt
        encodings = tuple(self._encoding_or_error(name) for name in ENCODING_NAMES)
        self.compute(
            "tokens",
            tokenize_all,
            encodings,
            text,
            self.markers,
            self._piece_budget(),
            then=self._draw_results,
            inline=len(text) <= SYNC_LIMIT,
        )
        if self.is_computing("tokens"):
            self._show_counts()  # "counting…" until the worker's result lands

    def _encoding_or_error(self, name: str) -> tuple[str, Encoding | None, str | None]:
        try:
            return name, self.session.encoding(name), None
        except NotReady as exc:
            return name, None, str(exc)

    def _draw_results(self, results: list[Result]) -> None:
        self._results = results
        self._show()

    # -- drawing ---------------------------------------------------------------------------

    def _show(self) -> None:
        self._show_counts()
        text = self.session.prompt
        for result in self._results:
            chips = self._chips[result.name]
            title = self._titles[result.name]
            label = self._label(result.name)
            if result.tokenized is None:
                title.update(Text(label, style="bold"), layout=False)
                chips.set_data((), 0, empty_text=result.error or "")
                continue
            t = result.tokenized
            title.update(
                Text.assemble(
                    (label, "bold"),
                    f" · {_num(t.counts.tokens)} tokens",
                ),
                layout=False,
            )
            chips.set_data(
                chips_from_pieces(t.pieces),
                t.counts.tokens,
                show_ids=self.show_ids,
                empty_text="(empty text — type above or pick a preset)",
            )
        note = self._long_note
        long_text = len(text) > SYNC_LIMIT
        if long_text:
            note.update(
                Text(
                    f"Long text: the counts cover all {_num(len(text))} characters; the chips "
                    "show only the start.",
                    style="italic",
                    no_wrap=True,
                    overflow="ellipsis",
                ),
                layout=False,
            )
        if note.display != long_text:
            note.display = long_text

    def _window(self) -> int:
        value = self._window_select.value
        return value if isinstance(value, int) else 128_000

    def _count_rows(self) -> list[CountRow]:
        """The table's rows, as the exact strings shown."""
        window = self._window()
        rows = []
        for name in ENCODING_NAMES:
            result = next((r for r in self._results if r.name == name), None)
            label = self._label(name)
            pending = self.is_computing("tokens")
            if pending or result is None:
                status = "counting…" if pending else "loading…"
                rows.append(CountRow(name, label, "", status, "", "", ""))
                continue
            if result.tokenized is None:
                rows.append(CountRow(name, label, "", "unavailable", "", "", ""))
                continue
            counts = result.tokenized.counts
            share = window_share(counts.tokens, window)
            share_text = format_share(share) + (" (too long)" if share > 1 else "")
            price_text = (
                "—" if self._price is None else format_cost(cost(counts.tokens, self._price))
            )
            rows.append(
                CountRow(
                    name,
                    label,
                    _num(result.vocab or 0),
                    _num(counts.tokens),
                    format_ratio(counts.characters, counts.tokens) if counts.tokens else "—",
                    share_text,
                    price_text,
                )
            )
        return rows

    def _show_counts(self) -> None:
        text = self.session.prompt
        window = self._window()
        self.count_rows = self._count_rows()
        chars = len(text)
        utf8 = len(text.encode("utf-8", errors="surrogatepass"))
        summary = Text.assemble(
            (_num(chars), "bold"),
            " characters · ",
            (_num(utf8), "bold"),
            " UTF-8 bytes",
        )
        if self._price is None:
            summary.append("  · type a price to see the cost", style="dim")
        header = (
            "encoding",
            "vocab",
            "tokens",
            "chars/token",
            f"of {window:,}",
            "cost" if self._price is None else f"cost at {self._price}/M",
        )
        body = [
            (r.label, r.vocab, r.tokens, r.chars_per_token, r.share, r.cost)
            for r in self.count_rows
        ]
        # Always five lines (summary, header, three rows): no new layout per keystroke.
        self._counts.update(counts_text(summary, header, body), layout=False)

    # -- controls --------------------------------------------------------------------------

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id == "window":
            self._show_counts()
            return
        if event.select.id != "preset" or event.value is Select.BLANK:
            return
        if event.value == OWN_TEXT:
            text = self._own_text if self._own_text is not None else self.session.prompt
        else:
            text = self._preset_text(event.value) or ""
            current = self.session.prompt
            if current not in {t for _, t in PRESETS}:
                self._own_text = current
        self._applying_preset = True
        try:
            self.set_prompt(text)
        finally:
            self._applying_preset = False

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "price":
            return
        event.stop()
        error = self.query_one("#price-error", Static)
        try:
            self._price = parse_price(event.value)
        except PriceError as exc:
            self._price = None
            error.update(Text(f"Price: {exc}.", style="bold"))
            error.display = True
        else:
            error.display = False
        self._show_counts()

    def action_toggle_markers(self) -> None:
        self.markers = not self.markers
        self.refresh_tokens()

    def action_toggle_ids(self) -> None:
        self.show_ids = not self.show_ids
        for chips in self._chips.values():
            chips.show_ids = self.show_ids
        self.refresh_tokens()  # without IDs twice as many chips fit: build enough of them
