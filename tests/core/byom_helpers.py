"""Tiny random checkpoints of every supported family, written the way others write them.

- :func:`write_hf_dir`: a Hugging Face directory as transformers 4.x or 5.x spells its
  ``config.json``, one ``model.safetensors`` or shards with their index.
- :func:`write_gguf`: a GGUF file through ``gguf``'s own writer, with llama.cpp's tensor
  names, its q/k row permutation for Llama (written here from convert_hf_to_gguf's
  description, independently of the loader's inverse), and F32/Q8_0/Q4_0 tensors.
- :func:`train_tokenizer`: a small byte-level BPE trained with ``tokenizers`` (SmolLM's
  pre-tokenizer: single digits, then GPT-2's byte-level regex).

Nothing here imports the loader under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from llm_anatomy_tui.core.config import Llama3RopeScaling, LlamaConfig
from llm_anatomy_tui.core.weights import Model, init_random

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CORPUS = [
    "Once upon a time, there was a little robot who wanted to read.",
    "The robot found 12 books and 345 pages; it read 6789 words a day!",
    "Über café naïve façade — déjà vu. 東京 タワー 北京 서울 🙂🚀",
    "def f(x):\n    return x * 2  # doubles\n\ttabs and  double  spaces",
    "She said: \"It's fine, we'll see, they're here, I'd go, you've won.\"",
    "Numbers 2024-12-04 3.14159 1,000,000 and 0x1F; emails a@b.co",
] * 20


def train_tokenizer(vocab_size: int = 320, style: str = "smollm"):
    """A byte-level BPE trained on :data:`CORPUS` (``tokenizers`` does the training).

    ``style`` "smollm": Digits(individual) + ByteLevel(use_regex) as SmolLM's
    tokenizer.json; "gpt2": ByteLevel(use_regex) alone.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if style == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def vocab_and_merges(tok) -> tuple[list[str], list[str]]:
    """(tokens by id, merges as "a b") from a trained tokenizer's own JSON."""
    raw = json.loads(tok.to_str())
    vocab = raw["model"]["vocab"]
    tokens = [""] * (max(vocab.values()) + 1)
    for piece, i in vocab.items():
        tokens[i] = piece
    for added in raw["added_tokens"]:
        tokens[added["id"]] = added["content"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in raw["model"]["merges"]]
    return tokens, merges


# -- models ------------------------------------------------------------------------------------


def family_config(family: str, vocab: int) -> LlamaConfig:
    """A tiny config of each family; sizes are multiples of 32 so Q8_0/Q4_0 apply."""
    common = dict(vocab_size=vocab, hidden_size=64, intermediate_size=96,
                  num_hidden_layers=2, max_position_embeddings=64)  # fmt: skip
    if family == "llama2":
        return LlamaConfig(**common, num_attention_heads=4, num_key_value_heads=4,
                           tie_word_embeddings=False)  # fmt: skip
    if family == "llama3":
        return LlamaConfig(
            **common, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
            rope_theta=500000.0, tie_word_embeddings=False,
            rope_scaling=Llama3RopeScaling(8.0, 1.0, 4.0, 16),
        )  # fmt: skip
    if family == "smollm":
        return LlamaConfig(**common, num_attention_heads=4, num_key_value_heads=1,
                           rope_theta=100000.0, tie_word_embeddings=True)  # fmt: skip
    if family == "mistral":
        return LlamaConfig(**common, num_attention_heads=4, num_key_value_heads=2,
                           rope_theta=1000000.0, model_type="mistral",
                           tie_word_embeddings=False)  # fmt: skip
    if family == "qwen2":
        return LlamaConfig(**common, num_attention_heads=4, num_key_value_heads=2,
                           rope_theta=1000000.0, model_type="qwen2", qkv_bias=True,
                           tie_word_embeddings=True, rms_norm_eps=1e-6)  # fmt: skip
    if family == "qwen3":
        return LlamaConfig(**common, num_attention_heads=4, num_key_value_heads=2,
                           head_dim=32, rope_theta=1000000.0, model_type="qwen3",
                           qk_norm=True, tie_word_embeddings=False, rms_norm_eps=1e-6)  # fmt: skip
    raise ValueError(family)


