"""Tampered, missing and oversized files (issue 15): each refused with one line that names
the file and the fix, before anything large is allocated."""

from __future__ import annotations

import json
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from llm_anatomy_tui.core import evaluate, integrity
from llm_anatomy_tui.core.config import ConfigError, LlamaConfig
from llm_anatomy_tui.core.model import ModelLoadError, default_model_dir, init_random, load_model
from llm_anatomy_tui.core.ops import rope_cos_sin
from llm_anatomy_tui.core.session import Session, Status

SMALL = dict(
    vocab_size=64,
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=1,
    max_position_embeddings=64,
)


def test_the_manifest_matches_the_shipped_files() -> None:
    """Fails after retraining until ``python -m llm_anatomy_tui.core.integrity --write``."""
    assert integrity.problems() == []


@pytest.fixture
def assets_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped assets that the integrity check (and the session) treat as
    the installed package's."""
    root = tmp_path / "assets"
    src = integrity.assets_dir()
    (root / "models").mkdir(parents=True)
    shutil.copytree(src / "models" / "anatomy-mini", root / "models" / "anatomy-mini")
    shutil.copytree(src / "eval", root / "eval")
    shutil.copy(src / integrity.MANIFEST_FILE, root / integrity.MANIFEST_FILE)
    monkeypatch.setattr(integrity, "assets_dir", lambda: root)
    monkeypatch.setattr(
        evaluate, "eval_stories_path", lambda: root / "eval" / evaluate.EVAL_STORIES_FILE
    )
    return root


def _flip_bit(path: Path, offset_from_end: int = 1000) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x40  # an exponent bit of some float32
    path.write_bytes(bytes(data))


def _model_state(root: Path) -> tuple[Status, str]:
    s = Session("hi", model_dir=root / "models" / "anatomy-mini")
    s.load_model()
    return s.model_state.status, s.model_state.message


def test_flipped_bit_in_shipped_weights_is_refused_with_the_fix(assets_copy: Path) -> None:
    assert _model_state(assets_copy)[0] is Status.READY  # the untouched copy loads
    _flip_bit(assets_copy / "models" / "anatomy-mini" / "model.safetensors")
    status, message = _model_state(assets_copy)
    assert status is Status.FAILED
    assert "\n" not in message
    assert "model.safetensors" in message
    assert "reinstall llm-anatomy" in message and "LLM_ANATOMY_MODEL" in message


def test_deleted_config_json_says_reinstall(assets_copy: Path) -> None:
    (assets_copy / "models" / "anatomy-mini" / "config.json").unlink()
    status, message = _model_state(assets_copy)
    assert status is Status.FAILED
    assert "config.json" in message and "reinstall llm-anatomy" in message
    assert "trained separately" not in message


def test_tampered_eval_text_is_refused(assets_copy: Path) -> None:
    path = assets_copy / "eval" / evaluate.EVAL_STORIES_FILE
    path.write_text(path.read_text() + "extra", encoding="utf-8")
    with pytest.raises(evaluate.EvalDataError, match="tinystories_valid_first50.txt.*reinstall"):
        evaluate.load_eval_stories()


def test_a_broken_user_model_names_the_file_and_the_fix(tmp_path: Path) -> None:
    model_dir = tmp_path / "mine"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{not json", encoding="utf-8")
    s = Session("hi", model_dir=model_dir)
    s.load_model()
    assert s.model_state.status is Status.FAILED
    assert "config.json" in s.model_state.message
    assert "LLM_ANATOMY_MODEL" in s.model_state.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_position_embeddings", 1_000_000_000),
        ("vocab_size", 10**12),
        ("hidden_size", 1 << 40),
        ("num_hidden_layers", 10**9),
        ("rope_theta", float("inf")),
    ],
)
def test_config_sizes_are_bounded_before_any_allocation(field: str, value: object) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match=field):
            LlamaConfig(**{**SMALL, field: value})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # nothing sized by the value was built


def test_huge_window_loads_from_disk_without_allocating_it(tmp_path: Path) -> None:
    """A real model directory whose config claims 1e9 positions: refused fast, small."""
    model_dir = tmp_path / "big-window"
    shutil.copytree(default_model_dir(), model_dir)
    raw = json.loads((model_dir / "config.json").read_text())
    raw["max_position_embeddings"] = 1_000_000_000
    (model_dir / "config.json").write_text(json.dumps(raw))
    tracemalloc.start()
    try:
        with pytest.raises(ModelLoadError, match="max_position_embeddings.*1,000,000,000"):
            load_model(model_dir)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def test_rope_tables_cover_only_positions_used() -> None:
    cfg = LlamaConfig(**{**SMALL, "max_position_embeddings": 1 << 22})  # 4M positions
    tracemalloc.start()
    try:
        model = init_random(cfg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # a full table would be 4M x 8 x 2 x 4 bytes = 256 MB
    # ... and the tables grow on demand, equal to the full formula
    positions = np.array([0, 5, 300, 70_000])
    cos, sin = model.rope_tables(positions)
    ref_cos, ref_sin = rope_cos_sin(positions, cfg.dim_head, cfg.rope_theta)
    np.testing.assert_allclose(cos, ref_cos, rtol=0, atol=1e-6)
    np.testing.assert_allclose(sin, ref_sin, rtol=0, atol=1e-6)


def test_rank_tables_are_released_after_loading_and_encodings_still_work() -> None:
    from llm_anatomy_tui.core import tokenizers

    s = Session("héllo wörld 🦙")
    s.load_tokenizers()
    assert tokenizers._ranks.cache_info().currsize == 0  # the ~40 MB of dicts are gone
    for name in ("o200k_base", "cl100k_base", "model"):
        enc = s.encoding(name)
        ids = enc.encode_ordinary(s.prompt)
        assert enc.decode(ids) == s.prompt
        assert b"".join(enc.decode_single_token_bytes(t) for t in ids) == s.prompt.encode()
