"""Chapter 10/11 view-models load no UI: imported alone in a fresh interpreter, neither
textual nor rich appears in sys.modules."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["llm_anatomy_tui.views.rope_view", "llm_anatomy_tui.views.block_view"]
)
def test_view_module_imports_no_ui(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
