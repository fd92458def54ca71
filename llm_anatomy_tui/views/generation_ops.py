"""The step every chapter that steps the shared generation takes (chapters 5, 8, 9, 11
and 14): one op, run in the app's generation worker, so a step means the same thing in
each of them.
"""

from __future__ import annotations

from ..core.generation import Generation


def stopped_message(gen: Generation) -> str:
    """Why ``gen`` takes no more steps, as an op's one-line complaint ("" if it has not
    stopped, or stopped without saying why)."""
    return f"Generation has stopped: {gen.stop.message}" if gen.stop else ""


def step_op(gen: Generation) -> str:
    """Sample one token and append it; or, when generation has stopped, say why."""
    if gen.done:
        return stopped_message(gen)
    gen.step()
    return ""


__all__ = ["step_op", "stopped_message"]
