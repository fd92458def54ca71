"""What chapters 8 and 9 share: keeping an attention snapshot in step with the context.

Both chapters show the real model's attention on the shared context (the prompt plus
every generated token) and must follow it the same way: build the context the shared
generation defines and ask for its snapshot through the base's one compute path —
inline when the tracker can extend what it has cheaply (a step or two appended, so a
generation step is painted with the frame that shows it), else in a thread worker (the
base drops a result a newer context has overtaken); and keep the query cursor on the
newest token until the reader moves it. Written once
here so the two screens cannot drift apart; how each *draws* the snapshot stays in its
own module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from rich.text import Text

from ..core.session import NotReady
from ..views.attention_tracker import AttentionSnapshot, AttentionTracker, token_labels
from ..views.generation_ops import step_op

if TYPE_CHECKING:
    from textual.widgets import Static

    from . import Chapter
    from .base import ChapterScreen

    _Screen = ChapterScreen  # what the mixin is mixed into, for type checkers
else:
    _Screen = object


class AttentionContextMixin(_Screen):
    """Follows the shared context with attention snapshots, for a chapter screen.

    Put it before :class:`~llm_anatomy_tui.chapters.base.ChapterScreen` in the bases
    (its :meth:`session_changed` replaces the base's empty one). The screen provides:

    - ``_status`` and ``_notice``: the Statics for the one-line status and the context
      notice, set in ``on_mount`` (which runs before the first :meth:`session_changed`);
    - :attr:`MODEL_WAITING`: what the status says until the model and tokenizer are ready;
    - :meth:`_show_snapshot`: draw a snapshot that has just become :attr:`snapshot`;
    - :meth:`_cursor_moved`: redraw after the query/key cursor moved.

    In return it keeps :attr:`snapshot`, :attr:`labels`, :attr:`n_prompt` and the cursor
    (:attr:`layer_i`, :attr:`head_i`, :attr:`query_pos`, :attr:`key_pos`), and handles
    the ``query`` and ``newest`` actions.
    """

    MODEL_WAITING: ClassVar[str]
    """The status line shown while there is no model or tokenizer to run."""

    if TYPE_CHECKING:  # provided by the screen this is mixed into
        _status: Static
        _notice: Static

    def __init__(self, chapter: Chapter) -> None:
        super().__init__(chapter)  # the ChapterScreen after this mixin
        self.layer_i = 0
        self.head_i = 0
        self.query_pos = 0
        self.key_pos = 0
        self.snapshot: AttentionSnapshot | None = None
        """The attention data shown (None before the model has run)."""
        self.labels: list[str] = []
        """Each token of the snapshot's context as readable text."""
        self.n_prompt = 0
        self._follow = True  # the query row follows the newest token
        self._step_said = ""  # what the last step op said (e.g. why nothing happened)

    # -- for the screen ------------------------------------------------------------------------
    # Each chapter defines these two; declared here for type checkers only, so a screen
    # that forgot one fails loudly (AttributeError) on its first snapshot.

    if TYPE_CHECKING:

        def _show_snapshot(self, snap: AttentionSnapshot, new_context: bool) -> None:
            """Draw ``snap`` (already :attr:`snapshot`; ``new_context``: its tokens differ
            from the previous snapshot's, so :attr:`labels` were just rebuilt)."""

        def _cursor_moved(self) -> None:
            """Redraw after :attr:`query_pos` / :attr:`key_pos` changed (same data)."""

    # -- the data ------------------------------------------------------------------------------

    def session_changed(self, changes: frozenset[str]) -> None:
        """Ask for the snapshot of the current shared context (the generation's tokens,
        else the prompt's under the session's empty / too-long policy)."""
        s = self.session
        if s.model is None or not s.tokenizer_state.ready:
            self._status.update(Text(self.MODEL_WAITING, style="dim"))
            return
        model = s.model
        try:
            enc = s.encoding("model")
        except NotReady as exc:
            self._status.update(Text(str(exc)))
            return
        gen = s.current_generation
        if gen is not None:
            tokens, n_prompt = tuple(gen.tokens), len(gen.prompt)
            notice = self.generation_notice
        else:
            ids, notice = self.context_ids(enc, model.config.max_position_embeddings)
            tokens, n_prompt = tuple(ids), len(ids)
        if changes & {"prompt", "model"}:
            self._step_said = ""
        self._show_notice(" ".join(m for m in (notice, self._step_said) if m))
        self.n_prompt = n_prompt
        tracker = s.shared("attention", AttentionTracker)
        # a prefix, or a step or two appended (~1–2 ms): inline, painted with this frame
        self.compute("attention", tracker.snapshot_if_cheap, model, tokens, inline=True,
                     then=lambda snap: self._cheap_or_run(snap, tracker, model, tokens))  # fmt: skip

    def _cheap_or_run(self, snap: AttentionSnapshot | None, tracker: AttentionTracker,
                      model, tokens: tuple[int, ...]) -> None:  # noqa: ANN001  # fmt: skip
        """Draw the inline snapshot, or (None: not cheap) ask for it in a thread worker."""
        if snap is not None:
            self._arrived(snap)
            return
        self._status.update(Text(f"Running the model on {len(tokens)} tokens…", style="italic"))
        self.compute("attention", tracker.snapshot, model, tokens, then=self._arrived)

    def _arrived(self, snap: AttentionSnapshot) -> None:
        """Take ``snap`` as the snapshot shown (the base dropped any overtaken result)."""
        old = self.snapshot
        self.snapshot = snap
        # another model may have fewer layers or heads than the ones picked
        self.layer_i = min(self.layer_i, snap.config.num_hidden_layers - 1)
        self.head_i = min(self.head_i, snap.config.num_attention_heads - 1)
        new_context = old is None or old.tokens != snap.tokens or old.config is not snap.config
        if new_context:
            enc = self.session.encoding("model")
            self.labels = token_labels(enc, snap.tokens)
        self._show_snapshot(snap, new_context)

    def _show_notice(self, text: str) -> bool:
        """Show ``text`` (why the context is not simply the prompt, what the last step
        said), hidden when empty. True when the notice appeared or went, which changes
        the height of what is above the maps."""
        shown = bool(text)
        if text and text != str(self._notice.content):
            self._notice.update(Text(text))
        if self._notice.display != shown:
            self._notice.display = shown
            return True
        return False

    def action_step(self) -> None:
        """Take one step of the shared generation (the maps follow by themselves: every
        screen gets a "generation" change after the op)."""
        if self.session.model is None or not self.session.tokenizer_state.ready:
            return
        self.compute_generation("step", step_op, then=self._stepped)

    def _stepped(self, said: str | None) -> None:
        self._step_said = said or ""
        if said:
            self._show_notice(" ".join(m for m in (str(self._notice.content), said) if m))

    # -- the cursor ----------------------------------------------------------------------------

    def _keep_cursor_in_context(self, snap: AttentionSnapshot) -> None:
        """After a new snapshot: the query stays on the newest token unless the reader
        moved it away, and a shorter context pulls the cursor back inside it."""
        t = snap.n_tokens
        if self._follow or self.query_pos >= t:
            self._to_newest()
        self.key_pos = min(self.key_pos, t - 1)

    def _to_newest(self) -> None:
        """The newest token as query, on the key it weights most, and follow from now on."""
        snap = self.snapshot
        if snap is None:
            return
        self.query_pos = snap.n_tokens - 1
        self.key_pos = int(np.argmax(snap.weights[self.layer_i, self.head_i, self.query_pos]))
        self._follow = True

    def action_query(self, step: int) -> None:
        snap = self.snapshot
        if snap is None:
            return
        t = snap.n_tokens
        self.query_pos = min(max(0, self.query_pos + step), t - 1)
        self.key_pos = min(self.key_pos, self.query_pos)
        self._follow = self.query_pos == t - 1
        self._cursor_moved()

    def action_newest(self) -> None:
        self._to_newest()
        self._cursor_moved()
