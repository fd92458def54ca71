"""Chapter 13's preference pair: sequence log-probabilities, the DPO loss, DPO steps.

Two completions A and B of one prompt are scored by the model: the log-probability of
each completion token given everything before it, and their sum (the sequence
log-probability). Direct Preference Optimization (Rafailov et al., 2023) then asks the
model to prefer A over B *relative to a frozen reference* (the weights before any DPO
step)::

    z    = (log π(A) − log π_ref(A)) − (log π(B) − log π_ref(B))
    loss = −log σ(β · z)

β sets how hard the loss pulls: at β = 0 the loss is log 2 whatever the model does and
nothing is learnt. The gradient of the loss is ``−β · σ(−β z) · (∇ log π(A) − ∇ log π(B))``,
so one DPO step needs the gradient of a sequence log-probability with respect to every
weight. :func:`completion_logprob_grad` builds it from the core's backward pass
(:mod:`core.train.backward`): the forward tape of the whole sequence, the fused output
head's backward applied to the completion positions only, then the tape walked back.

A DPO step updates a *copy* (:class:`DPOState`), with the core's Adam
(:func:`core.train.optim.optimizer_step`), never the loaded model, which stays the
reference.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..core.evaluate import kl_divergence, log_softmax
from ..core.generation import Generation
from ..core.model import Model
from ..core.ops import rms_norm
from ..core.sampling import SamplingSettings
from ..core.train.backward import backward, forward_logits, head_loss_and_backward, run_blocks
from ..core.train.optim import OptimizerSettings, OptimizerState, init_state, optimizer_step
from .live_training import YIELD_SECONDS, NullTask, Task, weights_finite

DEFAULT_BETA = 0.1
BETA_LADDER: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
DPO_LR = 3e-5
"""Adam's learning rate for the DPO steps (constant)."""
DPO_STEPS_PER_PRESS = 5
SAMPLE_TOKENS = 10
SAMPLE_TEMPERATURE = 1.0


# -- sequences ------------------------------------------------------------------------------


