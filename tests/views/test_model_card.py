"""The model card reads every fact from the model and its file."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from byom_helpers import family_model, train_tokenizer, write_gguf, write_hf_dir  # noqa: E402

from llm_anatomy_tui.core.formats import default_model_dir, load_model  # noqa: E402
from llm_anatomy_tui.views.model_card import model_card  # noqa: E402


def test_a_quantized_gguf_card(tmp_path):
    tok = train_tokenizer(320)
    model = family_model("qwen2", tok.get_vocab_size())
    card = dict(
        model_card(load_model(write_gguf(model, tmp_path / "q.gguf", tok, qtype="Q8_0"))).rows
    )
    assert card["name"] == "q"
    assert card["architecture"] == (
        "Qwen2 · 2 layers · width 64 · 4 query heads sharing 2 K/V heads of 16 · q/k/v biases"
    )
    n = model.config.parameter_count()
    assert card["parameters"].startswith(f"{n:,} (") or card["parameters"].startswith(
        f"{n / 1e6:.1f} M"
    )
    assert card["file"].startswith("GGUF · stored as Q8_0 (")
    assert "F32 (" in card["file"] and "dequantized to float32" in card["file"]
    assert card["context"] == "64 tokens"
    assert card["tokenizer"].startswith("GGUF vocabulary (byte-level BPE, pre-tokenizer 'smollm'")
    assert "chat template" in card["tokenizer"]


def test_a_directory_with_a_long_context_and_llama3_scaling(tmp_path):
    import json

    tok = train_tokenizer(320)
    model = family_model("llama3", tok.get_vocab_size())
    path = write_hf_dir(model, tmp_path / "Llama-tiny", tokenizer=tok)
    cfg = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps(cfg | {"max_position_embeddings": 131072}))
    card = dict(model_card(load_model(path)).rows)
    assert "llama3 RoPE scaling ×8" in card["architecture"]
    assert "untied output head" in card["architecture"]
    assert card["file"] == f"safetensors · stored as F32 ({len(model.tensors())})"
    assert "(trained for 131,072;" in card["context"]


def test_the_shipped_model_card():
    card = model_card(load_model(default_model_dir()))
    rows = dict(card.rows)
    assert rows["name"] == "anatomy-mini"
    assert rows["tokenizer"] == "built-in anatomy-mini vocabulary (8,193 tokens)"
    assert card.text().splitlines()[0].startswith("name ")
