"""Model configuration, with Hugging Face ``LlamaConfig`` field names.

A model directory holds ``config.json`` as ``transformers`` writes it; this dataclass
reads it for the families the forward pass implements — Llama 2/3/3.x (``llama3`` RoPE
scaling, explicit ``head_dim``, untied embeddings), SmolLM/SmolLM2 (Llama), Mistral
(full attention only), Qwen2/2.5 (q/k/v biases) and Qwen3 (per-head q/k RMSNorm) — in
both the 4.x spelling (``rope_theta``/``rope_scaling`` at the top level, ``torch_dtype``)
and the 5.x one (``rope_parameters``, ``dtype``). Anything else — another architecture,
MoE, yarn or other RoPE scalings, attention sinks, a sliding window smaller than the
context used, biases we do not add — is refused with a message naming the field or the
architecture, rather than silently computing something different from ``transformers``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """config.json is missing a field, has a bad value, or asks for something unsupported."""


FAMILIES: dict[str, str] = {
    "llama": "Llama",
    "mistral": "Mistral",
    "qwen2": "Qwen2",
    "qwen3": "Qwen3",
}
"""model_type -> family name, for every architecture the forward pass implements."""


def _max_context() -> int:
    import os

    try:
        return max(16, int(os.environ.get("LLM_ANATOMY_MAX_CONTEXT", "2048")))
    except ValueError:
        return 2048


MAX_CONTEXT = _max_context()
"""Longest context the app uses, whatever the model was trained for (2,048 tokens, or
``$LLM_ANATOMY_MAX_CONTEXT``): RoPE tables, KV caches and the attention maps the chapters
keep ([layers, heads, T, T]) are sized for it. A model trained on more is cut here — the
numbers for every position inside are unchanged — and its model card says so."""


@dataclass(frozen=True)
class Llama3RopeScaling:
    """Llama 3.1's ``rope_type: llama3`` frequency scaling (transformers'
    ``_compute_llama3_parameters``): low frequencies are slowed by ``factor``, high ones
    kept, and the band between blended smoothly."""

    factor: float
    low_freq_factor: float
    high_freq_factor: float
    original_max_position_embeddings: int

    def apply(self, inv_freq):  # noqa: ANN001, ANN201  (numpy in, numpy out)
        """Scale base inverse frequencies [D/2] (any float array) the llama3 way."""
        import numpy as np

        inv = np.asarray(inv_freq, dtype=np.float64)
        old = float(self.original_max_position_embeddings)
        low_wavelen = old / self.low_freq_factor
        high_wavelen = old / self.high_freq_factor
        wavelen = 2 * math.pi / inv
        scaled = np.where(wavelen > low_wavelen, inv / self.factor, inv)
        smooth = (old / wavelen - self.low_freq_factor) / (
            self.high_freq_factor - self.low_freq_factor
        )
        smoothed = (1 - smooth) * scaled / self.factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        return np.where(medium, smoothed, scaled)

    def to_dict(self) -> dict[str, Any]:
        return {"rope_type": "llama3"} | asdict(self)


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
    model_type: str = "llama"
    """Which family's forward pass: one of :data:`FAMILIES`."""
    qkv_bias: bool = False
    """q/k/v projections carry biases (Qwen2); o_proj never does."""
    qk_norm: bool = False
    """Queries and keys get a per-head RMSNorm before RoPE (Qwen3)."""
    rope_scaling: Llama3RopeScaling | None = None
    """Llama 3.1's RoPE frequency scaling, or None for plain RoPE."""
    trained_context: int | None = None
    """The context the model was trained for, when larger than the one used
    (``max_position_embeddings`` was cut to :data:`MAX_CONTEXT`); None otherwise."""

    def __post_init__(self) -> None:
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
        if self.model_type not in FAMILIES:
            raise ConfigError(f"unsupported model_type {self.model_type!r}")

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
        if self.qkv_bias:
            per_layer += self.q_width + 2 * self.kv_width
        if self.qk_norm:
            per_layer += 2 * self.dim_head
        head = 0 if self.tie_word_embeddings else v * d
        return v * d + self.num_hidden_layers * per_layer + d + head

    # -- (de)serialisation ------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, max_context: int = MAX_CONTEXT) -> LlamaConfig:
        """Read a ``config.json`` dict (transformers 4.x or 5.x spelling).

        A context longer than ``max_context`` is cut to it (``trained_context`` keeps the
        original); a sliding window is accepted only when it covers the context used.
        """
        model_type = _check_architecture(raw)
        missing = sorted(name for name in _REQUIRED if raw.get(name) is None)
        if missing:
            raise ConfigError(f"config.json is missing field {missing[0]}")
        known = {f.name for f in fields(cls)} - _DERIVED
        kwargs = {k: v for k, v in raw.items() if k in known and v is not None}
        kwargs["model_type"] = model_type
        if "dtype" in raw and "torch_dtype" not in raw:  # transformers 5.x spelling
            kwargs["torch_dtype"] = raw["dtype"]
        if not isinstance(kwargs.get("torch_dtype", ""), str):
            kwargs["torch_dtype"] = str(kwargs["torch_dtype"])
        if kwargs.get("num_key_value_heads") is None:
            kwargs["num_key_value_heads"] = raw.get("num_attention_heads")
        # transformers' own default: Llama, Mistral and Qwen heads are untied unless said
        kwargs["tie_word_embeddings"] = bool(raw.get("tie_word_embeddings", False))
        for key in ("bos_token_id", "eos_token_id"):
            if isinstance(kwargs.get(key), list):
                kwargs[key] = kwargs[key][0] if kwargs[key] else None
        theta, scaling = _rope(raw)
        kwargs["rope_theta"], kwargs["rope_scaling"] = theta, scaling
        kwargs["qkv_bias"] = model_type == "qwen2"
        kwargs["qk_norm"] = model_type == "qwen3"
        context = raw["max_position_embeddings"]
        if isinstance(context, int) and context > max_context:
            kwargs["max_position_embeddings"] = max_context
            kwargs["trained_context"] = context
        _check_sliding_window(raw, model_type, kwargs["max_position_embeddings"])
        try:
            return cls(**kwargs)
        except TypeError as exc:  # a field of the wrong type
            raise ConfigError(f"config.json: {exc}") from None

    @classmethod
    def load(cls, path: str | Path, *, max_context: int = MAX_CONTEXT) -> LlamaConfig:
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"no config.json at {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} must hold a JSON object")
        return cls.from_dict(raw, max_context=max_context)

    def to_dict(self) -> dict[str, Any]:
        """The config as ``transformers`` (4.x) would write it for this family."""
        arch = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3"}
        out: dict[str, Any] = {
            "architectures": [f"{arch[self.model_type]}ForCausalLM"],
            "model_type": self.model_type,
            "hidden_act": "silu",
            "attention_dropout": 0.0,
            "initializer_range": 0.02,
            "use_cache": True,
        }
        if self.model_type in ("llama", "qwen3"):
            out |= {"attention_bias": False}
        if self.model_type == "llama":
            out |= {"mlp_bias": False, "pretraining_tp": 1}
        if self.model_type in ("qwen2", "qwen3", "mistral"):
            out["sliding_window"] = None
        for key, value in asdict(self).items():
            if key == "rope_scaling":
                value = self.rope_scaling.to_dict() if self.rope_scaling else None
            elif key in _DERIVED or key == "model_type":
                continue
            if key == "head_dim" and value is None:
                value = self.dim_head
            out[key] = value
        if self.trained_context is not None:
            out["max_position_embeddings"] = self.trained_context
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


