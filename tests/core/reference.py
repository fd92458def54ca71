"""An independent, slow reference for the Llama forward pass.

Plain Python loops over Python floats (float64), written from the math of
``transformers``' ``LlamaForCausalLM`` — RMSNorm, rotate-half RoPE, grouped-query causal
attention, SwiGLU — and sharing no code with ``llm_anatomy_tui.core``: no numpy, no ops.
It reads weights by their Hugging Face names in the ``[out, in]`` layout, as nested lists.

The forward pass runs one position at a time and keeps every layer's keys and values in
lists, so causality holds by construction (a position only ever sees keys already
appended) and the work of each position is exactly that of a cached decode step.
Every multiply-add in a dot product is counted (``Counter``), which is the independent
check of the multiply-add formulas in ``core.generation``.
"""

from __future__ import annotations

import math


class Counter:
    """Counts multiply-adds, one per ``acc += a * b`` executed."""

    def __init__(self) -> None:
        self.macs = 0


def dot(u: list[float], v: list[float], counter: Counter | None = None) -> float:
    if len(u) != len(v):
        raise ValueError("length mismatch")
    acc = 0.0
    for a, b in zip(u, v, strict=True):
        acc += a * b
        if counter is not None:
            counter.macs += 1
    return acc


def matvec(w: list[list[float]], x: list[float], counter: Counter | None = None) -> list[float]:
    """y[o] = sum_i w[o][i] * x[i] for a weight in the [out, in] layout."""
    return [dot(row, x, counter) for row in w]


def rms_norm(x: list[float], weight: list[float], eps: float) -> list[float]:
    mean_square = sum(v * v for v in x) / len(x)
    inv = 1.0 / math.sqrt(mean_square + eps)
    return [v * inv * g for v, g in zip(x, weight, strict=True)]


def silu(z: float) -> float:
    # z * sigmoid(z), written so exp never overflows for large |z|
    if z >= 0:
        return z / (1.0 + math.exp(-z))
    e = math.exp(z)
    return z * e / (1.0 + e)


def swiglu(gate: list[float], up: list[float]) -> list[float]:
    return [silu(g) * u for g, u in zip(gate, up, strict=True)]


def softmax(xs: list[float]) -> list[float]:
    m = max(xs)
    es = [math.exp(x - m) for x in xs]
    total = sum(es)
    return [e / total for e in es]


def rope(
    vec: list[float], position: int, theta: float, speeds: list[float] | None = None
) -> list[float]:
    """Rotate pair (i, i + D/2) by angle position * theta^(-2i/D) (rotate-half layout),
    or by position * speeds[i] when the angular speeds are given (a scaled RoPE)."""
    dim = len(vec)
    half = dim // 2
    out = [0.0] * dim
    for i in range(half):
        speed = theta ** (-(2.0 * i) / dim) if speeds is None else speeds[i]
        angle = position * speed
        c, s = math.cos(angle), math.sin(angle)
        a, b = vec[i], vec[i + half]
        out[i] = a * c - b * s
        out[i + half] = b * c + a * s
    return out


