"""Bytes per key over a real SSH connection, for every registered chapter.

Starts its own ``sshd`` on 127.0.0.1 at a free unprivileged port, with throw-away host and
client keys (key-based login only, nothing written outside a temporary directory), then
for each chapter in the registry runs ``llm-anatomy --chapter N`` through ``ssh -tt`` on
an 80x24 pseudo-terminal and counts the bytes the app's output takes after each key,
until the screen has been quiet for a moment. Keys pressed: the chapter's own bindings
(from the registry's screen class), the scrolling keys, Tab, the prompt (``/``, a letter,
Esc) and, last, ``n`` (a chapter switch, reported but not held to the budget).

    python benchmarks/bench_ssh.py [--chapters 1,9] [--budget-kb 50]

Needs ``openssh-server`` (``apt-get install openssh-server``). Exit status 1 if a key other
than a chapter switch sent more than the budget.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llm_anatomy_tui.chapters import CHAPTERS  # noqa: E402

QUIET = 0.6  # seconds without output that end a key's repaint
BLINK_BYTES = 400  # output per quiet window that still counts as quiet (cursor blink)
KEY_BYTES = {
    "pagedown": b"\x1b[6~", "pageup": b"\x1b[5~", "down": b"\x1b[B", "up": b"\x1b[A",
    "left": b"\x1b[D", "right": b"\x1b[C", "tab": b"\t", "escape": b"\x1b", "enter": b"\r",
    "space": b" ", "home": b"\x1b[H", "end": b"\x1b[F", "slash": b"/", "plus": b"+",
    "minus": b"-", "full_stop": b".", "comma": b",", "left_square_bracket": b"[",
    "right_square_bracket": b"]", "question_mark": b"?", "backspace": b"\x7f",
}  # fmt: skip
SKIP = {"q", "ctrl+q", "ctrl+c", "question_mark", "f1", "t", "n", "p"}  # quit/dialogs/switches


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SSHD:
    """A private sshd on loopback with its own keys."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="llm-anatomy-sshd-"))
        self.port = free_port()
        d = self.dir
        for name in ("host_key", "client_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True
            )
        (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
        os.chmod(d / "authorized_keys", 0o600)
        (d / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
            f"AuthorizedKeysFile {d / 'authorized_keys'}\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            f"PidFile {d / 'sshd.pid'}\nPermitRootLogin prohibit-password\n"
            "AcceptEnv LANG LC_* TERM\nCompression no\n"
        )
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
        self.proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(d / "sshd_config")],
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(0.5)

    def ssh_argv(self, remote: str) -> list[str]:
        return [
            "ssh", "-tt", "-q", "-p", str(self.port), "-i", str(self.dir / "client_key"),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "127.0.0.1", remote,
        ]  # fmt: skip

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Session:
    def __init__(self, argv: list[str], cols: int = 80, rows: int = 24) -> None:
        import fcntl
        import struct
        import termios

        pid, fd = pty.fork()
        if pid == 0:
            os.environ["TERM"] = "xterm-256color"
            os.execvp(argv[0], argv)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.pid, self.fd = pid, fd

    def read_quiet(self, quiet: float = QUIET, limit: float = 30.0) -> int:
        """Bytes received until ``quiet`` seconds pass with no more than a blinking
        cursor's worth of output (a focused text field repaints its cursor forever)."""
        total, end = 0, time.perf_counter() + limit
        window_start, window_bytes = time.perf_counter(), 0
        while time.perf_counter() < end:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            now = time.perf_counter()
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                total += len(chunk)
                window_bytes += len(chunk)
                if window_bytes > BLINK_BYTES:
                    window_start, window_bytes = now, 0
            if now - window_start >= quiet:
                break
        return total

    def key(self, name: str, quiet: float = QUIET) -> int:
        data = KEY_BYTES.get(name, name.encode() if len(name) == 1 else None)
        if data is None:
            return -1
        os.write(self.fd, data)
        return self.read_quiet(quiet)

    def close(self) -> None:
        try:
            os.write(self.fd, b"\x11")  # ctrl+q
            time.sleep(0.5)
            os.kill(self.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            os.waitpid(self.pid, 0)
        finally:
            os.close(self.fd)


def chapter_keys(chapter) -> list[str]:  # noqa: ANN001
    """The chapter's own keys (first of each binding), then generic ones."""
    keys: list[str] = []
    for binding in chapter.load().BINDINGS:
        bid = getattr(binding, "id", "") or ""
        if bid.startswith("nav.") or not getattr(binding, "key", None):
            continue
        key = binding.key.split(",")[0]
        if key not in SKIP and key not in keys and (len(key) == 1 or key in KEY_BYTES):
            keys.append(key)
    return keys[:14] + ["pagedown", "pagedown", "pageup", "down", "tab", "slash", "x",
                        "escape"]  # fmt: skip


def measure(sshd: SSHD, chapter, env_prefix: str) -> tuple[float, list[tuple[str, int]]]:  # noqa: ANN001
    remote = f"cd {ROOT} && {env_prefix} {sys.executable} -m llm_anatomy_tui.cli --chapter {chapter.slug}"
    s = Session(sshd.ssh_argv(remote))
    try:
        t0 = time.perf_counter()
        first = s.read_quiet(quiet=2.5)
        start_s = time.perf_counter() - t0
        results = [("(start)", first)]
        for key in chapter_keys(chapter):
            results.append((key, s.key(key)))
        results.append(("n (switch)", s.key("n", quiet=2.5)))  # a first open builds the screen
        return start_s, results
    finally:
        s.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", default=",".join(str(c.number) for c in CHAPTERS))
    parser.add_argument("--budget-kb", type=float, default=50.0)
    args = parser.parse_args()
    if not (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()):
        print("sshd not found: apt-get install openssh-server")
        return 2
    wanted = {int(n) for n in args.chapters.split(",")}
    env_prefix = f"PYTHONPATH={ROOT}" + "".join(
        f" {k}={os.environ[k]}" for k in ("NO_COLOR", "TEXTUAL_ANIMATIONS") if k in os.environ
    )
    sshd = SSHD()
    over = []
    try:
        print(f"bytes per key over ssh (loopback sshd, port {sshd.port}), 80x24")
        print(
            f"{'chapter':<18} {'keys':>4} {'max KB':>7} {'mean KB':>8} {'worst key':<14} switch KB"
        )
        for chapter in CHAPTERS:
            if chapter.number not in wanted:
                continue
            _, results = measure(sshd, chapter, env_prefix)
            keys = [(k, b) for k, b in results[1:-1] if b >= 0]
            worst = max(keys, key=lambda kb: kb[1])
            mean = sum(b for _, b in keys) / len(keys)
            print(
                f"{chapter.label:<18.18} {len(keys):>4} {worst[1] / 1024:>7.1f} "
                f"{mean / 1024:>8.1f} {worst[0]:<14} {results[-1][1] / 1024:.1f}"
            )
            if os.environ.get("BENCH_SSH_VERBOSE"):
                print("   ", " ".join(f"{k}={b / 1024:.1f}" for k, b in results))
            over += [(chapter.slug, k, b) for k, b in keys if b > args.budget_kb * 1024]
    finally:
        sshd.close()
    for slug, key, b in over:
        print(f"OVER BUDGET: {slug} key {key!r} sent {b / 1024:.1f} KB")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
