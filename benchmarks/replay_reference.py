"""The recordings' copy search as it was before it was made cheaper (commit e83a36e, kept as
is): what ``benchmarks.replay --cost`` measures the current search against, and the oracle
tests/engine/test_replay_equality.py holds engine.auth.replay_recordings to. Not used by
mmauth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.auth.replay_recordings import (
    _AMIN,
    _COARSE_BAND,
    _COARSE_SCALE_STEP,
    _FINE_SCALE_STEPS,
    _FINE_SHIFT_STEPS,
    _MAX_BIN_SHIFT,
    _MAX_SCALE,
    _MIN_OVERLAP,
    REFINED_TAKES,
)


def closest_copy(probe: np.ndarray, takes: Sequence[np.ndarray]) -> tuple[float, int]:
    """The highest ``copy_similarity`` of ``probe`` to any of ``takes``, and that take's index
    (0.0 and -1 when none can be compared). Only the ``REFINED_TAKES`` takes the coarse search
    ranks first get the fine search, which costs the most: a copy's own take leads the coarse
    ranking, and the other takes' scores only matter when they are high."""
    probe = np.asarray(probe, dtype=np.float64)
    coarse = []
    for index, take in enumerate(takes):
        take = np.asarray(take, dtype=np.float64)
        if _comparable(probe, take):
            coarse.append((_coarse_alignment(probe, take), index, take))
    coarse.sort(key=lambda entry: entry[0][0], reverse=True)
    best, closest = 0.0, -1
    for (_, scale, shift), index, take in coarse[:REFINED_TAKES]:
        similarity = _refined_similarity(probe, take, scale, shift)
        if similarity > best or closest < 0:
            best, closest = similarity, index
    return best, closest


def _comparable(probe: np.ndarray, take: np.ndarray) -> bool:
    return (
        probe.ndim == 2
        and take.ndim == 2
        and probe.shape[1] == take.shape[1] > 2 * _MAX_BIN_SHIFT
        and min(len(probe), len(take)) >= 2
    )


def _refined_similarity(probe: np.ndarray, take: np.ndarray, scale: float, shift: int) -> float:
    """The fine search around a coarse alignment: finer time scales, fractional frame shifts,
    every whole-bin frequency shift."""
    centre = take[:, _MAX_BIN_SHIFT : take.shape[1] - _MAX_BIN_SHIFT]
    best = 0.0
    for scale_step in _FINE_SCALE_STEPS:
        for shift_step in _FINE_SHIFT_STEPS:
            warped, valid = _warp(probe, scale + scale_step, shift + shift_step, len(take))
            shorter = min(len(take), len(probe) * (scale + scale_step))
            if valid.sum() >= max(2, _MIN_OVERLAP * shorter):
                best = max(best, _best_over_frequency_shifts(centre, warped, valid))
    return best


def _bands(spectrogram: np.ndarray) -> np.ndarray:
    usable = spectrogram.shape[1] // _COARSE_BAND * _COARSE_BAND
    return spectrogram[:, :usable].reshape(len(spectrogram), -1, _COARSE_BAND).mean(axis=2)


