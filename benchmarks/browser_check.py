"""``llm-anatomy serve`` in a real browser: headless Chromium opens the page, the app
renders a chapter, a key press changes the chapter. Screenshots are written so a person
can look at them.

    python benchmarks/browser_check.py [--out DIR]

Needs Debian's ``chromium`` (``apt-get install chromium``) and ``textual-serve``. Drives
Chromium over its DevTools protocol with aiohttp (a dependency of textual-serve), so no
browser-automation package is needed. Exit status 0 when every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Page:
    """One Chromium page over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            msg = json.loads((await self.ws.receive()).data)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode((await self.call("Page.captureScreenshot"))["data"])
        path.write_bytes(data)
        return data

    async def press(self, key: str, code: str, key_code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            params: dict[str, object] = {
                "type": kind, "key": key, "code": code, "windowsVirtualKeyCode": key_code,
            }  # fmt: skip
            if kind == "keyDown" and len(key) == 1:
                params["text"] = key
            await self.call("Input.dispatchKeyEvent", **params)


async def check(out: Path) -> list[str]:
    failures: list[str] = []
    port, debug_port = free_port(), free_port()
    env = dict(os.environ)
    serve = subprocess.Popen(
        [sys.executable, "-m", "llm_anatomy_tui.cli", "serve", "--port", str(port),
         "--app-chapter", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    profile = tempfile.mkdtemp(prefix="llm-anatomy-chromium-")
    browser = None
    try:
        time.sleep(2.0)
        browser = subprocess.Popen(
            [shutil.which("chromium") or "chromium", "--headless", "--no-sandbox",
             "--disable-gpu", f"--remote-debugging-port={debug_port}",
             f"--user-data-dir={profile}", "--window-size=1280,800",
             f"http://127.0.0.1:{port}/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        async with aiohttp.ClientSession() as http:
            targets: list[dict] = []
            for _ in range(50):
                try:
                    async with http.get(f"http://127.0.0.1:{debug_port}/json/list") as r:
                        targets = [t for t in await r.json() if t.get("type") == "page"]
                    if targets:
                        break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            if not targets:
                return ["Chromium did not open the page"]
            async with http.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.call("Page.enable")
                await asyncio.sleep(8.0)  # the app process starts and paints
                first = await page.screenshot(out / "serve-chapter1.png")
                title = await page.call("Runtime.evaluate", expression="document.title")
                print(f"page title: {title['result'].get('value')!r}")
                # keys go to the terminal's input element (xterm.js), as after a click
                await page.call(
                    "Runtime.evaluate",
                    expression="document.querySelector('.xterm-helper-textarea').focus()",
                )
                await page.press("n", "KeyN", 78)  # next chapter
                await asyncio.sleep(3.0)
                second = await page.screenshot(out / "serve-after-n.png")
                if first == second:
                    failures.append("the key press did not change the page")
    finally:
        for proc in (browser, serve):
            if proc is not None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".", help="where to write the screenshots")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("chromium") is None:
        print("chromium not found (apt-get install chromium)")
        return 2
    failures = asyncio.run(check(out))
    for f in failures:
        print("FAIL:", f)
    print("screenshots:", out / "serve-chapter1.png", out / "serve-after-n.png")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
