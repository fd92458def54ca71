"""Chapter 12's recorded run: the schedule against the recorded learning rates, the slope
fit against numpy.polyfit, the phase rule on curves whose phases are known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llm_anatomy_tui.core.model import default_model_dir
from llm_anatomy_tui.core.train.trainer import HISTORY_FILE
from llm_anatomy_tui.views.training_phases import (
    CONSOLIDATION,
    FAST,
    PLATEAU,
    RISING,
    HistoryError,
    detect_phases,
    gap_opens,
    load_history,
    local_slopes,
    lr_schedule,
    phase_rates,
    phases_view,
)


@pytest.fixture(scope="module")
def history():
    return load_history(default_model_dir())


def test_schedule_reproduces_the_recorded_learning_rates(history):
    # the history stores lr_for(step - 1) at each group's last step, to 4 significant digits
    _, rates = lr_schedule(history.settings, history.train_steps - 1)
    np.testing.assert_allclose(rates, history.train_lr, rtol=6e-4)
    view = phases_view(history)
    assert view.lr_steps[0] == 1 and view.lr_steps[-1] == history.total_steps
    assert view.lr.max() == pytest.approx(history.settings.lr)
    assert view.lr[-1] == pytest.approx(history.settings.min_lr)


def test_local_slopes_equal_polyfit_on_each_window():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.uniform(1, 3, size=40))
    y = np.exp(-x / 20) + rng.normal(0, 0.01, size=40)
    got = local_slopes(x, y, 6.0)
    for i in range(x.size):
        sel = np.abs(x - x[i]) <= 6.0
        if sel.sum() >= 2:
            assert got[i] == pytest.approx(np.polyfit(x[sel], y[sel], 1)[0], rel=1e-9, abs=1e-12)


def synthetic():
    """1,000 steps, a point every 10: an exponential fall to step 200 (most of the drop),
    a straight slow fall of 0.002 nats a step to step 600, then flat."""
    steps = np.arange(0, 1001, 10)
    fast = 3.0 + 6.0 * np.exp(-np.minimum(steps, 200) / 40)
    slow = 0.002 * np.clip(steps - 200, 0, 400)
    return steps, fast - slow


def test_known_phases_are_found_in_order():
    steps, loss = synthetic()
    # the slow piece falls 0.2 nats per tenth of the run out of a ~6.8 drop: rate ~0.03
    phases = detect_phases(steps, loss, 1000)
    kinds = [p.kind for p in phases]
    assert kinds == [FAST, CONSOLIDATION, PLATEAU]
    assert phases[0].start == 0 and phases[-1].end == 1000
    for before, after in zip(phases, phases[1:], strict=False):
        assert before.end == after.start  # contiguous
    # boundaries within one slope window (±5% of the run) of where the pieces change
    assert abs(phases[1].start - 200) <= 100
    assert abs(phases[2].start - 600) <= 60
    assert phases[0].val_start == loss[0] and phases[-1].val_end == loss[-1]


def test_rising_validation_loss_is_called_rising():
    steps = np.arange(0, 1001, 20)
    # U shape: falls from 5.0 to 1.0 by step 400, then rises to 4.0 (still below the start)
    loss = np.where(steps < 400, 5.0 - steps / 100, 1.0 + (steps - 400) / 200)
    kinds = [p.kind for p in detect_phases(steps, loss, 1000)]
    assert kinds[0] == FAST and RISING in kinds


def test_recorded_run_starts_fast_and_ends_flat(history):
    phases = phases_view(history).phases
    assert phases[0].kind == FAST and phases[-1].kind == PLATEAU
    rates = phase_rates(history.eval_steps, history.val_loss, history.total_steps)
    # every estimate in the plateau is below the flat threshold, bar single noisy points
    inside = history.eval_steps >= phases[-1].start
    assert np.mean(np.abs(rates[inside]) < 0.005) > 0.8


def test_gap_opens_where_training_loss_stays_below_validation(history):
    step = gap_opens(history)
    i = int(np.flatnonzero(history.eval_steps == step)[0])
    assert np.all(history.eval_train_loss[i:] < history.val_loss[i:])
    assert not history.eval_train_loss[i - 1] < history.val_loss[i - 1]


def test_missing_or_broken_history(tmp_path):
    with pytest.raises(HistoryError, match="no training history"):
        load_history(tmp_path)
    (tmp_path / HISTORY_FILE).write_text(json.dumps({"run": {}}))
    with pytest.raises(HistoryError, match="not a training history"):
        load_history(tmp_path)
