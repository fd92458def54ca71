"""What chapter 5 draws with, knowing no screen: its number field (:class:`SettingInput`)
and the Rich text made from its view-model data — the normaliser lines, the note under
the cumulative strip, the stage list, the status line, the running text and the message
lines. Plain data in, Rich renderables out."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.console import Console
from rich.text import Text
from textual import events
from textual.widgets import Input

from ..core.sampling import SamplingResult, SamplingSettings
from ..views.readout import LOGIT_DECIMALS, PERCENT_DECIMALS
from ..views.sampling_view import SamplingState, SamplingTable, penalty_rule
from .bar_chart import BarColumn


class SettingInput(Input):
    """A number field. Pasted text keeps only its first line's printable characters."""

    def _on_paste(self, event: events.Paste) -> None:
        lines = event.text.splitlines() if event.text else []
        clean = "".join(ch for ch in lines[0] if ch.isprintable()) if lines else ""
        event.prevent_default()
        event.stop()
        if clean:
            self.insert_text_at_cursor(clean)


STAGE_NAMES = {"logits": "logits", "penalties": "penalties", "temperature": "temperature",
               "top_k": "top-k", "top_p": "top-p", "min_p": "min-p"}  # fmt: skip
"""How the stage list names each stage."""


def bar_columns(table: SamplingTable) -> list[BarColumn]:
    """The number columns of the bar table: logit, p, z (if adjusted), p′."""
    rows = table.rows
    columns = [
        BarColumn("logit", [r.logit for r in rows], LOGIT_DECIMALS),
        BarColumn("p", [r.p for r in rows], PERCENT_DECIMALS, percent=True),
    ]
    if table.adjusted:
        columns.append(BarColumn("z", [r.z for r in rows], LOGIT_DECIMALS))
    columns.append(BarColumn("p′", [r.p_final for r in rows], PERCENT_DECIMALS, percent=True))
    return columns


def norm_text(t: SamplingTable, settings: SamplingSettings) -> Text:
    """Two lines: the normaliser of the raw logits, and what the settings did to them
    (how z is made, what was kept, the normaliser over the kept tokens)."""
    d = t.decimals
    line1 = Text.assemble(
        ("lse", "bold"),
        f" = {t.lse:.{d}f} over {t.vocab:,} logits · p = exp(logit − {t.lse:.{d}f})",
    )
    if settings.greedy:
        return Text.assemble(line1, "\n", "greedy: only the top token is kept, p′ = 100%")
    if not t.adjusted and t.n_kept == t.vocab:
        return Text.assemble(line1, "\nnothing cut or changed: p′ = p")
    parts = []
    if t.adjusted:
        pen = penalty_rule(settings)
        inner = "pen(logit)" if pen else "logit"
        temp = settings.temperature
        parts.append(f"z = {inner}" if temp == 1 else f"z = {inner}/{temp:g}")
        if pen:
            parts.append(pen + " (tokens in context)")
    parts.append(
        f"kept {t.n_kept:,} of {t.vocab:,} ({t.kept_mass * 100:.{PERCENT_DECIMALS}f}%)"
        if t.n_kept < t.vocab
        else f"all {t.vocab:,} kept"
    )
    z = "z" if t.adjusted else "logit"
    parts.append(f"p′ = exp({z} − {t.lse_final:.{d}f})")
    return Text.assemble(line1, "\n", " · ".join(parts))


def draw_note(
    t: SamplingTable, result: SamplingResult, token: int, forced: bool, label: Callable[[int], str]
) -> Text | None:
    """The line under the cumulative strip: greedy, chosen by hand, or a draw that fell past
    the candidates shown (None: the strip says it all)."""
    draw = result.draw
    if draw.u is None:
        return Text("Greedy: no random number is drawn; the top token is taken.")
    if forced:
        return Text.assemble(
            "You chose ", (label(token), "bold"), " here; the draw (u = ",
            f"{draw.u:.{LOGIT_DECIMALS}f}) had picked ", (label(draw.token), "bold"), ".",
        )  # fmt: skip
    if draw.token not in t.candidates:
        return Text.assemble(
            f"u = {draw.u:.{LOGIT_DECIMALS}f} fell past the first {len(t.candidates)}: "
            f"rank {draw.rank + 1:,} of {draw.n_candidates:,}, ",
            (label(draw.token), "bold"),
            f", in [{draw.cdf_low:.{LOGIT_DECIMALS}f}, {draw.cdf_high:.{LOGIT_DECIMALS}f}).",
        )
    return None


