"""Torch's legacy checkpoint format read without torch, and without running the file's code.

Resemblyzer ships its GE2E speaker encoder (engine.voices.embedding) as such a checkpoint:
consecutive pickles (magic number, protocol version, system info, the object, the storage
keys), then each storage as a little-endian int64 element count and its raw bytes. The object's
tensors are persistent-id references to those storages. A restricted unpickler maps only the few
globals a state dict needs to numpy builders and refuses everything else.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from collections import OrderedDict
from typing import Any

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_TYPES = {"FloatStorage": np.dtype("<f4")}


@dataclasses.dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype[Any]


@dataclasses.dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: _StorageRef, offset: int, shape: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> _TensorRef:
    return _TensorRef(storage, offset, tuple(shape), tuple(stride))


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles a state dict of float tensors and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_TYPES:
            return name
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        raise pickle.UnpicklingError(f"refusing {module}.{name}")

    def persistent_load(self, pid: Any) -> _StorageRef:
        kind, storage_type, key, _location, _size, view = pid
        if kind != "storage" or view is not None or storage_type not in STORAGE_TYPES:
            raise pickle.UnpicklingError(f"unsupported storage reference {pid!r}")
        return _StorageRef(str(key), STORAGE_TYPES[storage_type])


def read_legacy_checkpoint(data: bytes) -> dict[str, Any]:
    """The checkpoint's object with every tensor as a numpy array (copied, contiguous)."""
    stream = io.BytesIO(data)

    def load() -> Any:
        return _StateDictUnpickler(stream).load()

    if load() != LEGACY_MAGIC:
        raise pickle.UnpicklingError("not a legacy torch checkpoint")
    load()  # protocol version
    if not load().get("little_endian", False):
        raise pickle.UnpicklingError("big-endian checkpoint")
    checkpoint = load()
    storages: dict[str, np.ndarray] = {}
    for key in load():
        count = int(np.frombuffer(stream.read(8), "<i8")[0])
        storages[str(key)] = np.frombuffer(stream.read(count * 4), "<f4")

    def build(value: Any) -> Any:
        if isinstance(value, _TensorRef):
            flat = storages[value.storage.key][value.offset :]
            strides = tuple(s * flat.itemsize for s in value.stride)
            view = np.lib.stride_tricks.as_strided(flat, value.shape, strides, writeable=False)
            return np.array(view, dtype=np.float32)
        if isinstance(value, dict):
            return {k: build(v) for k, v in value.items()}
        return value

    return {k: build(v) for k, v in checkpoint.items()}
