"""Chapter 5's prose and the description of its settings fields (plain data)."""

from __future__ import annotations

from dataclasses import dataclass

LEAD = (
    "The model's last layer scores every token of its vocabulary; softmax turns the scores "
    "into probabilities, and a sampler picks one. The settings reshape the distribution "
    "before the pick; the bars show the result live."
)

EXPLAINER: tuple[tuple[str, str], ...] = (
    (
        "Logits",
        "The model ends with one score per vocabulary entry: {vocab} numbers for {name}, "
        "called logits. They are not probabilities. Only their differences matter: adding "
        "the same amount to all of them changes nothing below.",
    ),
    (
        "Softmax, and how to check it",
        "p = exp(logit − lse), where lse (the log-sum-exp) is the one number that makes all "
        "{vocab} probabilities add up to 1. Any two rows compare as p₁ / p₂ = exp(logit₁ − "
        "logit₂): one unit more logit makes a token e ≈ 2.718 times as likely. The table's "
        "probabilities are computed from the rounded logits it prints, so a calculator "
        "agrees with every row.",
    ),
    (
        "Temperature",
        "Every logit is divided by T before the softmax. Below 1 the gaps grow and the "
        "favourite wins more often; above 1 they shrink and long shots get a chance; at "
        "T = 100 the distribution is nearly flat. T = 0 is read as greedy: always take the "
        "top token, no random number at all.",
    ),
    (
        "Filters and renormalising",
        "top-k keeps the k best tokens (0 = off). top-p keeps the fewest best tokens whose "
        "probabilities reach p (1 = off; 0 keeps only the best). min-p keeps tokens at least "
        "m times as likely as the best (0 = off). The survivors are renormalised: each is "
        "divided by the probability they hold together, so they add up to 1 again — that "
        "is the p′ column, exp(z − lse′) with lse′ summed over the survivors only.",
    ),
    (
        "Penalties",
        "They lower the logits of tokens already in the context (prompt and output). "
        "Repetition r divides a positive logit by r and multiplies a negative one; "
        "frequency f subtracts f for every earlier use; presence q subtracts q once. They "
        "break loops, and also punish names a story is supposed to repeat.",
    ),
    (
        "The draw",
        "The survivors are laid end to end on the line from 0 to 1, most likely first, each "
        "as wide as its probability. A uniform random number u falls into one of them. Step "
        "t always draws from its own generator, seeded with (seed, t): replaying gives the "
        "same tokens, and branching changes later tokens only through what the model "
        "reads, never through the dice.",
    ),
    (
        "When it stops",
        "At the end-of-text token, when a stop sequence appears in the output (the text is "
        "cut just before it), or when the context window is full: {name} reads at "
        "most {context} positions, prompt included.",
    ),
)


def explainer_texts(model: object) -> list[str]:
    """The explainer's paragraphs with the loaded model's name, vocabulary and context
    (anatomy-mini's until a model is loaded).

    >>> explainer_texts(None)[0][:60]
    'The model ends with one score per vocabulary entry: 8,193 nu'
    """
    cfg = getattr(model, "config", None)
    values = {
        "name": getattr(model, "name", None) or "anatomy-mini",
        "vocab": f"{cfg.vocab_size:,}" if cfg is not None else "8,193",
        "context": f"{cfg.max_position_embeddings:,}" if cfg is not None else "256",
    }
    return [body.format(**values) for _, body in EXPLAINER]


@dataclass(frozen=True)
class FieldSpec:
    key: str
    label: str
    placeholder: str
    tooltip: str


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("temperature", "temp", "1", "Temperature T ≥ 0: logits are divided by T. 0 = greedy."),
    FieldSpec("top_k", "top-k", "0 off", "Keep the k most likely tokens; 0 = off."),
    FieldSpec("top_p", "top-p", "1 off", "Keep the fewest tokens whose mass reaches p (0–1); 1 = off."),
    FieldSpec("min_p", "min-p", "0 off", "Keep tokens with p ≥ m × the top p (0–1); 0 = off."),
    FieldSpec("repetition_penalty", "rep", "1 off",
              "Repetition penalty r > 0 on tokens in context; 1 = off."),
    FieldSpec("frequency_penalty", "freq", "0 off",
              "Subtract f × (uses so far) from a token's logit; 0 = off."),
    FieldSpec("presence_penalty", "pres", "0 off",
              "Subtract q once from every token already used; 0 = off."),
    FieldSpec("stops", "stop", "none",
              "Stop sequences, separated by |; \\n is a newline. Empty = none."),
    FieldSpec("seed", "seed", "0", "Seed of the draws (a whole number ≥ 0)."),
    FieldSpec("count", "N", "10", "How many tokens g generates."),
)  # fmt: skip