_DERIVED = {"qkv_bias", "qk_norm", "rope_scaling", "trained_context"}
"""Fields set from the family and the RoPE block, never read from config.json as is."""

_GPT2_STYLE = {"gpt2", "gpt_neox", "gptj", "gpt_neo", "gpt_bigcode", "opt", "bloom",
               "falcon", "codegen", "starcoder2", "mpt", "bert", "roberta"}  # fmt: skip
_PHI_STYLE = {"phi", "phi3", "phimoe", "phi4", "phi4mm"}
_MOE_FIELDS = ("num_local_experts", "num_experts", "n_routed_experts", "num_experts_per_tok",
               "moe_intermediate_size", "router_aux_loss_coef")  # fmt: skip


def _check_architecture(raw: dict[str, Any]) -> str:
    """The model_type, if the forward pass implements it; otherwise a refusal naming it."""
    model_type = raw.get("model_type", "llama")
    if not isinstance(model_type, str):
        raise ConfigError(f"config field model_type must be a string, got {model_type!r}")
    if "moe" in model_type or model_type in ("mixtral", "deepseek_v2", "deepseek_v3", "dbrx"):
        raise ConfigError(
            f"unsupported architecture {model_type!r}: mixture-of-experts models are not "
            "implemented (one dense FFN per block only)"
        )
    if model_type == "gpt_oss" or any("sink" in key for key in raw):
        raise ConfigError(
            f"unsupported architecture {model_type!r}: attention sinks are not implemented"
        )
    if model_type in _GPT2_STYLE:
        raise ConfigError(
            f"unsupported architecture {model_type!r}: GPT-2-style models (LayerNorm, "
            "GELU, learned or other position embeddings) are not implemented"
        )
    if model_type in _PHI_STYLE:
        raise ConfigError(
            f"unsupported architecture {model_type!r}: Phi-style models (fused qkv, partial "
            "RoPE) are not implemented"
        )
    if model_type not in FAMILIES:
        raise ConfigError(
            f"unsupported architecture {model_type!r} (implemented: {', '.join(FAMILIES.values())})"
        )
    for key in _MOE_FIELDS:
        if raw.get(key):
            raise ConfigError(
                f"unsupported config field {key}: mixture-of-experts models are not implemented"
            )
    act = raw.get("hidden_act", raw.get("hidden_activation", "silu"))
    if act != "silu":
        raise ConfigError(f"unsupported config field hidden_act={act!r} (only silu/SwiGLU)")
    if raw.get("mlp_bias"):
        raise ConfigError("unsupported config field mlp_bias=true (bias-free FFN only)")
    if raw.get("attention_bias") and model_type != "qwen2":
        raise ConfigError(
            "unsupported config field attention_bias=true (q/k/v/o biases are not "
            "implemented for this family; Qwen2's q/k/v biases are)"
        )
    if raw.get("pretraining_tp", 1) not in (1, None):
        raise ConfigError("unsupported config field pretraining_tp (must be 1)")
    if raw.get("partial_rotary_factor", 1.0) not in (1, 1.0, None):
        raise ConfigError("unsupported config field partial_rotary_factor (full RoPE only)")
    return model_type


