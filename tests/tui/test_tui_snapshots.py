"""SVG snapshots of the shell and chapter 1 (update with ``pytest --snapshot-update``).

Every app comes from the one deterministic set-up in ``conftest.py``: tokenizers already
loaded, no model installed, fixed prompt, cursor blink off. Look at a failing snapshot
in ``snapshot_report.html``.
"""

from __future__ import annotations

from tui_helpers import SEED, settle

AWKWARD = "Hi 世界! 👨‍👩‍👧 naïve\tcafé\nשלום NUL\x00 end"


def test_tokenization_80x24(snap_compare, make_app):
    """The seed sentence in an 80×24 terminal: the three panels stacked."""
    assert snap_compare(
        make_app(chapter="tokenization", prompt=SEED), terminal_size=(80, 24), run_before=settle
    )


def test_tokenization_120x40(snap_compare, make_app):
    """The seed sentence at 120×40: the three panels side by side."""
    assert snap_compare(
        make_app(chapter="tokenization", prompt=SEED), terminal_size=(120, 40), run_before=settle
    )


def test_tokenization_byte_pieces_120x40(snap_compare, make_app):
    """CJK, a ZWJ emoji family, a tab, a newline, Hebrew and NUL: byte pieces and markers;
    the prompt bar shows the text read-only because of the NUL."""
    assert snap_compare(
        make_app(chapter="tokenization", prompt=AWKWARD), terminal_size=(120, 40), run_before=settle
    )


def test_welcome_80x24(snap_compare, make_app):
    """The front door at 80×24: intro, path, prompt, chapters and keys on one screen."""
    assert snap_compare(make_app(prompt=SEED), terminal_size=(80, 24), run_before=settle)


def test_help_80x24(snap_compare, make_app):
    """The help screen of chapter 1, generated from its bindings."""

    async def open_help(pilot) -> None:  # noqa: ANN001
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(
        make_app(chapter="tokenization", prompt=SEED), terminal_size=(80, 24), run_before=open_help
    )
