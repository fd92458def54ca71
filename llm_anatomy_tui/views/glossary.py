"""The glossary: terms read from ``assets/glossary.toml``, and a forgiving search over them.

The data file is the only place definitions live; this module loads and checks it and
ranks terms for a query. The search is pure Python (no Textual): Textual's own fuzzy
matcher only finds the query's letters in order, so a typo such as "atnetion" or "logti"
would find nothing; here a term also matches within a small edit distance.

>>> g = load_glossary()
>>> search(g, "GQA")[0].term.name
'Grouped-query attention'
>>> search(g, "atnetion")[0].term.name
'Attention'
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

GLOSSARY_PATH = Path(__file__).resolve().parent.parent / "assets" / "glossary.toml"


class GlossaryError(ValueError):
    """The glossary file is malformed (a missing field, an unknown related term …)."""


@dataclass(frozen=True)
class Term:
    """One glossary entry."""

    name: str
    text: str
    chapter: int
    aliases: tuple[str, ...] = ()
    related: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The headword first, then the aliases."""
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Glossary:
    terms: tuple[Term, ...]
    pending_chapters: frozenset[int]
    """Chapters terms may point to that are planned but not yet built in this checkout."""

    def get(self, name: str) -> Term:
        """The term whose headword or alias is ``name`` (any case); KeyError otherwise."""
        key = name.strip().casefold()
        for term in self.terms:
            if any(n.casefold() == key for n in term.names):
                return term
        raise KeyError(name)


def parse_glossary(text: str) -> Glossary:
    """Parse and check the TOML text of a glossary.

    >>> g = parse_glossary('''
    ... pending_chapters = []
    ... [[term]]
    ... name = "Logit"
    ... chapter = 5
    ... text = "A raw score."
    ... ''')
    >>> g.terms[0].name, g.terms[0].chapter, g.terms[0].related
    ('Logit', 5, ())
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GlossaryError(f"glossary is not valid TOML: {exc}") from exc
    terms: list[Term] = []
    for i, raw in enumerate(data.get("term", [])):
        try:
            name, body, chapter = raw["name"], raw["text"], raw["chapter"]
        except KeyError as exc:
            raise GlossaryError(f"term #{i + 1} has no {exc.args[0]!r}") from None
        if not isinstance(chapter, int) or not name.strip() or not body.strip():
            raise GlossaryError(f"term {name!r}: empty name/text or non-integer chapter")
        terms.append(
            Term(
                name=name.strip(),
                text=" ".join(body.split()),
                chapter=chapter,
                aliases=tuple(raw.get("aliases", ())),
                related=tuple(raw.get("related", ())),
            )
        )
    seen: dict[str, str] = {}
    for term in terms:
        key = term.name.casefold()
        if key in seen:
            raise GlossaryError(f"term {term.name!r} is listed twice")
        seen[key] = term.name
    for term in terms:
        for other in term.related:
            if other.casefold() not in seen:
                raise GlossaryError(f"term {term.name!r}: related {other!r} is not a term")
    terms.sort(key=lambda t: t.name.casefold())
    return Glossary(tuple(terms), frozenset(data.get("pending_chapters", ())))


@cache
def load_glossary(path: Path = GLOSSARY_PATH) -> Glossary:
    """The shipped glossary (read once)."""
    return parse_glossary(path.read_text(encoding="utf-8"))


# -- search ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    term: Term
    score: float
    """Higher is better; see :func:`score_name`."""
    matched: str
    """The headword or alias that matched best (or the headword for a definition hit)."""


def edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of
    two neighbouring letters each cost 1. With ``limit``, gives up early and returns
    ``limit + 1`` once the distance must exceed ``limit``.

    >>> edit_distance("logti", "logit"), edit_distance("atention", "attention")
    (1, 1)
    >>> edit_distance("", "abc"), edit_distance("kitten", "sitting")
    (3, 3)
    >>> edit_distance("kitten", "sitting", limit=1)
    2
    """
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
        if limit is not None and min(row) > limit + 1:  # a swap can lower it by one later
            return limit + 1
    d = prev[len(b)]
    return d if limit is None else min(d, limit + 1)


