"""The logit lens against the core's forward trace and a slow loop reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llm_anatomy_tui.core.logit_lens import Cancelled, block_lens, residual_stream, stages_for
from llm_anatomy_tui.core.model import Trace, forward

TOKENS = [464, 1490, 6151, 11, 1354, 1687, 261, 3389, 13, 290]


@pytest.fixture(scope="module")
def mini():  # noqa: ANN201
    from llm_anatomy_tui.core.model import default_model_dir, load_model

    return load_model(default_model_dir())


@pytest.fixture(scope="module", params=["mini", "tiny"])
def setup(request, mini, tiny_model):  # noqa: ANN001, ANN201
    model = mini if request.param == "mini" else tiny_model
    trace = Trace()
    logits = forward(model, TOKENS, trace=trace)
    return model, trace, logits, block_lens(model, TOKENS)


def test_stages() -> None:
    assert [s.label for s in stages_for(1)] == ["embedding", "L0 attention", "L0 FFN"]
    assert [s.index for s in stages_for(3)] == list(range(7))


def test_residuals_and_norms_are_the_trace(setup) -> None:  # noqa: ANN001
    model, trace, _, lens = setup
    resids, updates = residual_stream(model, TOKENS)
    assert np.array_equal(resids[0], trace.embeddings)
    for i, rec in enumerate(trace.layers):
        assert np.array_equal(resids[2 * i + 1], rec["resid_attn"])
        assert np.array_equal(resids[2 * i + 2], rec["resid_ffn"])
        assert np.array_equal(updates[2 * i + 1], rec["attn_out"])
        assert np.array_equal(updates[2 * i + 2], rec["ffn_out"])
        for t in range(len(TOKENS)):
            ref = math.sqrt(sum(float(v) ** 2 for v in rec["resid_attn"][t]))
            assert math.isclose(lens.norms[2 * i + 1, t], ref, rel_tol=1e-6)
            ref = math.sqrt(sum(float(v) ** 2 for v in rec["ffn_out"][t]))
            assert math.isclose(lens.update_norms[2 * i + 2, t], ref, rel_tol=1e-6)


def test_last_lens_is_the_real_output(setup) -> None:  # noqa: ANN001
    model, trace, logits, lens = setup
    p = np.exp(logits.astype(np.float64) - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    assert np.array_equal(lens.final_ids, p.argmax(axis=-1))
    assert np.array_equal(lens.top_ids[-1, :, 0], p.argmax(axis=-1))
    assert np.allclose(lens.top_probs[-1, :, 0], p.max(axis=-1), rtol=1e-9)
    assert np.all(lens.kl[-1] == 0.0)
    assert np.all(lens.rank_final[-1] == 0)


def _slow_lens(model, resid_row):  # noqa: ANN001, ANN202
    """RMSNorm and head for one vector, written as loops in float64."""
    d = resid_row.shape[0]
    ms = sum(float(v) ** 2 for v in resid_row) / d
    scale = 1.0 / math.sqrt(ms + model.config.rms_norm_eps)
    h = np.array([float(resid_row[j]) * scale * float(model.norm[j]) for j in range(d)])
    logits = model.lm_head.astype(np.float64) @ h
    z = logits - logits.max()
    return z - math.log(np.exp(z).sum())


def test_every_stage_matches_a_slow_reference(setup) -> None:  # noqa: ANN001
    model, trace, logits, lens = setup
    final = _slow_lens(model, trace.layers[-1]["resid_ffn"][3])
    for s in (0, 1, 2, len(lens.stages) - 2):
        resid = (
            trace.embeddings
            if s == 0
            else trace.layers[(s - 1) // 2]["resid_attn" if s % 2 else "resid_ffn"]
        )
        logp = _slow_lens(model, resid[3])
        top = np.argsort(-logp)[:5]
        assert list(lens.top_ids[s, 3]) == list(top)
        assert np.allclose(lens.top_probs[s, 3], np.exp(logp[top]), rtol=1e-4)
        fid = int(np.argmax(final))
        assert lens.final_ids[3] == fid
        assert math.isclose(lens.p_final[s, 3], math.exp(logp[fid]), rel_tol=1e-4)
        assert lens.rank_final[s, 3] == int((logp > logp[fid]).sum())
        pf = np.exp(final)
        assert math.isclose(
            lens.kl[s, 3], float((pf * (final - logp)).sum()), rel_tol=1e-3, abs_tol=1e-6
        )
        if s:
            prev = (
                trace.embeddings
                if s == 1
                else trace.layers[(s - 2) // 2]["resid_attn" if (s - 1) % 2 else "resid_ffn"]
            )
            gain = logp - _slow_lens(model, prev[3])
            assert list(lens.promoted_ids[s, 3]) == list(np.argsort(-gain)[:5])
            assert np.allclose(lens.promoted_gain[s, 3], np.sort(gain)[::-1][:5], atol=1e-3)
        else:
            assert (lens.promoted_ids[0] == -1).all()


def test_reusing_a_prefix_gives_the_same_lens(setup) -> None:  # noqa: ANN001
    """Equal up to BLAS rounding (a 6-row and a 10-row product may differ in the last bit,
    which can swap two tokens whose probabilities tie to 1e-7)."""
    model, _, _, full = setup
    short = block_lens(model, TOKENS[:6])
    grown = block_lens(model, TOKENS, previous=short)
    assert grown.tokens == full.tokens
    for name in ("top_probs", "p_final", "kl", "norms"):  # float32 noise
        assert np.allclose(getattr(grown, name), getattr(full, name), rtol=1e-4, atol=1e-4), name
    assert np.array_equal(grown.final_ids, full.final_ids)
    gaps = -np.diff(full.top_probs, axis=-1)  # [S, T, K-1]
    clear = np.concatenate([gaps > 1e-6, np.ones(gaps.shape[:2] + (1,), bool)], axis=-1)
    clear &= np.concatenate([np.ones(gaps.shape[:2] + (1,), bool), gaps > 1e-6], axis=-1)
    assert np.array_equal(grown.top_ids[clear], full.top_ids[clear])


class _Task:
    def __init__(self, cancel_after: int | None = None) -> None:
        self.cancelled = False
        self.reports: list[float] = []
        self.cancel_after = cancel_after

    def report(self, fraction: float, value: object = None) -> None:
        self.reports.append(fraction)
        if self.cancel_after is not None and len(self.reports) >= self.cancel_after:
            self.cancelled = True


def test_progress_and_cancel(tiny_model) -> None:  # noqa: ANN001
    tokens = [int(t) for t in np.arange(60) * 97 % 8000]
    task = _Task()
    full = block_lens(tiny_model, tokens, task=task)
    assert len(task.reports) >= 2 and task.reports == sorted(task.reports)
    assert task.reports[-1] == 1.0
    stopped = _Task(cancel_after=1)  # cancelled after the first chunk of positions
    with pytest.raises(Cancelled):
        block_lens(tiny_model, tokens, task=stopped)
    assert len(stopped.reports) == 1
    assert full.n_positions == 60
