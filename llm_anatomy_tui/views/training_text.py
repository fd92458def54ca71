"""The words and figures chapter 12 prints, as plain strings (no Rich, no Textual).

Kept apart from the screen so a test can read exactly what is shown, and so the screen
module stays composition and drawing.
"""

from __future__ import annotations

import math

from ..core.model import Model
from .live_training import LivePlan, LiveRun, budget_note, fits_budget, plan_live_run
from .training_phases import FAST, PLATEAU, RISING, Phase, PhasesView

PHASE_GLYPH = {FAST: "▼", "slow consolidation": "↘", PLATEAU: "─", RISING: "▲"}
"""One glyph per phase kind, so the phases read without colour."""
PHASE_SHORT = {FAST: "fast", "slow consolidation": "slow", PLATEAU: "plateau", RISING: "rising"}


def fmt_loss(value: float) -> str:
    """Losses to 3 decimals; NaN/inf spelled out.

    >>> fmt_loss(2.38271), fmt_loss(float("nan"))
    ('2.383', 'NaN')
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.3f}"


def fmt_lr(lr: float) -> str:
    """A learning rate as people write it.

    >>> fmt_lr(0.001), fmt_lr(3e-05), fmt_lr(1e12)
    ('1e-3', '3e-5', '1e12')
    """
    mantissa, exp = f"{lr:.0e}".split("e")
    return f"{mantissa}e{int(exp)}"


def phase_rows(view: PhasesView) -> list[tuple[str, str, str, str]]:
    """(glyph + kind, steps, validation loss from → to, rate) per phase, after a header row."""
    rows = [("phase", "steps", "validation loss", "rate")]
    for p in view.phases:
        rows.append(
            (
                f"{PHASE_GLYPH[p.kind]} {p.kind}",
                f"{p.start:,}–{p.end:,}",
                f"{fmt_loss(p.val_start)} → {fmt_loss(p.val_end)}",
                f"{p.rate * 100:.1f}%",
            )
        )
    return rows


def phase_explanations(phases: list[Phase]) -> list[tuple[str, str]]:
    """(heading, explanation) for each kind of phase found, in order of first appearance."""
    seen: dict[str, str] = {}
    for p in phases:
        seen.setdefault(p.kind, p.explanation)
    return [(f"{PHASE_GLYPH[k]} {k}", text) for k, text in seen.items()]


RULE = (
    "How the phases are found: at every validation estimate, a straight line is fitted to "
    "the estimates within ±5% of the run around it; its slope, as a share of the run's "
    "whole drop in validation loss per tenth of the run, is the rate (an even fall from start to end would be 10% everywhere). Fast fitting: 10% "
    "or more. Slow consolidation: 0.5% to 10%. Plateau: under 0.5% either way. Rising: "
    "going up by 0.5% or more. Phases shorter than 5% of the run join the one before."
)


def plan_line(plan: LivePlan) -> str:
    return (
        f"{plan.steps} steps · learning rate {fmt_lr(plan.lr)} (AdamW, constant) · "
        f"{plan.batch_size} window{'s' if plan.batch_size > 1 else ''} of {plan.window} "
        f"tokens a step"
    )


def run_lines(run: LiveRun) -> list[str]:
    """The status of a live run: where it is and what its two losses did."""
    done = len(run.steps)
    plan = run.plan
    lines = []
    if run.status == "blew up":
        lines.append(f"✗ {run.message}")
    if done:
        last = run.steps[-1]
        change = last.val_loss - run.val_before
        arrow = "▲ up" if change > 0 else "▼ down"
        lines.append(
            f"step {done}/{plan.steps} · loss on your text {fmt_loss(run.text_before)} → "
            f"{fmt_loss(last.text_loss)} · held-out stories {fmt_loss(run.val_before)} → "
            f"{fmt_loss(last.val_loss)} ({arrow} {abs(change):.3f})"
        )
        if change > 0.05 and last.text_loss < run.text_before:
            lines.append(
                "Overfitting: the loss on your text falls while the loss on stories the "
                "model never trained on rises. It is learning this text, not the language."
            )
    else:
        lines.append(
            f"step 0/{plan.steps} · loss on your text {fmt_loss(run.text_before)} · "
            f"held-out stories {fmt_loss(run.val_before)}"
        )
    return lines


def completion_lines(run: LiveRun) -> list[tuple[str, str]]:
    """(label, text) pairs: the cue, and the greedy completion before and after."""
    after = run.completion_after
    return [
        ("cue", run.cue),
        ("before", run.completion_before),
        ("after", after if after is not None else "(after the last step)"),
    ]


def plan_summary(model: Model, encoding, text: str, steps: int, lr: float) -> tuple[str, str, str]:
    """The plan before a run: (budget note or "", settings line, how the text is used).
    ValueError for an empty text or a missing tokenizer."""
    if encoding is None:
        raise ValueError("The tokenizer is not loaded yet.")
    plan = plan_live_run(model, text, encoding, steps, lr)
    budget = "" if fits_budget(model) else budget_note(model)
    return budget, plan_line(plan), plan.note