FAMILIES = ("llama2", "llama3", "smollm", "mistral", "qwen2", "qwen3")


def family_model(family: str, vocab: int, seed: int = 0) -> Model:
    """Random weights, with non-trivial norm gains and biases so misplaced ones show."""
    model = init_random(family_config(family, vocab), seed=seed, std=0.3)
    rng = np.random.default_rng(seed + 1)
    changes = {
        k: rng.uniform(0.5, 1.5, v.shape).astype(np.float32)
        for k, v in model.tensors().items()
        if k.endswith("norm.weight")
    }
    return model.with_tensors(changes)


# -- Hugging Face directories --------------------------------------------------------------------


def hf_config(model: Model, spelling: str) -> dict:
    """config.json as transformers 4.x or 5.x writes it for this family."""
    cfg = model.config.to_dict()
    cfg.pop("trained_context", None)
    if cfg["model_type"] == "qwen2":
        cfg.pop("attention_bias", None)  # Qwen2 has q/k/v biases by architecture
        cfg |= {"use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 2}
    if spelling == "5.x":
        params = {"rope_type": "default", "rope_theta": cfg.pop("rope_theta")}
        scaling = cfg.pop("rope_scaling", None)
        if scaling:
            params |= scaling
        cfg["rope_parameters"] = params
        cfg["dtype"] = cfg.pop("torch_dtype")
        if cfg["model_type"] in ("qwen2", "qwen3"):
            cfg["layer_types"] = ["full_attention"] * cfg["num_hidden_layers"]
    return cfg


def write_hf_dir(
    model: Model, path: Path, *, spelling: str = "4.x", shards: int = 1, tokenizer=None
) -> Path:
    from safetensors.numpy import save_file

    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(hf_config(model, spelling), indent=2))
    tensors = {k: np.ascontiguousarray(v) for k, v in model.tensors().items()}
    if shards == 1:
        save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    else:
        names = sorted(tensors)
        weight_map = {}
        for i in range(shards):
            shard = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            part = names[i::shards]
            save_file({k: tensors[k] for k in part}, str(path / shard))
            weight_map |= dict.fromkeys(part, shard)
        index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
        (path / "model.safetensors.index.json").write_text(json.dumps(index))
    if tokenizer is not None:
        tokenizer.save(str(path / "tokenizer.json"))
        (path / "tokenizer_config.json").write_text(
            json.dumps({"chat_template": "{{ messages }}", "eos_token": "<|im_end|>"})
        )
    return path


# -- GGUF ----------------------------------------------------------------------------------------

