"""What the chapters that step the shared generation on the real model have in common.

Chapter 5 (sampling) and chapter 14 (KV cache) both drive the one
:class:`~llm_anatomy_tui.core.generation.Generation` held by the session: they take steps
through generation ops, wait for the model before doing so, repaint a handful of
``Static`` widgets after every step, and open the prompt bar over the body at short
heights. That plumbing lives here once, so a fix to it (say, to the repaint shortcut)
reaches every such chapter; what each chapter draws stays in its own module.

Use :class:`GenerationChapterMixin` before :class:`~.base.ChapterScreen`::

    class SamplingScreen(GenerationChapterMixin, ChapterScreen):
        _FIXED_HEIGHT = frozenset({"s-status"})
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text

from ..core.session import Status

if TYPE_CHECKING:
    from textual.widgets import Static

    from . import Chapter
    from .base import ChapterScreen

    _MixinBase = ChapterScreen
else:  # at run time a plain mixin: the screen class supplies ChapterScreen
    _MixinBase = object


class GenerationChapterMixin(_MixinBase):
    """Plumbing shared by chapter screens that run the model on the shared generation.

    - :meth:`model_ready` (the base's) / :meth:`_model_or_say` / :meth:`_waiting_text`:
      whether the model can run, and what to say while it cannot;
    - :meth:`_put`: repaint a ``Static`` only when its text changed, and without a layout
      pass when its height cannot have changed (a step repaints several of them, and a
      layout costs tens of milliseconds, so a held step key would otherwise stutter);
    - the prompt bar opens over the body at short heights (the ``-prompt-open`` class,
      styled in the chapter's stylesheet).
    """

    _FIXED_HEIGHT: ClassVar[frozenset[str]] = frozenset()
    """Ids of the Statics whose height is their number of lines (no wrapping) or fixed by
    CSS: a new text with as many lines needs no new layout (a layout costs tens of ms)."""

    def __init__(self, chapter: Chapter) -> None:
        super().__init__(chapter)
        self._last_put: dict[str | None, Text] = {}
        self._put_lines: dict[str | None, int] = {}

    # -- the model -------------------------------------------------------------------------

    def _model_or_say(self) -> bool:
        """:meth:`model_ready`, and if not, a short notification of why a key did nothing."""
        if self.model_ready():
            return True
        self.notify(self.session.model_state.message or "The model is not loaded yet.",
                    severity="warning", timeout=3)  # fmt: skip
        return False

    def _waiting_text(self) -> Text:
        """What the status line says while the chapter cannot run the model (the notice
        above it says why, when something is wrong)."""
        s = self.session
        if s.model_state.status is Status.LOADING or s.tokenizer_state.status is Status.LOADING:
            return Text("Waiting for the model to load…", style="italic")
        return Text("This chapter runs the model: see the notice above.", style="italic")

    # -- repainting ------------------------------------------------------------------------

    def _put(self, widget: Static, content: Text | str) -> None:
        """``widget.update(content)``, skipped if nothing changed, without a layout pass
        when the height cannot have changed."""
        text = content if isinstance(content, Text) else Text(content)
        last = self._last_put.get(widget.id)
        if last is not None and last == text:
            return
        self._last_put[widget.id] = text
        width = widget.content_region.width
        if widget.id in self._FIXED_HEIGHT:
            lines = text.plain.count("\n") + 1
        elif width <= 0:  # hidden: the layout that shows it will measure it
            lines = -1
        else:  # wrapped: count the lines it wraps to
            lines = len(text.wrap(self.app.console, width))
        relayout = lines != self._put_lines.get(widget.id) and lines != -1
        self._put_lines[widget.id] = lines
        widget.update(text, layout=relayout)

    # -- prompt bar at short heights ---------------------------------------------------------

    def action_focus_prompt(self) -> None:
        self.add_class("-prompt-open")
        super().action_focus_prompt()

    def action_leave_prompt(self) -> None:
        self.remove_class("-prompt-open")
        super().action_leave_prompt()
