"""A model's weights in memory: the :class:`Model` container, HF names, random init.

Weights are kept under their Hugging Face names (``model.layers.0.self_attn.q_proj.weight``
…), in Hugging Face's ``[out_features, in_features]`` layout. Internally the q/k/v
projections of a layer are rows of one fused matrix, and gate/up likewise, so each
projection is a single BLAS call; the HF-named tensors are contiguous row-slices (views)
of those fused matrices, so nothing is stored twice.

Reading and writing files lives in :mod:`.formats`; the forward pass in :mod:`.model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import LlamaConfig
from .ops import rope_cos_sin, rope_inv_freq

if TYPE_CHECKING:
    from .formats.source import ModelSource


DECODE_LAYOUT_MIN_BYTES = 32 * 2**20
"""Models with more float32 weight bytes than this store every matrix that is at least as
tall as it is wide column-major ([in, out] in memory, an ``[out, in]`` view on top): the
layout their one-token decode streams fastest (see :func:`.model.decode_layout`)."""


class ModelLoadError(RuntimeError):
    """A model cannot be used; the message names the file, tensor or field."""


@dataclass
class Layer:
    """One decoder block's weights (float32, HF ``[out, in]`` layout)."""

    attn_norm: np.ndarray  # [d]
    wqkv: np.ndarray  # [(H + 2*Hkv) * D, d]   rows: q_proj | k_proj | v_proj
    wo: np.ndarray  # [d, H * D]              o_proj
    ffn_norm: np.ndarray  # [d]
    w_gate_up: np.ndarray  # [2 * f, d]        rows: gate_proj | up_proj
    w_down: np.ndarray  # [d, f]                down_proj
    bqkv: np.ndarray | None = None  # [(H + 2*Hkv) * D] q|k|v biases (Qwen2), else None
    q_norm: np.ndarray | None = None  # [D] per-head RMSNorm gain on queries (Qwen3)
    k_norm: np.ndarray | None = None  # [D] per-head RMSNorm gain on keys (Qwen3)


