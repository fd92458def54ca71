"""The TUI without a terminal (issue 15: ``setsid llm-anatomy < /dev/null > out 2>&1`` spun
forever writing escape codes). It must end at once with one line and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from llm_anatomy_tui.cli import terminal_problem

CMD = [sys.executable, "-c", "import sys; from llm_anatomy_tui.cli import main; sys.exit(main())"]


def _run(extra_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TEXTUAL_DRIVER"}
    env.update(extra_env)
    return subprocess.run(
        [*CMD, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        timeout=30,  # the old behaviour never ended
        start_new_session=True,  # setsid: no controlling terminal either
    )


@pytest.mark.parametrize("args", [(), ("--chapter", "1")])
def test_no_tty_exits_with_one_line(args: tuple[str, ...]) -> None:
    done = _run({"TERM": "xterm-256color"}, *args)
    assert done.returncode == 2
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout[:500]
    assert "needs a terminal" in lines[0]
    assert "llm-anatomy tokenize" in lines[0]
    assert "\x1b" not in done.stdout  # no escape codes written


def test_headless_commands_still_work_without_tty() -> None:
    done = _run({"TERM": "dumb"}, "tokenize", "hi")
    assert done.returncode == 0, done.stdout


def test_term_dumb_and_pipes_refused() -> None:
    assert terminal_problem(True, True, "xterm") is None
    assert "TERM=dumb" in (terminal_problem(True, True, "dumb") or "")
    assert "output" in (terminal_problem(True, False, "xterm") or "")
    # textual-serve's browser sessions bring their own driver: allowed without a TTY
    assert terminal_problem(False, False, None, "textual.drivers.web_driver:WebDriver") is None


def test_term_dumb_on_a_real_pty_exits_at_once() -> None:
    pty = pytest.importorskip("pty")
    import select

    pid, fd = pty.fork()
    if pid == 0:  # child: a real terminal, but TERM=dumb
        os.environ["TERM"] = "dumb"
        os.environ.pop("TEXTUAL_DRIVER", None)
        os.execv(sys.executable, CMD)
    out = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 30)
        if not ready:
            os.kill(pid, 9)
            pytest.fail("the app did not exit with TERM=dumb")
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 2
    assert b"TERM=dumb" in out and b"\x1b[" not in out
