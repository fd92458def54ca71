"""Chapter 16's recap figures, each against an independent path through the core."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from llm_anatomy_tui.core.generation import Generation
from llm_anatomy_tui.core.model import forward
from llm_anatomy_tui.core.quant import model_nbytes
from llm_anatomy_tui.core.sampling import SamplingSettings, softmax64
from llm_anatomy_tui.core.tokenizers import load_encoding
from llm_anatomy_tui.views.attention_tracker import AttentionTracker
from llm_anatomy_tui.views.recap import STAGES, compute_recap, placeholder_lines

PROMPT = "Once upon a time, a little cat sat on the mat"


@pytest.fixture(scope="module")
def enc():
    return load_encoding("model")


@pytest.mark.parametrize("settings", [SamplingSettings(), SamplingSettings(0.7, top_k=20),
                                      SamplingSettings(temperature=0.0)])  # fmt: skip
def test_recap_figures_match_the_core(tiny_model, enc, settings) -> None:
    ids = enc.encode_ordinary(PROMPT)
    r = compute_recap(tiny_model, enc, ids, settings, seed=7)
    cfg = tiny_model.config
    assert r.ids == tuple(ids)
    assert r.d_model == cfg.hidden_size == tiny_model.embed.shape[1]
    assert r.first_norm == pytest.approx(float(np.sqrt((tiny_model.embed[ids[0]] ** 2).sum())))

    # the strongest link, found by the incremental tracker chapters 8 and 9 use
    snap = AttentionTracker().snapshot(tiny_model, ids)
    last = snap.weights[:, :, -1, :]  # [L, H, T]
    assert r.attn_weight == pytest.approx(float(last.max()), abs=1e-6)
    assert last[r.attn_layer, r.attn_head, r.attn_key] == pytest.approx(r.attn_weight, abs=1e-6)

    # the lens halfway = the same model cut after that many blocks, run to the end
    k = r.lens_after
    cut = dataclasses.replace(tiny_model, layers=tiny_model.layers[:k],
                              config=dataclasses.replace(cfg, num_hidden_layers=k))  # fmt: skip
    lens = forward(cut, ids)[-1]
    assert r.lens_token == int(np.argmax(lens))
    assert r.lens_prob == pytest.approx(float(softmax64(lens).max()), rel=1e-5)

    # the top token, the draw and the cache: step 0 of a real generation
    gen = Generation(tiny_model, ids, settings=settings, seed=7, encoding=enc)
    step = gen.step()
    ((top, _, p),) = step.top(1)
    assert (r.top_token, r.top_prob) == (top, pytest.approx(p, rel=1e-5))
    assert r.drawn_token == step.token
    assert r.draw_u == step.sampling.draw.u
    assert r.drawn_prob == pytest.approx(step.prob, rel=1e-5)
    assert r.kv_bytes == step.cache_bytes
    assert r.kv_bytes_per_token * len(ids) == r.kv_bytes

    # Q4_0: the size from the shapes alone, the agreement by a plain loop
    assert r.q_nbytes == model_nbytes(cfg, "Q4_0")
    assert r.fp32_nbytes == 4 * sum(a.size for a in tiny_model.tensors().values())
    assert r.q_nbytes < r.fp32_nbytes


def test_top1_kept_counts_positions(tiny_model, enc) -> None:
    from llm_anatomy_tui.core.quant import quantize_model

    ids = enc.encode_ordinary(PROMPT)
    r = compute_recap(tiny_model, enc, ids, SamplingSettings(), 0)
    ref = forward(tiny_model, ids)
    q = forward(quantize_model(tiny_model, "Q4_0").model, ids)
    same = sum(int(np.argmax(ref[t]) == np.argmax(q[t])) for t in range(len(ids)))
    assert r.q_top1 == same / len(ids)
    assert r.q_top_token == int(np.argmax(q[-1]))


def test_lines_name_every_stage_with_its_chapter(tiny_model, enc) -> None:
    r = compute_recap(tiny_model, enc, enc.encode_ordinary("Hi"), SamplingSettings(), 0)
    assert [(ln.key, ln.stage, ln.chapter) for ln in r.lines] == list(STAGES)
    assert [(ln.key, ln.chapter) for ln in placeholder_lines("…")] == [(k, c) for k, _, c in STAGES]
    text = {ln.key: ln.figure for ln in r.lines}
    assert text["tokens"].startswith(f"{len(r.ids)} token")
    assert f"d_model {r.d_model}" in text["embedding"]
    assert f"{r.top_prob * 100:.2f}%" in text["probabilities"]


def test_one_token_and_empty(tiny_model, enc) -> None:
    r = compute_recap(tiny_model, enc, [enc.eot_token], SamplingSettings(), 0)
    assert r.attn_key == 0 and r.attn_weight == pytest.approx(1.0)
    assert r.lines[0].figure.startswith("1 token:")
    with pytest.raises(ValueError, match="no tokens"):
        compute_recap(tiny_model, enc, [], SamplingSettings(), 0)