def pair_sequence(
    model: Model, prompt_ids: Sequence[int], completion_ids: Sequence[int], start_token: int | None
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(inputs [T], targets [T], completion length n, prompt tokens dropped).

    The completion's tokens are the last n targets. An empty prompt starts from
    ``start_token``; a prompt too long for the window loses its oldest tokens.
    """
    completion = [int(t) for t in completion_ids]
    if not completion:
        raise ValueError("the completion is empty: it needs at least one token")
    context = [int(t) for t in prompt_ids]
    if not context:
        if start_token is None:
            raise ValueError("the prompt is empty and the model has no start token")
        context = [int(start_token)]
    window = model.config.max_position_embeddings
    if len(completion) >= window:
        raise ValueError(
            f"the completion has {len(completion)} tokens; the model's window holds {window}"
        )
    keep = window + 1 - len(completion)
    dropped = max(0, len(context) - keep)
    tokens = np.asarray(context[dropped:] + completion, dtype=np.int64)
    vocab = model.config.vocab_size
    if tokens.min() < 0 or tokens.max() >= vocab:
        raise ValueError(f"a token id is outside the vocabulary (0..{vocab - 1})")
    return tokens[:-1], tokens[1:], len(completion), dropped


def completion_logprobs(
    model: Model, inputs: np.ndarray, targets: np.ndarray, n: int
) -> np.ndarray:
    """log p of each of the last ``n`` targets (float64), from the logits of one forward."""
    logits = forward_logits(model, inputs[None])[0]  # [T, V]
    return _target_logprobs(logits, targets, n)


def _target_logprobs(logits: np.ndarray, targets: np.ndarray, n: int) -> np.ndarray:
    logp = log_softmax(logits[-n:])  # [n, V] float64
    return logp[np.arange(n), targets[-n:]]


def completion_logprob_grad(
    model: Model, inputs: np.ndarray, targets: np.ndarray, n: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-token log-probabilities of the completion and the gradient of their *sum* with
    respect to every parameter (keys of :func:`core.train.backward.parameters`).

    The core's fused head backward gives the gradient of the *mean negative* log-likelihood
    of the rows it is given; applied to the completion rows only and scaled by ``-n``, it is
    the gradient of the summed log-probability; the rows of the prompt get zero.
    """
    x, tape = run_blocks(model, inputs[None])  # [T, d]
    h = rms_norm(x, model.norm, model.config.rms_norm_eps)
    rows = slice(h.shape[0] - n, h.shape[0])
    mean_nll, dh_rows, d_head = head_loss_and_backward(h[rows], model.lm_head, targets[rows])
    dh = np.zeros_like(h)
    dh[rows] = dh_rows * h.dtype.type(-n)
    tape.d_final = dh
    tape.d_head = d_head * d_head.dtype.type(-n)
    grads = backward(model, tape)
    logits = h[rows] @ model.lm_head.T  # [n, V]
    return _target_logprobs(logits, targets, n), grads


# -- the DPO loss ---------------------------------------------------------------------------


def sigmoid(x: float) -> float:
    """σ(x) without overflow.

    >>> sigmoid(0.0), round(sigmoid(800.0), 6), sigmoid(-800.0) > 0
    (0.5, 1.0, False)
    """
    return 0.5 * (1.0 + math.tanh(0.5 * x))


def dpo_loss(beta: float, policy_a: float, ref_a: float, policy_b: float, ref_b: float) -> float:
    """``−log σ(β · ((π_A − ref_A) − (π_B − ref_B)))`` from summed log-probabilities.

    Computed as ``log(1 + exp(−β z))`` (``numpy.logaddexp``), finite for any z.

    >>> round(dpo_loss(0.1, -10.0, -10.0, -12.0, -12.0), 6)  # no change from the reference
    0.693147
    >>> round(dpo_loss(1.0, -9.0, -10.0, -12.0, -12.0), 6)  # A gained 1 nat: -log σ(1)
    0.313262
    """
    z = (policy_a - ref_a) - (policy_b - ref_b)
    return float(np.logaddexp(0.0, -beta * z))


@dataclass(frozen=True)
class Scored:
    """One completion scored by one model."""

    ids: tuple[int, ...]
    logprobs: tuple[float, ...]  # per completion token, nats

    @property
    def total(self) -> float:
        return float(math.fsum(self.logprobs))

    @property
    def mean(self) -> float:
        return self.total / len(self.logprobs)


@dataclass(frozen=True)
class DPOPoint:
    """The pair as the policy sees it after some DPO steps (step 0: before any)."""

    step: int
    beta: float
    policy_a: float
    policy_b: float
    ref_a: float
    ref_b: float
    kl: float
    """KL(policy ‖ reference) per token, averaged over the completion positions of A and B."""

    @property
    def z(self) -> float:
        return (self.policy_a - self.ref_a) - (self.policy_b - self.ref_b)

    @property
    def margin(self) -> float:
        """β · z: the implicit reward of A minus that of B."""
        return self.beta * self.z

    @property
    def loss(self) -> float:
        return dpo_loss(self.beta, self.policy_a, self.ref_a, self.policy_b, self.ref_b)

    @property
    def p_prefer_a(self) -> float:
        """σ(β z): the probability the DPO model assigns to "A is better than B"."""
        return sigmoid(self.beta * self.z)

    @property
    def prefers(self) -> str:
        """Which completion the policy gives the higher sequence log-probability."""
        if self.policy_a > self.policy_b:
            return "A"
        if self.policy_b > self.policy_a:
            return "B"
        return "neither"


@dataclass
class PairData:
    """A prompt and two completions, ready to score (token sequences built once)."""

    a_ids: tuple[int, ...]
    b_ids: tuple[int, ...]
    a_seq: tuple[np.ndarray, np.ndarray, int]
    b_seq: tuple[np.ndarray, np.ndarray, int]
    dropped: int
    identical: bool


def make_pair(model: Model, prompt_ids: Sequence[int], a_ids: Sequence[int],
              b_ids: Sequence[int], start_token: int | None) -> PairData:  # fmt: skip
    """Build both sequences; ValueError naming A or B when one is unusable."""
    seqs = []
    dropped = 0
    for name, ids in (("A", a_ids), ("B", b_ids)):
        try:
            inputs, targets, n, dropped = pair_sequence(model, prompt_ids, ids, start_token)
        except ValueError as exc:
            raise ValueError(f"completion {name}: {exc}") from None
        seqs.append((inputs, targets, n))
    a, b = tuple(int(t) for t in a_ids), tuple(int(t) for t in b_ids)
    return PairData(a, b, seqs[0], seqs[1], dropped, a == b)


@dataclass
class PairScores:
    """The pair scored by the reference (= the loaded model, frozen) and by the policy."""

    ref_a: Scored
    ref_b: Scored
    ref_logits: tuple[np.ndarray, np.ndarray]  # completion rows [n, V] of each
    policy_a: Scored
    policy_b: Scored
    point: DPOPoint


def score_pair(model: Model, pair: PairData, beta: float) -> PairScores:
    """Score both completions with ``model`` as reference and as the (untrained) policy."""
    logits, scored = [], []
    for seq, ids in ((pair.a_seq, pair.a_ids), (pair.b_seq, pair.b_ids)):
        inputs, targets, n = seq
        rows = forward_logits(model, inputs[None])[0][-n:]  # [n, V]
        logits.append(rows)
        scored.append(Scored(ids, tuple(float(v) for v in _target_logprobs(rows, targets, n))))
    point = DPOPoint(0, beta, scored[0].total, scored[1].total, scored[0].total,
                     scored[1].total, 0.0)  # fmt: skip
    return PairScores(scored[0], scored[1], (logits[0], logits[1]), scored[0], scored[1], point)


def kl_rows(policy_rows: np.ndarray, ref_rows: np.ndarray) -> np.ndarray:
    """KL(policy ‖ reference) of each row's next-token distribution, nats."""
    return kl_divergence(policy_rows, ref_rows)  # the function's first argument is P


# -- DPO steps -------------------------------------------------------------------------------


@dataclass
class DPOState:
    """A DPO run: the policy copy, Adam's state and every point so far."""

    policy: Model
    opt: OptimizerState
    points: list[DPOPoint] = field(default_factory=list)
    last_a: Scored | None = None
    last_b: Scored | None = None
    message: str = ""

    def copy(self) -> DPOState:
        """Deep copy of the weights and the optimizer slots (a worker changes the copy)."""
        tensors = {k: v.copy() for k, v in self.policy.tensors().items()}
        policy = self.policy.with_tensors(tensors)  # keeps RoPE frequencies, tokenizer
        slots = {s: {k: v.copy() for k, v in d.items()} for s, d in self.opt.slots.items()}
        return DPOState(policy, OptimizerState(self.opt.step, slots), list(self.points),
                        self.last_a, self.last_b, "")  # fmt: skip


def start_dpo(model: Model, scores: PairScores) -> DPOState:
    """A fresh run from ``model`` (copied): Adam state zeroed, the step-0 point recorded."""
    tensors = {k: v.copy() for k, v in model.tensors().items()}
    policy = model.with_tensors(tensors, name=f"{model.name} (DPO copy)")
    from ..core.train.backward import parameters

    opt = init_state(OptimizerSettings(name="adam"), parameters(policy))
    return DPOState(policy, opt, [scores.point], scores.policy_a, scores.policy_b)


def dpo_gradients(policy: Model, pair: PairData, beta: float, ref_a: float, ref_b: float,
                  between: Callable[[], None] | None = None
                  ) -> tuple[float, dict[str, np.ndarray]]:  # fmt: skip
    """(loss, gradient of the DPO loss) for the policy's current weights. ``between`` is
    called between the two completions' passes (a worker's chance to give way)."""
    lp_a, g_a = completion_logprob_grad(policy, *pair.a_seq)
    if between is not None:
        between()
    lp_b, g_b = completion_logprob_grad(policy, *pair.b_seq)
    z = (math.fsum(lp_a) - ref_a) - (math.fsum(lp_b) - ref_b)
    coef = -beta * sigmoid(-beta * z)  # dL/dz · β-chain: dL/d(log π(A)) = coef
    grads = {k: (g_a[k] - g_b[k]) * g_a[k].dtype.type(coef) for k in g_a}
    return float(np.logaddexp(0.0, -beta * z)), grads


def dpo_steps(
    state: DPOState,
    pair: PairData,
    scores: PairScores,
    beta: float,
    n_steps: int = DPO_STEPS_PER_PRESS,
    lr: float = DPO_LR,
    task: Task | None = None,
) -> DPOState:
    """Take ``n_steps`` DPO steps on a copy of ``state``; return the new state.

    After each step the pair is scored again (a forward per completion) and a
    :class:`DPOPoint` recorded: summed log-probabilities, margin, loss, KL to the reference.
    A NaN or infinite weight stops the run and the copy goes back to the state before
    this call (``message`` says so). ``task``: progress and cancellation between steps.
    """
    from ..core.train.backward import parameters

    task = task or NullTask()
    new = state.copy()
    params = parameters(new.policy)
    settings = OptimizerSettings(name="adam", weight_decay=0.0)
    ref_a, ref_b = scores.ref_a.total, scores.ref_b.total
    for i in range(n_steps):
        if task.cancelled:
            break
        with np.errstate(all="ignore"):
            # progress inside the step too: each report is where a key press gets the
            # interpreter (ComputeTask.report), so a press waits for a third of a step
            _, grads = dpo_gradients(new.policy, pair, beta, ref_a, ref_b,
                                     lambda i=i: task.report((i + 0.3) / n_steps))  # fmt: skip
            optimizer_step(settings, new.opt, params, grads, lr)
            task.report((i + 0.6) / n_steps)
            ok = weights_finite(params)
            point, a, b = (
                measure(new.policy, pair, scores, beta, new.opt.step) if ok else (None,) * 3
            )
        if point is None or not all(map(math.isfinite, (point.policy_a, point.policy_b, point.kl))):
            back = replace(state)  # the untouched input state
            back.message = (
                f"DPO step {new.opt.step} made the weights or scores NaN or infinite; the "
                "copy was put back as it was before these steps."
            )
            return back
        new.points.append(point)
        new.last_a, new.last_b = a, b
        task.report((i + 1) / n_steps, new.points[-1])
        time.sleep(YIELD_SECONDS)  # let the UI thread take the GIL between steps
    return new


def measure(policy: Model, pair: PairData, scores: PairScores, beta: float, step: int
            ) -> tuple[DPOPoint, Scored, Scored]:  # fmt: skip
    """Score the pair with the policy and compare with the reference."""
    out, kls = [], []
    for seq, ids, ref_rows in zip(
        (pair.a_seq, pair.b_seq), (pair.a_ids, pair.b_ids), scores.ref_logits, strict=True
    ):
        inputs, targets, n = seq
        rows = forward_logits(policy, inputs[None])[0][-n:]
        out.append(Scored(ids, tuple(float(v) for v in _target_logprobs(rows, targets, n))))
        kls.append(kl_rows(rows, ref_rows))
    kl = float(np.mean(np.concatenate(kls)))
    point = DPOPoint(step, beta, out[0].total, out[1].total, scores.ref_a.total,
                     scores.ref_b.total, kl)  # fmt: skip
    return point, out[0], out[1]


# -- completions -------------------------------------------------------------------------------


def sample_completion(model: Model, prompt_ids: Sequence[int], encoding, seed: int,
                      n: int = SAMPLE_TOKENS, temperature: float = SAMPLE_TEMPERATURE
                      ) -> tuple[int, ...]:  # fmt: skip
    """``n`` tokens sampled from the model after the prompt (seeded; may end at end-of-text)."""
    window = model.config.max_position_embeddings
    ids = list(prompt_ids)[-(window - 1) :] or [encoding.eot_token]
    gen = Generation(model, ids, settings=SamplingSettings(temperature=temperature),
                     seed=seed, encoding=encoding)  # fmt: skip
    gen.generate(min(n, gen.room))
    return tuple(gen.generated)


# -- chat templates ------------------------------------------------------------------------------

_SPECIAL = re.compile(r"<\|[^|<>\s]{1,40}\|>|<s>|</s>|\[/?INST\]|<<SYS>>|<</SYS>>")


def find_chat_template(*sources: Any) -> str | None:
    """The chat template string of the first source that has one (read defensively: a
    ``chat_template`` attribute on the object, its ``config``, its ``tokenizer`` or its
    ``source``: a loaded model keeps it on ``model.tokenizer`` and ``model.source``)."""
    for source in sources:
        parts = ("config", "tokenizer", "source")
        for obj in (source, *(getattr(source, name, None) for name in parts)):
            value = getattr(obj, "chat_template", None) if obj is not None else None
            if isinstance(value, str) and value.strip():
                return value
    return None


@dataclass(frozen=True)
class ChatTemplateView:
    template: str | None
    rendered: str | None
    special_tokens: tuple[str, ...]
    how: str


def chat_template_view(template: str | None, message: str) -> ChatTemplateView:
    """The template's special tokens and a user message wrapped by it.

    Rendering uses the Jinja sandbox when ``jinja2`` is installed (it is optional);
    otherwise a ChatML or Llama-3 template is recognised by its markers and filled in by
    hand, and anything else is shown as the raw template.

    >>> v = chat_template_view("{% for m in messages %}<|im_start|>{{ m.role }}...", "Hi")
    >>> v.special_tokens
    ('<|im_start|>',)
    >>> chat_template_view(None, "Hi").how
    'none'
    """
    if not template:
        return ChatTemplateView(None, None, (), "none")
    specials = tuple(dict.fromkeys(_SPECIAL.findall(template)))
    messages = [{"role": "user", "content": message}]
    try:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        rendered = env.from_string(template).render(
            messages=messages, add_generation_prompt=True, bos_token="", eos_token=""
        )
        return ChatTemplateView(template, rendered, specials, "jinja")
    except Exception:  # noqa: BLE001 - no jinja2, or a template it cannot render
        pass
    if "<|im_start|>" in template:
        rendered = f"<|im_start|>user\n{message}<|im_end|>\n<|im_start|>assistant\n"
        return ChatTemplateView(template, rendered, specials, "chatml")
    if "<|start_header_id|>" in template:
        rendered = (
            f"<|start_header_id|>user<|end_header_id|>\n\n{message}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n"
        )
        return ChatTemplateView(template, rendered, specials, "llama3")
    return ChatTemplateView(template, None, specials, "raw")


# -- what chapter 13's workers run ----------------------------------------------------------------


@dataclass
class PairResult:
    """A scored pair and everything the screen needs to draw it and take DPO steps."""

    model: Model
    """The reference (frozen): the loaded model, or anatomy-mini when that was too big."""
    encoding: Any
    note: str
    """Why anatomy-mini is used instead of the loaded model ("" when it is the loaded one)."""
    pair: PairData
    scores: PairScores
    pieces_a: tuple[str, ...]
    pieces_b: tuple[str, ...]


def token_piece(encoding, token: int) -> str:
    """A token's text for display (invalid UTF-8 shown as U+FFFD, end-of-text by name)."""
    if token == getattr(encoding, "eot_token", None):
        return "<|endoftext|>"
    try:
        return encoding.decode_single_token_bytes(int(token)).decode("utf-8", "replace")
    except KeyError:
        return "�"


def dpo_memory_kw() -> dict[str, Any]:
    """The policy copy, its gradient for A and for B, their difference and Adam's two slots."""
    return {"optimizer": "adam", "extra_copies": 2}


def score_texts(loaded: Model | None, encoding, prompt: str, text_a: str, text_b: str,
                beta: float) -> PairResult:  # fmt: skip
    """Encode prompt and completions, score both with the (chosen) model. ValueError for
    an empty completion or one that does not fit the window."""
    from .live_training import choose_model

    chosen = choose_model(loaded, encoding, **dpo_memory_kw())
    enc, model = chosen.encoding, chosen.model
    a_ids, b_ids = enc.encode_ordinary(text_a), enc.encode_ordinary(text_b)
    pair = make_pair(
        model, enc.encode_ordinary(prompt), a_ids, b_ids, getattr(enc, "eot_token", None)
    )
    scores = score_pair(model, pair, beta)
    return PairResult(model, enc, chosen.note, pair, scores,
                      tuple(token_piece(enc, t) for t in a_ids),
                      tuple(token_piece(enc, t) for t in b_ids))  # fmt: skip


def sample_texts(loaded: Model | None, encoding, prompt: str, seeds: Sequence[int]) -> list[str]:
    """One sampled completion text per seed (at temperature 1, a few tokens each)."""
    from .live_training import choose_model

    chosen = choose_model(loaded, encoding, **dpo_memory_kw())
    enc = chosen.encoding
    ids = enc.encode_ordinary(prompt)
    out = []
    for seed in seeds:
        tokens = [t for t in sample_completion(chosen.model, ids, enc, seed) if t != enc.eot_token]
        out.append(enc.decode(tokens) if tokens else ".")
    return out
