"""Dynamic time warping of MFCC sequences, the voice model's phrase evidence.

The recursion runs in numpy, one anti-diagonal of the cost grid at a time for many pairs of
sequences at once (the cells of an anti-diagonal depend only on the two before it), so that no
compiler is imported: numba's import alone cost a cold login more than the DTW itself. Figures
in docs/BENCHMARKS.md, "Cold and warm login".
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from engine.core.errors import InputError
from engine.models._calibration import EPSILON

PAIRS_PER_BATCH = 256
"""Pairs swept together: enough to amortise numpy's per-call cost, few enough that the
(frames x frames x pairs) distance array stays within tens of MiB."""


def frame_scaling(sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient mean and scale of every frame of ``sequences``, to scale sequences by
    before the DTW: it keeps c0 (loudness) from dominating the frame distances. The scale is
    floored at EPSILON, so that a constant coefficient does not divide by zero."""
    frames = np.vstack(sequences)
    return frames.mean(axis=0), np.maximum(frames.std(axis=0), EPSILON)


def dtw_cost(query: np.ndarray, reference: np.ndarray) -> float:
    """Dynamic time warping cost of two frame sequences (frames x coefficients): the summed
    euclidean frame distances along the best path divided by the path's length, so that long and
    short phrases are comparable."""
    return float(dtw_costs([query], [reference])[0, 0])


def dtw_costs(queries: Sequence[np.ndarray], references: Sequence[np.ndarray]) -> np.ndarray:
    """``dtw_cost`` of every query against every reference, shape (n_queries, n_references).

    Ties between predecessors go to the diagonal, then the cell above, then the cell to the left.
    """
    checked_queries = [_check_sequence(q) for q in queries]
    checked_references = [_check_sequence(r) for r in references]
    widths = {s.shape[1] for s in checked_queries + checked_references}
    if len(widths) > 1:
        raise InputError(
            "MFCC sequences must be frames x coefficients with equal coefficients, "
            f"not widths {sorted(widths)}"
        )
    # One matrix product per query against every reference at once; the pairs' distance
    # matrices are its column blocks.
    bounds = np.cumsum([0] + [len(r) for r in checked_references])
    stacked = np.concatenate(checked_references)
    stacked_norms = np.sum(stacked**2, axis=1)
    distances = []
    for query in checked_queries:
        squared = (
            np.sum(query**2, axis=1)[:, None] + stacked_norms[None, :] - 2.0 * query @ stacked.T
        )
        block = np.sqrt(np.maximum(squared, 0.0))
        distances += [block[:, a:b] for a, b in itertools.pairwise(bounds)]
    costs = np.concatenate(
        [
            _sweep(distances[start : start + PAIRS_PER_BATCH])
            for start in range(0, len(distances), PAIRS_PER_BATCH)
        ]
    )
    return costs.reshape(len(checked_queries), len(checked_references))


def _check_sequence(sequence: np.ndarray) -> np.ndarray:
    checked = np.ascontiguousarray(sequence, dtype=np.float64)
    if checked.ndim != 2:
        raise InputError(f"an MFCC sequence must be frames x coefficients, not {checked.shape}")
    if len(checked) == 0:
        raise InputError("an MFCC sequence has no frames")
    return checked


def _sweep(distances: list[np.ndarray]) -> np.ndarray:
    """Normalised DTW cost of each pair from its (query frames x reference frames) distances,
    all pairs in one sweep.

    Cell (i, j) of the (rows + 1) x (columns + 1) grid lies on anti-diagonal d = i + j; the
    state (total cost, path length) of three diagonals is kept, indexed by i, with the pairs
    along the last axis. Smaller grids are padded: padded cells come after a pair's last cell in
    every direction, so they never feed it.
    """
    query_rows = np.array([d.shape[0] for d in distances])
    reference_rows = np.array([d.shape[1] for d in distances])
    rows, columns, n_pairs = int(query_rows.max()), int(reference_rows.max()), len(distances)
    # What a cell adds to (total, length): its distance and one step. Pairs last, so that the
    # cells of a diagonal are contiguous rows.
    steps = np.ones((2, rows, columns, n_pairs))
    steps[0] = 0.0
    for pair, block in enumerate(distances):
        steps[0, : block.shape[0], : block.shape[1], pair] = block
    state = np.zeros((3, 2, rows + 1, n_pairs))
    state[:, 0] = np.inf
    state[0, 0, 0] = 0.0  # diagonal 0: the corner cell (0, 0)
    ends = query_rows + reference_rows
    finishing = {int(end): np.flatnonzero(ends == end) for end in np.unique(ends)}
    costs = np.empty(n_pairs)
    for diagonal in range(2, rows + columns + 1):
        current, previous, before = diagonal % 3, (diagonal - 1) % 3, (diagonal - 2) % 3
        low, high = max(1, diagonal - columns), min(rows, diagonal - 1) + 1
        cells = np.arange(low, high)
        corner = state[before, :, low - 1 : high - 1]
        up, left = state[previous, :, low - 1 : high - 1], state[previous, :, low:high]
        best = np.where(corner[0] <= up[0], corner, up)
        chosen = np.where(best[0] <= left[0], best, left)
        state[current, 0] = np.inf
        np.add(chosen, steps[:, cells - 1, diagonal - cells - 1], out=state[current, :, low:high])
        finished = finishing.get(diagonal)
        if finished is not None:
            total, length = state[current, :, query_rows[finished], finished].T
            costs[finished] = total / length
    return costs
