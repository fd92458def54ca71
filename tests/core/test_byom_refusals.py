"""Everything the loader does not implement is refused with one line naming the field or
the architecture — never loaded and computed differently in silence."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from byom_helpers import family_model, train_tokenizer, write_gguf, write_hf_dir

from llm_anatomy_tui.core.formats import load_model, open_model
from llm_anatomy_tui.core.model import ModelLoadError
from llm_anatomy_tui.core.session import Session


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(320)


@pytest.fixture
def llama_dir(tmp_path, tokenizer):
    model = family_model("llama3", tokenizer.get_vocab_size())
    return write_hf_dir(model, tmp_path / "m", tokenizer=tokenizer)


def edit(path, **changes):
    cfg = json.loads((path / "config.json").read_text())
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (path / "config.json").write_text(json.dumps(cfg))


CONFIG_REFUSALS = {
    "mixtral (MoE)": ({"model_type": "mixtral", "num_local_experts": 8}, "'mixtral': mixture-of-experts"),
    "qwen2_moe": ({"model_type": "qwen2_moe"}, "'qwen2_moe': mixture-of-experts"),
    "experts field": ({"num_experts_per_tok": 2}, "num_experts_per_tok: mixture-of-experts"),
    "yarn 4.x": ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope_scaling type 'yarn'"),
    "yarn 5.x": ({"rope_scaling": None, "rope_parameters": {"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0}}, "rope_parameters type 'yarn'"),
    "linear (old spelling)": ({"rope_scaling": {"type": "linear", "factor": 2.0}}, "rope_scaling type 'linear'"),
    "dynamic": ({"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}, "type 'dynamic'"),
    "llama3 fields missing": ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "rope_scaling (llama3) lacks"),
    "per-layer rope": ({"rope_parameters": {"full_attention": {"rope_theta": 1e4}, "sliding_attention": {"rope_theta": 1e4}}}, "one block per layer type"),
    "attention sinks": ({"model_type": "gpt_oss"}, "attention sinks"),
    "sink field": ({"attention_sink_size": 4}, "attention sinks"),
    "gpt2": ({"model_type": "gpt2"}, "'gpt2': GPT-2-style"),
    "gpt_neox": ({"model_type": "gpt_neox"}, "GPT-2-style"),
    "phi3": ({"model_type": "phi3"}, "'phi3': Phi-style"),
    "phi": ({"model_type": "phi"}, "Phi-style"),
    "unknown": ({"model_type": "gemma3"}, "unsupported architecture 'gemma3'"),
    "mistral window": ({"model_type": "mistral", "sliding_window": 32}, "sliding_window=32"),
    "qwen2 window": ({"model_type": "qwen2", "use_sliding_window": True, "sliding_window": 16}, "sliding_window=16"),
    "layer_types window": ({"model_type": "qwen3", "layer_types": ["full_attention", "sliding_attention"], "sliding_window": 8}, "sliding_window=8"),
    "llama o_proj bias": ({"attention_bias": True}, "attention_bias=true"),
    "mlp bias": ({"mlp_bias": True}, "mlp_bias"),
    "gelu": ({"hidden_act": "gelu"}, "hidden_act='gelu'"),
    "partial rope": ({"partial_rotary_factor": 0.5}, "partial_rotary_factor"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CONFIG_REFUSALS))
def test_config_refusals_name_the_field_or_architecture(case, llama_dir):
    changes, expected = CONFIG_REFUSALS[case]
    edit(llama_dir, **changes)
    with pytest.raises(ModelLoadError) as info:
        load_model(llama_dir)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_a_window_that_covers_the_context_is_full_attention(llama_dir):
    """Mistral 7B v0.1's window of 4,096 at a 4,096 context hides nothing: accepted."""
    edit(llama_dir, model_type="mistral", sliding_window=64)
    assert load_model(llama_dir).config.model_type == "mistral"


# -- GGUF ------------------------------------------------------------------------------------


def gguf_case(tmp_path, tokenizer, **kw):
    model = family_model("smollm", tokenizer.get_vocab_size())
    return write_gguf(model, tmp_path / "m.gguf", tokenizer, **kw)


def test_gguf_of_an_unsupported_architecture(tmp_path, tokenizer):
    path = gguf_case(tmp_path, tokenizer, arch="phi3")
    with pytest.raises(ModelLoadError, match="unsupported GGUF architecture 'phi3'"):
        load_model(path)


def test_gguf_moe(tmp_path, tokenizer):
    path = gguf_case(tmp_path, tokenizer, extra=lambda w: w.add_expert_count(8))
    with pytest.raises(ModelLoadError, match=r"llama\.expert_count: mixture-of-experts"):
        load_model(path)


def test_gguf_yarn(tmp_path, tokenizer):
    from gguf import RopeScalingType

    path = gguf_case(
        tmp_path, tokenizer, extra=lambda w: w.add_rope_scaling_type(RopeScalingType.YARN)
    )
    with pytest.raises(ModelLoadError, match=r"rope\.scaling\.type='yarn'"):
        load_model(path)


