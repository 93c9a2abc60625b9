"""Synthetic recordings for the audio tests: speech-like harmonic sounds written in any format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile


def speech_like(
    duration_s: float, sr: int = 16_000, *, f0: float = 130.0, seed: int = 0
) -> np.ndarray:
    """A voiced, syllable-modulated harmonic sound with a little breath noise, peak about 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * sr)) / sr
    # Slow pitch movement and 4 Hz syllables, like a spoken phrase.
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 1.5 * t))) / sr
    voiced = sum(
        np.sin(k * phase) / k * (1.5 if 400 < k * f0 < 1200 else 1.0)
        for k in range(1, int(min(4000, sr / 2) // f0))
    )
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2
    signal = voiced * syllables + 0.02 * rng.standard_normal(len(t))
    return (0.5 * signal / np.abs(signal).max()).astype(np.float32)


def broadband_speech(sr: int = 16_000) -> np.ndarray:
    """One second of ``speech_like`` over broadband noise: every band stays above librosa's 80 dB
    floor, so comparisons with librosa's features are fair."""
    noise = 0.01 * np.random.default_rng(3).standard_normal(sr)
    return (speech_like(1.0, sr, f0=140.0) + noise).astype(np.float32)


def framing(config: Any) -> dict[str, int]:
    """The STFT framing of an engine.voices.features.FrameConfig, as librosa's keywords."""
    return {"n_fft": config.n_fft, "hop_length": config.hop_length, "win_length": config.win_length}


def with_silence(speech: np.ndarray, sr: int, before_s: float, after_s: float) -> np.ndarray:
    """``speech`` between stretches of very quiet noise (a room before and after the phrase)."""
    rng = np.random.default_rng(1)
    pad = [1e-4 * rng.standard_normal(int(s * sr)).astype(np.float32) for s in (before_s, after_s)]
    return np.concatenate([pad[0], speech, pad[1]])


def write(path: Path, samples: np.ndarray, sr: int, subtype: str | None = None, **kwargs) -> Path:
    """Write ``samples`` (frames or frames x channels) with soundfile; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, sr, subtype=subtype, **kwargs)
    return path