def llama3_speeds(dim: int, theta: float, scaling: dict) -> list[float]:
    """Llama 3.1's RoPE speeds, one pair at a time (Meta's ``apply_scaling``): a pair whose
    wavelength is longer than original_context / low_freq_factor turns ``factor`` times
    slower, one shorter than original_context / high_freq_factor keeps its speed, and
    in between the two are mixed linearly in ``original_context / wavelength``."""
    factor = scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    speeds = []
    for i in range(dim // 2):
        speed = theta ** (-(2.0 * i) / dim)
        wavelength = 2 * math.pi / speed
        if wavelength < old / high:
            speeds.append(speed)
        elif wavelength > old / low:
            speeds.append(speed / factor)
        else:
            mix = (old / wavelength - low) / (high - low)
            speeds.append((1 - mix) * speed / factor + mix * speed)
    return speeds


def config_rope(config: dict) -> tuple[float, dict | None]:
    """theta and the llama3 scaling dict from an HF config, 4.x or 5.x spelling."""
    params = config.get("rope_parameters") or {}
    theta = params.get("rope_theta", config.get("rope_theta", 10000.0))
    scaling = config.get("rope_scaling") or (
        params if params.get("rope_type", "default") != "default" else None
    )
    return theta, scaling


def attention(
    q: list[list[list[float]]],
    k: list[list[list[float]]],
    v: list[list[list[float]]],
    counter: Counter | None = None,
) -> tuple[list[list[list[float]]], list[list[list[float]]]]:
    """Causal grouped-query attention with an explicit mask.

    q: [H][T][D], k and v: [Hkv][T][D]. Query head h reads K/V head h // (H / Hkv).
    Returns (weights [H][T][T] with masked cells 0.0, outputs [H][T][D]).
    """
    n_heads, n_kv = len(q), len(k)
    group = n_heads // n_kv
    n_tok, dim = len(q[0]), len(q[0][0])
    weights, outputs = [], []
    for h in range(n_heads):
        kv = h // group
        w_h, o_h = [], []
        for t in range(n_tok):
            scores = [
                dot(q[h][t], k[kv][s], counter) / math.sqrt(dim) if s <= t else -math.inf
                for s in range(n_tok)
            ]
            visible = softmax([sc for sc in scores if sc != -math.inf])
            row = visible + [0.0] * (n_tok - len(visible))  # masked (future) cells: exactly 0
            w_h.append(row)
            out = [0.0] * dim
            for s in range(t + 1):
                for j in range(dim):
                    out[j] += row[s] * v[kv][s][j]
                    if counter is not None:
                        counter.macs += 1
            o_h.append(out)
        weights.append(w_h)
        outputs.append(o_h)
    return weights, outputs


def forward(
    tensors: dict[str, list],
    config: dict,
    tokens: list[int],
    counter: Counter | None = None,
    logits_at: str = "all",
) -> list[list[float]]:
    """Logits rows for ``tokens``: at every position (``logits_at='all'``), the last one
    only (``'last'``), or none (``'none'``: the blocks only, to count their work).

    ``tensors`` maps HF names to nested lists; ``config`` holds HF config fields.
    """
    n_layers = config["num_hidden_layers"]
    n_heads = config["num_attention_heads"]
    n_kv = config["num_key_value_heads"]
    dim = config.get("head_dim") or config["hidden_size"] // n_heads
    eps = config["rms_norm_eps"]
    theta, scaling = config_rope(config)
    speeds = llama3_speeds(dim, theta, scaling) if scaling else None
    group = n_heads // n_kv
    head = tensors.get("lm_head.weight", tensors["model.embed_tokens.weight"])
    keys = [[[] for _ in range(n_kv)] for _ in range(n_layers)]  # [layer][kv head][pos][D]
    values = [[[] for _ in range(n_kv)] for _ in range(n_layers)]
    rows = []
    for pos, tok in enumerate(tokens):
        x = list(tensors["model.embed_tokens.weight"][tok])
        for layer in range(n_layers):
            p = f"model.layers.{layer}."
            xn = rms_norm(x, tensors[p + "input_layernorm.weight"], eps)
            q = matvec(tensors[p + "self_attn.q_proj.weight"], xn, counter)
            k = matvec(tensors[p + "self_attn.k_proj.weight"], xn, counter)
            v = matvec(tensors[p + "self_attn.v_proj.weight"], xn, counter)
            if p + "self_attn.q_proj.bias" in tensors:  # Qwen2
                q = [a + b for a, b in zip(q, tensors[p + "self_attn.q_proj.bias"], strict=True)]
                k = [a + b for a, b in zip(k, tensors[p + "self_attn.k_proj.bias"], strict=True)]
                v = [a + b for a, b in zip(v, tensors[p + "self_attn.v_proj.bias"], strict=True)]
            q_heads = [q[h * dim : (h + 1) * dim] for h in range(n_heads)]
            k_heads = [k[g * dim : (g + 1) * dim] for g in range(n_kv)]
            if p + "self_attn.q_norm.weight" in tensors:  # Qwen3: RMSNorm per head
                q_heads = [
                    rms_norm(qh, tensors[p + "self_attn.q_norm.weight"], eps) for qh in q_heads
                ]
                k_heads = [
                    rms_norm(kh, tensors[p + "self_attn.k_norm.weight"], eps) for kh in k_heads
                ]
            for g in range(n_kv):
                keys[layer][g].append(rope(k_heads[g], pos, theta, speeds))
                values[layer][g].append(v[g * dim : (g + 1) * dim])
            merged: list[float] = []
            for h in range(n_heads):
                qh = rope(q_heads[h], pos, theta, speeds)
                kv = h // group
                scores = [dot(qh, kk, counter) / math.sqrt(dim) for kk in keys[layer][kv]]
                w = softmax(scores)
                out = [0.0] * dim
                for s, vv in enumerate(values[layer][kv]):
                    for j in range(dim):
                        out[j] += w[s] * vv[j]
                        if counter is not None:
                            counter.macs += 1
                merged.extend(out)
            attn = matvec(tensors[p + "self_attn.o_proj.weight"], merged, counter)
            x = [a + b for a, b in zip(x, attn, strict=True)]
            xn = rms_norm(x, tensors[p + "post_attention_layernorm.weight"], eps)
            gate = matvec(tensors[p + "mlp.gate_proj.weight"], xn, counter)
            up = matvec(tensors[p + "mlp.up_proj.weight"], xn, counter)
            down = matvec(tensors[p + "mlp.down_proj.weight"], swiglu(gate, up), counter)
            x = [a + b for a, b in zip(x, down, strict=True)]
        if logits_at == "all" or (logits_at == "last" and pos == len(tokens) - 1):
            h = rms_norm(x, tensors["model.norm.weight"], eps)
            rows.append(matvec(head, h, counter))
    return rows