def test_gguf_sliding_window(tmp_path, tokenizer):
    path = gguf_case(tmp_path, tokenizer, extra=lambda w: w.add_sliding_window(16))
    with pytest.raises(ModelLoadError, match="sliding_window=16"):
        load_model(path)


def test_gguf_partial_rope(tmp_path, tokenizer):
    path = gguf_case(tmp_path, tokenizer, rope_dim=8)
    with pytest.raises(ModelLoadError, match=r"rope\.dimension_count=8: partial RoPE"):
        load_model(path)


def test_truncated_gguf(tmp_path, tokenizer):
    path = gguf_case(tmp_path, tokenizer)
    for keep in (10, 2000, path.stat().st_size - 100):
        cut = tmp_path / f"cut{keep}.gguf"
        cut.write_bytes(path.read_bytes()[:keep])
        with pytest.raises(ModelLoadError) as info:
            load_model(cut)
        assert "cut" in str(info.value) and "\n" not in str(info.value)


def test_not_a_gguf(tmp_path):
    path = tmp_path / "x.gguf"
    path.write_bytes(b"hello, world" * 10)
    with pytest.raises(ModelLoadError, match="not a readable GGUF"):
        load_model(path)


def _retype_first_matrix(path, new_type: int) -> None:
    """Overwrite the type id of blk.0.attn_q.weight in the tensor-info table (name,
    then u32 n_dims, n_dims x u64 dims, u32 type, u64 offset)."""
    data = bytearray(path.read_bytes())
    name = b"blk.0.attn_q.weight"
    pos = data.index(name) + len(name)
    (n_dims,) = struct.unpack_from("<I", data, pos)
    struct.pack_into("<I", data, pos + 4 + 8 * n_dims, new_type)
    path.write_bytes(bytes(data))


def test_unknown_tensor_type(tmp_path, tokenizer):
    path = gguf_case(tmp_path, tokenizer)
    _retype_first_matrix(path, 200)
    with pytest.raises(ModelLoadError, match="a tensor type this gguf package does not know"):
        load_model(path)


def test_tensor_type_gguf_cannot_dequantize(tmp_path, tokenizer):
    """An integer tensor (I8) where weights belong: gguf has no dequantizer for it."""
    path = gguf_case(
        tmp_path, tokenizer,
        hook=lambda name, a: a.astype(np.int8) if name.endswith("0.self_attn.q_proj.weight") else a,
    )  # fmt: skip
    with pytest.raises(ModelLoadError, match="blk.0.attn_q.weight has type I8, which gguf cannot"):
        load_model(path)


def test_gguf_vocabularies_not_rebuilt_are_refused_by_name(tmp_path, tokenizer):
    path = gguf_case(tmp_path, tokenizer, tok_model="bert")
    with pytest.raises(ModelLoadError, match="unsupported tokenizer.ggml.model 'bert'"):
        load_model(path)


def test_a_sentencepiece_vocabulary_without_scores(tmp_path, tokenizer):
    path = gguf_case(tmp_path, tokenizer, tok_model="llama")
    with pytest.raises(ModelLoadError, match="no tokenizer.ggml.scores"):
        load_model(path)


def test_unknown_pre_tokenizer(tmp_path, tokenizer):
    path = gguf_case(tmp_path, tokenizer, pre="mystery")
    with pytest.raises(ModelLoadError, match="tokenizer.ggml.pre 'mystery'"):
        load_model(path)


# -- memory ----------------------------------------------------------------------------------


def test_a_model_too_big_for_memory_is_refused_with_the_numbers(tmp_path, tokenizer, monkeypatch):
    path = gguf_case(tmp_path, tokenizer)
    monkeypatch.setenv("LLM_ANATOMY_MEMORY_LIMIT_MB", "0.1")
    with pytest.raises(ModelLoadError) as info:
        open_model(path)
    message = str(info.value)
    assert "does not fit in memory" in message and "0 MB are available" in message
    assert "MB float32 weights" in message


def test_a_failed_open_keeps_the_current_model_and_prompt(tmp_path, tokenizer, tiny_model):
    s = Session("my prompt", model_dir=tmp_path / "none")
    s.model = tiny_model
    bad = gguf_case(tmp_path, tokenizer, arch="phi3")
    state = s.open_model(bad)
    assert not state.ready and "phi3" in state.message and "\n" not in state.message
    assert s.model is tiny_model and s.prompt == "my prompt"
    good = tmp_path / "good.gguf"
    write_gguf(family_model("smollm", tokenizer.get_vocab_size()), good, tokenizer)
    assert s.open_model(good).ready
    assert s.model.source.path == good and s.model_dir == good
    assert s.encoding("model") is s.model.tokenizer
    assert np.isfinite(s.model.embed).all()
