"""The model card: what a loaded model is, in a few labelled lines.

Name, architecture, parameters, file format and quantization, context and tokenizer —
read from the model's config and from what its file said (``model.source``), never
assumed. The welcome screen (and an "Open model…" dialog) can show the rows as they are.

>>> from llm_anatomy_tui.core.config import LlamaConfig
>>> from llm_anatomy_tui.core.weights import init_random
>>> card = model_card(init_random(LlamaConfig(300, 32, 64, 2, 4, 2, 64), name="tiny"))
>>> [label for label, _ in card.rows]
['name', 'architecture', 'parameters', 'file', 'context', 'tokenizer']
>>> dict(card.rows)["architecture"]
'Llama · 2 layers · width 32 · 4 query heads sharing 2 K/V heads of 8'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.config import FAMILIES


@dataclass(frozen=True)
class ModelCard:
    """Labelled one-line facts about a model, in display order."""

    rows: tuple[tuple[str, str], ...]

    def text(self) -> str:
        """The card as plain text, one ``label  value`` line per row."""
        width = max(len(label) for label, _ in self.rows)
        return "\n".join(f"{label:<{width}}  {value}" for label, value in self.rows)


def _parameters(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f} B"
    if n >= 1e6:
        return f"{n / 1e6:.1f} M"
    return f"{n:,}"


def model_card(model: Any) -> ModelCard:
    """The card of a loaded :class:`~llm_anatomy_tui.core.weights.Model`."""
    cfg = model.config
    src = model.source
    family = FAMILIES.get(cfg.model_type, cfg.model_type)
    extras = []
    if cfg.qkv_bias:
        extras.append("q/k/v biases")
    if cfg.qk_norm:
        extras.append("q/k RMSNorm")
    if cfg.rope_scaling is not None:
        extras.append(f"llama3 RoPE scaling ×{cfg.rope_scaling.factor:g}")
    if not cfg.tie_word_embeddings:
        extras.append("untied output head")
    heads = (
        f"{cfg.num_attention_heads} heads of {cfg.dim_head}"
        if cfg.num_attention_heads == cfg.num_key_value_heads
        else f"{cfg.num_attention_heads} query heads sharing {cfg.num_key_value_heads} "
        f"K/V heads of {cfg.dim_head}"
    )
    arch = f"{family} · {cfg.num_hidden_layers} layers · width {cfg.hidden_size} · {heads}"
    if extras:
        arch += " · " + ", ".join(extras)
    n = cfg.parameter_count()
    params = f"{_parameters(n)} ({n * 4 / 1e6:,.0f} MB as float32 in memory)"
    if src is None:
        file = "built in memory (not read from a file)"
    elif src.format == "gguf":
        file = f"GGUF · stored as {src.quantization} · dequantized to float32"
    else:
        file = f"safetensors · stored as {src.quantization}"
    context = f"{cfg.max_position_embeddings:,} tokens"
    if cfg.trained_context is not None:
        context += f" (trained for {cfg.trained_context:,}; the app uses at most this many)"
    tok = model.tokenizer
    if tok is None:
        tokenizer = "built-in anatomy-mini vocabulary (8,193 tokens)"
    else:
        tokenizer = tok.description
        if tok.prefix():
            tokenizer += " · starts each text with its BOS token"
        if tok.chat_template:
            tokenizer += " · has a chat template"
    name = (src.display_name if src is not None and src.display_name else "") or model.name
    return ModelCard(
        (
            ("name", name),
            ("architecture", arch),
            ("parameters", params),
            ("file", file),
            ("context", context),
            ("tokenizer", tokenizer),
        )
    )
