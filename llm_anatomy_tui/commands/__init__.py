"""Headless subcommands of the ``llm-anatomy`` CLI, one module each.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
They print to stdout/stderr and never start the TUI. Errors are raised as
:class:`CommandError` and reported by ``cli.main`` as one line with exit status 2.
"""

from __future__ import annotations


class CommandError(Exception):
    """A user-facing error: printed as one line, exit status 2."""
