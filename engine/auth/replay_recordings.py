"""Is a recording a copy of an enrolment recording: re-encoded, noised, resampled, sped up or
slowed down?

A new take of the same word by the same speaker shares the enrolment take's formants and rough
timing, but not its exact pitch contour, so its harmonics fall elsewhere; a copy keeps them,
only moved: a playback-rate change scales time and frequency together, a tempo change scales
time alone, a pitch shift frequency alone. So the fingerprint is a log-frequency spectrogram
fine enough to resolve harmonics (on a log-frequency axis a frequency scale is a shift), and the
similarity is the best correlation over time scales, time shifts and frequency shifts:

1. coarse: the probe's spectrogram summed into wide bands is stretched in time by each factor
   of a grid (``_MAX_SCALE`` either way) and correlated with the enrolment take's at every time
   shift at once (FFT cross-correlation and running sums);
2. fine: around the best (time scale, shift) pair, finer time scales and fractional shifts,
   the full-resolution spectrograms are correlated at every frequency shift at once (FFT).

Each band's mean over the aligned frames is removed before correlating, so a gain change (a
constant in dB) and the speaker's average timbre cancel out.

The bound on the similarity and the figures behind it: docs/BENCHMARKS.md, "Replay defence".
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

FORMAT = b"lfs1"
"""Prefix of a stored fingerprint. An older mmauth stored bare float16 log-mel frames with no
prefix; their values are at most 0 dB, so their first bytes never read as this prefix."""
BINS_PER_OCTAVE = 64
_LOWEST_HZ = 100.0
_HIGHEST_HZ = 3800.0
"""Below 4 kHz, so a copy that went through 8 kHz (telephone band, lossy codecs) keeps it all."""
_HOP_S = 0.010
_WINDOW_S = 0.064
"""Long enough to resolve the harmonics of a low voice (spacing down to about 80 Hz)."""
_FLOOR_DB = 40.0
"""The fingerprint keeps this many decibels below the clip's peak: background noise lives
further down."""
_AMIN = 1e-10
N_BINS = int(np.floor(BINS_PER_OCTAVE * np.log2(_HIGHEST_HZ / _LOWEST_HZ))) + 1
_MIN_OVERLAP = 0.8
"""Alignments must overlap by at least this fraction of the shorter clip."""
_MAX_SCALE = 1.07
"""Time and frequency scales searched: 1 / _MAX_SCALE to _MAX_SCALE."""
_COARSE_SCALE_STEP = 0.01
_COARSE_BAND = 12
"""Fine bins per band of the coarse search (about a fifth of an octave)."""
_MAX_BIN_SHIFT = int(np.ceil(BINS_PER_OCTAVE * np.log2(_MAX_SCALE)))
_FINE_SCALE_STEPS = (-0.005, 0.0, 0.005)
_FINE_SHIFT_STEPS = (-0.5, 0.0, 0.5)
"""Frames added to the coarse search's whole-frame shift."""
REFINED_TAKES = 2
"""Enrolment takes, best first by the coarse search, that get the fine search."""


def log_frequency_spectrogram(y: np.ndarray, sr: int) -> np.ndarray:
    """Power spectrogram on a log-frequency axis (``BINS_PER_OCTAVE`` bins per octave from
    100 Hz to 3.8 kHz), in dB below the clip's peak floored at -40 dB, frames x bins, float32."""
    from engine.voices.features import stft_magnitude

    hop = max(1, int(round(_HOP_S * sr)))
    n_fft = int(2 ** np.ceil(np.log2(_WINDOW_S * sr)))
    magnitude = stft_magnitude(
        np.asarray(y, dtype=np.float32), n_fft=n_fft, hop_length=hop, win_length=n_fft
    )
    power = _log_frequency_basis(sr, n_fft) @ np.square(magnitude.astype(np.float64))
    decibels = 10.0 * np.log10(np.maximum(power, _AMIN))
    decibels -= decibels.max()
    return np.maximum(decibels, -_FLOOR_DB).T.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _log_frequency_basis(sr: int, n_fft: int) -> np.ndarray:
    """Triangular filters centred on the log-spaced frequencies, each as wide as the spacing of
    its neighbours (or of the FFT bins, where those are wider), normalised to sum to one: a
    filter that sampled the spectrum at one point would miss harmonics between its points, and
    a copy's shifted harmonics would then not line up."""
    centres = _LOWEST_HZ * 2.0 ** (np.arange(N_BINS) / BINS_PER_OCTAVE)
    resolution = sr / n_fft
    widths = np.maximum(centres * (2.0 ** (1.0 / BINS_PER_OCTAVE) - 1.0), resolution)
    frequencies = np.arange(n_fft // 2 + 1) * resolution
    basis = np.clip(1.0 - np.abs(frequencies - centres[:, None]) / widths[:, None], 0.0, None)
    basis /= basis.sum(axis=1, keepdims=True)
    basis.setflags(write=False)
    return basis


def encode_spectrogram(spectrogram: np.ndarray) -> bytes:
    return FORMAT + np.asarray(spectrogram, dtype=np.float16).tobytes()


def decode_spectrogram(fingerprint: bytes) -> np.ndarray | None:
    """The stored spectrogram (frames x bins, float64), or None for an older mmauth's
    fingerprint (recomputed by the guard's sync)."""
    if not fingerprint.startswith(FORMAT):
        return None
    values = np.frombuffer(fingerprint[len(FORMAT) :], dtype=np.float16)
    return values.reshape(-1, N_BINS).astype(np.float64)


def copy_similarity(probe: np.ndarray, enrolled: np.ndarray) -> float:
    """Best correlation (1.0 = identical) of two log-frequency spectrograms over time scales,
    time shifts and frequency shifts within ``_MAX_SCALE`` (module docstring); 0.0 when they
    cannot be compared (empty, or different frequency axes)."""
    return closest_copy(probe, [enrolled])[0]


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
