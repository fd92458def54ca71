"""The chapter registry: the one list that navigation, the contents, the command palette,
``--chapter``, the help screen and the welcome screen all read.

Registering a chapter
---------------------
1. Write ``llm_anatomy_tui/chapters/cNN_slug.py`` with a subclass of
   :class:`~llm_anatomy_tui.chapters.base.ChapterScreen` (read its docstring: it gives you
   the header, footer, shared keys, the prompt, the tokenizers and the model).
2. Add one :class:`Chapter` to :data:`CHAPTERS` below, in any position (the list is sorted
   by number). ``screen`` is ``"module:ClassName"`` relative to this package; the module is
   imported only when the chapter is first opened, so a heavy chapter does not slow start-up.
3. Only register chapters that are really built: there are no placeholder screens.

The tests open every registered chapter by keys, so a new entry is covered automatically.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import ChapterScreen


@dataclass(frozen=True)
class Chapter:
    """One registered chapter."""

    number: int
    """Its number in the book (0 is the welcome screen). Numbers may have gaps."""
    slug: str
    """A short lowercase name, used by ``--chapter`` and as the Textual mode name."""
    title: str
    """Shown in the header, the contents and the palette."""
    tagline: str
    """One line (at most 60 characters) saying what the person sees and does there."""
    screen: str
    """``"module:ClassName"`` of the screen, relative to ``llm_anatomy_tui.chapters``."""

    def load(self) -> type[ChapterScreen]:
        """Import and return the screen class."""
        module_name, _, class_name = self.screen.partition(":")
        module = importlib.import_module(f"{__name__}.{module_name}")
        return getattr(module, class_name)

    def create_screen(self) -> ChapterScreen:
        """A new instance of this chapter's screen."""
        return self.load()(self)

    @property
    def label(self) -> str:
        """``"1 · Tokenization"`` — how lists show the chapter."""
        return f"{self.number} · {self.title}"


CHAPTERS: tuple[Chapter, ...] = tuple(
    sorted(
        [
            Chapter(
                0,
                "welcome",
                "Welcome",
                "What this is, the path through the model, and the keys.",
                "c00_welcome:WelcomeScreen",
            ),
            Chapter(
                1,
                "tokenization",
                "Tokenization",
                "Three tokenizers cut your text: chips, IDs, counts, cost.",
                "c01_tokenization:TokenizationScreen",
            ),
            Chapter(
                5,
                "sampling",
                "Logits & sampling",
                "Next-token odds, every filter, the seeded draw; step it.",
                "c05_sampling:SamplingScreen",
            ),
            Chapter(
                6,
                "backprop",
                "Backpropagation",
                "The chain rule by hand, then one real step on your text.",
                "c06_backprop:BackpropScreen",
            ),
            Chapter(
                7,
                "optimizers",
                "Optimizers",
                "SGD, momentum, Adam on a valley and on the real loss.",
                "c07_optimizers:OptimizersScreen",
            ),
            Chapter(
                8,
                "attention",
                "Attention: Q, K, V",
                "Queries meet keys: scores, softmax, mixed values.",
                "c08_attention:AttentionScreen",
            ),
            Chapter(
                9,
                "multi-head",
                "Multi-head attention",
                "Every head of a layer, step by step, and shared K/V.",
                "c09_multihead:MultiHeadScreen",
            ),
            Chapter(
                10,
                "rope",
                "RoPE",
                "Position as rotation, proved on the real q and k.",
                "c10_rope:RopeScreen",
            ),
            Chapter(
                11,
                "block",
                "Transformer block",
                "One block, its residual stream, a lens at every sub-block.",
                "c11_block:BlockScreen",
            ),
            Chapter(
                12,
                "training",
                "Training phases",
                "The recorded run's phases; train a copy on your text.",
                "c12_training:TrainingScreen",
            ),
            Chapter(
                13,
                "post-training",
                "Post-training",
                "SFT and preference tuning; DPO steps on a real pair.",
                "c13_post_training:PostTrainingScreen",
            ),
            Chapter(
                14,
                "kv-cache",
                "Context & KV cache",
                "Prefill, decode, the cache growing; its cost in memory.",
                "c14_kv_cache:KVCacheScreen",
            ),
            Chapter(
                15,
                "quantization",
                "Quantization",
                "Fewer bits per weight: the grid, the error, the model.",
                "c15_quantization:QuantizationScreen",
            ),
            Chapter(
                16,
                "closing",
                "Closing",
                "The whole path on your prompt, the lenses, what next.",
                "c16_closing:ClosingScreen",
            ),
        ],
        key=lambda c: c.number,
    )
)
"""Every built chapter, sorted by number."""


class UnknownChapter(LookupError):
    """``--chapter`` or a jump named a chapter that is not registered."""


def find_chapter(key: int | str) -> Chapter:
    """Look a chapter up by number (``1``, ``"1"``) or slug (``"tokenization"``, any case,
    unique prefixes allowed). Raises :class:`UnknownChapter` with a one-line message.

    >>> find_chapter("token").number
    1
    """
    text = str(key).strip().lower()
    if text.isdigit():
        for chapter in CHAPTERS:
            if chapter.number == int(text):
                return chapter
    else:
        exact = [c for c in CHAPTERS if c.slug == text]
        if exact:
            return exact[0]
        matches = [c for c in CHAPTERS if c.slug.startswith(text)] if text else []
        if len(matches) == 1:
            return matches[0]
    available = ", ".join(f"{c.number} ({c.slug})" for c in CHAPTERS)
    raise UnknownChapter(f"no chapter {str(key).strip()!r}; available: {available}")


def chapter_index(slug: str) -> int:
    """Position of a chapter in :data:`CHAPTERS` (for next/previous)."""
    for i, chapter in enumerate(CHAPTERS):
        if chapter.slug == slug:
            return i
    raise UnknownChapter(f"no chapter {slug!r}")
