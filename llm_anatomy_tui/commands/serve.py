"""``llm-anatomy serve``: the same app in a web browser, one app process per browser tab.

Uses ``textual-serve``: a small web server that, for every page opened, starts
``llm-anatomy`` as a separate process and relays its screen and keys over a websocket.
It listens on loopback (127.0.0.1) unless told otherwise; see the README ("A classroom in
a browser") for what exposing it on a network means.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import socket
import sys

from . import CommandError

NAME = "serve"
HELP = "serve the app to web browsers (each tab its own app process; loopback by default)"

LOOPBACK = "127.0.0.1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default=LOOPBACK, metavar="ADDR",
        help="address to listen on (default 127.0.0.1: this machine only; "
        "0.0.0.0 listens on every network interface)",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=8000, metavar="N", help="port (8000)")
    parser.add_argument(
        "--public-url", metavar="URL",
        help="the address browsers use to reach this server, e.g. http://10.0.0.5:8000 "
        "(required with a --host other than loopback)",
    )  # fmt: skip
    parser.add_argument("--app-chapter", metavar="N|SLUG", help="chapter every new tab opens at")


def is_loopback(host: str) -> bool:
    """
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def app_command(chapter: str | None) -> str:
    """The command each browser tab runs: this Python, this package's CLI."""
    argv = [sys.executable, "-m", "llm_anatomy_tui.cli"]
    if chapter:
        argv += ["--chapter", chapter]
    return shlex.join(argv)


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CommandError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                "choose another --port or --host"
            ) from None


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise CommandError(f"--port must be between 1 and 65535, got {args.port}")
    if args.app_chapter is not None:
        from ..chapters import UnknownChapter, find_chapter

        try:
            find_chapter(args.app_chapter)
        except UnknownChapter as exc:
            raise CommandError(str(exc)) from None
    public_url = args.public_url
    if not is_loopback(args.host) and not public_url:
        raise CommandError(
            f"--host {args.host} makes the app reachable from the network; also give "
            f"--public-url http://<this machine's address>:{args.port} (the address "
            "students type)"
        )
    _check_port_free(args.host, args.port)
    try:
        from textual_serve.server import Server
    except ImportError:
        raise CommandError(
            "serving needs the textual-serve package: pip install textual-serve"
        ) from None
    if not is_loopback(args.host):
        print(
            f"warning: listening on {args.host}:{args.port}: anyone who can reach this "
            "machine can open the app; every tab starts its own process (~150-300 MB).",
            file=sys.stderr,
        )
    server = Server(
        app_command(args.app_chapter),
        host=args.host,
        port=args.port,
        title="llm-anatomy",
        public_url=public_url,
    )
    server.serve()
    return 0
