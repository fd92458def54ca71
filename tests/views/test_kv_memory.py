"""The KV-cache memory calculator: published configs, the formula, the block formats."""

from __future__ import annotations

from fractions import Fraction

import pytest

from llm_anatomy_tui.core.generation import kv_cache_bytes, kv_cache_bytes_for
from llm_anatomy_tui.core.quant_kv import kv_bytes_per_token
from llm_anatomy_tui.views.kv_memory import (
    GPT2_SMALL,
    LLAMA_2_7B,
    LLAMA_3_8B,
    LLAMA_3_70B,
    LLAMA_31_8B,
    MISTRAL_7B,
    PRESETS,
    KVInputError,
    arch_from_config,
    bytes_per_token,
    format_bytes,
    format_gib,
    formula_text,
    kv_bytes,
    parse_field,
    presets_with,
    with_dtype,
    with_field,
)


def test_published_architectures():
    # 2 · L · H_kv · d_head · T · bytes, by hand
    assert kv_bytes(LLAMA_3_8B) == 2 * 32 * 8 * 128 * 8192 * 2 == 2**30
    assert kv_bytes(LLAMA_31_8B) == 2 * 32 * 8 * 128 * 131072 * 2 == 16 * 2**30
    assert kv_bytes(LLAMA_3_70B) == 2 * 80 * 8 * 128 * 8192 * 2
    assert kv_bytes(LLAMA_2_7B) == 2 * 32 * 32 * 128 * 4096 * 2
    assert kv_bytes(MISTRAL_7B) == 2 * 32 * 8 * 128 * 32768 * 2
    assert kv_bytes(GPT2_SMALL) == 2 * 12 * 12 * 64 * 1024 * 4
    assert bytes_per_token(LLAMA_3_8B) == 131072  # 128 KiB
    assert LLAMA_3_8B.gqa_group == 4 and LLAMA_3_70B.gqa_group == 8
    assert GPT2_SMALL.gqa_group == 1 and LLAMA_2_7B.gqa_group == 1


def test_agrees_with_the_generation_modules_formula():
    for arch in PRESETS:
        if arch.dtype in ("fp32", "fp16", "bf16"):
            b = {"fp32": 4, "fp16": 2, "bf16": 2}[arch.dtype]
            assert kv_bytes(arch) == kv_cache_bytes(
                layers=arch.layers, kv_heads=arch.kv_heads, head_dim=arch.head_dim,
                positions=arch.context, bytes_per_value=b,
            )  # fmt: skip


def test_anatomy_mini_preset_is_its_float32_cache(tiny_config):
    arch = arch_from_config(tiny_config)
    assert arch.dtype == "fp32"
    for t in (1, 17, tiny_config.max_position_embeddings):
        assert kv_bytes(arch, t) == kv_cache_bytes_for(tiny_config, t)
    assert presets_with(tiny_config)[0] == arch
    assert presets_with(None) == PRESETS


def test_block_formats_match_the_quantized_cache(tiny_config):
    arch = arch_from_config(tiny_config)
    assert with_dtype(arch, "q8_0").bytes_per_value * arch.head_dim == (
        arch.head_dim + 2 * (arch.head_dim // min(32, arch.head_dim))
    )
    for dtype, bits in (("q8_0", 8), ("q4_0", 4)):
        q = with_dtype(arch, dtype)
        assert kv_bytes(q, 1) == kv_bytes_per_token(tiny_config, bits)
        assert kv_bytes(q, 10) == 10 * kv_bytes_per_token(tiny_config, bits)
    # with a head dim that is a multiple of 32: 34 and 18 bytes per 32 numbers
    assert with_dtype(LLAMA_3_8B, "q8_0").bytes_per_value == Fraction(34, 32)
    assert with_dtype(LLAMA_3_8B, "q4_0").bytes_per_value == Fraction(18, 32)
    assert kv_bytes(with_dtype(LLAMA_3_8B, "q4_0")) == 2 * 32 * 8 * 8192 * (128 // 32) * 18


def test_formula_text_and_units():
    assert formula_text(LLAMA_3_8B) == "2 · 32 · 8 · 128 · 8,192 · 2"
    assert formula_text(with_dtype(LLAMA_3_8B, "q8_0"), 100) == "2 · 32 · 8 · 128 · 100 · 1.0625"
    assert format_bytes(kv_bytes(LLAMA_3_8B)) == "1.07 GB"
    assert format_gib(kv_bytes(LLAMA_3_8B)) == "1.00 GiB"
    assert format_bytes(999) == "999 B"


def test_fields_parse_or_say_why():
    assert parse_field("context", "128k") == 131072
    assert parse_field("layers", " 32 ") == 32
    with pytest.raises(KVInputError, match="layers must be between 1 and 1,000; got 0"):
        parse_field("layers", "0")
    with pytest.raises(KVInputError, match="not a whole number"):
        parse_field("head_dim", "12.5")
    with pytest.raises(KVInputError, match="type a whole number"):
        parse_field("kv_heads", "")
    with pytest.raises(KVInputError, match="context must be between"):
        parse_field("context", "99999999999")
    custom = with_field(LLAMA_3_8B, "context", "1024")
    assert custom.name == "custom" and kv_bytes(custom) == kv_bytes(LLAMA_3_8B) // 8
    with pytest.raises(KVInputError):
        with_dtype(LLAMA_3_8B, "fp64")
