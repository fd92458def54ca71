"""KV-cache memory for real architectures: presets with their published config numbers, and
the calculator chapter 14 shows.

A decoder keeps, for every layer and every position, one key and one value vector per KV
head. The cache therefore holds ``2 · L · H_kv · d_head · T`` numbers; times the bytes of
one number it is the memory a context of ``T`` tokens costs:

>>> kv_bytes(LLAMA_3_8B)          # 2 · 32 · 8 · 128 · 8,192 · 2 bytes
1073741824
>>> format_bytes(kv_bytes(LLAMA_3_8B))
'1.07 GB'

The block formats (``q8_0``, ``q4_0``) store 8- or 4-bit codes plus one fp16 scale per
block of 32 numbers along the head dimension (per head when ``d_head`` is not a multiple
of 32), exactly as :mod:`.quant_kv` stores anatomy-mini's quantized cache; their bytes per
number are 34/32 = 1.0625 and 18/32 = 0.5625.

Preset numbers are the ``config.json`` fields of the public checkpoints
(``num_hidden_layers``, ``num_attention_heads``, ``num_key_value_heads``,
``hidden_size / num_attention_heads``, ``max_position_embeddings``, ``torch_dtype``;
GPT-2's ``n_layer``, ``n_head``, ``n_embd / n_head``, ``n_ctx``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from ..core.config import LlamaConfig
from ..core.quant_kv import kv_block_size

DTYPE_BYTES: dict[str, Fraction] = {
    "fp32": Fraction(4),
    "fp16": Fraction(2),
    "bf16": Fraction(2),
    "fp8": Fraction(1),
    "int8": Fraction(1),
    "q8_0": Fraction(34, 32),
    "q4_0": Fraction(18, 32),
}
"""Bytes per cached number (block formats: codes plus their share of the fp16 scale)."""

DTYPE_NOTES: dict[str, str] = {
    "fp32": "32-bit float (anatomy-mini's cache)",
    "fp16": "16-bit float",
    "bf16": "bfloat16 (how most open models are served)",
    "fp8": "8-bit float",
    "int8": "8-bit integer, scales not counted",
    "q8_0": "8-bit codes + an fp16 scale per 32 numbers",
    "q4_0": "4-bit codes + an fp16 scale per 32 numbers",
}

_BLOCK_BITS = {"q8_0": 8, "q4_0": 4}

MAX_LAYERS = 1_000
MAX_KV_HEADS = 1_024
MAX_HEAD_DIM = 4_096
MAX_CONTEXT = 10_000_000


class KVInputError(ValueError):
    """A calculator field holds something that is not a valid number for it (one line)."""


@dataclass(frozen=True)
class KVArch:
    """The numbers of one architecture that decide its KV-cache size."""

    name: str
    layers: int
    kv_heads: int
    head_dim: int
    context: int
    dtype: str
    attention_heads: int
    """Query heads; equal to ``kv_heads`` for multi-head attention, more under GQA."""
    note: str = ""

    @property
    def bytes_per_value(self) -> Fraction:
        """Bytes per cached number for this dtype and head dimension."""
        bits = _BLOCK_BITS.get(self.dtype)
        if bits is None:
            return DTYPE_BYTES[self.dtype]
        block = kv_block_size(self.head_dim)
        per_head = Fraction(self.head_dim * bits, 8) + 2 * (self.head_dim // block)
        return per_head / self.head_dim

    @property
    def values_per_token(self) -> int:
        """Numbers one token adds to the cache: 2 · L · H_kv · d_head."""
        return 2 * self.layers * self.kv_heads * self.head_dim

    @property
    def gqa_group(self) -> int:
        """Query heads sharing one K/V head (1 = plain multi-head attention)."""
        return max(1, self.attention_heads // self.kv_heads)


def kv_bytes(arch: KVArch, positions: int | None = None) -> int:
    """Bytes of the K and V caches for ``positions`` tokens (default: the full context).

    >>> kv_bytes(GPT2_SMALL)          # 2 · 12 · 12 · 64 · 1,024 · 4
    75497472
    """
    t = arch.context if positions is None else positions
    total = arch.values_per_token * t * arch.bytes_per_value
    return int(total) if total.denominator == 1 else int(-(-total.numerator // total.denominator))


def bytes_per_token(arch: KVArch) -> Fraction:
    """Bytes one more token adds to the cache."""
    return arch.values_per_token * arch.bytes_per_value


def formula_text(arch: KVArch, positions: int | None = None) -> str:
    """``2 · L · H_kv · d_head · T · bytes`` with this architecture's numbers filled in.

    >>> formula_text(LLAMA_3_8B)
    '2 · 32 · 8 · 128 · 8,192 · 2'
    """
    t = arch.context if positions is None else positions
    return (
        f"2 · {arch.layers:,} · {arch.kv_heads:,} · {arch.head_dim:,} · {t:,} · "
        f"{bytes_text(arch.bytes_per_value)}"
    )


def bytes_text(value: Fraction) -> str:
    """A bytes-per-value figure as a short exact decimal ("2", "1.0625", "0.5625")."""
    if value.denominator == 1:
        return str(value.numerator)
    text = f"{float(value):.6f}".rstrip("0")
    return text


def format_bytes(n: int | float) -> str:
    """Bytes in SI units with three significant figures ("1.07 GB", "61.4 kB", "512 B").

    >>> format_bytes(512), format_bytes(61_440), format_bytes(17_179_869_184)
    ('512 B', '61.4 kB', '17.2 GB')
    """
    n = float(n)
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            value = n / size
            decimals = 2 if value < 10 else (1 if value < 100 else 0)
            return f"{value:.{decimals}f} {unit}"
    return f"{int(n)} B"


def format_gib(n: int) -> str:
    """Bytes in binary units ("1.00 GiB"), for readers who think in powers of two."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


