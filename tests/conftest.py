"""Shared fixtures: a tiny seeded random model (never presented as trained) and tiktoken's
own encodings, loaded offline from the shipped rank files through tiktoken's cache."""

from __future__ import annotations

import gzip
import hashlib
import os

import numpy as np
import pytest

from llm_anatomy_tui.core.config import LlamaConfig
from llm_anatomy_tui.core.model import Model, init_random
from llm_anatomy_tui.core.tokenizers import RANK_FILES, assets_dir

TINY_CONFIG = LlamaConfig(
    vocab_size=8193,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
)


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir(tmp_path_factory):
    """Tests never read or write the person's recently-opened list."""
    from llm_anatomy_tui.core.recent_models import STATE_DIR_ENV

    old = os.environ.get(STATE_DIR_ENV)
    os.environ[STATE_DIR_ENV] = str(tmp_path_factory.mktemp("state"))
    yield
    if old is None:
        os.environ.pop(STATE_DIR_ENV, None)
    else:
        os.environ[STATE_DIR_ENV] = old


@pytest.fixture(scope="session")
def tiny_config() -> LlamaConfig:
    return TINY_CONFIG


@pytest.fixture(scope="session")
def tiny_model() -> Model:
    """Seeded random weights with the model vocabulary's size: for plumbing and exactness tests."""
    return init_random(TINY_CONFIG, seed=1234, std=0.1, name="tiny-random")


@pytest.fixture(scope="session")
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}


@pytest.fixture(scope="session")
def tiktoken_reference(tmp_path_factory):
    """``tiktoken.get_encoding`` itself — its own constructor, patterns and special tokens —
    fed from a cache directory we fill with the shipped files, so no network is used."""
    import tiktoken

    cache = tmp_path_factory.mktemp("tiktoken_cache")
    for name, spec in RANK_FILES.items():
        with gzip.open(assets_dir() / spec.filename) as fh:
            data = fh.read()
        key = hashlib.sha1(_URLS[name].encode()).hexdigest()
        (cache / key).write_bytes(data)
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    try:
        yield {name: tiktoken.get_encoding(name) for name in _URLS}
    finally:
        if old is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = old
