"""The numbers chapter 5 prints for one sampling step, and the parsing of its number fields.

:func:`sampling_table` turns a :class:`~.sampling.SamplingResult` into the rows of the bar
table — each token's raw logit ``l`` and probability ``p``, its adjusted logit ``z`` (after
penalties, divided by the temperature), its final probability ``p′`` and, if a filter
removed it, which one — plus the two normalisers. Every probability is derived from the
rounded numbers printed beside it (see :mod:`.readout`)::

    p  = exp(l - lse)     lse  = log Σ exp(l) over the whole vocabulary
    p′ = exp(z - lse′)    lse′ = log Σ exp(z) over the tokens the filters kept

The parse functions turn what a person typed into settings, or raise
:class:`SettingError` with one line naming the field and the allowed range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..core.generation import Generation, GenerationStopped, StepRecord, Stop
from ..core.sampling import SamplingError, SamplingResult, SamplingSettings, rank_tokens
from .generation_ops import stopped_message
from .readout import LOGIT_DECIMALS, PERCENT_DECIMALS, SoftmaxReadout, softmax_readout
from .token_pieces import piece_spans

CUT_NAMES = {"temperature": "greedy", "top_k": "top-k", "top_p": "top-p", "min_p": "min-p"}
"""The short name a bar is tagged with when that stage removed it."""

MAX_SEED = 2**63 - 1


class SettingError(ValueError):
    """A typed setting is not acceptable. ``field`` names the input; ``str()`` is one line."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# -- parsing ------------------------------------------------------------------------------

SETTING_FIELDS: dict[str, tuple[str, type, float | int]] = {
    "temperature": ("temperature", float, 1.0),
    "top_k": ("top-k", int, 0),
    "top_p": ("top-p", float, 1.0),
    "min_p": ("min-p", float, 0.0),
    "repetition_penalty": ("repetition penalty", float, 1.0),
    "frequency_penalty": ("frequency penalty", float, 0.0),
    "presence_penalty": ("presence penalty", float, 0.0),
}
"""SamplingSettings field -> (name shown, type, value when the field is left empty)."""


def _number(field: str, text: str) -> float | int:
    label, kind, default = SETTING_FIELDS[field]
    clean = text.strip()
    if not clean:
        return default
    try:
        value = float(clean) if kind is float else int(clean)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise SettingError(field, f"{label}: {clean!r} is not {what}") from None
    if kind is float and not np.isfinite(value):
        raise SettingError(field, f"{label} must be a finite number, got {clean!r}")
    return value


def parse_settings(fields: Mapping[str, str]) -> SamplingSettings:
    """Settings from typed texts (missing or empty fields take the 'off' value).

    >>> parse_settings({"temperature": "0.7", "top_k": "40"}).describe()
    'temperature 0.7, top-k 40'
    >>> parse_settings({"top_p": "1.5"})
    Traceback (most recent call last):
    ...
    llm_anatomy_tui.views.sampling_view.SettingError: top-p must be between 0 and 1 (1 = off), got 1.5
    """
    values = {f: _number(f, fields.get(f, "")) for f in SETTING_FIELDS}
    try:
        return SamplingSettings(**values)
    except SamplingError as exc:
        message = str(exc)
        field = next(
            (f for f, (label, _, _) in SETTING_FIELDS.items() if message.startswith(label)),
            "temperature",
        )
        raise SettingError(field, message) from None


def settings_fields(settings: SamplingSettings) -> dict[str, str]:
    """The texts to put in the fields for ``settings`` (inverse of :func:`parse_settings`)."""
    return {f: f"{getattr(settings, f):g}" for f in SETTING_FIELDS}


def parse_stops(text: str) -> tuple[str, ...]:
    """Stop sequences separated by ``|``; ``\\n`` and ``\\t`` stand for newline and tab.

    >>> parse_stops(r"The end|\\n\\n| .")
    ('The end', '\\n\\n', ' .')
    """
    parts = (p.replace("\\n", "\n").replace("\\t", "\t") for p in text.split("|"))
    return tuple(dict.fromkeys(p for p in parts if p))


