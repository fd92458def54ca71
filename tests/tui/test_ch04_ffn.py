"""Chapter 4 (feed-forward network) driven by keys: the toy net against hand sums, the
real FFN step against a fresh trace, its lens against final norm + head applied here."""

from __future__ import annotations

import numpy as np
import pytest
from ch234_helpers import PROMPT, app_for, odd_model, settled, text_of, type_text

from llm_anatomy_tui.chapters.c04_ffn import FFNScreen
from llm_anatomy_tui.core.lessons.dense_net import MATRICES
from llm_anatomy_tui.core.model import Trace, forward


async def test_toy_net_inspector_and_worked_sums():
    app = app_for("ffn")
    async with app.run_test(size=(100, 40)) as pilot:
        await settled(pilot)
        screen = app.screen
        assert isinstance(screen, FFNScreen)
        net = screen.net
        x, w1, w2 = net.x[0], net.w1, net.w2
        z1 = [x[0] * w1[0, j] + x[1] * w1[1, j] for j in range(3)]
        a1 = [max(0.0, v) for v in z1]
        z2 = [sum(a1[j] * w2[j, k] for j in range(3)) for k in range(2)]
        assert net.z1[0].tolist() == z1 and net.z2[0].tolist() == z2
        diagram = text_of(screen, "#f-net")
        for j in range(3):
            glyph = "●" if a1[j] > 0 else "○"
            assert f"{glyph} h{j + 1}" in diagram
        assert "○ silent" in text_of(screen, "#f-firing")
        # Z1 is inspected first; c walks its cells, the worked sum follows
        assert screen.inspector.matrix == "Z1"
        for j in range(3):
            s = text_of(screen, "#f-sum")
            assert f"z1_{j + 1} = x1·w1_1{j + 1} + x2·w1_2{j + 1}" in s
            assert s.split("\n")[1].endswith(f"= {z1[j]:g}")
            await pilot.press("c")
        seen = []
        for _ in MATRICES:
            seen.append(screen.inspector.matrix)
            m = screen.query_one("#f-matrix")
            assert np.array_equal(m.values, net.matrix(screen.inspector.matrix))
            await pilot.press("m")
        assert sorted(seen) == sorted(MATRICES)
        # Z2's sums use A1
        while screen.inspector.matrix != "Z2":
            await pilot.press("m")
        await pilot.press("c")
        assert f"= {z2[1]:g}" in text_of(screen, "#f-sum")
        assert "z2_2 = a1_1·w2_12 + a1_2·w2_22 + a1_3·w2_32" in text_of(screen, "#f-sum")


async def test_toy_edit_function_and_reset():
    app = app_for("ffn")
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        screen = app.screen
        await pilot.press("e")  # Z1 is computed: a message, no input
        assert "computed" in list(app._notifications)[-1].message  # noqa: SLF001
        while screen.inspector.matrix != "W1":
            await pilot.press("m")
        await pilot.press("c", "e")  # W1 row 1 col 2
        await type_text(pilot, "1.5")
        await pilot.press("enter")
        await pilot.pause()
        assert screen.net.w1[0, 1] == 1.5
        assert screen.net.z1[0, 1] == 1.0 * 1.5 + 2.0 * -0.5
        for bad in ("1e6", "nan", "-inf"):
            await pilot.press("e")
            await type_text(pilot, bad)
            await pilot.press("enter")
            await pilot.pause()
            assert screen.net.w1[0, 1] == 1.5
            await pilot.press("escape")
        await pilot.press("f")
        assert screen.net.activation == "gelu"
        await pilot.press("r")
        assert screen.net.w1[0, 1] == 0.0 and screen.net.activation == "relu"


def fresh_trace(model, ids) -> Trace:  # noqa: ANN001
    t = Trace()
    forward(model, ids, trace=t)
    return t


async def test_real_ffn_step_and_lens():
    app = app_for("ffn")
    async with app.run_test(size=(100, 40)) as pilot:
        await settled(pilot)
        screen = app.screen
        model, enc = app.session.model, app.session.encoding("model")
        ids = enc.encode_ordinary(PROMPT)
        trace = fresh_trace(model, ids)
        for keys, (layer, pos) in (((), (0, len(ids) - 1)), (("comma",), (0, len(ids) - 2)),
                                    (("l", "l", "l"), (3, len(ids) - 2)), (("full_stop", "full_stop"), (3, 0)),
                                    (("L",), (2, 0))):  # fmt: skip
            await pilot.press(*keys)
            await settled(pilot)
            upd = screen.real_update
            assert (upd.layer, upd.position) == (layer, pos)
            rec = trace.layers[layer]
            np.testing.assert_allclose(upd.out, rec["ffn_out"][pos], atol=1e-6)
            np.testing.assert_allclose(upd.resid_in + upd.out, rec["resid_ffn"][pos], atol=1e-5)
            # the lens, applied here: RMSNorm with the final gain, then the head
            x = rec["ffn_out"][pos].astype(np.float64)
            normed = x / np.sqrt(np.mean(x * x) + model.config.rms_norm_eps) * model.norm
            lens = normed @ model.lm_head.T.astype(np.float64)
            np.testing.assert_allclose(upd.lens, lens, rtol=1e-4, atol=1e-4)
            shown = text_of(screen, "#f-lens")
            top = int(np.argmax(lens))
            bottom = int(np.argmin(lens))
            assert f"{lens[top]:+8.3f}" in shown and f"{lens[bottom]:+8.3f}" in shown
            units = text_of(screen, "#f-units")
            h = rec["hidden"][pos]
            biggest = int(np.argmax(np.abs(h)))
            assert f"{h[biggest]:+.3f}" in units
            assert f"[{model.config.intermediate_size}]" in text_of(screen, "#f-shapes")
        assert "not mechanism" in text_of(screen, "#f-body > Static.note")


@pytest.mark.parametrize("prompt", ["", "a", "\x07"])
async def test_awkward_prompts(prompt):
    app = app_for("ffn", prompt=prompt)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        screen = app.screen
        assert screen.real_update is not None
        await pilot.press("comma", "full_stop", "l")
        await settled(pilot)
        if prompt == "":
            assert "prompt is empty" in text_of(screen, "#f-shapes")
        assert app.session.prompt == prompt


async def test_other_model_sizes():
    app = app_for("ffn", model=odd_model())
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot)
        screen = app.screen
        shapes = text_of(screen, "#f-shapes")
        assert "x [24]" in shapes and "[40]" in shapes and "layer 0 of 0–2" in shapes
        await pilot.press("L")
        await settled(pilot)
        assert screen.real_update.layer == 2
