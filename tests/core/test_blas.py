"""BLAS thread control: counted limits that always restore the default, and the measured
choice between one thread and all for a large model."""

from __future__ import annotations

import numpy as np

from llm_anatomy_tui.core import blas
from llm_anatomy_tui.core.blas import BLAS, ThreadChooser
from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.model import KVCache, decode_token, forward, init_random


def test_nested_limits_use_the_smallest_and_restore_the_default():
    default = BLAS.threads()
    with blas.limit(None):
        assert BLAS.threads() == default
        with blas.limit(1):
            assert BLAS.threads() in (1, None)
        assert BLAS.threads() == default
    assert BLAS.threads() == default


def test_the_chooser_follows_the_faster_option_and_keeps_checking_the_other():
    c = ThreadChooser()
    picks = []
    for step in range(240):
        t = c.pick()
        picks.append(t)
        # one thread is 5x faster for the first 32 steps, then 5x slower (the machine
        # got idle, say): the chooser must notice when it next tries all threads
        one_fast = step < 32
        c.record(t, 0.01 if (t == 1) == one_fast else 0.05)
    assert picks[:2] == [None, 1]  # each option tried once
    assert picks[2:32].count(1) == 30  # one thread preferred while faster
    late = picks[160:]
    assert late.count(None) >= len(late) - 1  # switched to all threads after the change
    assert c.best() is None


def test_a_large_model_decodes_the_same_on_any_thread_count(monkeypatch):
    """Thread counts change which BLAS kernel splits a product, not the result (to float32
    rounding)."""
    cfg = LlamaConfig(300, 64, 96, 2, 4, 2, 32)
    model = init_random(cfg, seed=4)
    monkeypatch.setattr(blas, "SMALL_MODEL_BYTES", 0)
    tokens = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8]
    want = forward(model, tokens)
    cache = KVCache(cfg)
    rows = [forward(model, tokens[:1], cache)[0]]
    rows += [decode_token(model, t, cache) for t in tokens[1:]]
    np.testing.assert_allclose(np.stack(rows), want, atol=1e-5, rtol=0)


def test_a_much_slower_option_is_retried_less_often():
    c = ThreadChooser()
    for _ in range(2):
        t = c.pick()
        c.record(t, 0.01 if t == 1 else 0.10)  # all threads 10x slower (a busy machine)
    picks = []
    for _ in range(320):
        t = c.pick()
        picks.append(t)
        c.record(t, 0.01 if t == 1 else 0.10)
    assert 1 <= picks.count(None) <= 2  # every 16 x 10 steps
    assert c.best() == 1


def test_a_limit_set_in_a_worker_thread_holds():
    """The app runs the model in worker threads: their limits must apply (threadpoolctl's
    own OpenBLAS setter ignores every thread but the first that used it)."""
    import threading

    default = BLAS.threads()
    with blas.limit(1):  # the main thread sets a limit first
        pass
    seen = []

    def work() -> None:
        with blas.limit(1):
            seen.append(BLAS.threads())
        seen.append(BLAS.threads())

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if default is not None:
        assert seen == [1, default]