def parse_seed(text: str) -> int:
    """A seed: a whole number from 0 to 2**63 - 1 (empty: 0)."""
    clean = text.strip().replace(",", "").replace("_", "")
    if not clean:
        return 0
    try:
        value = int(clean)
    except ValueError:
        raise SettingError("seed", f"seed: {text.strip()!r} is not a whole number") from None
    if not 0 <= value <= MAX_SEED:
        raise SettingError("seed", f"seed must be between 0 and {MAX_SEED:,}, got {value:,}")
    return value


def parse_count(text: str, most: int) -> int:
    """How many tokens to generate: 1 .. ``most`` (empty: 10, or ``most`` if fewer)."""
    clean = text.strip()
    if not clean:
        return max(1, min(10, most))
    try:
        value = int(clean)
    except ValueError:
        raise SettingError("count", f"N: {clean!r} is not a whole number") from None
    if not 1 <= value <= most:
        raise SettingError("count", f"N must be between 1 and {most}, got {value}")
    return value


# -- the table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingRow:
    """One token's row, with the numbers exactly as printed (rounded) and derived."""

    token: int
    rank: int
    """Position by adjusted logit z (0 = most likely), the order the draw uses."""
    logit: float
    """Raw model logit, rounded to the places shown."""
    p: float
    """exp(logit - lse)."""
    z: float
    """Logit after penalties and temperature, rounded (equals ``logit`` when neither acts)."""
    p_final: float | None
    """exp(z - lse′) if the token was kept, None if a filter removed it."""
    p_before_cut: float
    """Probability at the temperature before any filter (what a cut token had)."""
    cut: str | None
    """'greedy', 'top-k', 'top-p' or 'min-p': the stage that removed it."""
    penalty: float
    """How much the penalties moved the raw logit (0 if untouched)."""


@dataclass(frozen=True)
class SamplingTable:
    """Everything printed about one step's distribution."""

    rows: tuple[SamplingRow, ...]
    lse: float
    """Normaliser of the raw logits over the whole vocabulary (rounded as shown)."""
    lse_final: float
    """Normaliser of z over the kept tokens (rounded as shown)."""
    vocab: int
    n_kept: int
    kept_mass: float
    """Probability (at the temperature, before filters) the kept tokens held."""
    adjusted: bool
    """True when z differs from the raw logit (penalties or a temperature other than 0, 1)."""
    chosen: int
    chosen_rank: int
    candidates: tuple[int, ...]
    """The first ``top_n`` kept tokens in draw order."""
    candidate_probs: tuple[float, ...]
    """Their p′, derived as in the rows."""
    raw: SoftmaxReadout
    final: SoftmaxReadout
    decimals: int


def _rank_of(values: np.ndarray, i: int) -> int:
    """Position of entry ``i`` when ``values`` are sorted largest first, ties by lower id."""
    v = values[i]
    return int(np.count_nonzero(values > v) + np.count_nonzero(values[:i] == v))


def _top_ids(values: np.ndarray, n: int) -> np.ndarray:
    """The n largest entries' ids, largest first, ties to the lower id."""
    n = max(0, min(n, values.size))
    ids = np.arange(values.size)
    if 0 < n < values.size:
        cut = np.partition(values, values.size - n)[values.size - n]
        ids = np.flatnonzero(values >= cut)
    return ids[rank_tokens(values[ids])][:n]