# -- presets ------------------------------------------------------------------------------

LLAMA_3_8B = KVArch("Llama-3-8B", 32, 8, 128, 8_192, "bf16", 32, "GQA: 4 query heads per KV head")
LLAMA_31_8B = replace(LLAMA_3_8B, name="Llama-3.1-8B (128K)", context=131_072,
                      note="same layers, 16× the context")  # fmt: skip
LLAMA_3_70B = KVArch("Llama-3-70B", 80, 8, 128, 8_192, "bf16", 64, "GQA: 8 query heads per KV head")
LLAMA_2_7B = KVArch("Llama-2-7B (MHA)", 32, 32, 128, 4_096, "fp16", 32, "every head keeps its K, V")
MISTRAL_7B = KVArch(
    "Mistral-7B-v0.3", 32, 8, 128, 32_768, "bf16", 32, "GQA: 4 query heads per KV head"
)
GPT2_SMALL = KVArch("GPT-2 small (MHA)", 12, 12, 64, 1_024, "fp32", 12, "every head keeps its K, V")

PRESETS: tuple[KVArch, ...] = (
    LLAMA_3_8B,
    LLAMA_31_8B,
    LLAMA_3_70B,
    LLAMA_2_7B,
    MISTRAL_7B,
    GPT2_SMALL,
)
"""Real architectures (anatomy-mini is added from its own config by :func:`presets_with`)."""


def arch_from_config(config: LlamaConfig, name: str = "anatomy-mini") -> KVArch:
    """The calculator's numbers for a loaded model (its cache is float32 here)."""
    return KVArch(
        name,
        config.num_hidden_layers,
        config.num_key_value_heads,
        config.dim_head,
        config.max_position_embeddings,
        "fp32",
        config.num_attention_heads,
        "the model in this app",
    )


def presets_with(config: LlamaConfig | None, name: str = "anatomy-mini") -> tuple[KVArch, ...]:
    """:data:`PRESETS`, with the loaded model (``config``, called ``name``) first when there
    is one."""
    return ((arch_from_config(config, name),) if config is not None else ()) + PRESETS


# -- the editable fields -----------------------------------------------------------------

FIELDS: dict[str, tuple[str, int, int]] = {
    "layers": ("layers", 1, MAX_LAYERS),
    "kv_heads": ("KV heads", 1, MAX_KV_HEADS),
    "head_dim": ("head dim", 1, MAX_HEAD_DIM),
    "context": ("context", 1, MAX_CONTEXT),
}
"""Editable integer fields: (label, smallest, largest)."""


def parse_field(field: str, text: str) -> int:
    """A calculator field's text as a whole number in its range, or :class:`KVInputError`.

    >>> parse_field("context", "8,192")
    8192
    >>> parse_field("layers", "0")
    Traceback (most recent call last):
    ...
    llm_anatomy_tui.views.kv_memory.KVInputError: layers must be between 1 and 1,000; got 0
    """
    label, lo, hi = FIELDS[field]
    clean = text.strip().replace(",", "").replace("_", "")
    if not clean:
        raise KVInputError(f"{label}: type a whole number ({lo:,}–{hi:,})")
    multiplier = 1
    if clean[-1:] in ("k", "K"):  # "128k" context
        multiplier, clean = 1024, clean[:-1]
    try:
        value = int(clean) * multiplier
    except ValueError:
        raise KVInputError(f"{label}: {text.strip()!r} is not a whole number") from None
    if not lo <= value <= hi:
        raise KVInputError(f"{label} must be between {lo:,} and {hi:,}; got {value:,}")
    return value


def with_field(arch: KVArch, field: str, text: str) -> KVArch:
    """``arch`` with one field replaced by the parsed ``text`` (name becomes "custom")."""
    value = parse_field(field, text)
    if getattr(arch, field) == value:
        return arch
    return replace(arch, **{field: value}, name="custom")


def with_dtype(arch: KVArch, dtype: str) -> KVArch:
    if dtype not in DTYPE_BYTES:
        raise KVInputError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_BYTES)}")
    return arch if arch.dtype == dtype else replace(arch, dtype=dtype)
