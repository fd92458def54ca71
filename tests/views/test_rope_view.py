"""Chapter 10's view-model: every printed number checked against the model's own tables
and the core's trace, and re-derived from its printed neighbours (a reader's calculator)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llm_anatomy_tui.core.model import Trace, default_model_dir, forward, load_model
from llm_anatomy_tui.core.rope_inspect import layer_vectors, rope_frequencies
from llm_anatomy_tui.views.rope_view import (
    _HANDS,
    RopeSelection,
    clamp_selection,
    dial,
    rope_view,
)

TOKENS = [5412, 7446, 261, 1058, 11, 1354, 673, 261, 3389, 1830, 13]


@pytest.fixture(scope="module")
def mini():  # noqa: ANN201
    return load_model(default_model_dir())


def _view(model, tokens, sel):  # noqa: ANN001, ANN202
    cfg = model.config
    sel = clamp_selection(sel, cfg.num_hidden_layers, cfg.num_attention_heads, len(tokens),
                          cfg.max_position_embeddings)  # fmt: skip
    vectors = layer_vectors(model, tokens, sel.layer)
    return rope_view(cfg, vectors, [f"t{i}" for i in range(len(tokens))], sel)


@pytest.mark.parametrize("which", ["mini", "tiny"])
def test_frequency_rows_are_the_models_angles(which, mini, tiny_model) -> None:  # noqa: ANN001
    model = mini if which == "mini" else tiny_model
    view = _view(model, TOKENS, RopeSelection(position=37))
    cos, sin = model.rope_tables(np.array([37]))
    half = model.config.dim_head // 2
    assert len(view.freq_rows) == half
    for i, row in enumerate(view.freq_rows):
        pair, dims, speed, angle, deg, wavelength = row
        assert (int(pair), dims) == (i, f"{i},{i + half}")
        # the printed angle is position × the printed speed (to the printed places)
        assert abs(float(angle.replace(",", "")) - 37 * float(speed)) <= 5e-5 + 37 * 5e-8
        # ... it is the angle the model rotates by at position 37
        model_angle = math.atan2(float(sin[0, i]), float(cos[0, i])) % (2 * math.pi)
        shown = math.radians(float(deg))
        assert min(abs(shown - model_angle), 2 * math.pi - abs(shown - model_angle)) < 1e-3
        # ... and the wavelength is 2π over the speed, to four significant figures
        lam = 2 * math.pi / float(speed)
        assert math.isclose(float(wavelength.replace(",", "")), lam, rel_tol=6e-4)


def test_proof_rows_are_the_traced_scores(mini) -> None:  # noqa: ANN001
    trace = Trace()
    forward(mini, TOKENS, trace=trace)
    for layer, head, m, n, s in ((0, 0, 10, 3, 5), (3, 3, 6, 6, -6), (2, 1, 4, 1, 240)):
        view = _view(mini, TOKENS, RopeSelection(layer, head, m, n, -1, s))
        sel = view.selection
        assert (sel.layer, sel.head, sel.query, sel.key) == (layer, head, m, n)
        p = view.proof
        assert p is not None and p.shift == sel.shift
        traced = float(trace.layers[layer]["scores"][head, m, n])
        assert math.isclose(p.score_rope, traced, rel_tol=1e-4, abs_tol=1e-5)
        labels = [r[0] for r in view.proof_rows]
        scores = [float(r[1]) for r in view.proof_rows]
        assert labels[1] == f"rotated to ({m}, {n})"
        assert labels[2] == f"rotated to ({m + sel.shift}, {n + sel.shift})"
        assert f"{traced:+.4f}" == view.proof_rows[1][1] or abs(scores[1] - traced) < 1.5e-4
        assert scores[2] == scores[1] and "< 1e-6" in view.proof_rows[2][2]
        assert scores[4] == scores[1] and "< 1e-6" in view.proof_rows[4][2]
        if sel.shift:
            assert "< 1e-6" not in view.proof_rows[3][2]
        q = trace.layers[layer]["q"][head, m].astype(np.float64)
        k = trace.layers[layer]["k"][head // 2, n].astype(np.float64)
        assert math.isclose(p.score_raw, q @ k / math.sqrt(mini.config.dim_head), rel_tol=1e-9)


def test_v_line_is_the_traced_value(mini) -> None:  # noqa: ANN001
    trace = Trace()
    forward(mini, TOKENS, trace=trace)
    view = _view(mini, TOKENS, RopeSelection(1, 3, 8, 2))
    v = trace.layers[1]["v"][1, 2]
    assert ", ".join(f"{x:+.3f}" for x in v[:4]) in view.v_lines[1]
    moved = np.linalg.norm(trace.layers[1]["q_rope"][3, 8] - trace.layers[1]["q"][3, 8])
    assert f"by {moved:.3f}" in view.v_lines[0]


def test_one_token_has_no_pair(mini) -> None:  # noqa: ANN001
    view = _view(mini, TOKENS[:1], RopeSelection())
    assert view.proof is None and view.proof_rows == []
    assert "no pair to compare" in view.proof_note
    assert view.freq_rows and view.dials  # the frequencies are still there


def test_selection_at_and_past_the_bounds(mini) -> None:  # noqa: ANN001
    cfg = mini.config
    ctx = cfg.max_position_embeddings
    sel = clamp_selection(RopeSelection(99, 99, 99, 99, 10**9, 10**9), cfg.num_hidden_layers,
                          cfg.num_attention_heads, len(TOKENS), ctx)  # fmt: skip
    assert sel.layer == cfg.num_hidden_layers - 1 and sel.head == cfg.num_attention_heads - 1
    assert sel.query == sel.key == len(TOKENS) - 1
    assert sel.position == ctx - 1 and sel.query + sel.shift == ctx - 1
    sel = clamp_selection(RopeSelection(-3, -3, 0, -5, 0, -10**9), cfg.num_hidden_layers,
                          cfg.num_attention_heads, len(TOKENS), ctx)  # fmt: skip
    assert (sel.layer, sel.head, sel.key, sel.shift) == (0, 0, 0, 0)
    view = rope_view(cfg, layer_vectors(mini, TOKENS, 0), ["x"] * len(TOKENS),
                     RopeSelection(0, 0, 3, 1, ctx - 1, 2))  # fmt: skip
    assert view.at_window_end


def test_scaling_table_without_scaling_shows_llama31() -> None:
    from types import SimpleNamespace

    from llm_anatomy_tui.views.rope_view import LLAMA_31_8B_ROPE, _Cfg

    f = rope_frequencies(_Cfg(**LLAMA_31_8B_ROPE))
    assert f.supported and f.scaling["factor"] == 8.0
    cfg = SimpleNamespace(dim_head=8, rope_theta=10.0, max_position_embeddings=16,
                          rope_scaling={"rope_type": "linear", "factor": 4.0})  # fmt: skip
    assert np.allclose(rope_frequencies(cfg).wavelength, 4 * rope_frequencies(cfg).base_wavelength)


def test_dial_tip_points_the_right_way() -> None:
    for k, ((y, x, glyph), _) in enumerate(_HANDS):
        angle = math.radians(30 * k)
        lines = dial(angle)
        assert lines[y][x] == glyph
        # the tip lies in the direction of the angle (rows grow downwards, cells are 2:1)
        dy, dx = 2 - y, (x - 5) / 2.5
        assert math.cos(math.atan2(dy, dx) - angle) > 0.8


def test_a_scaled_model_shows_its_wavelengths_before_and_after(tiny_model) -> None:  # noqa: ANN001
    """A config with Llama 3's scaling (duck-typed: the loader may not accept one yet)."""
    from types import SimpleNamespace

    d = tiny_model.config.dim_head
    cfg = SimpleNamespace(
        dim_head=d, rope_theta=500000.0, max_position_embeddings=64,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
    )  # fmt: skip
    sel = clamp_selection(RopeSelection(position=9), 1, 4, len(TOKENS), 64)
    view = rope_view(cfg, layer_vectors(tiny_model, TOKENS, 0), ["x"] * len(TOKENS), sel)
    f = rope_frequencies(cfg)
    assert view.freq_header[-1] == "λ unscaled"
    for i, row in enumerate(view.freq_rows):
        assert float(row[2]) == pytest.approx(f.inv_freq[i], rel=1e-6)  # the scaled speed
        assert float(row[-1].replace(",", "")) == pytest.approx(f.base_wavelength[i], rel=6e-4)
    assert view.scaling_title.startswith("This model scales its RoPE (llama3, factor 8)")
    ratios = [float(r[3].lstrip("×")) for r in view.scaling_rows]
    assert ratios[0] == 1 and ratios[-1] == 8


