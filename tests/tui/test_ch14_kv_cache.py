"""Chapter 14 (Context & KV cache) driven by keys, with the numbers read back off the screen."""

from __future__ import annotations

from ch_helpers import drain, edit_prompt, header_text, model_app, static_text, steady_clock

from llm_anatomy_tui.chapters.c14_kv_cache import KVCacheScreen
from llm_anatomy_tui.core.generation import decode_step_macs, kv_cache_bytes_for
from llm_anatomy_tui.core.quant_kv import kv_bytes_per_token
from llm_anatomy_tui.views.kv_inspect import diff_text
from llm_anatomy_tui.views.kv_memory import LLAMA_3_8B, kv_bytes, presets_with

STORY = "Once upon a time, there was a little robot who wanted to read."


async def open_kv(pilot) -> KVCacheScreen:  # noqa: ANN001
    await drain(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, KVCacheScreen)
    return screen


def kv_shape(app, t: int) -> str:  # noqa: ANN001
    """How the table prints one layer's K (or V) array holding ``t`` positions."""
    cfg = app.session.model.config
    return f"[{cfg.num_key_value_heads}, {t}, {cfg.dim_head}]"


async def test_bytes_shown_are_the_arrays_nbytes_and_the_formula():
    app = model_app("kv-cache", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_kv(pilot)
        cfg = app.session.model.config
        for steps in (0, 1, 3):
            for _ in range(steps):
                await pilot.press("s")
            await drain(pilot)
            gen = app.session.current_generation
            t = len(gen.tokens)  # every token in context is cached
            assert gen.cache.length == t
            text = static_text(screen, "#kv-arrays")
            for i, layer in enumerate(gen.cache.layers):
                nbytes = layer.keys.nbytes + layer.values.nbytes
                assert screen.shown.arrays[i] == (
                    f"layer {i}",
                    f"[2, {t}, 32]",
                    f"[2, {t}, 32]",
                    nbytes,
                )
                line = next(x for x in text.splitlines() if x.startswith(f"layer {i}"))
                assert line.count(f"[2, {t}, 32] float32") == 2
                assert line.rstrip().endswith(f"{nbytes:,}")
            total = sum(layer.keys.nbytes + layer.values.nbytes for layer in gen.cache.layers)
            formula = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.dim_head * t * 4
            assert total == formula == screen.shown.total_bytes == screen.shown.formula_bytes
            numbers = (cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.dim_head, t)
            assert f"= 2 · {' · '.join(map(str, numbers))} · 4 = {formula:,} B" in text
            assert "✓ equal" in text
            assert f"Σ nbytes  {total:,}" in " ".join(text.split("  ")).replace("   ", "  ") or (
                f"{total:,}" in text
            )
            status = static_text(screen, "#kv-status")
            assert f"cache: {t} of {cfg.max_position_embeddings} positions" in status
            picture = screen.query_one("#kv-map").text()
            assert f"newest (position {t - 1})" in picture
            assert picture.count("\nL") == 2 * cfg.num_hidden_layers


async def test_cache_on_and_off_same_logits_different_work():
    app = model_app("kv-cache", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_kv(pilot)
        cfg = app.session.model.config
        await pilot.press("s", "s", "s")
        await drain(pilot)
        comps = screen.shown.comparisons
        assert len(comps) == 3 and comps[0].prefill
        for c in comps[1:]:
            assert c.ran_cached and c.cached_fed == 1 and c.uncached_fed == c.position
            assert c.max_abs_diff < 1e-4 and c.top1_same
            assert c.cached_macs == decode_step_macs(cfg, c.position - 1, cached=True)
            assert c.uncached_macs == decode_step_macs(cfg, c.position - 1, cached=False)
        text = static_text(screen, "#kv-compare")
        last = comps[-1]
        assert f"max |Δ| {diff_text(last.max_abs_diff)}, same top token" in text
        row = next(x for x in text.splitlines() if x.split() and x.split()[0] == str(last.index))
        cells = row.split()
        assert cells[2] == f"1/{last.position}"
        assert (
            cells[3] == f"{last.cached_macs / 1e6:.2f}"
            and cells[4] == f"{last.uncached_macs / 1e6:.2f}"
        )
        assert cells[5] == f"{last.cached_seconds * 1000:.2f}"


async def test_cache_switch_tells_one_story_and_changes_only_this_screen():
    """Before: with the cache off the screen said "nothing is stored" next to a table of
    stored bytes "✓ equal", new steps filled the "cached" columns, and the switch changed
    the shared generation that chapter 5 steps."""
    app = model_app("kv-cache", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_kv(pilot)
        await pilot.press("s", "s")
        await drain(pilot)
        gen = app.session.current_generation
        on_arrays = static_text(screen, "#kv-arrays")
        assert "✓ equal" in on_arrays and "M MACs cached" in static_text(screen, "#kv-compare")
        await pilot.press("c")  # cache off: what this screen shows, nothing else
        await pilot.press("s", "s")
        await drain(pilot)
        assert gen is app.session.current_generation and gen.use_cache
        assert all(rec.used_cache for rec in gen.steps)  # the shared story kept its cache
        status = static_text(screen, "#kv-status")
        arrays = static_text(screen, "#kv-arrays")
        compare = static_text(screen, "#kv-compare")
        assert "OFF" in status and f"all {len(gen.tokens)} tokens" in status
        assert "Cache off: nothing is stored" in arrays
        assert "✓ equal" not in arrays and "float32" not in arrays and "Σ nbytes" not in arrays
        assert screen.shown.arrays == [] and screen.shown.total_bytes == 0
        header = next(x for x in compare.splitlines() if x.split() and x.split()[0] == "step")
        assert "cached" not in header and "no cache" in header
        last = screen.shown.comparisons[-1]
        row = next(x for x in compare.splitlines() if x.split() and x.split()[0] == str(last.index))
        assert row.split()[2] == str(last.uncached_fed) == str(len(gen.tokens) - 1)
        assert [s.name for s in screen.query_one("#kv-plot-macs").series] == ["no cache"]
        assert not screen.query_one("#kv-map").display
        # chapter 5 steps the same generation, with its cache, as before
        app.goto_chapter("sampling")
        await drain(pilot)
        await pilot.press("s")
        await drain(pilot)
        assert gen.steps[-1].used_cache and gen.steps[-1].n_fed == 1
        app.goto_chapter("kv-cache")
        await drain(pilot)
        await pilot.press("c")  # on again: the stored arrays, every step measured
        await drain(pilot)
        assert "✓ equal" in static_text(screen, "#kv-arrays")
        assert len(screen.shown.comparisons) == len(gen.steps) == 5
        assert screen.shown.total_bytes == gen.cache.nbytes


async def test_quantized_cache_bytes_and_drift():
    app = model_app("kv-cache", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_kv(pilot)
        cfg = app.session.model.config
        assert "Off." in static_text(screen, "#kv-quant")
        await pilot.press("s", "s")
        await pilot.press("k")  # 8-bit
        await drain(pilot)
        gen = app.session.current_generation
        t = len(gen.tokens)
        text = static_text(screen, "#kv-quant")
        codes = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * t * cfg.dim_head
        blocks = cfg.dim_head // (32 if cfg.dim_head % 32 == 0 else cfg.dim_head)
        scales = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * t * blocks * 2
        assert f"= {codes:,} B" in text and f"= {scales:,} B" in text
        assert f"total   {codes + scales:,} B = codes + scales" in text
        assert codes + scales == t * kv_bytes_per_token(cfg, 8)
        fp32 = kv_cache_bytes_for(cfg, t)
        assert f"float32 holds {fp32:,} B" in text
        drift = screen.shown.drift
        assert [i for i, _ in drift] == list(range(len(gen.steps) + 1))
        for _, d in drift:
            assert d.max_abs_logit_diff < 1.0 and d.kl < 0.05
        assert f"top token the same in {sum(d.top1_match for _, d in drift)} of 3" in text
        await pilot.press("s")  # stepping adds a drift row
        await drain(pilot)
        assert len(screen.shown.drift) == 4
        await pilot.press("k")  # 4-bit
        await drain(pilot)
        text = static_text(screen, "#kv-quant")
        t = len(gen.tokens)
        assert "4-bit cache" in text
        assert f"total   {t * kv_bytes_per_token(cfg, 4):,} B = codes + scales" in text
        four = max(d.max_abs_logit_diff for _, d in screen.shown.drift)
        assert four > max(d.max_abs_logit_diff for _, d in drift)  # fewer bits, more drift
        await pilot.press("k")  # off
        await drain(pilot)
        assert "Off." in static_text(screen, "#kv-quant")


async def test_memory_calculator_by_keys():
    app = model_app("kv-cache", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_kv(pilot)
        presets = presets_with(app.session.model.config)
        await pilot.press("m")
        await pilot.pause()
        assert screen.focused is not None and screen.focused.id == "kv-preset"
        result = static_text(screen, "#kv-calc-result")
        assert f"{kv_bytes(presets[0]):,} B" in result  # anatomy-mini, its float32 cache
        cfg = app.session.model.config
        assert kv_bytes(presets[0]) == kv_cache_bytes_for(cfg, cfg.max_position_embeddings)
        await pilot.press("enter", "down", "enter")  # the next preset: Llama-3-8B
        await drain(pilot)
        assert presets[1] == LLAMA_3_8B
        result = static_text(screen, "#kv-calc-result")
        assert "= 2 · 32 · 8 · 128 · 8,192 · 2 = 1,073,741,824 B" in result
        assert "1.07 GB, 1.00 GiB" in result
        assert screen.shown.calculator_bytes == 2**30
        # type a context of 128k (Tab: layers, KV heads, head dim, context)
        await pilot.press("tab", "tab", "tab", "tab")
        assert screen.focused.id == "kv-context"
        await pilot.press("ctrl+a", "ctrl+k", *"128k")
        await drain(pilot)
        assert screen.shown.calculator_bytes == 16 * 2**30
        await pilot.press("ctrl+a", "ctrl+k", *"0")
        await drain(pilot)
        assert "context must be between 1 and" in static_text(screen, "#kv-calc-result")
        assert screen.query_one("#kv-context").has_class("-bad")
        assert screen.shown.calculator_bytes == 16 * 2**30  # the last valid value stays
        await pilot.press("ctrl+a", "ctrl+k", *"8192", "tab")  # then the dtype list
        await pilot.press("enter", "down", "down", "enter")  # fp32 -> fp16 -> bf16 … list order
        await drain(pilot)
        table = static_text(screen, "#kv-presets")
        for arch in presets:
            assert arch.name in table


async def test_restart_prefills_again_and_held_step_takes_every_press():
    app = model_app("kv-cache", STORY)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_kv(pilot)
        for _ in range(20):
            await pilot.press("s")
        await drain(pilot, rounds=80)
        gen = app.session.current_generation
        assert len(gen.steps) == 20
        assert len(screen.shown.comparisons) == 20
        await pilot.press("x")
        await drain(pilot)
        assert len(gen.steps) == 0
        await pilot.press("s")
        await drain(pilot)
        assert gen.steps[0].n_fed == len(gen.prompt)  # a full prefill again
        assert "the prefill" in static_text(screen, "#kv-compare")


async def test_empty_prompt_and_full_context():
    app = model_app("kv-cache", "")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_kv(pilot)
        assert "The prompt is empty" in static_text(screen, "#kv-message")
        assert screen.shown.arrays[0][1] == kv_shape(app, 1)
        await pilot.press("s")
        await drain(pilot)
        assert screen.shown.arrays[0][1] == kv_shape(app, 2)
    app = model_app("kv-cache", "The cat sat on the mat. " * 60)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_kv(pilot)
        assert "fell out of the window" in static_text(screen, "#kv-message")
        await pilot.press("s", "s")
        await drain(pilot)
        gen = app.session.current_generation
        assert gen.done and gen.stop.reason == "context_full" and len(gen.steps) == 1
        msg = static_text(screen, "#kv-message")
        assert "context window is full" in msg and "Press x" in msg
        # the last token is never run: nothing comes after it, so its K and V are not needed
        window = app.session.model.config.max_position_embeddings
        assert screen.shown.arrays[0][1] == kv_shape(app, window - 1)
        assert screen.shown.total_bytes == kv_cache_bytes_for(app.session.model.config, window - 1)
        assert "The newest token never ran" in static_text(screen, "#kv-arrays")


async def test_small_terminal_and_long_context_stay_readable():
    app = model_app("kv-cache", "The cat sat on the mat. " * 30)
    async with app.run_test(size=(40, 12)) as pilot:
        screen = await open_kv(pilot)
        await pilot.press("g")
        await pilot.press("k")
        await drain(pilot, rounds=80)
        picture = screen.query_one("#kv-map").text()
        assert "each cell is" in picture and "positions (mean)" in picture
        await pilot.press("pagedown", "pagedown", "end", "home")
        await drain(pilot)


async def test_a_prompt_edit_shows_the_new_prompts_cache_and_nothing_computing():
    """Before: after /, typing and Esc, the status stayed on "Reading the prompt…" and the
    cache table kept the previous prompt's arrays."""
    app = model_app("kv-cache", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_kv(pilot)
        await pilot.press("s", "s")
        await drain(pilot)
        cfg = app.session.model.config
        for typed in (" The cat", " sat on the mat and looked at the"):
            await edit_prompt(pilot, typed)
            prompt = app.session.prompt
            assert prompt.endswith(typed)
            t = len(app.session.encoding("model").encode_ordinary(prompt))
            per_layer = 2 * cfg.num_key_value_heads * t * cfg.dim_head * 4
            assert screen.shown.arrays[0] == ("layer 0", kv_shape(app, t), kv_shape(app, t),
                                              per_layer)  # fmt: skip
            status = static_text(screen, "#kv-status")
            assert f"Prefill: {t} prompt tokens in one pass" in status
            assert f"cache: {t} of {cfg.max_position_embeddings} positions" in status
            assert "Reading" not in status and "computing" not in header_text(app)
            assert screen.shown.comparisons == []  # a fresh generation: no steps yet


# -- snapshots (fixed seed 0, the real model; regenerate with --snapshot-update) ---------


async def _steps_and_q8(pilot) -> None:  # noqa: ANN001
    await drain(pilot)
    await pilot.press("s", "s", "s", "s", "k")
    await drain(pilot)


def test_snapshot_kv_cache_80x24(snap_compare, monkeypatch):
    """Four steps: the arrays table and the cache picture at the top of the chapter."""
    steady_clock(monkeypatch)
    assert snap_compare(model_app("kv-cache", STORY), terminal_size=(80, 24),
                        run_before=_steps_and_q8)  # fmt: skip


def test_snapshot_kv_cache_120x40(snap_compare, monkeypatch):
    """The same at 120×40 (times come from a steady stand-in clock)."""
    steady_clock(monkeypatch)
    assert snap_compare(model_app("kv-cache", STORY), terminal_size=(120, 40),
                        run_before=_steps_and_q8)  # fmt: skip


async def _scrolled(pilot) -> None:  # noqa: ANN001
    await _steps_and_q8(pilot)
    pilot.app.screen.query_one("#kv-compare").scroll_visible(top=True, animate=False)
    await drain(pilot)


def test_snapshot_kv_cache_measurements_120x40(snap_compare, monkeypatch):
    """Scrolled to the cache on/off table, the plots and the quantized cache."""
    steady_clock(monkeypatch)
    assert snap_compare(model_app("kv-cache", STORY), terminal_size=(120, 40),
                        run_before=_scrolled)  # fmt: skip


async def test_status_counts_the_prefill_token_and_the_decode_steps():
    """The prefill yields token 1 and each decode step one more: the status line and the
    with/without table (step 0 = the prefill) count the same steps."""
    app = model_app("kv-cache", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_kv(pilot)
        n_prompt = len(app.session.current_generation.prompt)
        expected = {
            0: f"Prefill: {n_prompt} prompt tokens in one pass · no token generated yet",
            1: f"Prefill: {n_prompt} prompt tokens → token 1 · decode: from the next step on",
            2: f"Prefill: {n_prompt} prompt tokens → token 1 · decode: token 2, one per step",
            4: f"Prefill: {n_prompt} prompt tokens → token 1 · decode: tokens 2–4, one per step",
        }
        taken = 0
        for steps, line in expected.items():
            for _ in range(steps - taken):
                await pilot.press("s")
            taken = steps
            await drain(pilot)
            gen = app.session.current_generation
            assert len(gen.steps) == steps
            assert static_text(screen, "#kv-status").splitlines()[0] == line
            assert gen.cache.length == n_prompt + steps
        await pilot.pause(0.3)  # the with/without measurements catch up after a pause
        await drain(pilot)
        table = static_text(screen, "#kv-compare")
        assert "3 decode steps" in table  # steps 1–3; step 0 was the prefill


async def test_every_step_is_measured_both_ways_once_the_keys_stop():
    """Steps are measured beside the generation worker, a few at a time: after a burst of
    steps and a settle, every step has its measurement (newest first, none twice)."""
    app = model_app("kv-cache", STORY)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_kv(pilot)
        await pilot.press(*["s"] * 9)
        await drain(pilot)
        gen = app.session.current_generation
        comps = screen.shown.comparisons
        assert [c.index for c in comps] == list(range(9)) == [r.index for r in gen.steps]
        assert "measuring" not in static_text(screen, "#kv-compare")
