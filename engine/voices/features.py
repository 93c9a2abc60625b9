"""The STFT, mel filterbank and MFCC of the product's voice path.

``stft_magnitude`` is the one STFT every voice path computes (the MFCC sequences the phrase check
aligns, engine.voices.extract; the views, engine.voices.views; the speaker encoder's mel frames,
engine.voices.embedding; the replay guard's spectrogram, engine.auth.replay_recordings), with
librosa.stft's framing; ``mel_basis`` (built once per process) and ``mfcc`` compute librosa's
filterbank and MFCC without importing librosa (and numba with it), which costs a cold login
about a second. The functions are pure and follow librosa's conventions (``y``, ``sr``, ``S``,
``n_fft``, ``hop_length``, ``win_length``; shapes ``(n_bins, n_frames)``); they agree with
librosa's own on the same frames (tests/engine/test_voices.py). The clip statistics once
computed from the same STFT are benchmarks.clip_statistics.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

FRAME_S = 0.025
"""Analysis window: 25 ms, the usual speech frame."""
HOP_S = 0.010
N_MELS = 40
AMIN = 1e-10
"""librosa's floor for powers (``amin``) before their logarithm."""


@dataclasses.dataclass(frozen=True)
class FrameConfig:
    """How a clip at ``sr`` is cut into frames."""

    sr: int
    """Sample rate of the clip."""
    n_fft: int
    """FFT size: the power of two at or above the window."""
    hop_length: int
    """Samples between frame starts (10 ms)."""
    win_length: int
    """Hann window length (25 ms)."""
    n_mels: int = N_MELS
    """Mel bands the MFCC are computed from."""
    n_mfcc: int = 20
    """Cepstral coefficients kept."""


def frame_config(sr: int, n_mfcc: int = 20) -> FrameConfig:
    """25 ms Hann windows every 10 ms at ``sr``, FFT size the next power of two."""
    win_length = round(FRAME_S * sr)
    return FrameConfig(
        sr=sr,
        n_fft=1 << (win_length - 1).bit_length(),
        hop_length=round(HOP_S * sr),
        win_length=win_length,
        n_mfcc=n_mfcc,
    )


def stft_magnitude(y: np.ndarray, *, n_fft: int, hop_length: int, win_length: int) -> np.ndarray:
    """|STFT| (n_fft // 2 + 1, T) with librosa.stft's framing: centred frames, zero padding,
    a periodic Hann window of ``win_length`` centred in ``n_fft``."""
    padded = np.pad(np.asarray(y, dtype=np.float32), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
    return np.abs(np.fft.rfft(frames * padded_window(n_fft, win_length), axis=-1)).T


@functools.lru_cache(maxsize=16)
def padded_window(n_fft: int, win_length: int) -> np.ndarray:
    """The read-only (n_fft,) analysis window of stft_magnitude: a periodic Hann window of
    ``win_length`` centred in ``n_fft`` zeros."""
    window = np.zeros(n_fft, dtype=np.float32)
    offset = (n_fft - win_length) // 2
    window[offset : offset + win_length] = periodic_hann(win_length)
    window.setflags(write=False)
    return window


def periodic_hann(length: int) -> np.ndarray:
    """The periodic Hann window of ``scipy.signal.get_window("hann", length)``, librosa's
    default, without importing scipy.signal (a tenth of a second of a cold login)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)


@functools.lru_cache(maxsize=16)
def mel_basis(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """librosa's Slaney mel filterbank (n_mels, n_fft // 2 + 1), float32, built once per
    process: ``librosa.filters.mel`` with its defaults (0 Hz to sr / 2, Slaney's mel scale and
    area normalisation), computed here because importing librosa (and numba with it) costs a
    cold login about a second."""
    fft_frequencies = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    mel_frequencies = _mel_to_hz(np.linspace(0.0, _hz_to_mel(sr / 2.0), n_mels + 2))
    widths = np.diff(mel_frequencies)
    ramps = np.subtract.outer(mel_frequencies, fft_frequencies)
    basis = np.zeros((n_mels, len(fft_frequencies)), dtype=np.float32)
    for band in range(n_mels):
        lower = -ramps[band] / widths[band]
        upper = ramps[band + 2] / widths[band + 1]
        basis[band] = np.maximum(0, np.minimum(lower, upper))
    basis *= (2.0 / (mel_frequencies[2 : n_mels + 2] - mel_frequencies[:n_mels]))[:, None]
    basis.setflags(write=False)
    return basis


# Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above.
_MEL_LINEAR_HZ = 200.0 / 3
_MEL_LOG_START_HZ = 1000.0
_MEL_LOG_START = _MEL_LOG_START_HZ / _MEL_LINEAR_HZ
_MEL_LOG_STEP = math.log(6.4) / 27.0


def _hz_to_mel(frequency: float) -> float:
    if frequency < _MEL_LOG_START_HZ:
        return frequency / _MEL_LINEAR_HZ
    return _MEL_LOG_START + math.log(frequency / _MEL_LOG_START_HZ) / _MEL_LOG_STEP


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    frequencies = _MEL_LINEAR_HZ * mels
    logarithmic = mels >= _MEL_LOG_START
    frequencies[logarithmic] = _MEL_LOG_START_HZ * np.exp(
        _MEL_LOG_STEP * (mels[logarithmic] - _MEL_LOG_START)
    )
    return frequencies


def mfcc(
    *, S: np.ndarray, sr: int, n_fft: int, n_mels: int = N_MELS, n_mfcc: int = 20
) -> np.ndarray:
    """MFCC (n_mfcc, T) from a magnitude spectrogram, as librosa.feature.mfcc computes them."""
    import scipy.fft

    log_mel = power_to_db(mel_basis(sr, n_fft, n_mels) @ np.square(S))
    return scipy.fft.dct(log_mel, axis=-2, type=2, norm="ortho")[:n_mfcc]


def power_to_db(power: np.ndarray) -> np.ndarray:
    """librosa.power_to_db with its defaults (ref 1, amin 1e-10, 80 dB floor below the max)."""
    db = 10.0 * np.log10(np.maximum(power, AMIN))
    return np.maximum(db, db.max() - 80.0)