def _z_from_rounded(raw: np.ndarray, penalised: np.ndarray, ids: list[int],
                    settings: SamplingSettings, decimals: int) -> np.ndarray:  # fmt: skip
    """z of tokens ``ids`` computed as the chapter tells a reader to: the penalties, then
    the temperature, applied to the logit *as printed* (rounded to ``decimals``).

    The penalties divide (or multiply) by r and subtract the frequency and presence
    terms; the subtracted part is read off the model's own penalised logits, so tokens
    the history never held are left alone.

    >>> s = SamplingSettings(temperature=0.7, repetition_penalty=2.0, presence_penalty=0.5)
    >>> raw, pen = np.array([1.23456, -2.0, 0.3]), np.array([0.11728, -2.0, 0.3])
    >>> [round(float(z), 6) for z in _z_from_rounded(raw, pen, [0, 1, 2], s, 4)]
    [0.167571, -2.857143, 0.428571]
    """
    raw = np.asarray(raw, dtype=np.float64)[ids]
    pen = np.asarray(penalised, dtype=np.float64)[ids]
    shown = np.round(raw, decimals)
    r = settings.repetition_penalty
    seen = pen != raw
    scaled = np.where(raw > 0, raw / r, raw * r)
    subtracted = np.where(seen, pen - scaled, 0.0)  # −(f·uses + q) for tokens in context
    z = np.where(seen, np.where(shown > 0, shown / r, shown * r) + subtracted, shown)
    t = settings.temperature
    return z / t if t not in (0.0, 1.0) else z


def penalty_rule(settings: SamplingSettings) -> str:
    """How the penalties change a logit ``l`` of a token already in context, as printed
    under the table ("" when they are off).

    >>> penalty_rule(SamplingSettings(repetition_penalty=1.3, frequency_penalty=0.5))
    'pen(l) = l ÷ 1.3 if l > 0, l × 1.3 if not, − 0.5 × uses'
    >>> penalty_rule(SamplingSettings(presence_penalty=2))
    'pen(l) = l − 2'
    """
    if not settings.penalised:
        return ""
    r = settings.repetition_penalty
    rule = f"l ÷ {r:g} if l > 0, l × {r:g} if not" if r != 1 else "l"
    if settings.frequency_penalty:
        rule += (
            f", − {settings.frequency_penalty:g} × uses"
            if r != 1
            else (f" − {settings.frequency_penalty:g} × uses")
        )
    if settings.presence_penalty:
        rule += (
            f", − {settings.presence_penalty:g}"
            if r != 1
            else (f" − {settings.presence_penalty:g}")
        )
    return f"pen(l) = {rule}"


