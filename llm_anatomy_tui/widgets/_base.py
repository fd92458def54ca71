"""What every data widget does the same way: read its chrome styles from its
``COMPONENT_CLASSES`` and decide between colours and glyphs."""

from __future__ import annotations

from typing import ClassVar

from textual.widget import Widget

from llm_anatomy_tui.widgets.colors import DEFAULT_CHROME, Chrome, ColorMode


def chrome_for(widget: Widget, prefix: str) -> Chrome:
    """A :class:`Chrome` from the widget's ``<prefix>--label/--accent/--dim/--title/--bar``
    component classes; any class the widget does not declare keeps the default."""

    def get(name: str, default):  # noqa: ANN001 - a rich Style
        return widget.get_component_rich_style(f"{prefix}--{name}", partial=True, default=default)

    return Chrome(
        label=get("label", DEFAULT_CHROME.label),
        accent=get("accent", DEFAULT_CHROME.accent),
        dim=get("dim", DEFAULT_CHROME.dim),
        title=get("title", DEFAULT_CHROME.title),
        bar=get("bar", DEFAULT_CHROME.bar),
    )


class ChromeCache:
    """Mixin (before ``Widget``): looks the widget's chrome styles up once, not on every
    render (a lookup of five component styles costs ~0.7 ms), and forgets them when the
    CSS or theme changes. Subclasses name their component-class prefix."""

    _chrome_prefix: ClassVar[str] = ""
    _chrome_cache: Chrome | None = None

    def chrome(self) -> Chrome:
        if self._chrome_cache is None:
            self._chrome_cache = chrome_for(self, self._chrome_prefix)  # type: ignore[arg-type]
        return self._chrome_cache

    def notify_style_update(self) -> None:
        self._chrome_cache = None
        super().notify_style_update()  # type: ignore[misc]


def color_mode_for(widget: Widget) -> ColorMode:
    """``"none"`` (glyphs) when the app runs with ``NO_COLOR`` — Textual would only grey
    the colours, losing e.g. the sign in a diverging map — else ``"color"``.

    Inside Textual the decision follows Textual's own rule rather than the console's
    detected colour system: Textual renders in truecolor and lets the driver downgrade,
    and the detected system depends on ``TERM`` (``standard`` for ``xterm``, none for
    ``dumb``), which would make the same app draw differently from one environment (or
    CI run) to the next. On a 16-colour terminal, ``NO_COLOR=1`` gives the glyph view."""
    return "none" if widget.app.no_color else "color"
