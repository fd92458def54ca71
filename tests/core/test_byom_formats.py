"""Opening other people's models: every family, as a Hugging Face directory (transformers
4.x and 5.x spellings, one file or shards) and as a GGUF written by ``gguf``'s own writer
(F32, Q8_0, Q4_0, with llama.cpp's permuted q/k rows) — each against the independent
loop-based reference in ``reference.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import reference as ref
from byom_helpers import (
    FAMILIES,
    family_model,
    hf_config,
    llama_cpp_permute,
    quantized_copy,
    train_tokenizer,
    write_gguf,
    write_hf_dir,
)

from llm_anatomy_tui.core.config import MAX_CONTEXT
from llm_anatomy_tui.core.formats import load_model, open_model
from llm_anatomy_tui.core.formats.gguf_file import unpermute_rows
from llm_anatomy_tui.core.model import KVCache, decode_token, forward

TOKENS = [5, 77, 3, 140, 9, 260, 31, 2]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(320)


@pytest.fixture(scope="module")
def vocab(tokenizer) -> int:
    return tokenizer.get_vocab_size()


def as_lists(model) -> dict[str, list]:
    return {k: v.astype(np.float64).tolist() for k, v in model.tensors().items()}


def close32(got, want) -> None:
    want = np.asarray(want, dtype=np.float64)
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=0, atol=3e-5 * scale)


# -- the forward pass of every family against the reference ---------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_matches_the_reference_full_and_cached(family, vocab):
    """Qwen2's biases, Qwen3's q/k norms, Llama 3's scaled RoPE and explicit head_dim,
    untied heads: the fast core (prefill and the lean decode step) equals the loops."""
    model = family_model(family, vocab, seed=3)
    want = ref.forward(as_lists(model), hf_config(model, "4.x"), TOKENS)
    close32(forward(model, TOKENS), want)
    cache = KVCache(model.config)
    rows = [forward(model, TOKENS[:3], cache)[-1]]
    rows += [decode_token(model, t, cache) for t in TOKENS[3:]]
    close32(np.stack(rows), want[2:])


def test_llama3_scaling_changes_the_numbers(vocab):
    """The scaling is not a no-op here (else the test above proves nothing about it)."""
    model = family_model("llama3", vocab, seed=3)
    plain = dict(hf_config(model, "4.x"), rope_scaling=None)
    scaled = ref.forward(as_lists(model), hf_config(model, "4.x"), TOKENS, logits_at="last")
    unscaled = ref.forward(as_lists(model), plain, TOKENS, logits_at="last")
    assert np.abs(np.array(scaled) - np.array(unscaled)).max() > 1e-3


# -- Hugging Face directories ------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["4.x", "5.x"])
@pytest.mark.parametrize("shards", [1, 3])
@pytest.mark.parametrize("family", FAMILIES)
def test_hf_directory_loads_every_spelling(family, spelling, shards, tmp_path, vocab, tokenizer):
    model = family_model(family, vocab, seed=5)
    path = write_hf_dir(model, tmp_path / family, spelling=spelling, shards=shards,
                        tokenizer=tokenizer)  # fmt: skip
    written = json.loads((path / "config.json").read_text())
    loaded = load_model(path)
    assert loaded.config.model_type == model.config.model_type
    assert loaded.config.rope_theta == model.config.rope_theta
    assert loaded.config.rope_scaling == model.config.rope_scaling
    assert set(loaded.tensors()) == set(model.tensors())
    for key, arr in model.tensors().items():
        np.testing.assert_array_equal(loaded.tensors()[key], arr)
    want = ref.forward(as_lists(model), written, TOKENS, logits_at="last")
    close32(forward(loaded, TOKENS)[-1:], want)
    assert loaded.source.format == "safetensors"
    assert set(loaded.source.tensor_types.values()) == {"F32"}
    assert loaded.tokenizer is not None and loaded.tokenizer.chat_template == "{{ messages }}"


def test_context_is_cut_and_said(tmp_path, vocab):
    model = family_model("llama3", vocab)
    path = write_hf_dir(model, tmp_path / "m")
    cfg = json.loads((path / "config.json").read_text())
    cfg["max_position_embeddings"] = 131072
    (path / "config.json").write_text(json.dumps(cfg))
    loaded = load_model(path)
    assert loaded.config.max_position_embeddings == MAX_CONTEXT
    assert loaded.config.trained_context == 131072
    assert "131,072" in loaded.source.notes[0]


# -- GGUF ---------------------------------------------------------------------------------------


def test_unpermute_undoes_llama_cpp_permute():
    rng = np.random.default_rng(0)
    for n_head, rows in ((4, 64), (2, 32), (1, 8)):
        w = rng.normal(size=(rows, 5))
        np.testing.assert_array_equal(unpermute_rows(llama_cpp_permute(w, n_head), n_head), w)
        assert not np.array_equal(llama_cpp_permute(w, n_head), w)


@pytest.mark.parametrize("family", FAMILIES)
def test_f32_gguf_gives_the_hf_checkpoints_logits(family, tmp_path, vocab, tokenizer):
    model = family_model(family, vocab, seed=7)
    hf = load_model(write_hf_dir(model, tmp_path / "hf", tokenizer=tokenizer))
    gg = load_model(write_gguf(model, tmp_path / "m.gguf", tokenizer, qtype="F32"))
    assert gg.config.model_type in (model.config.model_type, "llama")
    for key, arr in hf.tensors().items():
        np.testing.assert_array_equal(gg.tensors()[key], arr, err_msg=key)
    np.testing.assert_allclose(forward(gg, TOKENS), forward(hf, TOKENS), rtol=0, atol=1e-5)
    assert gg.source.format == "gguf"
    assert set(gg.source.tensor_types.values()) == {"F32"}


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0"])
@pytest.mark.parametrize("family", ["llama2", "llama3", "qwen2", "qwen3"])
def test_quantized_gguf_equals_the_checkpoint_quantized_by_gguf(family, qtype, tmp_path, vocab,
                                                                tokenizer):  # fmt: skip
    """Matrices stored in Q8_0/Q4_0 (q/k permuted first, as llama.cpp does): the loaded
    model computes what the HF checkpoint computes with gguf's own quantize→dequantize
    round trip applied to each matrix — checked against the reference loops."""
    model = family_model(family, vocab, seed=11)
    gg = load_model(write_gguf(model, tmp_path / "m.gguf", tokenizer, qtype=qtype))
    expected = quantized_copy(model, qtype)
    for key, arr in expected.tensors().items():
        np.testing.assert_allclose(gg.tensors()[key], arr, rtol=0, atol=1e-6, err_msg=key)
    want = ref.forward(as_lists(expected), hf_config(model, "4.x"), TOKENS, logits_at="last")
    close32(forward(gg, TOKENS)[-1:], want)
    types = gg.source.tensor_types
    assert types["model.layers.0.self_attn.q_proj.weight"] == qtype
    assert types["model.norm.weight"] == "F32"
    assert qtype in gg.source.quantization


def test_gguf_metadata_becomes_the_config_and_the_model_card(tmp_path, vocab, tokenizer):
    model = family_model("smollm", vocab)
    gg = load_model(write_gguf(model, tmp_path / "tiny-smol.gguf", tokenizer))
    cfg, want = gg.config, model.config
    for field in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                  "num_attention_heads", "num_key_value_heads", "max_position_embeddings",
                  "rope_theta", "tie_word_embeddings", "dim_head"):  # fmt: skip
        assert getattr(cfg, field) == getattr(want, field), field
    assert gg.source.display_name == "tiny-smol"
    assert gg.source.architecture == "Llama"
    assert gg.source.chat_template.startswith("{% for m in messages")
    assert gg.tokenizer.bos_token == gg.config.bos_token_id
    assert gg.tokenizer.eot_token == gg.config.eos_token_id


def test_open_model_estimates_memory_first(tmp_path, vocab, tokenizer, monkeypatch):
    from llm_anatomy_tui.core.formats import estimate_memory

    model = family_model("smollm", vocab)
    path = write_gguf(model, tmp_path / "m.gguf", tokenizer)
    est = estimate_memory(model.config, path)
    assert est.weights == model.nbytes
    assert est.kv_cache == 2 * 2 * 16 * 64 * 4  # (k, v) x layers x kv width x context x 4 B
    assert open_model(path).config == load_model(path).config


@pytest.mark.parametrize("kind", ["gguf", "dir", "shards"])
def test_loading_reports_progress_up_to_one(kind, tmp_path, vocab, tokenizer):
    model = family_model("qwen3", vocab)
    if kind == "gguf":
        path = write_gguf(model, tmp_path / "m.gguf", tokenizer)
    else:
        path = write_hf_dir(model, tmp_path / "m", shards=3 if kind == "shards" else 1,
                            tokenizer=tokenizer)  # fmt: skip
    seen: list[float] = []
    open_model(path, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    assert len(seen) >= (3 if kind != "dir" else 2)


@pytest.mark.parametrize("family", ["llama3", "qwen2", "smollm"])
def test_large_models_are_built_column_major_with_the_same_numbers(family, vocab, monkeypatch):
    """Above the size threshold the tall matrices are stored [in, out] from the start (the
    layout decoding streams fastest): the HF-named views, every product and the decode
    steps are unchanged."""
    from llm_anatomy_tui.core import weights

    small = family_model(family, vocab, seed=13)
    monkeypatch.setattr(weights, "DECODE_LAYOUT_MIN_BYTES", 0)
    large = small.with_tensors({})
    assert large.layers[0].wqkv.T.flags.c_contiguous  # stored [in, out]
    assert large.layers[0].w_down.flags.c_contiguous  # wider than tall: kept [out, in]
    for key, arr in small.tensors().items():
        np.testing.assert_array_equal(large.tensors()[key], arr)
    want = ref.forward(as_lists(small), hf_config(small, "4.x"), TOKENS)
    close32(forward(large, TOKENS), want)
    cache = KVCache(large.config)
    rows = [forward(large, TOKENS[:2], cache)[-1]]
    rows += [decode_token(large, t, cache) for t in TOKENS[2:]]
    close32(np.stack(rows), want[1:])
