"""Helpers for the chapter 2-4 Pilot and snapshot tests."""

from __future__ import annotations

import re

from textual.widgets import Static
from tui_helpers import make_model_session

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.model import init_random

PROMPT = "The boat drifted to the bank of the river."

ODD_CONFIG = LlamaConfig(
    vocab_size=8193,  # the model tokenizer's size; everything else unlike anatomy-mini
    hidden_size=24,
    intermediate_size=40,
    num_hidden_layers=3,
    num_attention_heads=2,
    num_key_value_heads=1,
    max_position_embeddings=48,
)
_ODD = []


def odd_model():  # noqa: ANN201
    """3 layers, width 24, 40 hidden units, a 48-token window (seeded random weights)."""
    if not _ODD:
        _ODD.append(init_random(ODD_CONFIG, seed=11, std=0.2, name="odd-random"))
    return _ODD[0]


def app_for(chapter: str, prompt: str = PROMPT, model=None) -> LLMAnatomyApp:  # noqa: ANN001
    return LLMAnatomyApp(chapter=chapter, session=make_model_session(prompt, model=model),
                         load_resources=False)  # fmt: skip


async def settled(pilot) -> None:  # noqa: ANN001
    await pilot.app.wait_until_settled()
    await pilot.pause()
    for widget in pilot.app.screen.query("Input, TextArea"):
        widget.cursor_blink = False  # type: ignore[attr-defined]
    await pilot.app.wait_until_settled()


KEYS = {" ": "space", ".": "full_stop", ",": "comma", "-": "minus", "+": "plus",
        "'": "apostrophe", "!": "exclamation_mark"}  # fmt: skip


async def type_text(pilot, text: str) -> None:  # noqa: ANN001
    await pilot.press(*[KEYS.get(ch, ch) for ch in text])


def text_of(screen, selector: str) -> str:  # noqa: ANN001
    content = screen.query_one(selector, Static).content
    return content.plain if hasattr(content, "plain") else str(content)


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?\d+\.\d+", text)]
