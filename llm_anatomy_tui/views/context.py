"""What a screen says when the model reads something other than the typed prompt.

>>> from llm_anatomy_tui.core.session import ContextFit
>>> context_notice(ContextFit(0, 256, 0, start_token=False))
'The prompt is empty: the model starts from <|endoftext|>, the token that separated stories in its training text.'
>>> context_notice(ContextFit(300, 256, 255, start_token=False))
'The prompt has 300 tokens; the context window holds 256. The oldest 45 fell out of the window: the model reads the last 255, leaving room for one new token.'
>>> context_notice(ContextFit(12, 256, 12, start_token=True)), context_notice(None)
('', '')
"""

from __future__ import annotations

from ..core.session import ContextFit


def context_notice(fit: ContextFit | None) -> str:
    """One or two sentences on how the prompt fit the window; "" when it fit as typed."""
    if fit is None:
        return ""
    if fit.empty:
        if fit.start_token:
            return "The prompt is empty: the model reads only its start-of-text token."
        return (
            "The prompt is empty: the model starts from <|endoftext|>, the token that "
            "separated stories in its training text."
        )
    if fit.dropped:
        return (
            f"The prompt has {fit.n_tokens:,} tokens; the context window holds {fit.window}. "
            f"The oldest {fit.dropped:,} fell out of the window: the model reads the last "
            f"{fit.kept:,}, leaving room for one new token."
        )
    return ""


__all__ = ["context_notice"]
