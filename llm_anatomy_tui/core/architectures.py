"""The shapes of real decoder models, from their published ``config.json`` files.

Each row copies the fields of the checkpoint's Hugging Face ``config.json``:
``num_hidden_layers``, ``hidden_size``, ``num_attention_heads``, ``num_key_value_heads``,
``intermediate_size``, ``max_position_embeddings``, ``rope_theta`` (and ``rope_scaling``
where present). Where a config omits ``rope_theta`` (Llama 2, TinyLlama) transformers'
default 10,000 applies. Sources (the file at each repository's main branch):

- https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json
- https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json
- https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json
  (rope_scaling: llama3, factor 8, low 1, high 4, original 8192)
- https://huggingface.co/meta-llama/Llama-3.1-70B/blob/main/config.json (same scaling)
- https://huggingface.co/meta-llama/Llama-3.2-1B/blob/main/config.json
  (rope_scaling: llama3, factor 32, low 1, high 4, original 8192; head_dim 64)
- https://huggingface.co/mistralai/Mistral-7B-v0.1/blob/main/config.json (sliding_window 4096)
- https://huggingface.co/Qwen/Qwen2-7B-Instruct/blob/main/config.json
- https://huggingface.co/Qwen/Qwen3-8B/blob/main/config.json (head_dim 128)
- https://huggingface.co/TinyLlama/TinyLlama-1.1B-Chat-v1.0/blob/main/config.json

>>> LLAMA_3_8B.group, LLAMA_3_8B.head_dim
(4, 128)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Architecture:
    """One model's shape, in config.json terms."""

    name: str
    layers: int
    d_model: int
    heads: int
    kv_heads: int
    ffn: int
    context: int
    rope_theta: float
    vocab: int
    tied: bool = False
    """The output head reuses the embedding matrix."""
    rope_scaling: str = ""
    """A short note on RoPE scaling ("llama3 ×8"), or ""."""
    head_dim_override: int | None = None

    @property
    def head_dim(self) -> int:
        return self.head_dim_override or self.d_model // self.heads

    def parameter_count(self) -> int:
        """Weights of a bias-free Llama block stack with these shapes (norms included)."""
        d, hd = self.d_model, self.head_dim
        per_layer = 2 * d * self.heads * hd + 2 * d * self.kv_heads * hd + 3 * d * self.ffn + 2 * d
        head = 0 if self.tied else self.vocab * d
        return self.vocab * d + self.layers * per_layer + d + head

    @property
    def group(self) -> int:
        """Query heads per K/V head."""
        return self.heads // self.kv_heads


LLAMA_2_7B = Architecture("Llama-2-7B", 32, 4096, 32, 32, 11008, 4096, 10000.0, 32000)
LLAMA_3_8B = Architecture("Llama-3-8B", 32, 4096, 32, 8, 14336, 8192, 500000.0, 128256)
LLAMA_31_8B = Architecture(
    "Llama-3.1-8B", 32, 4096, 32, 8, 14336, 131072, 500000.0, 128256, False, "llama3 ×8"
)
LLAMA_31_70B = Architecture(
    "Llama-3.1-70B", 80, 8192, 64, 8, 28672, 131072, 500000.0, 128256, False, "llama3 ×8"
)
LLAMA_32_1B = Architecture(
    "Llama-3.2-1B", 16, 2048, 32, 8, 8192, 131072, 500000.0, 128256, True, "llama3 ×32", 64
)
MISTRAL_7B = Architecture("Mistral-7B-v0.1", 32, 4096, 32, 8, 14336, 32768, 10000.0, 32000)
QWEN2_7B = Architecture("Qwen2-7B-Instruct", 28, 3584, 28, 4, 18944, 32768, 1000000.0, 152064)
QWEN3_8B = Architecture(
    "Qwen3-8B", 36, 4096, 32, 8, 12288, 40960, 1000000.0, 151936, False, "", 128
)
TINYLLAMA = Architecture("TinyLlama-1.1B", 22, 2048, 32, 4, 5632, 2048, 10000.0, 32000)

REAL_MODELS: tuple[Architecture, ...] = (
    TINYLLAMA,
    LLAMA_32_1B,
    LLAMA_2_7B,
    LLAMA_3_8B,
    LLAMA_31_8B,
    MISTRAL_7B,
    QWEN2_7B,
    QWEN3_8B,
    LLAMA_31_70B,
)
"""Published architectures, smallest first."""


def from_config(config: Any, name: str) -> Architecture:
    """The loaded model's own row, read from its config."""
    from .rope_inspect import rope_scaling_of

    scaling = rope_scaling_of(config)
    note = ""
    if scaling is not None:
        factor = scaling.get("factor")
        note = f"{scaling['rope_type']} ×{factor:g}" if factor else str(scaling["rope_type"])
    return Architecture(
        name,
        config.num_hidden_layers,
        config.hidden_size,
        config.num_attention_heads,
        config.num_key_value_heads,
        config.intermediate_size,
        config.max_position_embeddings,
        float(config.rope_theta),
        config.vocab_size,
        bool(config.tie_word_embeddings),
        note,
        config.dim_head,
    )


def scale_table(config: Any | None, name: str = "loaded model") -> tuple[Architecture, ...]:
    """The loaded model first (when there is one), then :data:`REAL_MODELS`."""
    own = (from_config(config, name),) if config is not None else ()
    return own + REAL_MODELS
