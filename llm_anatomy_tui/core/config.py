"""Model configuration, with Hugging Face ``LlamaConfig`` field names.

A model directory holds ``config.json`` in the same shape ``transformers`` writes for a
``LlamaForCausalLM``; this dataclass reads and writes that file. Fields we cannot honour
(rope scaling, biases, another activation) are refused with a message naming the field,
rather than silently computing something different from ``transformers``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """config.json is missing a field, has a bad value, or asks for something unsupported."""


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int
    """Rows of the token-embedding table (and columns of the logits)."""
    hidden_size: int
    """d_model: width of the residual stream, i.e. of every token's vector."""
    intermediate_size: int
    """Hidden width of the SwiGLU feed-forward network."""
    num_hidden_layers: int
    """Number of decoder blocks."""
    num_attention_heads: int
    """Query heads per attention layer."""
    num_key_value_heads: int
    """K/V heads per layer; each serves num_attention_heads // num_key_value_heads query heads (GQA)."""
    max_position_embeddings: int
    """Context window in tokens."""
    rms_norm_eps: float = 1e-5
    """Added to the mean square in RMSNorm so a zero vector does not divide by zero."""
    rope_theta: float = 10000.0
    """Base of the RoPE frequencies: pair i rotates by position * theta^(-2i/head_dim)."""
    tie_word_embeddings: bool = True
    """True: the output head reuses the embedding matrix (no separate lm_head.weight)."""
    head_dim: int | None = None
    """Width of one head; None means hidden_size // num_attention_heads (the HF default)."""
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    torch_dtype: str = "float32"
    """dtype the weights were saved in (informational; we always compute in float32)."""

    def __post_init__(self) -> None:
        from .limits import config_problem

        problem = config_problem(vars(self))  # before anything sized by these is built
        if problem:
            raise ConfigError(problem)
        for name in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "max_position_embeddings",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"config field {name} must be a positive integer, got {value!r}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}) unless head_dim is given"
            )
        if self.dim_head % 2:
            raise ConfigError(f"head_dim must be even for RoPE, got {self.dim_head}")
        if not self.rms_norm_eps > 0:
            raise ConfigError(f"config field rms_norm_eps must be > 0, got {self.rms_norm_eps!r}")
        if not self.rope_theta > 0:
            raise ConfigError(f"config field rope_theta must be > 0, got {self.rope_theta!r}")

    # -- derived sizes ----------------------------------------------------------------
    @property
    def dim_head(self) -> int:
        """Width of one attention head."""
        return (
            self.head_dim
            if self.head_dim is not None
            else self.hidden_size // self.num_attention_heads
        )

    @property
    def group_size(self) -> int:
        """Query heads that share one K/V head."""
        return self.num_attention_heads // self.num_key_value_heads

    @property
    def q_width(self) -> int:
        return self.num_attention_heads * self.dim_head

    @property
    def kv_width(self) -> int:
        return self.num_key_value_heads * self.dim_head

    def parameter_count(self) -> int:
        """Number of parameters, counting a tied embedding/head once."""
        d, f, v = self.hidden_size, self.intermediate_size, self.vocab_size
        per_layer = d * self.q_width + 2 * d * self.kv_width + self.q_width * d + 3 * d * f + 2 * d
        head = 0 if self.tie_word_embeddings else v * d
        return v * d + self.num_hidden_layers * per_layer + d + head

    # -- (de)serialisation ------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LlamaConfig:
        _reject_unsupported(raw)
        known = {f.name for f in fields(cls)}
        missing = sorted(name for name in _REQUIRED if name not in raw)
        if missing:
            raise ConfigError(f"config.json is missing field {missing[0]}")
        kwargs = {k: v for k, v in raw.items() if k in known}
        if kwargs.get("num_key_value_heads") is None:
            kwargs["num_key_value_heads"] = raw.get("num_attention_heads")
        if isinstance(kwargs.get("eos_token_id"), list):
            kwargs["eos_token_id"] = kwargs["eos_token_id"][0] if kwargs["eos_token_id"] else None
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a field of the wrong type
            raise ConfigError(f"config.json: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> LlamaConfig:
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"no config.json at {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} must hold a JSON object")
        return cls.from_dict(raw)

    def to_dict(self) -> dict[str, Any]:
        """The config as ``transformers`` would write it for a LlamaForCausalLM."""
        out: dict[str, Any] = {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_act": "silu",
            "attention_bias": False,
            "mlp_bias": False,
            "rope_scaling": None,
            "attention_dropout": 0.0,
            "initializer_range": 0.02,
            "pretraining_tp": 1,
            "use_cache": True,
        }
        for key, value in asdict(self).items():
            if key == "head_dim" and value is None:
                value = self.dim_head
            out[key] = value
        return out

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


_REQUIRED = {
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "max_position_embeddings",
}


def _reject_unsupported(raw: dict[str, Any]) -> None:
    """Refuse configs whose math we do not implement, naming the field."""
    model_type = raw.get("model_type", "llama")
    if model_type not in ("llama", "mistral"):
        raise ConfigError(f"unsupported model_type {model_type!r} (only Llama-architecture models)")
    if raw.get("rope_scaling"):
        raise ConfigError("unsupported config field rope_scaling (only plain RoPE is implemented)")
    act = raw.get("hidden_act", "silu")
    if act != "silu":
        raise ConfigError(f"unsupported config field hidden_act={act!r} (only silu/SwiGLU)")
    for flag in ("attention_bias", "mlp_bias"):
        if raw.get(flag):
            raise ConfigError(f"unsupported config field {flag}=true (bias-free projections only)")
    if raw.get("sliding_window") and raw.get("use_sliding_window", model_type == "mistral"):
        raise ConfigError("unsupported config field sliding_window (full causal attention only)")
    if raw.get("pretraining_tp", 1) not in (1, None):
        raise ConfigError("unsupported config field pretraining_tp (must be 1)")