def sampling_table(
    result: SamplingResult,
    chosen: int | None = None,
    top_n: int = 20,
    decimals: int = LOGIT_DECIMALS,
) -> SamplingTable:
    """The rows of the top ``top_n`` tokens by adjusted logit (the chosen token appended if
    it ranks lower), and the normalisers, for ``result`` (``chosen``: the token actually
    appended, which differs from the draw after a branch)."""
    settings = result.settings
    raw_stage = result.raw
    pen_stage = result.stage("penalties")
    temp_stage = result.stage("temperature")
    final = result.final
    chosen = result.token if chosen is None else int(chosen)
    z_all = np.asarray(temp_stage.base, dtype=np.float64)  # [V] after penalties and /T
    ids = [int(i) for i in _top_ids(z_all, top_n)]
    if chosen not in ids:
        ids.append(chosen)
    if temp_stage.active or pen_stage.active:
        # The z printed is computed from the logit printed beside it, so z = pen(logit)/T
        # checks with a calculator: recompute the shown rows' z from the rounded logits.
        z_all = z_all.copy()
        z_all[ids] = _z_from_rounded(raw_stage.base, pen_stage.base, ids, settings, decimals)
    position = {i: _rank_of(z_all, i) for i in ids}  # by z, ties to the lower id
    # the first candidates of the draw, in draw order (the strip of the cumulative sum)
    kept_values = np.where(final.keep, np.asarray(final.base, dtype=np.float64), -np.inf)
    candidates = [int(i) for i in _top_ids(kept_values, min(top_n, final.n_kept))]

    raw = softmax_readout(raw_stage.base, ids, decimals=decimals)
    final_ids = list(dict.fromkeys(ids + candidates))
    fin = softmax_readout(z_all, final_ids, keep=final.keep, decimals=decimals)
    fin_p = dict(zip(fin.ids, fin.probs, strict=True))
    fin_z = dict(zip(fin.ids, fin.logits, strict=True))
    before = pen_stage if settings.greedy else temp_stage  # the distribution filters act on
    before_probs = before.probs
    cut_stages = [result.stage(name) for name in CUT_NAMES]
    raw_logits = np.asarray(raw_stage.base, dtype=np.float64)
    pen_logits = np.asarray(pen_stage.base, dtype=np.float64)
    rows = []
    for i, token in enumerate(ids):
        cut = None
        for stage in cut_stages:
            if stage.keep_before[token] and not stage.keep[token]:
                cut = CUT_NAMES[stage.name]
                break
        rows.append(
            SamplingRow(
                token=int(token),
                rank=int(position[token]),
                logit=raw.logits[i],
                p=raw.probs[i],
                z=fin_z[token],
                p_final=None if cut else fin_p[token],
                p_before_cut=float(before_probs[token]),
                cut=cut,
                penalty=float(pen_logits[token] - raw_logits[token]),
            )
        )
    kept_mass = float(before_probs[final.keep].sum())
    adjusted = pen_stage.active or settings.temperature not in (0.0, 1.0)
    return SamplingTable(
        rows=tuple(rows),
        lse=raw.lse,
        lse_final=fin.lse,
        vocab=int(raw_logits.size),
        n_kept=int(final.n_kept),
        kept_mass=kept_mass,
        adjusted=bool(adjusted),
        chosen=chosen,
        chosen_rank=int(position[chosen]),
        candidates=tuple(candidates),
        candidate_probs=tuple(fin_p[c] for c in candidates),
        raw=raw,
        final=fin,
        decimals=decimals,
    )


# -- the chapter's state ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SamplingState:
    """What chapter 5 draws, read off the shared generation by a generation op (a snapshot:
    the live generation may change under the screen, this never does)."""

    prompt: tuple[int, ...]
    """The tokens the model reads before the first generated one."""
    steps: tuple[StepRecord, ...]
    """Every step taken (immutable records)."""
    stop: Stop | None
    """Why the generation cannot go on (None: it can)."""
    room: int
    """Tokens that still fit in the context window."""
    settings: SamplingSettings
    seed: int
    stops: tuple[str, ...]
    result: SamplingResult | None
    """What the sampler does at the next step (None: the generation has stopped)."""
    table: SamplingTable | None
    """The bars of :attr:`result`."""
    message: str = ""
    """Why there is no next step, as a sentence ("" when there is one)."""
    info: str = ""
    """What the op that made this state did (replay, branch …), or ""."""
    notice: str = ""
    """Why the model reads something other than the typed prompt, or ""."""
    key: tuple = ()
    """Identifies the generation state this was read from (see :func:`generation_key`)."""

    @property
    def n_tokens(self) -> int:
        return len(self.prompt) + len(self.steps)


def generation_key(gen: Generation) -> tuple:
    """What identifies the state of a generation for drawing: the object, its steps and
    the settings its next step uses. Equal keys: the same picture."""
    last = gen.steps[-1] if gen.steps else None
    return (id(gen), len(gen.steps), id(last), gen.settings, gen.seed, gen.stop_sequences,
            gen.stop)  # fmt: skip


def sampling_state(gen: Generation, top_n: int, info: str = "", notice: str = "") -> SamplingState:
    """Read what chapter 5 shows off ``gen`` (inside a generation op): its steps, and the
    sampler's preview of the next step with the table of its top ``top_n`` rows."""
    result = table = None
    message = gen.stop.message if gen.stop is not None else ""
    if gen.stop is None:
        try:
            result = gen.preview()
        except GenerationStopped as exc:
            message = str(exc)
        else:
            table = sampling_table(result, top_n=top_n)
    return SamplingState(
        prompt=gen.prompt, steps=tuple(gen.steps), stop=gen.stop, room=gen.room,
        settings=gen.settings, seed=gen.seed, stops=gen.stop_sequences, result=result,
        table=table, message=message, info=info, notice=notice, key=generation_key(gen),
    )  # fmt: skip


