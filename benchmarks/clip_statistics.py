"""The clip statistics: the voice model's speaker features before the speaker embedding.

Every frame-level feature of a clip (MFCC and its deltas, centroid, bandwidth, roll-off,
flatness, contrast, RMS energy, zero-crossing rate, F0) from the product's one STFT per clip
(engine.voices.features), F0 from the same power spectrum (Wiener-Khinchin: the inverse
transform of a frame's power spectrum is its autocorrelation), and ``summarise``, their mean
and standard deviation over frames plus F0 statistics: 151 values per clip at 20 MFCC.

The product no longer computes them: the voice model's speaker evidence became the pretrained
speaker embedding (engine.voices.embedding), which separated FSDD's speakers across sessions
far better than a logistic regression on these statistics (docs/BENCHMARKS.md, section "Voice
factor"). They live here as the baseline the benchmarks still compare against:
benchmarks.voices times them against librosa.feature.mfcc alone (docs/BENCHMARKS.md, "Voice
features"), and the classical alternatives of benchmarks.voice_designs are built on them.

The functions are pure and follow librosa's conventions (``y``, ``sr``, ``S``, ``n_fft``,
``hop_length``, ``win_length``; shapes ``(n_bins, n_frames)``); they agree with
librosa.feature's own functions on the same frames (tests/test_clip_statistics_benchmark.py).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from engine.voices.features import (
    AMIN,
    FrameConfig,
    mfcc,
    padded_window,
    power_to_db,
    stft_magnitude,
)

ROLL_PERCENT = 0.85
CONTRAST_FMIN = 200.0
CONTRAST_MAX_BANDS = 6
F0_MIN_HZ = 70.0
F0_MAX_HZ = 400.0
F0_BAND_HZ = 2000.0
"""F0 is searched in the autocorrelation of the spectrum below this frequency (the harmonics
that carry the pitch), which is also a 4x decimated, 4x cheaper inverse transform."""
VOICING_THRESHOLD = 0.45
"""Normalised autocorrelation a frame needs to count as voiced (Boersma 1993, Praat's default)."""
OCTAVE_TOLERANCE = 0.95
"""The shortest-lag peak reaching this fraction of the highest peak is the period, against
period-doubling errors; chosen against pyin on FSDD clips (docs/BENCHMARKS.md, "Voice
features")."""
VOICED_TOP_DB = 35.0
"""Frames this far below the loudest are not considered for F0."""


@dataclasses.dataclass(frozen=True)
class FrameFeatures:
    """Frame-level features of one clip; each array has one column per frame."""

    mfcc: np.ndarray
    """(n_mfcc, T) cepstral coefficients."""
    delta: np.ndarray
    """(n_mfcc, T) first derivative of ``mfcc`` (librosa.feature.delta)."""
    delta2: np.ndarray
    """(n_mfcc, T) second derivative."""
    spectral: np.ndarray
    """(6, T) centroid (Hz), bandwidth (Hz), roll-off (Hz), flatness, RMS, zero-crossing rate."""
    contrast: np.ndarray
    """(n_bands + 1, T) spectral contrast in dB."""
    f0: np.ndarray
    """(T,) fundamental frequency in Hz, NaN in unvoiced frames."""


SPECTRAL_NAMES = ("centroid", "bandwidth", "rolloff", "flatness", "rms", "zcr")


@functools.lru_cache(maxsize=16)
def _bin_frequencies(sr: int, n_bins: int) -> np.ndarray:
    freq = np.linspace(0.0, sr / 2.0, n_bins)
    freq.setflags(write=False)
    return freq


def spectral_shape(*, S: np.ndarray, sr: int, n_fft: int) -> np.ndarray:
    """(5, T): centroid, bandwidth (p=2), 85% roll-off (all Hz), flatness and RMS of ``S``.

    The same definitions as librosa.feature.spectral_centroid / _bandwidth / _rolloff /
    spectral_flatness / rms(S=...), in one pass over the spectrogram.
    """
    freq = _bin_frequencies(sr, S.shape[-2])
    # Summing along each frame's own bins (contiguous in the frame-major STFT) is 40% faster.
    cumulative = np.cumsum(S.T, axis=-1).T
    total = np.maximum(cumulative[-1].astype(np.float64), np.finfo(np.float32).tiny)
    centroid = freq @ S / total
    # sum(w * (f - c)^2) with weights w summing to one is sum(w * f^2) - c^2.
    variance = np.square(freq) @ S / total - np.square(centroid)
    bandwidth = np.sqrt(np.maximum(variance, 0.0))
    rolloff = freq[np.argmax(cumulative >= ROLL_PERCENT * cumulative[-1], axis=-2)]
    power = np.maximum(np.square(S), AMIN)
    power_mean = power.mean(axis=-2, dtype=np.float64)
    flatness = np.exp(np.log(power).mean(axis=-2, dtype=np.float64)) / power_mean
    # librosa.feature.rms(S=...): Parseval with the DC and Nyquist bins counted once.
    edges = 0.5 * (np.square(S[0]) + (np.square(S[-1]) if n_fft % 2 == 0 else 0.0))
    rms = np.sqrt(np.maximum(2.0 * (power_mean * len(power) - edges) / n_fft**2, 0.0))
    return np.stack([centroid, bandwidth, rolloff, flatness, rms])


def contrast_bands(sr: int) -> int:
    """Octave bands above CONTRAST_FMIN that fit under Nyquist (6 at 16 kHz)."""
    return min(CONTRAST_MAX_BANDS, math.ceil(math.log2(sr / (2.0 * CONTRAST_FMIN))))


def spectral_contrast(*, S: np.ndarray, sr: int, n_fft: int, quantile: float = 0.02) -> np.ndarray:
    """Octave-band spectral contrast in dB (n_bands + 1, T): librosa.feature.spectral_contrast's
    definition (band edges, quantiles, dB floor) with fmin = CONTRAST_FMIN."""
    bands = _contrast_band_slices(sr, S.shape[-2], quantile)
    peaks = np.empty((len(bands), S.shape[-1]), dtype=np.float64)
    valleys = np.empty_like(peaks)
    for k, (start, stop, count) in enumerate(bands):
        band = S[start:stop]
        if count == 1:
            valleys[k], peaks[k] = band.min(axis=-2), band.max(axis=-2)
        else:
            # Only the `count` smallest and largest bins matter: a partition, not a sort.
            band = np.partition(band, (count - 1, len(band) - count), axis=-2)
            valleys[k] = band[:count].sum(axis=-2) / count
            peaks[k] = band[-count:].sum(axis=-2) / count
    return power_to_db(peaks) - power_to_db(valleys)


@functools.lru_cache(maxsize=16)
def _contrast_band_slices(
    sr: int, n_bins: int, quantile: float
) -> tuple[tuple[int, int, int], ...]:
    """(first bin, stop bin, quantile count) of each contrast band, as librosa delimits them."""
    n_bands = contrast_bands(sr)
    freq = _bin_frequencies(sr, n_bins)
    edges = np.zeros(n_bands + 2)
    edges[1:] = CONTRAST_FMIN * 2.0 ** np.arange(n_bands + 1)
    slices = []
    for k, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        inside = np.flatnonzero((freq >= low) & (freq <= high))
        # librosa widens each band by the bin below it and lets the top band run to Nyquist,
        # then drops the top bin of every other band; the quantile counts the widened band.
        first = int(inside[0]) - 1 if k > 0 else int(inside[0])
        stop = n_bins if k == n_bands else int(inside[-1]) + 1
        count = max(1, int(np.rint(quantile * (stop - first))))
        slices.append((first, stop if k == n_bands else stop - 1, count))
    return tuple(slices)


def zero_crossing_rate(y: np.ndarray, *, frame_length: int, hop_length: int) -> np.ndarray:
    """Fraction of sign changes per centred frame (T,), as librosa.feature.zero_crossing_rate."""
    padded = np.pad(y, frame_length // 2, mode="edge")
    signs = np.signbit(np.where(np.abs(padded) <= AMIN, 0.0, padded))
    crossings = np.concatenate(([0], np.cumsum(signs[1:] != signs[:-1])))
    starts = np.arange(0, len(padded) - frame_length + 1, hop_length)
    # A frame counts the crossings between its own samples: pairs start..start+L-1.
    return (crossings[starts + frame_length - 1] - crossings[starts]) / frame_length


@functools.lru_cache(maxsize=16)
def _savgol_operator(width: int, order: int) -> np.ndarray:
    """(width, width) matrix: row i gives the ``order``-th derivative at window position i of the
    least-squares polynomial of degree ``order`` through the window (Savitzky-Golay)."""
    half = width // 2
    positions = np.arange(-half, half + 1, dtype=np.float64)
    fit = np.linalg.pinv(np.vander(positions, order + 1, increasing=True))
    evaluate = np.zeros((width, order + 1))
    evaluate[:, order] = math.factorial(order)
    operator = evaluate @ fit
    operator.setflags(write=False)
    return operator


def delta(data: np.ndarray, *, width: int = 9, order: int = 1) -> np.ndarray:
    """Delta features along the last axis, as librosa.feature.delta(mode="interp") computes them.

    A Savitzky-Golay derivative whose polynomial degree equals ``order``; the first and last
    ``width // 2`` frames take the derivative of the polynomial fitted to the first/last window.
    The operator is built once per (width, order), not per clip.
    """
    half = width // 2
    operator = _savgol_operator(width, order)
    windows = np.lib.stride_tricks.sliding_window_view(data, width, axis=-1)
    result = np.empty(data.shape, dtype=np.result_type(data.dtype, np.float32))
    result[..., half : data.shape[-1] - half] = windows @ operator[half]
    result[..., :half] = data[..., :width] @ operator[:half].T
    result[..., data.shape[-1] - half :] = data[..., -width:] @ operator[half + 1 :].T
    return result


@functools.lru_cache(maxsize=16)
def _window_autocorrelation(n_fft: int, win_length: int, n_bins: int, n_lags: int) -> np.ndarray:
    spectrum = np.square(np.abs(np.fft.rfft(padded_window(n_fft, win_length).astype(float))))
    autocorrelation = np.fft.irfft(spectrum[:n_bins], n=n_lags)
    return autocorrelation / autocorrelation[0]


def f0_autocorrelation(
    *,
    S: np.ndarray,
    sr: int,
    n_fft: int,
    win_length: int,
    fmin: float = F0_MIN_HZ,
    fmax: float = F0_MAX_HZ,
) -> np.ndarray:
    """F0 in Hz per frame (T,), NaN where unvoiced, from the magnitude spectrogram ``S``.

    Each frame's autocorrelation is the inverse FFT of its power spectrum below F0_BAND_HZ
    (a decimated autocorrelation: no second pass over the samples), divided by the window's own
    autocorrelation (Boersma 1993); the shortest-lag peak between ``fmin`` and ``fmax`` that
    comes within OCTAVE_TOLERANCE of the best gives the period, refined by parabolic
    interpolation.
    """
    n_lags = max(16, 1 << math.ceil(math.log2(2.0 * F0_BAND_HZ * n_fft / sr)))
    n_bins = min(S.shape[-2], n_lags // 2 + 1)
    lag_rate = sr * n_lags / n_fft
    power = np.square(S[:n_bins], dtype=np.float64)
    autocorrelation = np.fft.irfft(power, n=n_lags, axis=0)
    energy = autocorrelation[0]
    window = _window_autocorrelation(n_fft, win_length, n_bins, n_lags)
    lag_low = max(2, int(lag_rate / fmax))
    lag_high = min(n_lags // 2 - 1, int(math.ceil(lag_rate / fmin)))
    lags = np.arange(lag_low - 1, lag_high + 2)
    normalised = autocorrelation[lags] / np.maximum(energy, AMIN) / window[lags, None]
    inner = normalised[1:-1]
    is_peak = (inner > normalised[:-2]) & (inner >= normalised[2:])
    peaks = np.where(is_peak, inner, -np.inf)
    # Multiples of the period peak almost as high as the period itself (more so once divided
    # by the shrinking window autocorrelation): take the shortest lag close to the best peak.
    near_best = peaks >= OCTAVE_TOLERANCE * peaks.max(axis=0)
    best = np.argmax(near_best, axis=0)
    frames = np.arange(S.shape[-1])
    left, centre, right = (normalised[best + i, frames] for i in range(3))
    curvature = left - 2.0 * centre + right
    shift = np.where(curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, 1), 0)
    f0 = lag_rate / (lags[best + 1] + shift)
    loud = energy >= energy.max() * 10.0 ** (-VOICED_TOP_DB / 10.0)
    voiced = np.isfinite(peaks[best, frames]) & (centre >= VOICING_THRESHOLD) & loud
    return np.where(voiced, f0, np.nan)


def frame_features(y: np.ndarray, config: FrameConfig) -> FrameFeatures:
    """Every frame-level feature of ``y`` from one STFT."""
    sr, n_fft = config.sr, config.n_fft
    S = stft_magnitude(y, n_fft=n_fft, hop_length=config.hop_length, win_length=config.win_length)
    cepstra = mfcc(S=S, sr=sr, n_fft=n_fft, n_mels=config.n_mels, n_mfcc=config.n_mfcc)
    n_frames = cepstra.shape[-1]
    # Savitzky-Golay deltas need an odd window no longer than the clip (9 frames = 90 ms).
    width = min(9, n_frames if n_frames % 2 else n_frames - 1)
    shape = spectral_shape(S=S, sr=sr, n_fft=n_fft)
    zcr = zero_crossing_rate(y, frame_length=config.win_length, hop_length=config.hop_length)
    return FrameFeatures(
        mfcc=cepstra,
        delta=delta(cepstra, width=width, order=1),
        delta2=delta(cepstra, width=width, order=2),
        spectral=np.vstack([shape, zcr[None, : S.shape[-1]]]),
        contrast=spectral_contrast(S=S, sr=sr, n_fft=n_fft),
        f0=f0_autocorrelation(S=S, sr=sr, n_fft=n_fft, win_length=config.win_length),
    )


def summarise(frames: FrameFeatures) -> np.ndarray:
    """One fixed-length vector per clip: mean and std over frames of every feature, F0 stats."""
    rows = np.vstack([frames.mfcc, frames.delta, frames.delta2, frames.spectral, frames.contrast])
    means = rows.mean(axis=1, dtype=np.float64)
    stds = np.sqrt(np.square(rows - means[:, None]).mean(axis=1))
    voiced = np.sort(frames.f0[np.isfinite(frames.f0)])
    if len(voiced) >= 3:
        # np.percentile's linear interpolation, without its overhead on a few dozen values.
        positions = np.array([0.1, 0.9]) * (len(voiced) - 1)
        p10, p90 = np.interp(positions, np.arange(len(voiced)), voiced)
        f0_stats = [voiced.mean(), voiced.std(), p10, p90]
    else:
        # Too few voiced frames to describe: zeros, with the voiced fraction telling why.
        f0_stats = [0.0, 0.0, 0.0, 0.0]
    voiced_fraction = len(voiced) / max(1, len(frames.f0))
    return np.concatenate([means, stds, np.array(f0_stats + [voiced_fraction])])
