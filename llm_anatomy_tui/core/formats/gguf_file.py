"""GGUF files (llama.cpp, ollama): read with the ``gguf`` package, dequantized to float32.

Three things differ from a Hugging Face checkpoint, and each is undone here:

- **Names.** ``blk.3.attn_q.weight`` is ``model.layers.3.self_attn.q_proj.weight``
  (:data:`TENSOR_NAMES`).
- **Storage.** Tensors may be stored as F32, F16, BF16 or any block quantization
  (Q8_0, Q4_0, Q4_1, the K-quants …). ``gguf.quants.dequantize`` turns each into float32;
  the file's own type is kept per tensor in ``model.source.tensor_types``.
- **Row order of q and k (Llama only).** llama.cpp's converter permutes the rows of each
  head of q_proj and k_proj so that its RoPE can rotate adjacent pairs (x0, x1), (x2, x3)
  … where Hugging Face's rotate-half pairs x_i with x_{i+D/2}. Within a head, row
  ``h * D/2 + j`` (h = 0, 1) of the original becomes row ``2j + h``.
  :func:`unpermute_rows` puts them back; Qwen2/Qwen3 files are not permuted.

Llama 3.1's RoPE scaling is stored as a ``rope_freqs.weight`` tensor of per-pair divisors
(the llama3 formula already evaluated); the angular speeds become ``base / rope_freqs``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..config import FAMILIES, MAX_CONTEXT, ConfigError, LlamaConfig
from ..ops import rope_inv_freq
from ..weights import Model, ModelLoadError
from .source import ModelSource

ARCHITECTURES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "mistral": "mistral"}
"""general.architecture -> model_type, for the architectures the forward pass implements."""

TENSOR_NAMES: dict[str, str] = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_q_norm.weight": "self_attn.q_norm.weight",
    "attn_k_norm.weight": "self_attn.k_norm.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_BLOCK = re.compile(r"blk\.(\d+)\.(.+)")


def unpermute_rows(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo llama.cpp's q/k row permutation ([rows, ...] with rows = n_heads * D).

    >>> w = np.arange(8)  # one head, D = 8: HF rows 0..7
    >>> permuted = w.reshape(1, 2, 4).swapaxes(1, 2).reshape(8)  # what llama.cpp stores
    >>> permuted.tolist(), unpermute_rows(permuted, 1).tolist()
    ([0, 4, 1, 5, 2, 6, 3, 7], [0, 1, 2, 3, 4, 5, 6, 7])
    """
    rows = w.shape[0]
    return w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _reader(path: Path) -> Any:
    import gguf

    class Reader(gguf.GGUFReader):
        """``gguf.GGUFReader`` slicing a plain ndarray view of its memmap while it parses
        the metadata: a 49k-token vocabulary is ~250k tiny slices, and each slice of a
        ``np.memmap`` runs memmap's Python-level ``__array_finalize__`` (measured: 1.7 s
        to open SmolLM2's file, 0.4 s this way). Same bytes, same results."""

        def _get(self, offset, dtype, count=1, override_order=None):  # noqa: ANN001, ANN202
            plain = self.__dict__.get("_plain")
            if plain is None:
                plain = self._plain = self.data.view(np.ndarray)
            dt = np.dtype(dtype)
            count = int(count)
            arr = plain[offset : offset + dt.itemsize * count].view(dt)[:count]
            order = self.byte_order if override_order is None else override_order
            return arr.view(arr.dtype.newbyteorder(order))

    try:
        try:
            return Reader(str(path), "r")
        except (TypeError, AttributeError):  # a gguf version whose internals differ
            return gguf.GGUFReader(str(path), "r")
    except FileNotFoundError:
        raise ModelLoadError(f"model file not found: {path}") from None
    except ValueError as exc:
        text = str(exc)
        if "is not a valid GGMLQuantizationType" in text:
            raise ModelLoadError(
                f"{path.name} holds a tensor type this gguf package does not know ({text})"
            ) from None
        raise ModelLoadError(f"{path.name} is not a readable GGUF file: {text}") from None
    except Exception as exc:  # truncated files fail deep inside numpy's memmap slicing
        raise ModelLoadError(
            f"{path.name} is not a readable GGUF file (truncated or damaged: "
            f"{type(exc).__name__}: {exc})"
        ) from None


def _field(reader: Any, key: str, default: Any = None) -> Any:
    f = reader.fields.get(key)
    if f is None:
        return default
    try:
        return f.contents()
    except Exception:  # noqa: BLE001  (a damaged field)
        raise ModelLoadError(f"GGUF field {key} is damaged") from None


def _scalar(reader: Any, key: str, default: Any = None, required: bool = False) -> Any:
    value = _field(reader, key, default)
    if value is None and required:
        raise ModelLoadError(f"the GGUF has no {key}")
    if isinstance(value, list):
        if value and all(v == value[0] for v in value):
            return value[0]  # a per-layer array with one value
        raise ModelLoadError(f"unsupported GGUF field {key}: it differs between layers")
    return value


