"""Bounds on sizes read from files and typed by people, checked before anything is allocated.

A ``config.json`` is data, and data can be wrong: ``max_position_embeddings: 1000000000``
once made the loader build 11.7 GB of RoPE tables before anything failed. Every size that
decides an allocation is checked here first, against limits far above any model this app
can usefully run in numpy (the largest supported families have 128K-token windows, 8K–16K
widths and ~150K-token vocabularies), so a real model is never refused while a broken or
hostile file is refused at once, with the field, its value and the limit.

>>> config_problem({"hidden_size": 128, "max_position_embeddings": 1_000_000_000})
'max_position_embeddings is 1,000,000,000, more than llm-anatomy supports (at most 16,777,216)'
>>> config_problem({"hidden_size": 128, "rope_theta": float("inf")}) is None
False
"""

from __future__ import annotations

import math
from collections.abc import Mapping

MAX_CONFIG_VALUES: dict[str, int] = {
    "vocab_size": 1 << 21,  # 2,097,152 (Gemma-size vocabularies are ~256K)
    "hidden_size": 1 << 16,
    "intermediate_size": 1 << 18,
    "num_hidden_layers": 1024,
    "num_attention_heads": 1024,
    "num_key_value_heads": 1024,
    "max_position_embeddings": 1 << 24,  # 16,777,216 positions
    "head_dim": 4096,
}
"""Largest accepted value of each config field that sizes an array."""

MAX_PARAMETERS = 1 << 36
"""~69 billion parameters: beyond any model numpy can hold in a classroom machine's memory
(the loader refuses earlier if the weights do not fit; this bounds the arithmetic)."""


def config_problem(values: Mapping[str, object]) -> str | None:
    """The first size in ``values`` (config field -> value) that is out of bounds, as one
    line, or ``None``. Non-finite floats (``rope_theta``, ``rms_norm_eps``) count too."""
    for name, limit in MAX_CONFIG_VALUES.items():
        value = values.get(name)
        if name == "max_position_embeddings" and isinstance(values.get("trained_context"), int):
            value = values["trained_context"]  # the file's value, before a loader cut it
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            return f"{name} is {value:,}, more than llm-anatomy supports (at most {limit:,})"
    for name in ("rope_theta", "rms_norm_eps"):
        value = values.get(name)
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name} is {value!r}; it must be a finite number"
    return None


def parameter_problem(parameters: int) -> str | None:
    """Refuse a parameter count the arithmetic above could not even hold."""
    if parameters > MAX_PARAMETERS:
        return f"the config describes {parameters:,} parameters, more than llm-anatomy supports"
    return None


def rope_positions(needed: int, window: int) -> int:
    """How many RoPE positions to tabulate when ``needed`` are used now: the next power of
    two at or above ``needed`` (at least 256), never more than the window.

    >>> rope_positions(10, 256), rope_positions(300, 1_000_000), rope_positions(5, 100)
    (256, 512, 100)
    """
    size = 256
    while size < needed:
        size *= 2
    return min(size, window)


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KB'`` (powers of 1,024, one decimal).

    >>> format_bytes(12_884_901_888)
    '12.0 GB'
    """
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TB"  # pragma: no cover


def available_memory() -> int | None:
    """Bytes of memory the system can still give this process (Linux ``MemAvailable``,
    capped by a cgroup limit if one is set), or ``None`` if unknown."""
    avail: int | None = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        avail = None
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = open(path, encoding="ascii").read().strip()  # noqa: SIM115
        except OSError:
            continue
        if raw.isdigit() and int(raw) < (1 << 60):
            try:
                used_raw = open(  # noqa: SIM115
                    path.replace("memory.max", "memory.current").replace(
                        "limit_in_bytes", "usage_in_bytes"
                    ),
                    encoding="ascii",
                ).read()
                left = int(raw) - int(used_raw.strip())
            except (OSError, ValueError):
                left = int(raw)
            avail = left if avail is None else min(avail, left)
        break
    return avail


def train_step_bytes(config, batch: int, window: int) -> int:  # noqa: ANN001
    """Estimated peak memory of one training step (forward + backward + AdamW), in bytes.

    Parameters: the weights, their gradients, the clipped copy and AdamW's two moments
    (5 float32 copies). Activations kept for the backward pass, per token and layer: the
    residual stream and norms, q/k/v, the SwiGLU gate/up/hidden (and their gradients
    while the layer is differentiated), and attention scores and weights (``window`` per
    head each); the vocabulary-sized logits are processed in slices, so they add only a
    fraction of a row per token. Checked against tracemalloc's measured peak in
    ``tests/core/test_harden_train.py``.
    """
    d, f, v = config.hidden_size, config.intermediate_size, config.vocab_size
    q, kv, h = config.q_width, config.kv_width, config.num_attention_heads
    per_token_layer = 6 * d + 2 * q + 2 * kv + 4 * f + 2 * h * window
    tokens = batch * window
    activations = tokens * (config.num_hidden_layers * per_token_layer + 2 * d + v // 4)
    return 4 * (5 * config.parameter_count() + activations)