def _rope(raw: dict[str, Any]) -> tuple[float, Llama3RopeScaling | None]:
    """rope_theta and the scaling, from 4.x (``rope_theta`` + ``rope_scaling``) or 5.x
    (``rope_parameters``) fields. Any scaling but ``default`` and ``llama3`` is refused."""
    params = raw.get("rope_parameters")
    scaling = raw.get("rope_scaling")
    theta = raw.get("rope_theta")
    if params is not None:
        if not isinstance(params, dict):
            raise ConfigError("config field rope_parameters must be an object")
        if params and all(isinstance(v, dict) for v in params.values()):
            raise ConfigError(
                "unsupported config field rope_parameters with one block per layer type "
                f"({', '.join(params)}): a single RoPE for every layer only"
            )
        theta = params.get("rope_theta", theta)
        if scaling is None and params.get("rope_type", params.get("type", "default")) != "default":
            scaling = params
    if theta is None:
        theta = 10000.0
    if not isinstance(theta, int | float) or isinstance(theta, bool):
        raise ConfigError(f"config field rope_theta must be a number, got {theta!r}")
    if not scaling:
        return float(theta), None
    if not isinstance(scaling, dict):
        raise ConfigError("config field rope_scaling must be an object")
    kind = scaling.get("rope_type", scaling.get("type"))
    where = "rope_parameters" if params is not None and scaling is params else "rope_scaling"
    if kind == "default":
        return float(theta), None
    if kind != "llama3":
        raise ConfigError(
            f"unsupported config field {where} type {kind!r} (only plain RoPE and Llama 3's "
            "'llama3' scaling are implemented)"
        )
    try:
        llama3 = Llama3RopeScaling(
            factor=float(scaling["factor"]),
            low_freq_factor=float(scaling["low_freq_factor"]),
            high_freq_factor=float(scaling["high_freq_factor"]),
            original_max_position_embeddings=int(scaling["original_max_position_embeddings"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"config field {where} (llama3) lacks or mangles {exc}") from None
    if not (llama3.factor > 0 and llama3.high_freq_factor > llama3.low_freq_factor > 0):
        raise ConfigError(f"config field {where} (llama3) has impossible factors")
    return float(theta), llama3


def _check_sliding_window(raw: dict[str, Any], model_type: str, context: int) -> None:
    """Refuse a sliding window that would hide keys inside the context used."""
    window = raw.get("sliding_window")
    if not window:
        return
    layer_types = raw.get("layer_types") or []
    if "use_sliding_window" in raw:
        used = bool(raw["use_sliding_window"])
    elif layer_types:
        used = "sliding_attention" in layer_types
    else:
        used = model_type == "mistral"
    if used and (not isinstance(window, int) or window < context):
        raise ConfigError(
            f"unsupported config field sliding_window={window}: it is smaller than the "
            f"context used ({context} tokens), and only full causal attention is implemented"
        )
