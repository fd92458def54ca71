"""Chapter 16's fixed content: the four lenses, the levers, what this app simplified, and
where to go next. Plain data (tuples of strings and chapter numbers); the scale comparison
is computed from the loaded model's config and a real 8B architecture.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.config import LlamaConfig
from ..core.quant import LLAMA_3_8B
from ..core.weights import expected_shapes


@dataclass(frozen=True)
class Pointer:
    """A named idea, one or two sentences about it, and the chapters that show it."""

    name: str
    text: str
    chapters: tuple[int, ...]


LENSES: tuple[Pointer, ...] = (
    Pointer("Weights", "What training stored: the embeddings, attention and feed-forward "
            "matrices. Change them only by training (or by squeezing them).", (2, 4, 12)),
    Pointer("Context", "What the model is given to read on this call: the tokens of your "
            "prompt, the window they must fit in, the cache that holds them.", (1, 8, 14)),
    Pointer("Scaffolding", "What the program around the model adds: chat templates, system "
            "prompts, stop sequences, tools. Same weights, different behaviour.", (13, 5)),
    Pointer("Decoding", "How one token is chosen from the odds: temperature, filters, the "
            "seeded draw. A dull or a wild answer can come from the same distribution.", (5,)),
)  # fmt: skip
"""Four places to look when a model does something: each tied to the chapters that show it."""

LEVERS: tuple[Pointer, ...] = (
    Pointer("Fine-tuning / LoRA", "Train further on chosen examples; LoRA trains a small "
            "low-rank correction instead of every weight.", (13, 6, 12)),
    Pointer("Quantization", "Store weights in fewer bits: a quarter of the memory or less, "
            "at a measurable cost in accuracy.", (15,)),
    Pointer("Context extension", "Rescale RoPE's angles and train briefly to read longer "
            "inputs; the KV cache grows with every position.", (10, 14)),
    Pointer("Pruning", "Remove weights, heads or layers that matter little, then recover "
            "with a little training. Not shown in this app; see the glossary (F2).", ()),
    Pointer("Decoding settings", "Change temperature, top-p, penalties and stop sequences: "
            "no training, immediate effect, on every call.", (5,)),
)  # fmt: skip
"""Changes you can make after pretraining, each tied to where you can try or see it."""

NEXT_STEPS: tuple[tuple[str, str], ...] = (
    ("Attention Is All You Need", "Vaswani et al., 2017 — the transformer paper."),
    ("The Illustrated Transformer", "Jay Alammar's picture-by-picture walk through it."),
    ("nanoGPT, llm.c and “Let's build GPT”", "Andrej Karpathy: a GPT trained from scratch, "
     "in PyTorch and in plain C, and the lecture that builds it."),
    ("llama2.c and picoGPT", "A Llama forward pass in one C file; GPT-2 in about 60 lines "
     "of numpy."),
    ("RoFormer", "Su et al., 2021 — rotary position embeddings (chapter 10)."),
    ("GQA", "Ainslie et al., 2023 — grouped-query attention (chapter 9)."),
    ("LoRA and DPO", "Hu et al., 2021; Rafailov et al., 2023 — cheap fine-tuning and "
     "preference tuning without a reward model."),
    ("LLM.int8(), GPTQ and llama.cpp", "Dettmers et al., 2022; Frantar et al., 2022; and "
     "the project behind GGUF and Q4_0."),
    ("FlashAttention and PagedAttention (vLLM)", "Dao et al., 2022; Kwon et al., 2023 — how "
     "real servers compute attention and keep KV caches."),
    ("Chinchilla", "Hoffmann et al., 2022 — how many tokens a model of a given size should "
     "see."),
    ("Mixtral of Experts", "Jiang et al., 2024 — a mixture-of-experts model you can run."),
    ("A Mathematical Framework for Transformer Circuits", "Elhage et al., 2021, and "
     "nostalgebraist's logit lens (2020) — reading what the layers do."),
    ("TinyStories", "Eldan and Li, 2023 — the small-vocabulary stories the shipped model "
     "learned from."),
)  # fmt: skip
"""Papers and projects, named (the app fetches nothing)."""


def n_params(config: LlamaConfig) -> int:
    """Parameters of a Llama model with this config (a tied embedding counted once).

    >>> n_params(LLAMA_3_8B)
    8030261248
    """
    return sum(
        _prod(shape)
        for name, shape in expected_shapes(config).items()
        if not (config.tie_word_embeddings and name == "lm_head.weight")
    )


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


def simplifications(config: LlamaConfig, name: str, big_vocab: int | None) -> tuple[str, ...]:
    """What this app simplified, with the loaded model's own sizes beside a real 8B model's
    (Meta's Llama-3-8B architecture). ``big_vocab``: o200k_base's size, if loaded.

    >>> lines = simplifications(LLAMA_3_8B, "x", 200_019)
    >>> lines[0].startswith("Scale: x has 8,030,261,248 parameters")
    True
    """
    mine, big = n_params(config), n_params(LLAMA_3_8B)
    vocab = f"{big_vocab:,}" if big_vocab else "about 200,000"
    return (
        f"Scale: {name} has {mine:,} parameters ({config.num_hidden_layers} layers, "
        f"width {config.hidden_size}); Llama-3-8B has {big:,} ({LLAMA_3_8B.num_hidden_layers}"
        f" layers, width {LLAMA_3_8B.hidden_size}), about {big / mine:,.0f} times more.",
        f"Tokenizer: {config.vocab_size:,} tokens here; o200k_base has {vocab}, Llama-3 "
        f"{LLAMA_3_8B.vocab_size:,}. Bigger vocabularies read more text per token.",
        "Dense, not a mixture of experts: every token here uses every weight. Many large "
        "models route each token through a few of many feed-forward experts.",
        f"Context: {config.max_position_embeddings:,} positions here; real models read "
        "8,000 to over 1,000,000, with RoPE rescaling (YaRN and others), sliding windows "
        "and paged or quantized KV caches.",
        "Training: the shipped anatomy-mini saw about 20 million tokens of children's "
        "stories in about an hour on two CPU cores, and no post-training: it continues text "
        "and follows no instructions. Chat models see trillions of tokens, then fine-tuning "
        "and preference tuning.",
        "Arithmetic: float32 numpy on a CPU, one sequence at a time. Real servers batch many "
        "requests on GPUs in 16, 8 or 4 bits with fused attention kernels.",
    )