# -- the chapter's generation ops and labels (run in the app's generation worker) -----------


def replay_op(gen: Generation) -> str:
    """Every step again with the current seed; says whether the tokens changed."""
    before = gen.generated
    if not before:
        return "Nothing to replay yet: take a few steps first."
    gen.replay()
    after = gen.generated
    if before == after:
        return f"Replayed {len(before)} steps with seed {gen.seed}: the same tokens again."
    same = sum(a == b for a, b in zip(before, after, strict=False))
    return (
        f"Replayed with seed {gen.seed}: {len(after) - same} of {len(after)} tokens "
        "differ from before (a different seed gives different draws)."
    )


def branch_op(index: int, token: int, label: str):  # noqa: ANN201
    """The op that takes ``token`` (shown as ``label``) at step ``index``."""

    def branch(gen: Generation) -> str:
        if index > len(gen.steps):
            return f"Step {index} no longer exists."
        if index == len(gen.steps):
            if gen.done:
                return stopped_message(gen)
            gen.step(token=token)
            return f"Step {index}: took {label} by hand instead of drawing."
        old = gen.steps[index].token
        dropped = len(gen.steps) - index - 1
        gen.branch(index, token)
        later = f"; the {dropped} later step{'s' if dropped != 1 else ''} were dropped"
        was = token_label(gen.piece(old), old)
        return f"Branched at step {index}: {label} instead of {was}" + (
            later + "." if dropped else "."
        )

    return branch


def rewind_op(index: int):  # noqa: ANN201
    """The op that forgets step ``index`` and every step after it."""

    def rewind(gen: Generation) -> str:
        if index >= len(gen.steps):
            return ""
        n = len(gen.steps) - index
        gen.rewind(index)
        return f"Dropped {n} step{'s' if n != 1 else ''}, from step {index} on."

    return rewind


def token_label(raw: bytes, token: int) -> str:
    """A token as a bar label: its piece with visible whitespace, or ``#id`` if it has none.

    >>> token_label(b"", 7)
    '#7'
    """
    return "".join(text for text, _ in piece_spans(raw)) if raw else f"#{token}"


def flow_label(raw: bytes, token: int) -> str:
    """A token as running text: spaces as spaces, line breaks and tabs as ⏎ ⇥."""
    parts = []
    for text, kind in piece_spans(raw):
        parts.append(text.replace("·", " ") if kind == "marker" else text)
    return "".join(parts) or f"#{token}"


def stops_field(stops) -> str:  # noqa: ANN001
    """The stop sequences as the field shows them: ``|``-separated, ``\\n`` and ``\\t`` escaped.

    >>> stops_field(("a\\n", "b"))
    'a\\\\n|b'
    """
    return "|".join(x.replace("\n", "\\n").replace("\t", "\\t") for x in stops)


def setting_notes(s: SamplingSettings, top_p_final: float | None) -> list[str]:
    """One-line warnings about settings that make sampling degenerate. ``top_p_final``: the
    best token's final probability in the preview shown (None if no preview is shown)."""
    notes = []
    if s.greedy:
        notes.append("Temperature 0 is greedy: no draw, the top token every time.")
    elif s.temperature >= 5 and top_p_final is not None:
        notes.append(
            f"Temperature {s.temperature:g} flattens the distribution: the best token "
            f"keeps {top_p_final * 100:.{PERCENT_DECIMALS}f}%, so the draw is close to a blind pick."
        )
    if s.top_p == 0:
        notes.append("top-p 0 keeps only the most likely token: sampling becomes greedy.")
    if s.top_k == 1:
        notes.append("top-k 1 keeps only the most likely token.")
    if s.min_p == 1:
        notes.append("min-p 1 keeps only the most likely token (and exact ties).")
    return notes


