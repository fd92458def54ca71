"""Hugging Face model directories: ``config.json`` + ``model.safetensors`` (or shards).

Tensors are read with the ``safetensors`` package's own memory-mapped reader
(``safe_open``). One exception, forced by numpy: it has no bfloat16, so ``safe_open``
cannot return a BF16 tensor as a numpy array. BF16 tensors are therefore read from a
``numpy.memmap`` of the file at the offsets its (documented, JSON) header gives, and
widened to float32 by a 16-bit shift — exact, since bfloat16 is the top half of a float32.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..weights import ModelLoadError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "F64": np.float64}


def read_safetensors(path: Path, types: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """Read a .safetensors file into float32 arrays (F32, F16, BF16 and F64 supported).

    ``types``, if given, receives each tensor's dtype in the file.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    header = _header(path)
    for key, info in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise ModelLoadError(f"{path.name} is not a valid safetensors file (entry {key})")
        if info.get("dtype") not in _DTYPES:
            raise ModelLoadError(
                f"tensor {key} in {path.name} has dtype {info.get('dtype')}; "
                "supported: F32, F16, BF16, F64"
            )
        if types is not None:
            types[key] = info["dtype"]
    out: dict[str, np.ndarray] = {}
    bf16 = [k for k, info in header.items() if k != "__metadata__" and info["dtype"] == "BF16"]
    if bf16:
        out.update(_read_bf16(path, header, bf16))
    rest = [k for k in header if k != "__metadata__" and k not in out]
    if rest:
        try:
            with safe_open(str(path), framework="numpy") as fh:
                for key in rest:
                    out[key] = fh.get_tensor(key).astype(np.float32, copy=False)
        except (SafetensorError, OSError, ValueError, TypeError) as exc:
            raise ModelLoadError(f"{path.name} is not a valid safetensors file: {exc}") from None
    return out


def _header(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) != 8:
                raise ModelLoadError(f"{path.name} is truncated (no safetensors header)")
            (size,) = struct.unpack("<Q", head)
            if size > 100_000_000:
                raise ModelLoadError(
                    f"{path.name} is not a valid safetensors file (header size {size})"
                )
            try:
                header = json.loads(fh.read(size))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ModelLoadError(
                    f"{path.name} is not a valid safetensors file (bad header)"
                ) from None
    except FileNotFoundError:
        raise ModelLoadError(f"no {path.name} in {path.parent}") from None
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path.name} is not a valid safetensors file (bad header)")
    return header


def _read_bf16(path: Path, header: dict, keys: list[str]) -> dict[str, np.ndarray]:
    size = path.stat().st_size
    base = 8 + struct.unpack("<Q", path.open("rb").read(8))[0]
    blob = np.memmap(path, dtype=np.uint8, mode="r") if size > 0 else np.zeros(0, np.uint8)
    out = {}
    for key in keys:
        info = header[key]
        try:
            start, end = (int(o) for o in info["data_offsets"])
            shape = [int(n) for n in info["shape"]]
            if not 0 <= start <= end or base + end > size or end - start != 2 * int(np.prod(shape)):
                raise ValueError("offsets out of range")
            raw = blob[base + start : base + end].view("<u2")
        except (KeyError, TypeError, ValueError):
            raise ModelLoadError(
                f"tensor {key} in {path.name} is malformed or truncated "
                "(its data does not match its dtype, shape and offsets)"
            ) from None
        # bfloat16 is the top half of a float32: shift the 16 bits up, reinterpret.
        out[key] = (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return out


def read_directory_tensors(
    path: Path, types: dict[str, str], progress: Callable[[float], None] | None = None
) -> dict[str, np.ndarray]:
    """Every tensor of a model directory: one ``model.safetensors`` or the shards its
    ``model.safetensors.index.json`` lists (each tensor checked against its shard).
    ``progress(fraction)`` is called after each file (0 → 0.9)."""
    index = path / WEIGHTS_INDEX_FILE
    if (path / WEIGHTS_FILE).exists() or not index.exists():
        out = read_safetensors(path / WEIGHTS_FILE, types)
        if progress is not None:
            progress(0.9)
        return out
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise ModelLoadError(f"cannot read {index}: {exc}") from None
    tensors: dict[str, np.ndarray] = {}
    for i, shard in enumerate(shards):
        if Path(shard).name != shard:
            raise ModelLoadError(f"{index.name} names a shard outside the directory: {shard}")
        tensors.update(read_safetensors(path / shard, types))
        if progress is not None:
            progress(0.9 * (i + 1) / len(shards))
    missing = sorted(k for k in weight_map if k not in tensors)
    if missing:
        raise ModelLoadError(f"{index.name} lists tensor {missing[0]}, but no shard holds it")
    return tensors
