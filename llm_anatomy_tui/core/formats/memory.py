"""Will a model fit? An estimate from its config alone, made before any weight is read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..config import LlamaConfig
from ..weights import ModelLoadError

MEMORY_ENV = "LLM_ANATOMY_MEMORY_LIMIT_MB"
"""Environment variable: the memory (MB) a model may use, instead of what is available."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a loaded model needs, by part, and the bytes available for it."""

    weights: int  # float32 weights (everything is dequantized on load)
    decode_copies: int  # the largest matrix while it is being fused (twice for a moment)
    file_buffer: int  # the largest transient buffer while loading (the file, mapped)
    kv_cache: int  # one full-context KV cache, float32
    available: int | None

    @property
    def total(self) -> int:
        return self.weights + self.decode_copies + self.file_buffer + self.kv_cache

    def summary(self) -> str:
        mb = 2**20
        parts = (
            f"{self.weights / mb:,.0f} MB float32 weights + {self.decode_copies / mb:,.0f} MB "
            f"while fusing + {self.kv_cache / mb:,.0f} MB KV cache + "
            f"{self.file_buffer / mb:,.0f} MB while reading"
        )
        return f"needs ~{self.total / mb:,.0f} MB ({parts})"


def available_memory() -> int | None:
    """Bytes this process may still use: ``$LLM_ANATOMY_MEMORY_LIMIT_MB`` if set, else
    the kernel's MemAvailable (None where it cannot be read)."""
    limit = os.environ.get(MEMORY_ENV)
    if limit:
        try:
            return int(float(limit) * 2**20)
        except ValueError:
            pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def estimate_memory(config: LlamaConfig, path: Path | None = None) -> MemoryEstimate:
    """What loading ``config``'s model takes: float32 weights, the largest matrix twice
    while it is fused, a full KV cache, and the file itself mapped while it is read."""
    weights = config.parameter_count() * 4
    # while fusing, one matrix exists twice (its parts and the fused copy)
    d = config.hidden_size
    decode = 4 * d * max(config.vocab_size, 2 * config.intermediate_size,
                         config.q_width + 2 * config.kv_width)  # fmt: skip
    kv = 2 * config.num_hidden_layers * config.kv_width * config.max_position_embeddings * 4
    file_bytes = 0
    if path is not None:
        try:
            file_bytes = path.stat().st_size if path.is_file() else 0
        except OSError:
            file_bytes = 0
    return MemoryEstimate(weights, decode, file_bytes, kv, available_memory())


def check_memory(estimate: MemoryEstimate) -> None:
    """Refuse, with the numbers, a model whose estimate exceeds the memory available."""
    if estimate.available is not None and estimate.total > estimate.available:
        raise ModelLoadError(
            f"the model does not fit in memory: it {estimate.summary()}, and "
            f"{estimate.available / 2**20:,.0f} MB are available"
        )