def test_the_loader_and_this_view_agree_on_scaling_when_it_accepts_one() -> None:
    """Once the config accepts ``rope_scaling`` (another branch adds Llama 3's), the
    model's own rotation tables must turn at the speeds this chapter prints."""
    from llm_anatomy_tui.core.config import LlamaConfig
    from llm_anatomy_tui.core.model import init_random

    raw = {
        "vocab_size": 16, "hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 1,
        "num_attention_heads": 1, "num_key_value_heads": 1, "max_position_embeddings": 64,
        "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
    }  # fmt: skip
    try:
        cfg = LlamaConfig.from_dict(raw)
    except (ValueError, TypeError):
        pytest.skip("this checkout's loader refuses rope_scaling")
    f = rope_frequencies(cfg)
    assert f.scaling is not None and f.supported
    model = init_random(cfg)
    cos, sin = model.rope_tables(np.array([1]))
    angles = np.arctan2(sin[0, : f.n_pairs], cos[0, : f.n_pairs])
    assert np.allclose(angles, f.inv_freq, rtol=1e-5, atol=1e-7)
    own = rope_frequencies(cfg, model.inv_freq)  # what the chapter passes
    assert not own.from_file and np.allclose(own.inv_freq, f.inv_freq, rtol=1e-6)
    tokens = [1, 2, 3, 4]
    view = rope_view(cfg, layer_vectors(model, tokens, 0), ["x"] * 4,
                     clamp_selection(RopeSelection(), 1, 1, 4, 64), model.inv_freq)  # fmt: skip
    assert view.scaling_title.startswith("This model scales its RoPE (llama3, factor 8)")


def test_speeds_set_by_the_file_are_reported_as_such(tiny_model) -> None:  # noqa: ANN001
    own = tiny_model.inv_freq * 0.5  # e.g. a GGUF's rope_freqs
    view = rope_view(tiny_model.config, layer_vectors(tiny_model, TOKENS, 0),
                     ["x"] * len(TOKENS), clamp_selection(RopeSelection(), 2, 4, len(TOKENS), 64),
                     own)  # fmt: skip
    assert "rope_freqs" in view.scaling_title
    assert [float(r[2]) for r in view.freq_rows] == pytest.approx(own.tolist(), rel=1e-6)
