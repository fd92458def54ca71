"""The attention data behind chapters 8 and 9: grown, cut back and rebuilt, it always equals
a fresh traced forward pass of the whole sequence."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from llm_anatomy_tui.core.model import Trace, forward
from llm_anatomy_tui.core.tokenizers import load_encoding
from llm_anatomy_tui.views.attention_tracker import AttentionTracker, token_labels


def fresh_trace(model, tokens) -> Trace:  # noqa: ANN001
    trace = Trace()
    forward(model, list(tokens), trace=trace)
    return trace


def assert_rows_are_distributions(weights: np.ndarray) -> None:
    t = weights.shape[-1]
    future = ~np.tri(t, dtype=bool)
    assert np.all(weights[..., future] == 0.0), "masked cells are exactly 0"
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)


NAMES = {"q": "q_rope", "k": "k_rope", "v": "v", "scores": "scores", "weights": "weights",
         "heads": "heads", "attn_out": "attn_out"}  # fmt: skip


def assert_matches_forward(model, snap, tokens) -> None:  # noqa: ANN001
    assert snap.tokens == tuple(tokens)
    trace = fresh_trace(model, tokens)
    for layer, rec in enumerate(trace.layers):
        for ours, theirs in NAMES.items():
            got = getattr(snap, ours)[layer]
            assert got.shape == rec[theirs].shape, ours
            np.testing.assert_allclose(got, rec[theirs], atol=2e-5, rtol=1e-5, err_msg=ours)
        np.testing.assert_array_equal(snap.mask, rec["mask"])
        assert_rows_are_distributions(snap.weights[layer])


def test_grow_rewind_branch_and_restart(tiny_model):
    rng = np.random.default_rng(5)
    tokens = [int(t) for t in rng.integers(0, 8192, 40)]
    tracker = AttentionTracker()
    seen = []
    for seq in (
        tokens[:10],  # prefill
        tokens[:11],  # one step
        tokens[:14],  # three steps at once
        tokens[:12],  # rewind: a slice, nothing computed
        tokens[:12] + [7, 8],  # branch after position 12
        tokens[:5] + [1],  # an edit near the start
        [3],  # one token
        tokens[:40],  # a fresh, longer sequence
    ):
        snap = tracker.snapshot(tiny_model, seq)
        assert_matches_forward(tiny_model, snap, seq)
        seen.append(snap)
    # snapshots handed out earlier never change under their holder
    assert_matches_forward(tiny_model, seen[2], tokens[:14])
    assert_matches_forward(tiny_model, seen[4], tokens[:12] + [7, 8])


def test_peek_answers_prefixes_without_running_the_model(tiny_model):
    tracker = AttentionTracker()
    tokens = list(range(100, 120))
    assert tracker.peek(tiny_model, tokens) is None
    tracker.snapshot(tiny_model, tokens)
    assert tracker.peek(tiny_model, tokens).n_tokens == 20
    assert tracker.peek(tiny_model, tokens[:7]).n_tokens == 7
    assert tracker.peek(tiny_model, tokens + [1]) is None
    assert tracker.peek(tiny_model, []) is None


def test_snapshots_are_read_only_and_limits_are_refused(tiny_model):
    tracker = AttentionTracker()
    snap = tracker.snapshot(tiny_model, [1, 2, 3])
    with pytest.raises(ValueError):
        snap.weights[0, 0, 0, 0] = 0.5
    with pytest.raises(ValueError, match="no tokens"):
        tracker.snapshot(tiny_model, [])
    window = tiny_model.config.max_position_embeddings
    with pytest.raises(ValueError, match="context window"):
        tracker.snapshot(tiny_model, [1] * (window + 1))
    full = tracker.snapshot(tiny_model, [1] * window)
    assert full.n_tokens == window


def test_threads_share_one_tracker(tiny_model):
    tracker = AttentionTracker()
    base = list(range(200, 230))
    errors = []

    def work(n: int) -> None:
        try:
            seq = base[:n]
            assert tracker.snapshot(tiny_model, seq).tokens == tuple(seq)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in (5, 30, 12, 29, 1, 30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert_matches_forward(tiny_model, tracker.snapshot(tiny_model, base), base)


def test_labels_mark_spaces_and_byte_pieces():
    enc = load_encoding("model")
    ids = enc.encode_ordinary(" the 世")
    labels = token_labels(enc, ids)
    assert labels[0] == "·the"
    assert any("‹" in label for label in labels)  # a split character shows its bytes


def test_cheap_snapshots_only_when_cheap(tiny_model):
    tracker = AttentionTracker()
    tokens = list(range(300, 330))
    assert tracker.snapshot_if_cheap(tiny_model, tokens) is None  # nothing known: a prefill
    tracker.snapshot(tiny_model, tokens[:20])
    snap = tracker.snapshot_if_cheap(tiny_model, tokens[:22])  # two steps: done inline
    assert_matches_forward(tiny_model, snap, tokens[:22])
    assert tracker.snapshot_if_cheap(tiny_model, tokens[:10]).n_tokens == 10  # a prefix
    assert tracker.snapshot_if_cheap(tiny_model, tokens[:30]) is None  # 8 new: a worker's job
    assert tracker.snapshot_if_cheap(tiny_model, tokens[:5] + [1]) is None  # a cut: copying
    with tracker._lock:  # busy (a worker is computing): never wait on the UI thread
        assert tracker.snapshot_if_cheap(tiny_model, tokens[:21]) is None


def test_buffers_grow_with_the_context_and_keep_earlier_snapshots():
    """Buffers hold what is used (doubling), never [L, H, context, context] up front; growing
    past a capacity step keeps every number and leaves handed-out snapshots unchanged."""
    from llm_anatomy_tui.core.config import LlamaConfig
    from llm_anatomy_tui.core.model import init_random
    from llm_anatomy_tui.views.attention_tracker import MIN_CAPACITY

    cfg = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=200)  # fmt: skip
    model = init_random(cfg, seed=4, std=0.2)
    rng = np.random.default_rng(9)
    tokens = [int(t) for t in rng.integers(0, 300, 200)]
    tracker = AttentionTracker()
    first = tracker.snapshot(model, tokens[:3])
    kept = first.weights.copy()
    assert tracker.capacity == MIN_CAPACITY  # allocated for what is used, not 200
    for n, capacity in ((MIN_CAPACITY, MIN_CAPACITY), (MIN_CAPACITY + 1, 2 * MIN_CAPACITY)):
        snap = tracker.snapshot(model, tokens[:n])
        assert_matches_forward(model, snap, tokens[:n])
        assert tracker.capacity == capacity  # doubling
    snap = tracker.snapshot(model, tokens)
    assert tracker.capacity == 200  # never past the context window
    assert_matches_forward(model, snap, tokens)
    np.testing.assert_array_equal(first.weights, kept)
    assert_matches_forward(model, first, tokens[:3])
