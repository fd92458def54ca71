"""Where a model's weights came from: file format, per-tensor storage types, tokenizer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ModelSource:
    """What the loaded file said, kept for the model card and chapter 15.

    ``tensor_types`` maps each HF tensor name to its storage type in the file
    (``"F32"``, ``"BF16"``, ``"Q4_1"`` …) — the weights themselves are always float32 in
    memory, dequantized on load.
    """

    path: Path
    format: str  # "safetensors" or "gguf"
    architecture: str  # the family, e.g. "Llama"
    display_name: str = ""
    tensor_types: dict[str, str] = field(default_factory=dict)
    tokenizer: str = ""  # e.g. "tokenizer.json (BPE)", "GGUF gpt2/smollm", "built-in"
    chat_template: str | None = None
    notes: tuple[str, ...] = ()  # e.g. "context cut from 131,072 to 8,192 tokens"

    @property
    def quantization(self) -> str:
        """The matrices' storage types, most common first: e.g. ``"Q4_1 (210), F32 (61)"``."""
        from collections import Counter

        counts = Counter(self.tensor_types.values())
        return ", ".join(f"{kind} ({n})" for kind, n in counts.most_common())
