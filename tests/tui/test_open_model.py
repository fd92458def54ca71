"""Opening another model from inside the app: the palette's "Open model…", its dialog, the
loading worker (progress in the header, input never blocked), a failed load that keeps
the model and the prompt, the welcome card and chapter 1's label following the new model.

Models are tiny checkpoints written here with the same writers the format tests use."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import Input, OptionList, Static
from tui_helpers import NO_MODEL_DIR, SEED, settle

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.chapters.base import ChapterHeader
from llm_anatomy_tui.chapters.open_model import OpenModelScreen
from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.recent_models import RecentModels
from llm_anatomy_tui.core.session import ResourceState, Session, Status
from llm_anatomy_tui.core.weights import init_random

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from byom_helpers import family_model, train_tokenizer, write_gguf  # noqa: E402

CURRENT = LlamaConfig(
    vocab_size=8193,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
)


def current_session(prompt: str = SEED) -> Session:
    """A session whose model is a tiny random one with the built-in vocabulary."""
    session = Session(prompt, model_dir=NO_MODEL_DIR)
    session.load_tokenizers()
    session.model = init_random(CURRENT, seed=3, std=0.1, name="tiny-current")
    session.model_state = ResourceState(Status.READY)
    return session


def make(tmp_path: Path, chapter: str | None = None, prompt: str = SEED) -> LLMAnatomyApp:
    return LLMAnatomyApp(
        chapter=chapter,
        session=current_session(prompt),
        load_resources=False,
        recent=RecentModels(tmp_path / "state" / "recent.json"),
    )


@pytest.fixture(scope="module")
def gguf_path(tmp_path_factory) -> Path:
    """A SmolLM-style GGUF: 2 layers, width 64, 4 query heads on 1 K/V head, 320 tokens."""
    tok = train_tokenizer(320)
    model = family_model("smollm", tok.get_vocab_size())
    return write_gguf(model, tmp_path_factory.mktemp("m") / "tiny-smol.gguf", tok, qtype="Q8_0")


async def open_through_palette(pilot, path: str) -> None:  # noqa: ANN001
    app = pilot.app
    await pilot.press("ctrl+p")
    await pilot.pause()
    assert isinstance(app.screen, CommandPalette)
    await pilot.press(*"open model")
    await app.workers.wait_for_complete()
    await pilot.pause(0.3)
    options = app.screen.query_one(OptionList)
    texts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
    assert any("Open model…" in t for t in texts), texts
    await pilot.press("enter")
    await pilot.pause()
    assert isinstance(app.screen, OpenModelScreen)
    app.screen.query_one("#open-model-path", Input).insert_text_at_cursor(f"  '{path}'\n")
    await pilot.press("enter")
    await app.wait_until_settled()
    await pilot.pause()


async def test_the_palette_opens_a_gguf_and_every_screen_follows(tmp_path, gguf_path):
    app = make(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.wait_until_settled()
        before = dict(app.screen.card.rows)
        assert before["name"] == "tiny-current"
        # chapters opened before the switch catch up when shown again; the attention
        # chapter sits on layer 2, which the new 2-layer model does not have
        for slug in ("tokenization", "sampling", "attention"):
            app.goto_chapter(slug)
            await pilot.pause()
            await app.wait_until_settled()
        await pilot.press("m", "l", "l")
        await app.wait_until_settled()
        assert app.screen.layer_i == 2
        app.goto_chapter("welcome")
        await pilot.pause()
        await open_through_palette(pilot, str(gguf_path))
        session = app.session
        assert app.last_open_error == ""
        assert session.model is not None and session.model.name == "tiny-smol"
        assert session.prompt == SEED
        # the welcome screen (shown) redraws its card from the new model
        card = dict(app.screen.card.rows)
        assert card["name"] == "tiny-smol"
        assert (
            "2 layers · width 64 · 4 query heads sharing 1 K/V heads of 16" in card["architecture"]
        )
        assert card["file"].startswith("GGUF · stored as Q8_0")
        assert "320 tokens" in card["tokenizer"]
        # chapter 1 names the model's own tokenizer and counts with it
        app.goto_chapter("tokenization")
        await pilot.pause()
        await app.wait_until_settled()
        await pilot.pause()
        title = app.screen.query_one("#title-model", Static).content
        assert str(title).startswith("tiny-smol (320)")
        ids = session.encoding("model").encode_ordinary(SEED)
        assert f"{len(ids)} tokens" in str(title)
        # the attention chapter falls back to the new model's last layer
        app.goto_chapter("attention")
        await pilot.pause()
        await app.wait_until_settled()
        await pilot.pause()
        assert app.screen.layer_i == 1
        assert app.screen.snapshot.config.num_hidden_layers == 2
        # chapter 5's prose reads the new model's vocabulary and context
        app.goto_chapter("sampling")
        await pilot.pause()
        await app.wait_until_settled()
        await pilot.pause()
        logits = str(app.screen.query_one("#s-explain-0", Static).content)
        assert "320 numbers for tiny-smol" in logits
        stops = str(app.screen.query_one("#s-explain-6", Static).content)
        assert "tiny-smol reads at most 64 positions" in stops
        # the recent list remembers it, and the dialog offers it
        assert app.recent_models.load() == [str(gguf_path)]
        await pilot.press("ctrl+p")
        await pilot.press(*"open model")
        await app.workers.wait_for_complete()
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        recent = app.screen.query_one("#open-model-recent", OptionList)
        assert recent.get_option_at_index(0).id == str(gguf_path)
        await pilot.press("escape")


@pytest.mark.parametrize("kind", ["missing", "truncated", "directory"])
async def test_a_failed_open_keeps_the_model_and_prompt(tmp_path, gguf_path, kind):
    if kind == "missing":
        path = tmp_path / "nope.gguf"
    elif kind == "truncated":
        path = tmp_path / "cut.gguf"
        data = gguf_path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path = tmp_path  # a directory without config.json
    app = make(tmp_path, chapter="sampling", prompt="Keep me")
    async with app.run_test(size=(100, 30)) as pilot:
        await app.wait_until_settled()
        model = app.session.model
        await open_through_palette(pilot, str(path))
        assert app.session.model is model
        assert app.session.model_state.ready
        assert app.session.prompt == "Keep me"
        assert app.screen.query_one("#prompt").value == "Keep me"  # type: ignore[attr-defined]
        message = app.last_open_error
        assert message.startswith("Could not open") and "\n" not in message
        assert app.recent_models.load() == []
        assert app.model_opening == ""


async def test_progress_shows_while_loading_and_keys_still_work(tmp_path, gguf_path):
    app = make(tmp_path, chapter="tokenization")
    release = threading.Event()
    reported = threading.Event()
    real_open = app.session.open_model

    def slow_open(path, progress=None):  # noqa: ANN001, ANN202
        progress(0.5)
        reported.set()
        release.wait(10)
        return real_open(path, progress)

    app.session.open_model = slow_open  # type: ignore[method-assign]
    async with app.run_test(size=(100, 30)) as pilot:
        await app.wait_until_settled()
        app.open_model(str(gguf_path))
        for _ in range(100):  # the worker's report reaches the UI thread (never block it)
            await pilot.pause(0.05)
            if reported.is_set() and "50%" in app.screen.query_one(ChapterHeader).status:
                break
        assert "opening tiny-smol.gguf… 50%" in app.screen.query_one(ChapterHeader).status
        # the UI answers while the model loads: edit the prompt
        await pilot.press("slash", "end", *" more", "escape")
        assert app.session.prompt == SEED + " more"
        # a second open is refused while one runs
        app.open_model(str(gguf_path))
        release.set()
        await app.wait_until_settled()
        await pilot.pause()
        assert app.session.model.name == "tiny-smol"
        assert app.screen.query_one(ChapterHeader).status == ""
        assert app.session.prompt == SEED + " more"


def test_snapshot_open_model_dialog_80x24(snap_compare, tmp_path):
    store = RecentModels(tmp_path / "recent.json")
    for p in ("/models/Llama-3.2-1B-Instruct-Q8_0.gguf", "/models/Qwen2.5-0.5B", "/m/x.gguf")[::-1]:
        store.add(p)
    app = LLMAnatomyApp(session=current_session(), load_resources=False, recent=store)

    async def open_dialog(pilot) -> None:  # noqa: ANN001
        await settle(pilot)
        pilot.app.action_open_model()
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=open_dialog)
