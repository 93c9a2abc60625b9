"""Module-level per-file functions for the batch tests (worker processes import them by name)."""

from pathlib import Path
from typing import Any

import numpy as np

from engine.core.batch import ItemOutput
from engine.core.errors import InputError


def count_bytes(path: Path, params: dict[str, Any]) -> ItemOutput:
    data = path.read_bytes()
    if data.startswith(b"bad"):
        raise InputError("starts with 'bad'", path=path.name)
    if data.startswith(b"crash"):
        raise ZeroDivisionError("crash inside a decoder")
    value = float(len(data) * params["scale"])
    return ItemOutput(
        records=[{"augmentation": "original"}],
        features=np.array([[value, value + 1]]),
        sequences=[np.arange(len(data), dtype=np.float32)],
    )