def config_from_gguf(reader: Any, max_context: int = MAX_CONTEXT) -> tuple[LlamaConfig, str]:
    """The config (and the GGUF architecture name) of an open GGUF file."""
    arch = _scalar(reader, "general.architecture", required=True)
    if arch not in ARCHITECTURES:
        raise ModelLoadError(
            f"unsupported GGUF architecture {arch!r} (implemented: "
            f"{', '.join(FAMILIES.values())} — GGUF 'llama', 'qwen2', 'qwen3')"
        )
    if _scalar(reader, f"{arch}.expert_count", 0):
        raise ModelLoadError(
            f"unsupported GGUF field {arch}.expert_count: mixture-of-experts models are not "
            "implemented"
        )
    scaling = _scalar(reader, f"{arch}.rope.scaling.type")
    if scaling not in (None, "none"):
        raise ModelLoadError(
            f"unsupported GGUF field {arch}.rope.scaling.type={scaling!r} (only plain RoPE and "
            "Llama 3's rope_freqs are implemented)"
        )
    n_heads = _scalar(reader, f"{arch}.attention.head_count", required=True)
    hidden = _scalar(reader, f"{arch}.embedding_length", required=True)
    head_dim = _scalar(reader, f"{arch}.attention.key_length")
    value_dim = _scalar(reader, f"{arch}.attention.value_length", head_dim)
    if head_dim is not None and value_dim != head_dim:
        raise ModelLoadError(
            f"unsupported GGUF fields: key_length {head_dim} differs from value_length {value_dim}"
        )
    rope_dim = _scalar(reader, f"{arch}.rope.dimension_count")
    dim = head_dim if head_dim is not None else hidden // n_heads
    if rope_dim is not None and rope_dim != dim:
        raise ModelLoadError(
            f"unsupported GGUF field {arch}.rope.dimension_count={rope_dim}: partial RoPE "
            f"(the head is {dim} wide) is not implemented"
        )
    tokens = reader.fields.get("tokenizer.ggml.tokens")
    vocab = _scalar(reader, f"{arch}.vocab_size")
    if vocab is None:
        embd = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
        vocab = int(embd.shape[-1]) if embd is not None else (len(tokens.data) if tokens else None)
    raw = {
        "model_type": ARCHITECTURES[arch],
        "vocab_size": int(vocab) if vocab is not None else None,
        "hidden_size": hidden,
        "intermediate_size": _scalar(reader, f"{arch}.feed_forward_length", required=True),
        "num_hidden_layers": _scalar(reader, f"{arch}.block_count", required=True),
        "num_attention_heads": n_heads,
        "num_key_value_heads": _scalar(reader, f"{arch}.attention.head_count_kv", n_heads),
        "max_position_embeddings": _scalar(reader, f"{arch}.context_length", required=True),
        "rms_norm_eps": float(
            _scalar(reader, f"{arch}.attention.layer_norm_rms_epsilon", required=True)
        ),
        "rope_theta": float(_scalar(reader, f"{arch}.rope.freq_base", 10000.0)),
        "head_dim": head_dim,
        "tie_word_embeddings": not any(t.name == "output.weight" for t in reader.tensors),
        "bos_token_id": _scalar(reader, "tokenizer.ggml.bos_token_id"),
        "eos_token_id": _scalar(reader, "tokenizer.ggml.eos_token_id"),
        "sliding_window": _scalar(reader, f"{arch}.attention.sliding_window"),
        "torch_dtype": "gguf",
    }
    if raw["sliding_window"]:
        raw["use_sliding_window"] = True
    if ARCHITECTURES[arch] == "qwen2" and not any(
        t.name.endswith("attn_q.bias") for t in reader.tensors
    ):
        raise ModelLoadError("a qwen2 GGUF without attn_q.bias tensors is not a Qwen2 model")
    try:
        return LlamaConfig.from_dict(raw, max_context=max_context), arch
    except ConfigError as exc:
        raise ModelLoadError(f"GGUF metadata: {exc}") from None


def read_gguf_config(path: Path) -> LlamaConfig:
    """A GGUF file's config, without dequantizing any tensor."""
    return config_from_gguf(_reader(Path(path)))[0]


