"""Chapter 14's prose (plain data)."""

from __future__ import annotations

LEAD = (
    "Prefill runs the prompt through the model in one pass and stores every token's keys "
    "and values. Decode adds one token per step: only the new token is computed; its "
    "query reads the stored keys and values of all before it."
)

EXPLAINER: tuple[tuple[str, str], ...] = (
    (
        "Why a cache",
        "A token's key and value vectors depend only on the tokens before it, so once "
        "computed they never change. Without a cache every step recomputes them for the "
        "whole context: the work of a step grows with its length, and a story of n tokens "
        "costs about n²/2 token-passes. With the cache each step runs one token: the work "
        "stays almost flat, and only the attention scores grow, one more key per step.",
    ),
    (
        "What it costs",
        "Memory. Every layer keeps a key and a value vector per KV head for every position: "
        "2 · L · H_kv · d_head numbers per token, at 2 bytes each in bf16. For Llama-3-8B "
        "that is 128 KiB per token, 1 GiB for an 8,192-token context and 16 GiB at 128K — "
        "as much as the 16 GB of weights. That is why long contexts are limited by memory, "
        "and why models share K/V heads (grouped-query attention) and quantize the cache.",
    ),
    (
        "Same numbers, different work",
        "Cached and uncached decoding compute the same function: the logits agree to "
        "float32 rounding (a few millionths, from summing in a different order). What "
        "differs is how many multiply-adds it takes and how long it takes.",
    ),
    (
        "Quantizing the cache",
        "Storing each key and value in 8 or 4 bits, with one fp16 scale per block of 32 "
        "numbers (llama.cpp's q8_0 / q4_0), cuts the cache to about a quarter or an eighth. "
        "The model then reads slightly rounded keys and values; the drift table measures "
        "what that does to the next-token distribution, step by step. Here the shared "
        "story keeps its float32 cache; the quantized one runs alongside on the same "
        "tokens.",
    ),
    (
        "When the window is full",
        "The cache holds no more positions than the model's context window (the cache "
        "line above says how many: 256 for anatomy-mini). When "
        "prompt and output fill it, generation stops and says so. (Chat apps instead drop "
        "or summarise the oldest turns; this app cuts a too-long prompt from the front.)",
    ),
)


def ms_text(seconds: float) -> str:
    """Seconds as milliseconds, two places.

    >>> ms_text(0.0123456)
    '12.35'
    """
    return f"{seconds * 1000:.2f}"


def macs_text(macs: int) -> str:
    """Multiply-adds in millions, two places.

    >>> macs_text(1_234_567)
    '1.23'
    """
    return f"{macs / 1e6:.2f}"


def prefill_and_decode(n_prompt: int, n_generated: int) -> list[str | tuple[str, str]]:
    """The status line's count of the work: the prefill yields the first new token, each
    decode step one more — so "3 tokens generated" is the prefill and 2 decode steps.

    >>> "".join(p if isinstance(p, str) else p[0] for p in prefill_and_decode(18, 3))
    '18 prompt tokens → token 1 · decode: tokens 2–3, one per step'
    """
    prompt = f"{n_prompt} prompt token{'s' if n_prompt != 1 else ''}"
    if n_generated == 0:
        return [f"{prompt} in one pass · no token generated yet"]
    if n_generated == 1:
        return [f"{prompt} → token 1 · ", ("decode: ", "bold"), "from the next step on"]
    later = "token 2" if n_generated == 2 else f"tokens 2–{n_generated}"
    return [f"{prompt} → token 1 · ", ("decode: ", "bold"), f"{later}, one per step"]


def right_aligned(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """The header and rows as lines of right-aligned columns, two spaces apart.

    >>> right_aligned(("a", "bb"), [("123", "4")])
    ['  a  bb', '123   4']
    """
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    return ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in (header, *rows)]
