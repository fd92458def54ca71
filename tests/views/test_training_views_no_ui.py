"""Chapters 12-13's view-models import no UI: each, alone in a fresh interpreter, leaves
``textual`` and ``rich`` out of ``sys.modules``."""

from __future__ import annotations

import subprocess
import sys

import pytest

MODULES = [
    "llm_anatomy_tui.views.training_phases",
    "llm_anatomy_tui.views.training_text",
    "llm_anatomy_tui.views.live_training",
    "llm_anatomy_tui.views.preference",
    "llm_anatomy_tui.views.preference_text",
]

CHECK = """
import importlib, sys
importlib.import_module({module!r})
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))))
"""


@pytest.mark.parametrize("module", MODULES)
def test_view_module_imports_no_ui(module):
    result = subprocess.run(
        [sys.executable, "-c", CHECK.format(module=module)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"
