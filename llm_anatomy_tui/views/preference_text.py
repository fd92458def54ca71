"""The words and figures chapter 13 prints, as plain strings (no Rich, no Textual).

:class:`DPOReadout` is exactly what the DPO panel shows, so a test can take the displayed
log-probabilities, apply the DPO formula itself and compare with the displayed loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .preference import DPO_LR, DPOPoint, Scored

LOGP_DECIMALS = 4
"""Summed log-probabilities, z, the loss and the KL are shown with 4 decimals."""

PIPELINE: tuple[tuple[str, str, str, str], ...] = (
    (
        "1 Pretraining",
        "predict the next token of ordinary text (cross-entropy on every token)",
        "the text itself: each token is the label for the ones before it",
        "knowledge and fluency. It continues documents; it does not answer you.",
    ),
    (
        "2 Supervised fine-tuning (SFT)",
        "the same next-token loss, counted only on the reply in prompt → reply examples "
        "laid out in a chat template",
        "thousands of written demonstrations of the wanted behaviour",
        "the format and the role: it replies as an assistant and stops at the end of its turn",
    ),
    (
        "3 Preference tuning (RLHF, DPO)",
        "make the preferred reply more likely than the rejected one, while staying close "
        "to the SFT model (a KL leash)",
        "comparisons: for one prompt, reply A was judged better than reply B",
        "tone, helpfulness, refusals. It reweights what the model already does.",
    ),
)
"""(stage, objective, signal, effect)."""

CAPABILITY = (
    "Capability versus behaviour. Pretraining decides what a model can do; the later "
    "stages mostly decide which of those things it does unasked. The DPO steps below move "
    "two sequence log-probabilities by many nats in a few steps, yet they teach no fact: "
    "anatomy-mini tuned like this still only knows children's stories. Post-training picks "
    "among behaviours the weights can already produce."
)

NO_TEMPLATE = (
    "{name} has no chat template: it was pretrained on stories and never fine-tuned on "
    "conversations, so it has no idea of turns or roles. An instruct model (for example "
    "SmolLM2-Instruct) comes with one; open such a model and this panel shows how its "
    "special tokens wrap your prompt, the layout SFT taught it to expect."
)


def fmt_logp(value: float) -> str:
    """A log-probability (or z, margin) to 4 decimals, never "-0.0000".

    >>> fmt_logp(-5.180182), fmt_logp(-0.00001)
    ('-5.1802', '0.0000')
    """
    text = f"{value:.{LOGP_DECIMALS}f}"
    return "0.0000" if text == "-0.0000" else text


def token_line(pieces: tuple[str, ...], scored: Scored) -> list[tuple[str, str]]:
    """(piece, log p to 2 decimals) per completion token."""
    return [
        (p.replace("\n", "⏎"), f"{v:.2f}") for p, v in zip(pieces, scored.logprobs, strict=True)
    ]


def preference_sentence(a: Scored, b: Scored) -> str:
    """Which completion the model finds more likely, by sequence log-probability."""
    diff = a.total - b.total
    if abs(diff) < 10**-LOGP_DECIMALS:
        return "The model finds A and B equally likely."
    winner, loser = ("A", "B") if diff > 0 else ("B", "A")
    d = abs(diff)
    if d < 13:  # e^13 ≈ 440,000: below that, a whole number of times
        times = f"about {math.exp(d):,.0f} times" if d >= 0.7 else f"{math.exp(d):.2f} times"
    else:
        times = f"about e^{d:.0f} times"
    return (
        f"The model prefers {winner}: its sequence log-probability is higher by "
        f"{d:.{LOGP_DECIMALS}f} nats, so {winner} is {times} as likely as {loser}."
    )


@dataclass(frozen=True)
class DPOReadout:
    """The DPO panel as printed. Every figure is a string exactly as on screen."""

    step: str
    beta: str
    policy_a: str
    ref_a: str
    policy_b: str
    ref_b: str
    z: str
    margin: str
    loss: str
    p_prefer_a: str
    kl: str

    def lines(self) -> list[str]:
        return [
            f"after {self.step} DPO step{'s' if self.step != '1' else ''} · β = {self.beta} · "
            "reference: the model before any DPO step, frozen · steps: Adam, learning rate "
            f"{DPO_LR:g}",
            f"log π(A) = {self.policy_a}   log π_ref(A) = {self.ref_a}",
            f"log π(B) = {self.policy_b}   log π_ref(B) = {self.ref_b}",
            f"z = (log π(A) − log π_ref(A)) − (log π(B) − log π_ref(B)) = {self.z}",
            f"margin β·z = {self.margin}   DPO loss −log σ(β·z) = {self.loss}",
            f"P(A ≻ B) = σ(β·z) = {self.p_prefer_a}   KL(π ‖ π_ref) = {self.kl} nats/token",
        ]


def readout(point: DPOPoint) -> DPOReadout:
    d = LOGP_DECIMALS
    return DPOReadout(
        step=str(point.step),
        beta=f"{point.beta:g}",
        policy_a=fmt_logp(point.policy_a),
        ref_a=fmt_logp(point.ref_a),
        policy_b=fmt_logp(point.policy_b),
        ref_b=fmt_logp(point.ref_b),
        z=fmt_logp(point.z),
        margin=fmt_logp(point.margin),
        loss=f"{point.loss:.{d}f}",
        p_prefer_a=f"{point.p_prefer_a:.{d}f}",
        kl=f"{point.kl:.{d}f}" if point.kl >= 10**-d or point.kl == 0 else f"< 1e-{d}",
    )


def special_notes(beta: float, identical: bool) -> list[str]:
    """What a person should know about the current set-up before taking steps."""
    notes = []
    if identical:
        notes.append(
            "A and B are the same text: z is 0 whatever the weights, the loss stays at "
            "log 2 ≈ 0.6931 and DPO has nothing to learn. Change one of them."
        )
    if beta == 0:
        notes.append(
            "β = 0: the loss is log 2 ≈ 0.6931 whatever the model does, so its gradient is 0 "
            "and DPO steps change nothing. Raise β (+)."
        )
    return notes
