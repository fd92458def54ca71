"""The numpy core and the view-models never pull in the UI: each ``core`` and ``views``
module, imported alone in a fresh interpreter, leaves ``textual`` and ``rich`` out of
``sys.modules``; and the import-linter contracts declared in ``pyproject.toml`` hold."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import llm_anatomy_tui.core
import llm_anatomy_tui.views

ROOT = Path(__file__).resolve().parents[2]

CORE_MODULES = sorted(
    info.name
    for package in (llm_anatomy_tui.core, llm_anatomy_tui.views)
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
)
"""Every module of ``core`` and ``views`` (and the two packages themselves, below)."""
UI_FREE_MODULES = ["llm_anatomy_tui.core", "llm_anatomy_tui.views", *CORE_MODULES]

CHECK = """
import importlib, sys
importlib.import_module({module!r})
ui = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
print(",".join(ui))
"""


def test_core_modules_found():
    assert "llm_anatomy_tui.core.tokenizers" in CORE_MODULES
    assert "llm_anatomy_tui.core.session" in CORE_MODULES
    assert "llm_anatomy_tui.views.token_pieces" in CORE_MODULES
    assert "llm_anatomy_tui.views.sampling_view" in CORE_MODULES
    assert "llm_anatomy_tui.core.train.trainer" in CORE_MODULES


@pytest.mark.parametrize("module", UI_FREE_MODULES)
def test_core_and_views_modules_import_no_ui(module):
    result = subprocess.run(
        [sys.executable, "-c", CHECK.format(module=module)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"


def test_import_linter_contracts_hold():
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    assert code == 0, "an import-linter contract is broken (run: lint-imports)"
