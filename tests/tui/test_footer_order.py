"""Every chapter keeps the shared keys, and its footer puts Help and its own keys first."""

from __future__ import annotations

import pytest
from textual.binding import Binding

from llm_anatomy_tui.chapters import CHAPTERS
from llm_anatomy_tui.chapters.base import NAV_BINDINGS


def _ids(bindings) -> list[str]:  # noqa: ANN001
    return [b.id for b in bindings if isinstance(b, Binding) and b.id]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_shared_keys_stay_bound_and_chapter_keys_come_first(chapter):
    screen_cls = chapter.load()
    merged = screen_cls._merged_bindings.key_to_bindings  # what screens are built with
    order = [b.id for bindings in merged.values() for b in bindings]
    own = [i for i in _ids(screen_cls.__dict__["BINDINGS"]) if not i.startswith("nav.")]
    own_keys = {k for k, bs in merged.items() if any(b.id in own for b in bs)}
    for nav in NAV_BINDINGS:  # every shared key works unless the chapter reuses that key
        for key in nav.key.split(","):
            if key not in own_keys:
                assert any(b.id == nav.id for b in merged[key]), (chapter.slug, key)
    assert order[0] == "nav.help"
    if own:
        first_nav_after_help = next(i for i, x in enumerate(order) if x.startswith("nav.")
                                    and x != "nav.help")  # fmt: skip
        assert max(order.index(i) for i in own) < first_nav_after_help