GGUF_ARCH = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
_GGUF_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def llama_cpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf's ``LlamaModel.permute``: within each head, row h*D/2 + j moves
    to row 2j + h (so llama.cpp's RoPE rotates adjacent pairs)."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def gguf_name(hf: str) -> str:
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    _, _, i, rest = hf.split(".", 3)
    return f"blk.{i}.{_GGUF_NAMES[rest]}"


def quantize_like_gguf(w: np.ndarray, qtype: str) -> np.ndarray:
    """What a tensor becomes once stored as ``qtype`` and read back (gguf's own code)."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    if qtype == "F32" or w.ndim < 2:
        return w
    kind = GGMLQuantizationType[qtype]
    return dequantize(quantize(np.ascontiguousarray(w, np.float32), kind), kind).reshape(w.shape)


def quantized_copy(model: Model, qtype: str) -> Model:
    """The HF model with every matrix replaced by its gguf quantize→dequantize round trip."""
    return model.with_tensors(
        {k: quantize_like_gguf(v, qtype) for k, v in model.tensors().items() if v.ndim == 2}
    )


def write_gguf(
    model: Model,
    path: Path,
    tokenizer,
    *,
    qtype: str = "F32",
    pre: str = "smollm",
    permute: bool | None = None,
    extra=None,
    arch: str | None = None,
    rope_dim: int | None = None,
    hook=None,
    tok_model: str = "gpt2",
) -> Path:
    """``model`` as llama.cpp's converter would write it (matrices in ``qtype``)."""
    import gguf

    cfg = model.config
    arch = arch or GGUF_ARCH[cfg.model_type]
    if permute is None:
        permute = arch == "llama"
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(path.stem)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_key_length(cfg.dim_head)
    w.add_value_length(cfg.dim_head)
    w.add_rope_dimension_count(rope_dim or cfg.dim_head)
    w.add_vocab_size(cfg.vocab_size)
    tokens, merges = vocab_and_merges(tokenizer)
    types = [3 if t in SPECIALS else 1 for t in tokens]
    w.add_tokenizer_model(tok_model)
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(tokens.index("<|im_start|>"))
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_add_bos_token(False)
    w.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    if extra is not None:
        extra(w)
    if cfg.rope_scaling is not None:  # llama.cpp stores llama3 scaling as per-pair divisors
        s = cfg.rope_scaling
        dim = cfg.dim_head
        factors = []
        for i in range(dim // 2):
            speed = cfg.rope_theta ** (-(2.0 * i) / dim)
            wavelen = 2 * np.pi / speed
            if wavelen < s.original_max_position_embeddings / s.high_freq_factor:
                factors.append(1.0)
            elif wavelen > s.original_max_position_embeddings / s.low_freq_factor:
                factors.append(s.factor)
            else:
                smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (
                    s.high_freq_factor - s.low_freq_factor
                )
                factors.append(1 / ((1 - smooth) / s.factor + smooth))
        w.add_tensor("rope_freqs.weight", np.array(factors, dtype=np.float32))
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    for name, arr in model.tensors().items():
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if permute and name.endswith(("q_proj.weight", "q_proj.bias")):
            arr = llama_cpp_permute(arr, cfg.num_attention_heads)
        elif permute and name.endswith(("k_proj.weight", "k_proj.bias")):
            arr = llama_cpp_permute(arr, cfg.num_key_value_heads)
        if hook is not None:
            arr = hook(name, arr)
        if qtype != "F32" and arr.ndim == 2:
            kind = GGMLQuantizationType[qtype]
            w.add_tensor(gguf_name(name), quantize(arr, kind), raw_dtype=kind)
        else:
            w.add_tensor(gguf_name(name), arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# -- a Llama-2-style SentencePiece BPE -----------------------------------------------------------


def llama2_style_tokenizer(vocab_size: int = 400):
    """A Llama 2 ``tokenizer.json`` look-alike built with ``tokenizers`` itself:
    <unk> <s> </s>, the 256 byte tokens, then pieces learnt by BPE training (spaces as
    ``▁``, one in front of the text), byte fallback. Returns (tokenizer, tokens, scores,
    token types) — the last three as llama.cpp's converter stores them in a GGUF (a
    merged piece scores minus its merge rank, so earlier merges win)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False)
    trainer_tok.train_from_iterator(CORPUS, trainer)
    raw = json.loads(trainer_tok.to_str())
    learnt = sorted(raw["model"]["vocab"].items(), key=lambda kv: kv[1])
    merges = [
        tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in raw["model"]["merges"]
    ]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    scores = [0.0, 0.0, 0.0] + [0.0] * 256
    rank = {a + b: i for i, (a, b) in enumerate(merges)}
    for piece, _ in learnt:
        tokens.append(piece)
        types.append(1)
        scores.append(-float(rank.get(piece, -1) + 1) if piece in rank else 0.0)
    vocab = {t: i for i, t in enumerate(tokens)}
    ref = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>",
                               byte_fallback=True, fuse_unk=True))  # fmt: skip
    ref.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    ref.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    from tokenizers import AddedToken

    ref.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<s>", "</s>")])
    return ref, tokens, scores, types


def write_spm_gguf(model: Model, path: Path, tokens, scores, types) -> Path:
    """A GGUF with a SentencePiece vocabulary (tokenizer.ggml.model = "llama")."""
    import gguf

    cfg = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(cfg.rope_theta)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    for name, arr in model.tensors().items():
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if name.endswith("q_proj.weight"):
            arr = llama_cpp_permute(arr, cfg.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            arr = llama_cpp_permute(arr, cfg.num_key_value_heads)
        w.add_tensor(gguf_name(name), arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
