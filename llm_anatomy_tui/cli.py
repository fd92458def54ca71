"""The ``llm-anatomy`` entry point: the TUI by default, headless subcommands for scripts."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from .commands import CommandError

PROG = "llm-anatomy"
# Modules in llm_anatomy_tui.commands, in the order --help lists them.
COMMAND_MODULES: tuple[str, ...] = ("tokenize",)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f".commands.{module_name}", __package__)
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from .app import run_app

            return run_app(chapter=args.chapter, prompt=args.prompt)
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
