"""The scale table's rows against the published parameter counts of the same checkpoints.

The parameter count follows from every shape in a row (layers, width, heads, KV heads,
head width, FFN width, vocabulary, tied head), so one wrong field shows up as a wrong
count. The expected totals are the sizes the model cards / safetensors indexes publish
(``total_size / 2`` of the bf16 ``model.safetensors.index.json``); Qwen2 adds its q/k/v
biases and Qwen3 its per-head q/k RMSNorm gains, which a bias-free Llama block lacks.
"""

from __future__ import annotations

import pytest

from llm_anatomy_tui.core import architectures as arch

PUBLISHED = {
    "TinyLlama-1.1B": 1_100_048_384,
    "Llama-3.2-1B": 1_235_814_400,
    "Llama-2-7B": 6_738_415_616,
    "Llama-3-8B": 8_030_261_248,
    "Llama-3.1-8B": 8_030_261_248,
    "Mistral-7B-v0.1": 7_241_732_096,
    "Qwen2-7B-Instruct": 7_615_616_512,
    "Qwen3-8B": 8_190_735_360,
    "Llama-3.1-70B": 70_553_706_496,
}

EXTRAS = {
    # q/k/v biases: d + 2 * Hkv * D per layer
    "Qwen2-7B-Instruct": lambda a: a.layers * (a.heads * a.head_dim + 2 * a.kv_heads * a.head_dim),
    # q_norm and k_norm gains: 2 * D per layer
    "Qwen3-8B": lambda a: a.layers * 2 * a.head_dim,
}


@pytest.mark.parametrize("row", arch.REAL_MODELS, ids=lambda a: a.name)
def test_rows_give_the_published_parameter_counts(row: arch.Architecture) -> None:
    extra = EXTRAS.get(row.name, lambda a: 0)(row)
    assert row.parameter_count() + extra == PUBLISHED[row.name]


def test_loaded_model_is_the_first_row(tiny_config) -> None:  # noqa: ANN001
    table = arch.scale_table(tiny_config, "tiny")
    first = table[0]
    assert first.name == "tiny"
    assert (first.layers, first.d_model, first.heads, first.kv_heads, first.ffn, first.context) == (
        tiny_config.num_hidden_layers, tiny_config.hidden_size, tiny_config.num_attention_heads,
        tiny_config.num_key_value_heads, tiny_config.intermediate_size,
        tiny_config.max_position_embeddings,
    )  # fmt: skip
    assert first.rope_theta == tiny_config.rope_theta
    assert first.parameter_count() == tiny_config.parameter_count()
    assert table[1:] == arch.REAL_MODELS
    assert arch.scale_table(None) == arch.REAL_MODELS
