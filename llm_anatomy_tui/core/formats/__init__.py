"""Reading and writing model files: Hugging Face directories and GGUF files.

:func:`load_model` opens either, :func:`open_model` does the same for a person (checks
the memory first, and insists on a tokenizer that matches the vocabulary), and
:func:`save_model` writes a directory the way ``transformers`` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError, LlamaConfig
from ..weights import Model, ModelLoadError
from .memory import MemoryEstimate, check_memory, estimate_memory
from .safetensors_dir import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    WEIGHTS_INDEX_FILE,
    read_directory_tensors,
    read_safetensors,
)
from .source import ModelSource

__all__ = [
    "CONFIG_FILE", "DEFAULT_MODEL_NAME", "WEIGHTS_FILE", "WEIGHTS_INDEX_FILE",
    "MemoryEstimate", "ModelLoadError", "ModelSource", "check_memory", "default_model_dir",
    "estimate_memory", "load_model", "load_tokenizer", "open_model", "read_config",
    "read_safetensors", "require_tokenizer", "save_model",
]  # fmt: skip

DEFAULT_MODEL_NAME = "anatomy-mini"


def default_model_dir() -> Path:
    """Where the shipped, trained default model lives inside the installed package."""
    from importlib import resources

    return Path(str(resources.files("llm_anatomy_tui") / "assets" / "models" / DEFAULT_MODEL_NAME))


def read_config(path: str | Path) -> LlamaConfig:
    """The config of a model directory or GGUF file, without reading any weights."""
    path = Path(path)
    if path.is_file():
        from .gguf_file import read_gguf_config

        return read_gguf_config(path)
    if not path.is_dir():
        raise _not_found(path)
    try:
        return LlamaConfig.load(path / CONFIG_FILE)
    except ConfigError as exc:
        raise ModelLoadError(f"{path / CONFIG_FILE}: {exc}") from None


def _not_found(path: Path) -> ModelLoadError:
    if path.suffix.lower() == ".gguf":
        return ModelLoadError(f"model file not found: {path}")
    return ModelLoadError(f"model directory not found: {path}")


def load_model(path: str | Path, progress: Callable[[float], None] | None = None) -> Model:
    """Load a model directory (``config.json`` + ``model.safetensors`` or a sharded index)
    or a ``.gguf`` file. The model's own tokenizer (``tokenizer.json``, or the vocabulary
    a GGUF embeds) is attached as ``model.tokenizer`` when there is one. ``progress``
    (fraction done, 0..1) is called from the loading thread as the weights are read."""
    path = Path(path)
    if path.is_file():
        from .gguf_file import load_gguf

        return load_gguf(path, progress=progress)
    if not path.is_dir():
        raise _not_found(path)
    if not (path / CONFIG_FILE).exists() and any(path.glob("*.gguf")):
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        raise ModelLoadError(f"{path} has no config.json; open the GGUF file itself: {ggufs[0]}")
    config = read_config(path)
    types: dict[str, str] = {}
    tensors = read_directory_tensors(path, types, progress)
    from ..model_tokenizer import load_directory_tokenizer

    tokenizer = load_directory_tokenizer(path, config)
    notes = ()
    if config.trained_context is not None:
        notes = (
            f"context cut from {config.trained_context:,} to "
            f"{config.max_position_embeddings:,} tokens",
        )
    source = ModelSource(
        path=path,
        format="safetensors",
        architecture=_family(config),
        display_name=path.name,
        tensor_types={k: v for k, v in types.items() if k in tensors},
        tokenizer=tokenizer.description if tokenizer is not None else "built-in (anatomy-mini)",
        chat_template=tokenizer.chat_template if tokenizer is not None else None,
        notes=notes,
    )
    model = Model.from_tensors(
        config, tensors, name=path.name, consume=True, tokenizer=tokenizer, source=source
    )
    if progress is not None:
        progress(1.0)
    return model


def open_model(path: str | Path, progress: Callable[[float], None] | None = None) -> Model:
    """:func:`load_model` for a person: refuse a model that cannot fit in memory (with the
    numbers) before reading its weights, and one whose tokenizer cannot be found."""
    path = Path(path)
    if path.is_file():
        from .gguf_file import load_gguf

        model = load_gguf(
            path,
            check=lambda config: check_memory(estimate_memory(config, path)),
            progress=progress,
        )
    else:
        check_memory(estimate_memory(read_config(path), path))
        model = load_model(path, progress)
    require_tokenizer(model)
    return model


def load_tokenizer(path: str | Path) -> Any:
    """Only the tokenizer of a model directory or GGUF file (no weights are read):
    its own, or the built-in vocabulary for a directory of exactly its size."""
    path = Path(path)
    config = read_config(path)
    if path.is_file():
        from .gguf_file import _reader, _tokenizer

        return _tokenizer(_reader(path), config, path)
    from ..model_tokenizer import load_directory_tokenizer
    from ..tokenizers import MODEL_VOCAB_SIZE, load_encoding

    tok = load_directory_tokenizer(path, config)
    if tok is not None:
        return tok
    if config.vocab_size != MODEL_VOCAB_SIZE:
        raise ModelLoadError(
            f"{path} has no tokenizer.json, and its vocabulary ({config.vocab_size:,} "
            f"tokens) is not the built-in one ({MODEL_VOCAB_SIZE:,})"
        )
    return load_encoding("model")


def require_tokenizer(model: Model) -> None:
    """A model needs its own tokenizer, or the built-in vocabulary's exact size."""
    from ..tokenizers import MODEL_VOCAB_SIZE

    if model.tokenizer is None and model.config.vocab_size != MODEL_VOCAB_SIZE:
        where = model.source.path if model.source is not None else model.name
        raise ModelLoadError(
            f"{where} has no tokenizer.json, and its vocabulary ({model.config.vocab_size:,} "
            f"tokens) is not the built-in one ({MODEL_VOCAB_SIZE:,})"
        )


def _family(config: LlamaConfig) -> str:
    from ..config import FAMILIES

    return FAMILIES[config.model_type]


def save_model(model: Model, path: str | Path, dtype: str = "float32") -> None:
    """Write ``config.json`` + ``model.safetensors`` the way ``transformers`` does."""
    from safetensors.numpy import save_file

    np_dtype = {"float32": np.float32, "float16": np.float16}.get(dtype)
    if np_dtype is None:
        raise ValueError(f"cannot save as {dtype!r}; choose float32 or float16")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    cfg_dict = model.config.to_dict() | {"torch_dtype": dtype}
    (path / CONFIG_FILE).write_text(json.dumps(cfg_dict, indent=2) + "\n", encoding="utf-8")
    arrays = {k: np.ascontiguousarray(v, dtype=np_dtype) for k, v in model.tensors().items()}
    tmp = path / (WEIGHTS_FILE + ".tmp")
    save_file(arrays, str(tmp), metadata={"format": "pt"})
    tmp.replace(path / WEIGHTS_FILE)
