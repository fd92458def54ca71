"""The one compute path of ``ChapterScreen``: stale results are dropped, the header says
when the screen is behind its inputs, errors become one line, progress and cancel work,
and ``app.wait_until_settled()`` waits for all of it."""

from __future__ import annotations

import threading

from tui_helpers import make_session

from llm_anatomy_tui.app import LLMAnatomyApp
from llm_anatomy_tui.chapters.base import ChapterHeader, ComputeTask

LONG = "The quick brown fox jumps over the lazy dog. " * 600  # > SYNC_LIMIT characters


def _app(chapter: str = "tokenization", prompt: str | None = None) -> LLMAnatomyApp:
    return LLMAnatomyApp(chapter=chapter, session=make_session(prompt or "Hi there"),
                         load_resources=False)  # fmt: skip


def _header(app: LLMAnatomyApp) -> str:
    return app.screen.query_one(ChapterHeader).status


async def test_a_superseded_result_is_dropped_and_the_newest_is_drawn() -> None:
    app = _app()
    async with app.run_test() as pilot:
        await app.wait_until_settled()
        screen = app.screen
        release = threading.Event()
        drawn: list[str] = []

        def slow(value: str) -> str:
            release.wait(5)
            return value

        screen.compute("x", slow, "old", then=drawn.append)
        await pilot.pause()
        assert screen.is_computing("x")
        assert _header(app).startswith("computing")
        screen.compute("x", lambda v: v, "new", then=drawn.append)
        release.set()
        await app.wait_until_settled()
        assert drawn == ["new"]
        assert not screen.is_computing()
        assert "computing" not in _header(app)


async def test_inline_work_is_drawn_before_compute_returns() -> None:
    app = _app()
    async with app.run_test():
        await app.wait_until_settled()
        drawn: list[int] = []
        app.screen.compute("x", lambda a, b: a + b, 2, 3, then=drawn.append, inline=True)
        assert drawn == [5]
        assert not app.screen.is_computing("x")


async def test_an_exception_becomes_one_line_and_the_slot_stops_pending() -> None:
    app = _app()
    async with app.run_test():
        await app.wait_until_settled()
        errors: list[str] = []

        def broken() -> None:
            raise ValueError("the prompt is empty")

        def crash() -> None:
            raise KeyError("boom")

        app.screen.compute("x", broken, then=print, on_error=errors.append)
        await app.wait_until_settled()
        app.screen.compute("y", crash, then=print, on_error=errors.append, inline=True)
        assert errors == ["the prompt is empty", "KeyError: 'boom'"]
        assert not app.screen.is_computing()


async def test_progress_reaches_the_screen_and_cancel_stops_the_loop() -> None:
    app = _app()
    async with app.run_test() as pilot:
        await app.wait_until_settled()
        screen = app.screen
        started, finish = threading.Event(), threading.Event()
        seen: list[float] = []
        stopped_early: list[bool] = []

        def long_job(steps: int, task: ComputeTask) -> int:
            for i in range(steps):
                task.report(i / steps, i)
                started.set()
                if task.cancelled:
                    stopped_early.append(True)
                    return i
                finish.wait(0.01)
            return steps

        screen.compute("job", long_job, 10_000, then=print,
                       on_progress=lambda r: seen.append(r.fraction))  # fmt: skip
        started.wait(5)
        await pilot.pause(0.05)
        assert seen and all(0 <= f <= 1 for f in seen)
        assert "computing…" in _header(app) and "%" in _header(app)
        screen.cancel_compute("job")
        await app.wait_until_settled()
        assert stopped_early == [True]
        assert not screen.is_computing()
        assert "computing" not in _header(app)


async def test_a_long_paste_is_counted_in_a_worker_and_the_screen_catches_up() -> None:
    app = _app()
    async with app.run_test() as pilot:
        await app.wait_until_settled()
        screen = app.screen
        screen.set_prompt(LONG)
        await app.wait_until_settled()
        await pilot.pause()
        rows = {row.name: row for row in screen.count_rows}
        expected = len(app.session.encoding("o200k_base").encode_ordinary(LONG))
        assert rows["o200k_base"].tokens == f"{expected:,}"
        assert all(row.tokens != "counting…" for row in rows.values())
        assert "computing" not in _header(app)
        # and back to a short text: the worker's late result must not overwrite it
        screen.set_prompt("Hi")
        await app.wait_until_settled()
        short = len(app.session.encoding("o200k_base").encode_ordinary("Hi"))
        assert {r.name: r for r in screen.count_rows}["o200k_base"].tokens == f"{short:,}"


def test_a_job_gives_way_at_its_report_while_a_key_is_being_handled(monkeypatch) -> None:
    """``ComputeTask.report`` posts progress, then waits while a key press is being
    handled (the app's ``input_settled`` clear), and goes on once it is painted."""
    from llm_anatomy_tui.chapters import base

    monkeypatch.setattr(base, "INPUT_YIELD_SECONDS", 60.0)  # only the event can end the wait
    settled = threading.Event()  # clear: a key is being handled
    posted: list = []
    task = ComputeTask(posted.append, settled)
    job = threading.Thread(target=task.report, args=(0.5,))
    job.start()
    while not posted:  # the progress is posted before the job waits
        job.join(0.01)
    job.join(0.2)
    assert job.is_alive()  # still waiting for the key's repaint
    settled.set()
    job.join(10)
    assert not job.is_alive() and posted[0].fraction == 0.5
    # without an input gate (scripts, tests) a report never waits
    ComputeTask(posted.append).report(1.0)
    assert posted[-1].fraction == 1.0


async def test_a_key_closes_the_input_gate_until_after_its_repaint() -> None:
    from textual import events

    app = _app()
    async with app.run_test() as pilot:
        await app.wait_until_settled()
        for key in ("down", "up", "x", "escape"):
            await pilot.press(key)
            await pilot.pause()
            assert app.input_settled.is_set()  # reopened: never left closed
        after_refresh = []
        app.call_after_refresh = lambda callback, *args: after_refresh.append(callback)
        await app.on_event(events.Key("down", None))
        assert not app.input_settled.is_set()  # closed while the key is handled
        assert after_refresh == [app.input_settled.set]  # and reopened after the repaint
