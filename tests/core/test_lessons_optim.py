"""Chapter 7's numbers: trajectories are the core's step functions, Adam's bookkeeping is the
textbook formula, and the loss-slice grid equals a direct evaluation by the inference path."""

from __future__ import annotations

import numpy as np
import pytest

from llm_anatomy_tui.core.evaluate import token_nll as eval_nll
from llm_anatomy_tui.core.lessons import optim_paths as op
from llm_anatomy_tui.core.lessons.loss_slice import (
    Cancelled,
    Plane,
    SliceCache,
    compute_slice,
    filter_normalized_direction,
    heldout_batch,
)
from llm_anatomy_tui.core.model import forward
from llm_anatomy_tui.core.train import optim
from llm_anatomy_tui.core.train.backward import model_astype, parameters


def test_valley_gradient_is_the_derivative():
    p = np.array([3.0, -1.5])
    h = 1e-6
    for i in range(2):
        e = np.eye(2)[i] * h
        fd = (op.valley(p + e)[0] - op.valley(p - e)[0]) / (2 * h)
        assert op.valley(p)[1][i] == pytest.approx(fd, rel=1e-6)
    xs, ys = np.array([-1.0, 2.0]), np.array([0.5])
    assert op.valley_grid(xs, ys)[0, 1] == pytest.approx(op.valley(np.array([2.0, 0.5]))[0])


@pytest.mark.parametrize("lr", [0.1, 0.4])
def test_trajectories_equal_the_core_step_functions(lr):
    paths = op.run_all(op.valley, op.START, lr, 12)
    p, vel = np.array(op.START), np.zeros(2)
    for t in range(12):
        p = optim.sgd(p, op.valley(p)[1], lr)
        np.testing.assert_array_equal(paths["sgd"].points[t + 1], p)
    p = np.array(op.START)
    for t in range(12):
        p, vel = optim.momentum(p, op.valley(p)[1], vel, lr, op.BETA)
        np.testing.assert_array_equal(paths["momentum"].points[t + 1], p)
    p, m, v = np.array(op.START), np.zeros(2), np.zeros(2)
    for t in range(1, 13):
        p, m, v = optim.adam(p, op.valley(p)[1], m, v, t, lr, op.BETA, op.BETA2, op.EPS)
        np.testing.assert_array_equal(paths["adam"].points[t], p)
    for path in paths.values():
        np.testing.assert_allclose(path.losses, [op.valley(q)[0] for q in path.points])
        assert path.delta == pytest.approx(path.end_loss - path.start_loss)


def test_adam_records_are_the_textbook_formulas():
    path = op.run_path("adam", op.valley, (4.0, -2.0), 0.3, 5)
    m, v = np.zeros(2), np.zeros(2)
    for rec, before in zip(path.adam, path.points[:-1], strict=True):
        g = op.valley(before)[1]
        np.testing.assert_array_equal(rec.grad, g)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        assert rec.bias1 == pytest.approx(1 - 0.9**rec.t) and rec.bias2 == pytest.approx(
            1 - 0.999**rec.t
        )
        np.testing.assert_allclose(rec.m, m)
        np.testing.assert_allclose(rec.v, v)
        np.testing.assert_allclose(rec.m_hat, m / (1 - 0.9**rec.t))
        np.testing.assert_allclose(rec.step, -0.3 * rec.m_hat / (np.sqrt(rec.v_hat) + 1e-8))
    assert [r.t for r in path.adam] == [1, 2, 3, 4, 5]


def test_a_blown_up_trajectory_stops_with_finite_points():
    path = op.run_path("sgd", op.valley, op.START, lr=50.0, steps=40)
    assert path.diverged_at is not None and path.steps < 40
    assert np.isfinite(path.points).all() and np.isfinite(path.losses).all()
    with pytest.raises(ValueError):
        op.run_path("lion", op.valley, op.START, 0.1, 3)


# -- the real loss slice ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch(tiny_model):
    return heldout_batch(tiny_model.config.max_position_embeddings, windows=2, window=16)


def test_directions_are_normalised_per_filter(tiny_model):
    params = parameters(tiny_model)
    d = filter_normalized_direction(params, np.random.default_rng(3))
    for name, p in params.items():
        if p.ndim == 1:
            assert not d[name].any()
        else:
            np.testing.assert_allclose(
                np.linalg.norm(d[name], axis=1), np.linalg.norm(p, axis=1), rtol=1e-4
            )


class Task:
    def __init__(self, cancel_after: int | None = None):
        self.cancelled = False
        self.fractions: list[float] = []
        self.cancel_after = cancel_after

    def report(self, fraction: float, value: object = None) -> None:
        self.fractions.append(fraction)
        if self.cancel_after is not None and len(self.fractions) >= self.cancel_after:
            self.cancelled = True


def test_grid_equals_direct_evaluation_at_sampled_points(tiny_model, batch):
    task = Task()
    before = {k: v.tobytes() for k, v in parameters(tiny_model).items()}
    s = compute_slice(tiny_model, grid=5, span=0.5, seed=7, task=task, steps=3, batch=batch)
    assert {k: v.tobytes() for k, v in parameters(tiny_model).items()} == before
    assert task.fractions == sorted(task.fractions) and task.fractions[-1] == pytest.approx(1.0)
    # rebuild the two directions and evaluate with the inference forward, window by window
    rng = np.random.default_rng(7)
    params = parameters(tiny_model)
    d1 = filter_normalized_direction(params, rng)
    d2 = filter_normalized_direction(params, rng)
    for i, j in [(0, 0), (2, 2), (4, 1), (1, 3)]:
        a, b = s.axis[j], s.axis[i]
        moved = model_astype(tiny_model, np.float32)
        for name, p in parameters(moved).items():
            p[...] = params[name] + a * d1[name] + b * d2[name]
        nll = np.concatenate([eval_nll(forward(moved, x), y) for x, y in zip(*batch, strict=True)])
        assert s.losses[i, j] == pytest.approx(nll.mean(), rel=1e-4)
    assert s.center_loss == pytest.approx(s.losses[2, 2], rel=1e-6)
    assert s.tokens == batch[1].size


def test_plane_gradient_is_the_projected_real_gradient(tiny_model, batch):
    plane = Plane(tiny_model, seed=1, batch=batch)
    point = np.array([0.2, -0.1])
    _, g = plane.loss_grad(point)
    h = 1e-2
    for k in range(2):
        e = np.eye(2)[k] * h
        fd = (plane.loss(*(point + e)) - plane.loss(*(point - e))) / (2 * h)
        assert g[k] == pytest.approx(fd, rel=2e-2, abs=1e-3)


def test_paths_in_the_plane_follow_the_core_steps(tiny_model, batch):
    s = compute_slice(tiny_model, grid=2, seed=2, steps=3, batch=batch)
    plane = Plane(tiny_model, seed=2, batch=batch)
    path = s.paths["sgd"]
    p = path.points[0]
    for t in range(path.steps):
        p = optim.sgd(p, plane.loss_grad(p)[1], path.lr)
        np.testing.assert_allclose(path.points[t + 1], p, rtol=1e-6)


def test_cancel_stops_between_passes_and_cache_reuses(tiny_model, batch):
    with pytest.raises(Cancelled):
        compute_slice(tiny_model, grid=4, task=Task(cancel_after=1), batch=batch)
    cache = SliceCache()
    key = cache.key(tiny_model, 2, 0.5, 0)
    assert cache.get(key) is None
    cache.put(key, "x")  # type: ignore[arg-type]
    assert cache.get(key) == "x"
