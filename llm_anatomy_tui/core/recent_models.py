"""The recently opened models: a short list of paths kept in a small JSON file.

The file lives in the user's state directory (``$XDG_STATE_HOME/llm-anatomy/recent.json``,
by default ``~/.local/state/llm-anatomy/recent.json``; ``$LLM_ANATOMY_STATE_DIR`` overrides
the directory). Reading or writing it never fails: an unreadable, corrupt or unwritable
file means an empty list, or a list that is not remembered.

>>> import tempfile, pathlib
>>> store = RecentModels(pathlib.Path(tempfile.mkdtemp()) / "recent.json")
>>> store.add("/models/a.gguf"); store.add("/models/b"); store.add("/models/a.gguf")
>>> store.load()
['/models/a.gguf', '/models/b']
"""

from __future__ import annotations

import json
import os
from pathlib import Path

STATE_DIR_ENV = "LLM_ANATOMY_STATE_DIR"
"""Environment variable: the directory for the app's state files (tests point it away)."""

MAX_RECENT = 8
"""How many paths the list keeps (most recent first)."""


def state_dir() -> Path:
    """``$LLM_ANATOMY_STATE_DIR``, else ``$XDG_STATE_HOME/llm-anatomy``, else
    ``~/.local/state/llm-anatomy``."""
    explicit = os.environ.get(STATE_DIR_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "llm-anatomy"


class RecentModels:
    """Paths of recently opened models, most recent first, at most :data:`MAX_RECENT`."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else state_dir() / "recent.json"

    def load(self) -> list[str]:
        """The remembered paths (an empty list if the file is missing or unreadable)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        paths = data.get("models") if isinstance(data, dict) else None
        if not isinstance(paths, list):
            return []
        return [p for p in paths if isinstance(p, str) and p][:MAX_RECENT]

    def add(self, path: str) -> None:
        """Put ``path`` first (once). Silently does nothing if the file cannot be written."""
        paths = [path] + [p for p in self.load() if p != path]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"models": paths[:MAX_RECENT]}, indent=1), encoding="utf-8")
            tmp.replace(self.path)
        except OSError:
            pass


def clean_path(text: str) -> str:
    """A path as typed or pasted: surrounding blanks and quotes, a ``file://`` prefix and
    a trailing newline removed, ``~`` expanded.

    >>> clean_path("  '/tmp/my model.gguf'\\n")
    '/tmp/my model.gguf'
    >>> clean_path("file:///tmp/x.gguf")
    '/tmp/x.gguf'
    """
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    if text.startswith("file://"):
        text = text[len("file://") :]
    return os.path.expanduser(text) if text else ""