def bar_labels(rows, label, top_n: int) -> list[str]:  # noqa: ANN001
    """Each row's token label (``label(token)``), with its rank if it ranks below ``top_n``."""
    out = []
    for r in rows:
        text = label(r.token)
        out.append(f"{text} #{r.rank + 1}" if r.rank >= top_n else text)
    return out


def bar_tags(rows) -> list[str | None]:  # noqa: ANN001
    """The penalty tag of each row: ▼ penalised, ▲ boosted, or None."""
    return ["▼ penalty" if r.penalty < 0 else ("▲ boost" if r.penalty > 0 else None) for r in rows]


def highlight_tag(recorded: bool, forced: bool, drew: bool) -> str:
    """What the highlighted bar is tagged: drawn / top (preview), you chose / chosen."""
    if not recorded:
        return "drawn" if drew else "top"
    return "you chose" if forced else "chosen"


@dataclass(frozen=True)
class Shown:
    """What chapter 5's bars show right now (read by tests)."""

    index: int
    """The step: ``len(steps)`` for the next one (a preview), less for a recorded one."""
    recorded: bool
    token: int
    """The highlighted token: the one the draw picks (preview) or the one appended."""
    forced: bool
    table: SamplingTable
    result: SamplingResult


def read_fields(
    texts: Mapping[str, str], settings: SamplingSettings, seed: int, count: int
) -> tuple[SamplingSettings, int, int, tuple[str, ...], dict[str, str]]:
    """Chapter 5's fields parsed: settings, seed, step count and stop sequences, each bad
    field keeping the value given here, and the errors by field.

    >>> texts = dict.fromkeys(SETTING_FIELDS, "") | {"seed": "7", "count": "x", "stops": ""}
    >>> settings, seed, count, stops, errors = read_fields(texts, SamplingSettings(), 1, 10)
    >>> seed, count, stops, list(errors)
    (7, 10, (), ['count'])
    """
    errors: dict[str, str] = {}
    try:
        settings = parse_settings({f: texts[f] for f in SETTING_FIELDS})
    except SettingError as exc:
        errors[exc.field] = str(exc)
    try:
        seed = parse_seed(texts["seed"])
    except SettingError as exc:
        errors["seed"] = str(exc)
    try:
        count = parse_count(texts["count"], 256)
    except SettingError as exc:
        errors["count"] = str(exc)
    return settings, seed, count, parse_stops(texts["stops"]), errors


def running_pieces(
    prompt,
    steps,
    view: int | None,
    label,  # noqa: ANN001
) -> tuple[list[tuple[str, str]], int]:
    """The running text as (label, style) pieces — prompt dim, steps alternately
    underlined, the one shown (``view``) in reverse, a bar where the next token goes — and
    the index of the piece to keep in view."""
    pieces: list[tuple[str, str]] = [(label(tok), "dim") for tok in prompt]
    for rec in steps:
        style = "underline" if rec.index % 2 else ""
        if view is not None and rec.index == view:
            style = "reverse bold"
        pieces.append((label(rec.token), style))
    if view is None:
        pieces.append(("▏", "bold"))  # where the next token goes
    return pieces, len(prompt) + (view if view is not None else len(steps))


def shown_for(st: SamplingState | None, view: int | None, record_table) -> Shown | None:  # noqa: ANN001
    """What the bars show: step ``view`` as recorded (its table from
    ``record_table(rec)``), or the next step's preview (``view`` None); None if neither
    exists (no state yet, or it stopped before any step)."""
    if st is None:
        return None
    if view is not None:
        rec = st.steps[view]
        return Shown(view, True, rec.token, rec.forced, record_table(rec), rec.sampling)
    if st.table is not None and st.result is not None:
        return Shown(len(st.steps), False, st.table.chosen, False, st.table, st.result)
    return None  # it stopped before any step
