"""View-models of chapters 2-4: labels, lookups, token sets, the scatter, typed values, the
toy net drawing, the FFN rows — checked against independent computations."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from llm_anatomy_tui.core.lessons.dense_net import run_net
from llm_anatomy_tui.core.model import Trace, forward, init_random
from llm_anatomy_tui.core.neurons import ffn_update, scan_layer
from llm_anatomy_tui.core.tokenizers import load_encoding
from llm_anatomy_tui.views import embeddings as ev
from llm_anatomy_tui.views import ffn as fv
from llm_anatomy_tui.views import neurons as nv


@pytest.fixture(scope="module")
def enc():
    return load_encoding("model")


def test_views_import_no_ui():
    code = (
        "import sys, llm_anatomy_tui.views.embeddings, llm_anatomy_tui.views.neurons, "
        "llm_anatomy_tui.views.ffn; "
        "print([m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_token_labels_are_visible(enc):
    assert ev.token_label(enc, enc.encode_ordinary(" bank")[0]) == "·bank"
    assert ev.token_label(enc, enc.encode_ordinary("\n")[0]) == "⏎"
    assert ev.token_label(enc, enc.encode_ordinary("\x07")[0]) == "␇"
    assert ev.token_label(enc, 8192) == "<|endoftext|>"


def test_lookup_word_says_which_tokens(enc):
    one = ev.lookup_word(enc, " bank")
    assert one.ids == tuple(enc.encode_ordinary(" bank")) and "is one token" in one.message
    many = ev.lookup_word(enc, "bank")
    ids = enc.encode_ordinary("bank")
    assert many.ids == tuple(ids) and len(ids) > 1
    assert f"is {len(ids)} tokens here" in many.message
    assert all(f"“{ev.token_label(enc, t)}”" in many.message for t in ids)
    assert many.token == ids[0]
    with pytest.raises(ValueError, match="Type a word"):
        ev.lookup_word(enc, "")


def test_token_sets(enc):
    ts = ev.token_set("prompt", enc, [5, 6, 5, 7])
    assert ts.ids == (5, 6, 7)
    for name in ev.PRESETS:
        ts = ev.token_set(name, enc, [])
        for word in ev.PRESETS[name]:
            one = enc.encode_ordinary(word)
            assert (word in ts.skipped) == (len(one) != 1)
            if len(one) == 1:
                assert one[0] in ts.ids
    with pytest.raises(ValueError):
        ev.token_set("fruit", enc, [])


def test_scatter_places_every_point():
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(6, 2))
    lines = ev.scatter_lines(coords, [f"t{i}" for i in range(6)], 40, 10)
    assert len(lines) == 10 and all(len(line) == 40 for line in lines)
    marks = sum(line.count("•") for line in lines)
    assert 1 <= marks <= 6
    # the rightmost point sits in the last column, the topmost in the first row
    assert any(line[39] == "•" for line in lines)
    assert "•" in lines[0]


def test_compare_contexts_uses_the_same_row(enc):
    from llm_anatomy_tui.core.config import LlamaConfig

    cfg = LlamaConfig(vocab_size=8193, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)  # fmt: skip
    model = init_random(cfg, seed=5, std=0.3)
    view = ev.compare_contexts(model, enc, *ev.DEFAULT_SENTENCES, 0)
    r = view.result
    assert r.start_diff == 0.0 and r.token == view.shared[0]
    ta, tb = Trace(), Trace()
    forward(model, list(view.ids_a), trace=ta)
    forward(model, list(view.ids_b), trace=tb)
    a = ta.layers[-1]["resid_ffn"][r.position_a].astype(np.float64)
    b = tb.layers[-1]["resid_ffn"][r.position_b].astype(np.float64)
    assert r.end_cosine == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert ev.default_pick(enc, view.shared) == list(view.shared).index(
        enc.encode_ordinary(" bank")[0]
    )
    none = ev.compare_contexts(model, enc, "Zzz", "Qq", 0)
    assert none.result is None
    with pytest.raises(ValueError, match="need some text"):
        ev.compare_contexts(model, enc, "", "Qq", 0)


@pytest.mark.parametrize("text", ["1e6", "-1e6", "nan", "inf", "-inf", "x", "", "100.5"])
def test_parse_toy_value_refuses(text):
    with pytest.raises(nv.ToyValueError):
        nv.parse_toy_value(text)


def test_toy_neuron_state():
    t = nv.ToyNeuron()
    t2 = t.select(-1).nudge(3)
    assert t2.selected == 6 and t2.values[6] == pytest.approx(t.values[6] + 0.75)
    t3 = t.with_value(0, 1e9)
    assert t3.values[0] == nv.TOY_LIMIT
    r = t.result()
    assert nv.sum_line(r).endswith(f"= {r.z:.4f}")
    assert t.next_activation().activation == "gelu" and t.next_activation(-1).activation == "linear"


def test_top_rows_context(enc):
    from llm_anatomy_tui.core.config import LlamaConfig

    cfg = LlamaConfig(vocab_size=8193, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)  # fmt: skip
    model = init_random(cfg, seed=5, std=0.3)
    tokens = np.array(
        enc.encode_ordinary(
            "Once upon a time there was a cat who liked to sit in the sun all day long."
        )
    )
    scan = scan_layer(model, tokens, 1, k=3, window=8)
    rows = nv.top_rows(scan, 4, enc, context=3)
    for r, (pos, val) in zip(rows, scan.top(4), strict=True):
        assert r.position == pos and r.activation == val
        assert r.token == ev.token_label(enc, int(tokens[pos]))
        start = max((pos // 8) * 8, pos - 3)  # context never crosses into the previous window
        assert r.before == "".join(ev.token_label(enc, int(t)) for t in tokens[start:pos])


def test_net_diagram_glyphs_follow_firing():
    for act in ("relu", "tanh", "linear"):
        net = run_net(activation=act)
        rows = fv.net_diagram(net)
        quiet = "".join(t for row in rows for t, kind in row if kind == fv.QUIET)
        fire = "".join(t for row in rows for t, kind in row if kind == fv.FIRE)
        assert quiet == "○" * int((~net.firing).sum())
        assert fire == "●" * (2 + int(net.firing.sum()) + 2)  # inputs, firing units, outputs
        kinds = [kind for row in rows for _, kind in row]
        assert (fv.DEAD_EDGE in kinds) == (not net.firing.all())


def test_ffn_rows_against_trace(enc):
    from llm_anatomy_tui.core.config import LlamaConfig

    cfg = LlamaConfig(vocab_size=8193, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)  # fmt: skip
    model = init_random(cfg, seed=5, std=0.3)
    t = Trace()
    forward(model, [1, 2, 3], trace=t)
    upd = ffn_update(model, t, 1, 2, k=5)
    for row in fv.unit_rows(upd):
        g, u = t.layers[1]["gate"][2, row.unit], t.layers[1]["up"][2, row.unit]
        assert row.silu_gate == pytest.approx(g / (1 + np.exp(-g)), rel=1e-5)
        assert row.hidden == pytest.approx(row.silu_gate * u, rel=1e-4, abs=1e-6)
        gate_s, silu_s, up_s, h_s = (float(c) for c in row.cells[1:])
        assert abs(silu_s * up_s - h_s) < 1e-3 + 1e-4 * (abs(silu_s) + abs(up_s))
    ups, downs = fv.lens_rows(upd, enc, k=4)
    order = np.argsort(-upd.lens, kind="stable")
    assert [r.token for r in ups] == order[:4].tolist()
    assert [r.token for r in downs] == np.argsort(upd.lens, kind="stable")[:4].tolist()
    assert "|update|" in fv.norm_line(upd)