def _warp(
    spectrogram: np.ndarray, scale: float, shift: float, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``i`` of ``length`` read from ``spectrogram`` at ``(i - shift) / scale``
    (interpolated), and which of them fall inside it: a probe ``scale`` times longer than the
    enrolment take, starting ``shift`` frames later, lands on the take's frames."""
    frames = len(spectrogram)
    positions = (np.arange(length) - shift) / scale
    valid = (positions >= 0) & (positions <= frames - 1)
    positions = np.clip(positions, 0, frames - 1)
    lower = np.minimum(np.floor(positions).astype(int), max(frames - 2, 0))
    upper = np.minimum(lower + 1, frames - 1)
    weight = (positions - lower)[:, None]
    return (1.0 - weight) * spectrogram[lower] + weight * spectrogram[upper], valid


def _coarse_alignment(probe: np.ndarray, take: np.ndarray) -> tuple[float, float, int]:
    """(correlation, time scale, frame shift) of the best alignment on wide bands: the probe
    stretched by every time scale of the grid (symmetric around 1, so that an unaltered copy is
    aligned exactly) and shifted by every whole frame that keeps ``_MIN_OVERLAP`` of the shorter
    overlapped (shift ``d``: stretched probe frame ``j`` on take frame ``j + d``). All of them at
    once: one FFT cross-correlation for the products and running sums for the means."""
    probe_bands, take_bands = _bands(probe), _bands(take)
    steps = int(np.ceil((_MAX_SCALE - 1.0) / _COARSE_SCALE_STEP))
    scales = 1.0 + _COARSE_SCALE_STEP * np.arange(-steps, steps + 1)
    lengths = np.floor((len(probe) - 1) * scales).astype(int) + 1
    stretched = np.zeros((len(scales), lengths.max(), probe_bands.shape[1]))
    for row, (scale, length) in enumerate(zip(scales, lengths, strict=True)):
        stretched[row, :length] = _warp(probe_bands, float(scale), 0.0, int(length))[0]
    frames = len(take_bands)
    shifts = np.arange(1 - lengths.max(), frames)
    products = _cross_correlation(stretched, take_bands[None], axis=1)[:, shifts]
    start = np.maximum(0, -shifts)[None, :].repeat(len(scales), axis=0)
    end = np.minimum(lengths[:, None], frames - shifts[None, :])
    overlap = end - start
    rows = np.arange(len(scales))[:, None]
    sum_probe, squares_probe = _running_sums(stretched, rows, start, end)
    sum_take, squares_take = _running_sums(take_bands[None], 0, start + shifts, end + shifts)
    length = np.maximum(overlap, 1)[..., None]
    covariance = (products - sum_probe * sum_take / length).sum(axis=2)
    variance_probe = np.clip((squares_probe - sum_probe**2 / length).sum(axis=2), 0.0, None)
    variance_take = np.clip((squares_take - sum_take**2 / length).sum(axis=2), 0.0, None)
    denominator = np.sqrt(variance_probe * variance_take)
    needed = np.ceil(_MIN_OVERLAP * np.minimum(lengths, frames))[:, None]
    usable = (overlap >= np.maximum(needed, 1)) & (denominator > 0)
    correlations = np.where(usable, covariance / np.maximum(denominator, _AMIN), -np.inf)
    best = np.unravel_index(int(np.argmax(correlations)), correlations.shape)
    return float(correlations[best]), float(scales[best[0]]), int(shifts[best[1]])


def _running_sums(
    values: np.ndarray, rows: np.ndarray | int, first: np.ndarray, last: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per band, the sums of ``values[rows]`` and of their squares over frames [first, last);
    ``values`` is (rows, frames, bands), ``first`` and ``last`` any broadcastable indices."""
    zeros = np.zeros((values.shape[0], 1, values.shape[2]))
    running = np.concatenate([zeros, np.cumsum(values, axis=1)], axis=1)
    squares = np.concatenate([zeros, np.cumsum(values * values, axis=1)], axis=1)
    first = np.clip(first, 0, values.shape[1])
    last = np.clip(last, first, values.shape[1])
    return (
        running[rows, last] - running[rows, first],
        squares[rows, last] - squares[rows, first],
    )


def _best_over_frequency_shifts(centre: np.ndarray, warped: np.ndarray, valid: np.ndarray) -> float:
    """Best correlation of the enrolled spectrogram's central bins with the warped probe's bins
    shifted by every whole bin up to the margin, over the valid frames, all shifts at once."""
    enrolled = centre[valid]
    probe = warped[valid]
    enrolled = enrolled - enrolled.mean(axis=0)
    width = enrolled.shape[1]
    shifts = probe.shape[1] - width + 1
    # The enrolled bins have zero mean over the frames, so the probe's means drop out here.
    covariance = _cross_correlation(enrolled, probe, axis=1).sum(axis=0)[:shifts]
    means = probe.mean(axis=0)
    spread = np.concatenate([[0.0], np.cumsum((probe * probe).sum(axis=0) - len(probe) * means**2)])
    variance = np.clip(spread[width:] - spread[:-width], 0.0, None)
    denominator = np.sqrt((enrolled * enrolled).sum() * variance)
    usable = denominator > 0
    if not usable.any():
        return 0.0
    return float(max(0.0, (covariance[usable] / denominator[usable]).max()))


def _cross_correlation(first: np.ndarray, second: np.ndarray, axis: int) -> np.ndarray:
    """``sum_i first[i] * second[i + d]`` along ``axis`` for every lag ``d`` (negative lags at
    the end, numpy-index style), by FFT: one product per lag would cost far more per attempt."""
    size = 1 << int(first.shape[axis] + second.shape[axis] - 1).bit_length()
    spectrum = np.conj(np.fft.rfft(first, size, axis=axis)) * np.fft.rfft(second, size, axis=axis)
    return np.fft.irfft(spectrum, size, axis=axis)