def stages_text(result: SamplingResult, index: int, recorded: bool, stops: Sequence[str]) -> Text:
    """What each stage did at step ``index`` (recorded, or the next step's preview)."""
    out = Text()
    title = "What each stage did" + (
        f" (step {index}, as recorded)" if recorded else " (next step)"
    )
    out.append(title + "\n", style="bold")
    for stage in result.stages:
        style = "" if stage.active else "dim"
        out.append(f"{STAGE_NAMES[stage.name]:<12}", style=f"bold {style}".strip())
        out.append(f"{stage.n_kept:>6,} tokens left\n", style=style)
        out.append(f"  {stage.note}\n", style=style)
    out.append(f"\nsettings: {result.settings.describe()}", style="italic")
    if stops:
        out.append("; stop at " + ", ".join(repr(s) for s in stops), style="italic")
    return out


def status_text(st: SamplingState | None, view: int | None) -> Text:
    """The status line: the next token's context, or the recorded step shown."""
    if st is None:
        return Text("Reading the prompt…", style="italic")
    n = len(st.steps)
    mode = "greedy" if st.settings.greedy else f"sampling, seed {st.seed}"
    if view is None:
        text = Text.assemble(
            ("Next token", "bold"),
            f" · step {n} · {st.n_tokens} tokens in context, room for {st.room} · {mode}",
        )
    else:
        rec = st.steps[view]
        how = "you chose it" if rec.forced else rec.sampling.settings.describe()
        text = Text.assemble(
            (f"Step {view} of {n}", "bold"),
            f" (recorded: {how}) · → later · b / Enter branches here",
        )
    if st.stop is not None:
        text = Text.assemble(("Stopped: ", "bold"), st.stop.message, " · x drops a step")
    return text


def running_text(
    pieces: Sequence[tuple[str, str]], focus_piece: int, console: Console, width: int,
    lines_avail: int,
) -> Text:  # fmt: skip
    """``pieces`` (label, style) wrapped to ``width`` and windowed to ``lines_avail`` lines
    that keep the piece at ``focus_piece`` in view."""
    text = Text(no_wrap=False, overflow="fold")
    offsets = []
    for label, style in pieces:
        offsets.append(len(text.plain))
        text.append(label, style=style)
    lines = text.wrap(console, width)
    if len(lines) <= lines_avail:
        return Text("\n").join(lines)
    # keep the line holding the focus piece in view (the newest, or the step shown)
    pos = offsets[min(focus_piece, len(offsets) - 1)]
    total, focus_line = 0, len(lines) - 1
    for i, line in enumerate(lines):
        total += len(line.plain)
        if total > pos:
            focus_line = i
            break
    start = max(0, min(focus_line - lines_avail + 1, len(lines) - lines_avail))
    hidden = sum(len(line.plain) for line in lines[:start])
    out = Text("\n").join(lines[start : start + lines_avail])
    if start:
        out = Text.assemble((f"…{hidden:,} characters above… ", "dim italic"), out)
    return out


def message_lines(
    errors: Sequence[str], st: SamplingState | None, notes: Sequence[str]
) -> list[Text]:
    """The field errors (red), the state's notice and info (``st`` None: not ready), and
    the setting notes (italic)."""
    lines = [Text(err, style="bold red") for err in errors]
    if st is not None:
        if st.notice:
            lines.append(Text(st.notice, style="italic"))
        if st.message and st.table is None and not st.steps:
            lines.append(Text(f"Nothing can be generated: {st.message}.", style="bold"))
        if st.info:
            lines.append(Text(st.info, style="bold" if "stopped" in st.info else "italic"))
    lines.extend(Text(n, style="italic") for n in notes)
    return lines
