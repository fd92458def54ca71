"""The ``llm-anatomy`` entry point: the TUI by default, headless subcommands for scripts."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from .commands import CommandError

PROG = "llm-anatomy"
# Modules in llm_anatomy_tui.commands, in the order --help lists them.
COMMAND_MODULES: tuple[str, ...] = ("tokenize", "generate", "train", "serve")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_APP_OPTIONS_WITH_VALUE = ("--chapter", "-c", "--prompt", "-p", "--model", "-m")


def needs_commands(argv: Sequence[str]) -> bool:
    """Whether parsing ``argv`` needs the subcommands registered.

    Registering them imports every command module (and numpy with some), which would
    delay the app's first paint; a plain ``llm-anatomy [--chapter N] [--prompt TEXT]`` has
    no positional argument and does not need them. ``--help`` lists them, so it does.

    >>> needs_commands(["--chapter", "1", "-p", "tokenize"]), needs_commands(["tokenize", "x"])
    (False, True)
    """
    args = iter(argv)
    for arg in args:
        if arg in ("-h", "--help", "--"):
            return True
        if arg in _APP_OPTIONS_WITH_VALUE:
            next(args, None)
        elif not arg.startswith("-") or arg == "-":
            return True
    return False


HEADLESS_HINT = (
    "use the headless commands instead: llm-anatomy tokenize | generate | train "
    "(see llm-anatomy --help)"
)


def terminal_problem(
    stdin_tty: bool, output_tty: bool, term: str | None, driver: str | None = None
) -> str | None:
    """Why the interactive app cannot run here, or ``None`` if it can.

    The app needs a real terminal on its input and on its output (Textual draws on
    stderr), and one that understands cursor movement. Without that it would spin at full
    speed writing escape codes nowhere useful. A Textual driver named in the environment
    (``textual-serve`` sets ``TEXTUAL_DRIVER`` for its browser sessions) brings its own.

    >>> terminal_problem(True, True, "xterm-256color") is None
    True
    >>> terminal_problem(False, True, "xterm")
    'the interactive app needs a terminal, and its input is not one'
    >>> terminal_problem(True, True, "dumb")
    'the interactive app needs a terminal that can move the cursor, and TERM=dumb cannot'
    """
    if driver:
        return None
    if not stdin_tty:
        return "the interactive app needs a terminal, and its input is not one"
    if not output_tty:
        return "the interactive app needs a terminal, and its output is not one"
    if (term or "").strip().lower() == "dumb":
        return "the interactive app needs a terminal that can move the cursor, and TERM=dumb cannot"
    return None


def _isatty(stream: object) -> bool:
    try:
        return bool(stream is not None and stream.isatty())  # type: ignore[attr-defined]
    except (ValueError, OSError):  # closed or detached
        return False


def check_terminal() -> None:
    """Raise :class:`CommandError` (exit 2, one line) if the app cannot run here."""
    import os

    problem = terminal_problem(
        _isatty(sys.stdin),
        _isatty(sys.__stderr__),  # Textual draws on stderr
        os.environ.get("TERM"),
        os.environ.get("TEXTUAL_DRIVER"),
    )
    if problem:
        raise CommandError(f"{problem}; {HEADLESS_HINT}")


def build_parser(with_commands: bool = True) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description=(
            "Open up a real, small, trained language model in your terminal. "
            "Run without a subcommand to start the interactive app."
        ),
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--chapter",
        "-c",
        metavar="N|SLUG",
        help="start the app at this chapter (a number or a name such as 'tokenization')",
    )
    parser.add_argument(
        "--prompt", "-p", metavar="TEXT", help="start the app with this prompt already typed"
    )
    parser.add_argument(
        "--model",
        "-m",
        metavar="PATH",
        help="open this model: a Hugging Face directory (config.json + safetensors) or a "
        ".gguf file (default: $LLM_ANATOMY_MODEL, else the shipped anatomy-mini)",
    )
    if not with_commands:
        parser.set_defaults(command=None)
        return parser
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f".commands.{module_name}", __package__)
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(with_commands=needs_commands(argv))
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from .chapters import UnknownChapter, find_chapter

            if args.chapter is not None:
                try:
                    find_chapter(args.chapter)
                except UnknownChapter as exc:
                    raise CommandError(str(exc)) from None
            if args.model is not None and not os.path.exists(args.model):
                raise CommandError(f"model not found: {args.model}")
            check_terminal()  # after the arguments: a typo is named even without a terminal
            from .app import run_app

            return run_app(chapter=args.chapter, prompt=args.prompt, model=args.model)
        return args.run(args)
    except CommandError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `llm-anatomy generate ... | head`: the reader left; that is not an error.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