def _subsequence_span(query: str, name: str) -> int | None:
    """Length of the shortest stretch of ``name`` holding ``query``'s letters in order,
    scanning greedily from each start; None if they are not all there."""
    best: int | None = None
    for start, ch in enumerate(name):
        if ch != query[0]:
            continue
        i, j = 1, start + 1
        while i < len(query) and j < len(name):
            if name[j] == query[i]:
                i += 1
            j += 1
        if i == len(query):
            span = j - start
            best = span if best is None else min(best, span)
    return best


def typo_budget(query: str) -> int:
    """How many edits a query may be away from a name: none below 4 letters, 1 up to 7,
    then 2."""
    n = len(query)
    return 0 if n < 4 else 1 if n < 8 else 2


def score_name(query: str, name: str) -> float:
    """How well ``query`` (already lower-case, stripped) matches one ``name``; 0 for no match.

    Exact 100 > prefix 90 > a word's prefix 80 > substring 70 > letters in order, packed
    together, 48–60 >
    within :func:`typo_budget` edits of the name, of its start or of one of its words
    35–50; letters in order but spread far apart 5–15.

    >>> score_name("gqa", "gqa"), score_name("top", "top-p") > score_name("top", "stop")
    (100.0, True)
    >>> score_name("logti", "logit") > 0, score_name("xyz", "logit")
    (True, 0.0)
    """
    name = name.casefold()
    if not query:
        return 0.0
    if name == query:
        return 100.0
    shorter = min(len(name) - len(query), 20) / 20  # prefer names close to the query's length
    if name.startswith(query):
        return 90.0 - 5 * shorter
    words = name.replace("-", " ").replace("_", " ").split()
    if any(w.startswith(query) for w in words):
        return 80.0 - 5 * shorter
    if query in name:
        return 70.0 - 5 * shorter
    best = 0.0
    span = _subsequence_span(query, name) if len(query) >= 2 else None
    if span is not None:  # letters in order: strong when packed together, weak when spread
        density = len(query) / span
        best = 30.0 + 30 * density if density >= 0.6 else 5.0 + 10 * density
    budget = typo_budget(query)
    if budget:
        n = len(query)
        candidates = {c for c in (name, name[:n], *words) if abs(len(c) - n) <= budget}
        d = min((edit_distance(query, c, budget) for c in candidates), default=budget + 1)
        if d <= budget:
            best = max(best, 50.0 - 10 * (d - 1) - 5 * shorter)
    return best
    return 0.0


STRONG = 20.0
"""Scores below this (spread-out letters, a word of the definition) are shown only when no
term scores at least this much."""


def search(glossary: Glossary, query: str, limit: int | None = None) -> list[Match]:
    """Terms matching ``query``, best first: by headword or alias, then (lower) by words of
    the definition. An empty query lists every term alphabetically. Loose hits (below
    :data:`STRONG`) are left out when a better one exists.

    >>> g = load_glossary()
    >>> [m.term.name for m in search(g, "nucleus")][:1]
    ['Top-p']
    >>> search(g, "qqqqqq")
    []
    """
    q = " ".join(query.casefold().split())
    if not q:
        matches = [Match(t, 0.0, t.name) for t in glossary.terms]
        return matches[:limit] if limit is not None else matches
    found: list[Match] = []
    for term in glossary.terms:
        best, matched = 0.0, term.name
        for i, name in enumerate(term.names):
            s = score_name(q, name) - (1.0 if i else 0.0)  # the headword wins a tie
            if s > best:
                best, matched = s, name
        if best <= 0 and len(q) >= 3 and q in term.text.casefold():
            best = 10.0
        if best > 0:
            found.append(Match(term, best, matched))
    if any(m.score >= STRONG for m in found):  # loose hits only when nothing better exists
        found = [m for m in found if m.score >= STRONG]
    found.sort(key=lambda m: (-m.score, m.term.name.casefold()))
    return found[:limit] if limit is not None else found