def load_gguf(
    path: Path,
    check: Callable[[LlamaConfig], None] | None = None,
    progress: Callable[[float], None] | None = None,
) -> Model:
    """Open a GGUF file: config from its metadata, float32 weights under HF names, its
    tokenizer, and each tensor's storage type. ``check(config)`` runs before any tensor
    is dequantized (the memory check); ``progress(fraction)`` is called as tensors are
    dequantized (0 → 0.9, then 1 once the model is built)."""
    from gguf.quants import dequantize

    path = Path(path)
    reader = _reader(path)
    config, arch = config_from_gguf(reader)
    if check is not None:
        check(config)
    permuted = arch == "llama"  # llama.cpp permutes q/k rows for its llama RoPE only
    tensors: dict[str, np.ndarray] = {}
    types: dict[str, str] = {}
    inv_freq = None
    n_tensors = max(1, len(reader.tensors))
    for i, t in enumerate(reader.tensors):
        if progress is not None:
            progress(0.9 * i / n_tensors)
        qtype = t.tensor_type
        try:
            shape = tuple(int(n) for n in reversed(t.shape.tolist()))
            # a plain view: gguf dequantizes 16 rows at a time, and slicing a memmap
            # costs more than the arithmetic (0.8 s vs 0.33 s for SmolLM2)
            data = t.data.view(np.ndarray)
            arr = np.asarray(dequantize(data, qtype), dtype=np.float32).reshape(shape)
        except NotImplementedError:
            raise ModelLoadError(
                f"tensor {t.name} has type {qtype.name}, which gguf cannot dequantize"
            ) from None
        except (ValueError, TypeError, IndexError) as exc:
            raise ModelLoadError(
                f"tensor {t.name} ({qtype.name}) is damaged or truncated: {exc}"
            ) from None
        if t.name == "rope_freqs.weight":  # Llama 3.1: per-pair divisors of the speeds
            inv_freq = rope_inv_freq(config.dim_head, config.rope_theta) / arr
            continue
        name = _hf_name(t.name)
        if permuted and name.endswith(("q_proj.weight", "q_proj.bias")):
            arr = unpermute_rows(arr, config.num_attention_heads)
        elif permuted and name.endswith(("k_proj.weight", "k_proj.bias")):
            arr = unpermute_rows(arr, config.num_key_value_heads)
        tensors[name] = arr
        types[name] = qtype.name
    tokenizer = _tokenizer(reader, config, path)
    title = _scalar(reader, "general.name")
    notes: tuple[str, ...] = (f"general.name: {title}",) if title else ()
    if inv_freq is not None:
        notes += ("RoPE speeds divided by the file's rope_freqs (Llama 3.1 scaling)",)
    if config.trained_context is not None:
        notes += (
            f"context cut from {config.trained_context:,} to "
            f"{config.max_position_embeddings:,} tokens",
        )
    source = ModelSource(
        path=path,
        format="gguf",
        architecture=FAMILIES[config.model_type],
        display_name=path.stem,
        tensor_types=types,
        tokenizer=tokenizer.description,
        chat_template=tokenizer.chat_template,
        notes=notes,
    )
    model = Model.from_tensors(
        config, tensors, name=path.stem, consume=True, inv_freq=inv_freq,
        tokenizer=tokenizer, source=source,
    )  # fmt: skip
    if progress is not None:
        progress(1.0)
    return model


def _hf_name(name: str) -> str:
    if name in GLOBAL_NAMES:
        return GLOBAL_NAMES[name]
    m = _BLOCK.fullmatch(name)
    if m and m.group(2) in TENSOR_NAMES:
        return f"model.layers.{m.group(1)}.{TENSOR_NAMES[m.group(2)]}"
    raise ModelLoadError(f"unexpected GGUF tensor {name} — not part of a supported model")


def _tokenizer(reader: Any, config: LlamaConfig, path: Path) -> Any:
    from ..model_tokenizer import check_vocab, from_gguf_vocab

    tokens = _field(reader, "tokenizer.ggml.tokens")
    if not tokens:
        raise ModelLoadError(f"{path.name} has no tokenizer.ggml.tokens (no vocabulary)")
    model = _scalar(reader, "tokenizer.ggml.model", "gpt2")
    if model == "llama":
        from ..model_tokenizer import from_gguf_sentencepiece

        tok = from_gguf_sentencepiece(
            name=path.stem,
            tokens=tokens,
            scores=_field(reader, "tokenizer.ggml.scores"),
            token_types=_field(reader, "tokenizer.ggml.token_type"),
            bos=_scalar(reader, "tokenizer.ggml.bos_token_id"),
            eos=_scalar(reader, "tokenizer.ggml.eos_token_id"),
            add_bos=bool(_scalar(reader, "tokenizer.ggml.add_bos_token", True)),
            add_space_prefix=bool(_scalar(reader, "tokenizer.ggml.add_space_prefix", True)),
            chat_template=_scalar(reader, "tokenizer.chat_template"),
        )
    else:
        tok = from_gguf_vocab(
            name=path.stem,
            model=model,
            pre=_scalar(reader, "tokenizer.ggml.pre", "default"),
            tokens=tokens,
            merges=_field(reader, "tokenizer.ggml.merges") or [],
            token_types=_field(reader, "tokenizer.ggml.token_type"),
            bos=_scalar(reader, "tokenizer.ggml.bos_token_id"),
            eos=_scalar(reader, "tokenizer.ggml.eos_token_id"),
            add_bos=bool(_scalar(reader, "tokenizer.ggml.add_bos_token", False)),
            chat_template=_scalar(reader, "tokenizer.chat_template"),
        )
    check_vocab(tok, config, f"the vocabulary in {path.name}")
    return tok
