"""Dynamic time warping of MFCC sequences, the voice model's phrase evidence; the inner loop is
compiled by numba once per installation (its on-disk cache)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.core.errors import InputError


def dtw_cost(query: np.ndarray, reference: np.ndarray) -> float:
    """Dynamic time warping cost of two frame sequences (frames x coefficients): the summed
    euclidean frame distances along the best path divided by the path's length, so that long and
    short phrases are comparable."""
    query = np.ascontiguousarray(query, dtype=np.float64)
    reference = np.ascontiguousarray(reference, dtype=np.float64)
    if query.ndim != 2 or reference.ndim != 2 or query.shape[1] != reference.shape[1]:
        raise InputError(
            f"MFCC sequences must be frames x coefficients with equal coefficients, "
            f"not {query.shape} and {reference.shape}"
        )
    if len(query) == 0 or len(reference) == 0:
        raise InputError("an MFCC sequence has no frames")
    squared = (
        np.sum(query**2, axis=1)[:, None]
        + np.sum(reference**2, axis=1)[None, :]
        - 2.0 * query @ reference.T
    )
    return float(_dtw_normalised(np.sqrt(np.maximum(squared, 0.0))))


def _dtw_normalised_python(cost: np.ndarray) -> float:
    rows, columns = cost.shape
    total = np.full((rows + 1, columns + 1), np.inf)
    length = np.zeros((rows + 1, columns + 1))
    total[0, 0] = 0.0
    for i in range(1, rows + 1):
        for j in range(1, columns + 1):
            diagonal, up, left = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
            if diagonal <= up and diagonal <= left:
                total[i, j], length[i, j] = diagonal, length[i - 1, j - 1]
            elif up <= left:
                total[i, j], length[i, j] = up, length[i - 1, j]
            else:
                total[i, j], length[i, j] = left, length[i, j - 1]
            total[i, j] += cost[i - 1, j - 1]
            length[i, j] += 1.0
    return total[rows, columns] / length[rows, columns]


def _compile_dtw() -> Any:
    # numba ships with librosa; the compiled loop is ~100x faster than the Python one, which
    # matters because every verification runs a DTW per enrolled take of the claimed member.
    try:
        import numba
    except ImportError:  # pragma: no cover - librosa always brings numba
        return _dtw_normalised_python
    return numba.njit(cache=True, nogil=True)(_dtw_normalised_python)


_dtw_normalised = _compile_dtw()