@dataclass
class Model:
    """Weights plus config. Build with :func:`~.formats.load_model`, :func:`init_random`
    or :meth:`Model.from_tensors`.

    ``inv_freq`` overrides RoPE's per-pair angular speeds (a GGUF's ``rope_freqs``);
    by default they follow the config (``rope_theta`` and any llama3 scaling).
    ``tokenizer`` is the model's own tokenizer when its file carries one (None: the
    built-in vocabulary); ``source`` says where the weights came from.
    """

    config: LlamaConfig
    embed: np.ndarray  # [V, d]
    layers: list[Layer]
    norm: np.ndarray  # [d]
    lm_head: np.ndarray  # [V, d]; the same array as ``embed`` when embeddings are tied
    name: str = "model"
    inv_freq: np.ndarray | None = None
    tokenizer: Any = None
    source: ModelSource | None = None
    _rope: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)
    _decode_layout: Any = field(init=False, default=None, repr=False)
    _blas_chooser: Any = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        cfg = self.config
        if self.inv_freq is None:
            inv = rope_inv_freq(cfg.dim_head, cfg.rope_theta)
            if cfg.rope_scaling is not None:
                inv = cfg.rope_scaling.apply(inv).astype(np.float32)
            self.inv_freq = inv
        positions = np.arange(cfg.max_position_embeddings)
        self._rope = rope_cos_sin(positions, cfg.dim_head, cfg.rope_theta, self.inv_freq)

    def __repr__(self) -> str:
        # Short on purpose: Textual (worker descriptions) and tracebacks call repr(), and
        # the dataclass default would print every weight array.
        cfg = self.config
        return (
            f"Model(name={self.name!r}, layers={cfg.num_hidden_layers}, "
            f"hidden={cfg.hidden_size}, heads={cfg.num_attention_heads}/"
            f"{cfg.num_key_value_heads}, vocab={cfg.vocab_size})"
        )

    # -- HF-named view of the weights -----------------------------------------------------
    def tensors(self) -> dict[str, np.ndarray]:
        """Every weight under its Hugging Face name (views, not copies)."""
        cfg = self.config
        q, kv, f = cfg.q_width, cfg.kv_width, cfg.intermediate_size
        out: dict[str, np.ndarray] = {"model.embed_tokens.weight": self.embed}
        for i, layer in enumerate(self.layers):
            p = f"model.layers.{i}."
            out[p + "input_layernorm.weight"] = layer.attn_norm
            out[p + "self_attn.q_proj.weight"] = layer.wqkv[:q]
            out[p + "self_attn.k_proj.weight"] = layer.wqkv[q : q + kv]
            out[p + "self_attn.v_proj.weight"] = layer.wqkv[q + kv :]
            if layer.bqkv is not None:
                out[p + "self_attn.q_proj.bias"] = layer.bqkv[:q]
                out[p + "self_attn.k_proj.bias"] = layer.bqkv[q : q + kv]
                out[p + "self_attn.v_proj.bias"] = layer.bqkv[q + kv :]
            if layer.q_norm is not None:
                out[p + "self_attn.q_norm.weight"] = layer.q_norm
                out[p + "self_attn.k_norm.weight"] = layer.k_norm
            out[p + "self_attn.o_proj.weight"] = layer.wo
            out[p + "post_attention_layernorm.weight"] = layer.ffn_norm
            out[p + "mlp.gate_proj.weight"] = layer.w_gate_up[:f]
            out[p + "mlp.up_proj.weight"] = layer.w_gate_up[f:]
            out[p + "mlp.down_proj.weight"] = layer.w_down
        out["model.norm.weight"] = self.norm
        if not self.config.tie_word_embeddings:
            out["lm_head.weight"] = self.lm_head
        return out

    @classmethod
    def from_tensors(
        cls,
        config: LlamaConfig,
        tensors: dict[str, np.ndarray],
        name: str = "model",
        *,
        consume: bool = False,
        **extra: Any,
    ) -> Model:
        """Build a model from HF-named arrays, checking every name, shape and value.

        ``consume=True`` removes each array from ``tensors`` once it is copied into the
        model, so a loader holding the only reference frees it at once (the peak memory
        of a load is then the model plus one layer, not twice the model).
        ``extra`` (``inv_freq``, ``tokenizer``, ``source``) is passed to the constructor.
        """
        expected = expected_shapes(config)
        for key, shape in expected.items():
            if key not in tensors:
                raise ModelLoadError(f"missing tensor {key} (expected shape {list(shape)})")
            got = tuple(tensors[key].shape)
            if got != shape:
                raise ModelLoadError(f"tensor {key} has shape {list(got)}, expected {list(shape)}")
        ignorable = ("rotary_emb.inv_freq",) + (
            ("lm_head.weight",) if config.tie_word_embeddings else ()
        )
        unexpected = [k for k in tensors if k not in expected and not k.endswith(ignorable)]
        if unexpected:
            raise ModelLoadError(
                f"unexpected tensor {unexpected[0]} — not part of a "
                f"{config.model_type} model with this config"
            )

        def get(key: str) -> np.ndarray:
            arr = np.asarray(tensors.pop(key) if consume else tensors[key], dtype=np.float32)
            if not np.isfinite(arr).all():
                raise ModelLoadError(f"tensor {key} contains NaN or infinite values")
            return arr

        def own(key: str) -> np.ndarray:
            return np.ascontiguousarray(get(key))

        # A large model's tall matrices are built column-major right away: the layout
        # decoding wants, made in the one copy that fusing q|k|v and gate|up costs anyway.
        column_major = config.parameter_count() * 4 > DECODE_LAYOUT_MIN_BYTES

        def matrix(*keys: str) -> np.ndarray:
            parts = [get(k) for k in keys]
            if column_major and sum(p.shape[0] for p in parts) >= parts[0].shape[1]:  # tall
                rows = sum(p.shape[0] for p in parts)
                cols = np.empty((parts[0].shape[1], rows), dtype=np.float32)  # C order
                return np.concatenate([p.T for p in parts], axis=1, out=cols).T  # [in, out]
            return np.concatenate(parts) if len(parts) > 1 else np.ascontiguousarray(parts[0])

        layers = []
        for i in range(config.num_hidden_layers):
            p = f"model.layers.{i}."
            attn = p + "self_attn."
            layers.append(
                Layer(
                    attn_norm=own(p + "input_layernorm.weight"),
                    wqkv=matrix(*(attn + f"{n}_proj.weight" for n in "qkv")),
                    wo=matrix(attn + "o_proj.weight"),
                    ffn_norm=own(p + "post_attention_layernorm.weight"),
                    w_gate_up=matrix(p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"),
                    w_down=matrix(p + "mlp.down_proj.weight"),
                    bqkv=np.concatenate([get(attn + f"{n}_proj.bias") for n in "qkv"])
                    if config.qkv_bias
                    else None,
                    q_norm=own(attn + "q_norm.weight") if config.qk_norm else None,
                    k_norm=own(attn + "k_norm.weight") if config.qk_norm else None,
                )
            )
        embed = matrix("model.embed_tokens.weight")
        head = embed if config.tie_word_embeddings else matrix("lm_head.weight")
        norm = own("model.norm.weight")
        if consume:
            tensors.clear()  # an ignorable extra (rotary_emb.inv_freq, a tied lm_head)
        return cls(
            config=config,
            embed=embed,
            layers=layers,
            norm=norm,
            lm_head=head,
            name=name,
            **extra,
        )

    def with_tensors(self, replacements: dict[str, np.ndarray], name: str | None = None) -> Model:
        """A new model with some HF-named tensors replaced (e.g. by quantized copies)."""
        tensors = dict(self.tensors())
        tensors.update(replacements)
        return Model.from_tensors(
            self.config, tensors, name=name or self.name, inv_freq=self.inv_freq,
            tokenizer=self.tokenizer, source=self.source,
        )  # fmt: skip

    @property
    def nbytes(self) -> int:
        """Bytes of float32 weights held (a tied embedding counted once)."""
        return sum(t.nbytes for t in self.tensors().values())

    def rope_tables(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """cos, sin rows for the given absolute positions: 2 x [T, D]."""
        cos, sin = self._rope
        return cos[positions], sin[positions]


def expected_shapes(config: LlamaConfig) -> dict[str, tuple[int, ...]]:
    """HF tensor name -> shape for a model with this config."""
    d, f, v = config.hidden_size, config.intermediate_size, config.vocab_size
    q, kv, hd = config.q_width, config.kv_width, config.dim_head
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (v, d)}
    for i in range(config.num_hidden_layers):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (d,)
        shapes[p + "self_attn.q_proj.weight"] = (q, d)
        shapes[p + "self_attn.k_proj.weight"] = (kv, d)
        shapes[p + "self_attn.v_proj.weight"] = (kv, d)
        if config.qkv_bias:
            shapes[p + "self_attn.q_proj.bias"] = (q,)
            shapes[p + "self_attn.k_proj.bias"] = (kv,)
            shapes[p + "self_attn.v_proj.bias"] = (kv,)
        if config.qk_norm:
            shapes[p + "self_attn.q_norm.weight"] = (hd,)
            shapes[p + "self_attn.k_norm.weight"] = (hd,)
        shapes[p + "self_attn.o_proj.weight"] = (d, q)
        shapes[p + "post_attention_layernorm.weight"] = (d,)
        shapes[p + "mlp.gate_proj.weight"] = (f, d)
        shapes[p + "mlp.up_proj.weight"] = (f, d)
        shapes[p + "mlp.down_proj.weight"] = (d, f)
    shapes["model.norm.weight"] = (d,)
    if not config.tie_word_embeddings:
        shapes["lm_head.weight"] = (v, d)
    return shapes


def init_random(
    config: LlamaConfig, seed: int = 0, std: float = 0.02, name: str = "random"
) -> Model:
    """A model with seeded random weights — for tests and benchmarks, never presented as trained.

    Projections ~ N(0, std²); the output projections of each block are scaled down by
    sqrt(2 * layers) (GPT-2 style) so the residual stream stays well-conditioned; norms = 1;
    biases (Qwen2) ~ N(0, std²).
    """
    rng = np.random.default_rng(seed)
    out_std = std / np.sqrt(2 * config.num_hidden_layers)
    tensors = {}
    for key, shape in expected_shapes(config).items():
        if key.endswith("norm.weight"):
            tensors[key] = np.ones(shape, dtype=np.float32)
        else:
            scale = out_std if key.endswith(("o_proj.weight", "down_proj.weight")) else std
            tensors[key] = rng.normal(0.0, scale, size=shape).astype(np.float32)
    return Model.from_tensors(config, tensors, name=name)
