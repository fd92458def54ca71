""" "Explain this panel": the texts (``assets/explain.toml``) and how a focused widget finds
its own.

A text belongs to a chapter slug and a widget id (``[sampling.s-bars]``), or to every
chapter (``[common.prompt]``). The focused widget's id is tried first, then each
ancestor's, so a text for a container covers the inputs inside it.

>>> texts = parse_explanations('''
... [common.prompt]
... title = "The prompt bar"
... shows = "Your text."
... read = "Type."
... check = "Count."
... [sampling.s-bars]
... title = "Bars"
... shows = "Odds."
... read = "Longer is likelier."
... check = "They add up."
... ''')
>>> find_explanation(texts, "sampling", ["prompt-area", "prompt", "s-body"]).title
'The prompt bar'
>>> find_explanation(texts, "welcome", ["s-bars"]) is None
True
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

EXPLAIN_PATH = Path(__file__).resolve().parent.parent / "assets" / "explain.toml"
COMMON = "common"
"""The section whose texts apply in every chapter (the prompt bar …)."""
FIELDS = ("title", "shows", "read", "check")


class ExplainError(ValueError):
    """The explain file is malformed."""


@dataclass(frozen=True)
class PanelText:
    """What one panel shows, how to read it, and how to check its numbers."""

    title: str
    shows: str
    read: str
    check: str


Explanations = Mapping[str, Mapping[str, PanelText]]
"""``{chapter slug or "common": {widget id: text}}``."""


def parse_explanations(text: str) -> dict[str, dict[str, PanelText]]:
    """Parse and check the TOML text of the explain file (every field present, non-empty)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExplainError(f"explain file is not valid TOML: {exc}") from exc
    out: dict[str, dict[str, PanelText]] = {}
    for slug, panels in data.items():
        if not isinstance(panels, dict):
            raise ExplainError(f"[{slug}] must be a table of panels")
        for wid, raw in panels.items():
            if not isinstance(raw, dict):
                raise ExplainError(f"[{slug}.{wid}] must be a table")
            missing = [f for f in FIELDS if not str(raw.get(f, "")).strip()]
            if missing:
                raise ExplainError(f"[{slug}.{wid}] has no {', '.join(missing)}")
            extra = set(raw) - set(FIELDS)
            if extra:
                raise ExplainError(f"[{slug}.{wid}] has unknown fields {sorted(extra)}")
            out.setdefault(slug, {})[wid] = PanelText(
                *(" ".join(str(raw[f]).split()) for f in FIELDS)
            )
    return out


@cache
def load_explanations(path: Path = EXPLAIN_PATH) -> dict[str, dict[str, PanelText]]:
    """The shipped texts (read once)."""
    return parse_explanations(path.read_text(encoding="utf-8"))


def find_explanation(texts: Explanations, slug: str, ids: Iterable[str]) -> PanelText | None:
    """The text for the first of ``ids`` (the focused widget's, then its ancestors') that
    has one in chapter ``slug``, or else in the common section; None if none has."""
    own = texts.get(slug, {})
    common = texts.get(COMMON, {})
    for wid in ids:
        if wid in own:
            return own[wid]
        if wid in common:
            return common[wid]
    return None


def chapter_overview(texts: Explanations, slug: str) -> PanelText | None:
    """The chapter's first text (its main panel): what F3 explains when nothing has focus."""
    own = texts.get(slug, {})
    return next(iter(own.values()), None)
