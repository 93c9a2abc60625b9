"""Tiny synthetic photos and recordings for the replay and authentication tests."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000


@functools.cache
def blob_image(seed: int, size: int = 160) -> np.ndarray:
    """An RGB uint8 image of blobs at several scales: like a photo, it has structure at the
    frequencies a perceptual hash looks at."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    canvas = np.zeros((size, size))
    for _ in range(60):
        cx, cy, radius = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.02, 0.3)
        canvas += rng.uniform(-1, 1) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / radius**2)
    canvas = (canvas - canvas.min()) / (np.ptp(canvas) or 1.0)
    return np.repeat((canvas * 255).astype(np.uint8)[..., None], 3, axis=2)


def write_image(path: Path, pixels: np.ndarray, **save_options) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **save_options)
    return path


@functools.cache
def syllables(seed: int, seconds: float = 1.0) -> np.ndarray:
    """Speech-like audio: voiced 'syllables' with moving pitch and formant-like partials."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    signal = np.zeros_like(t)
    count = 4
    for index in range(count):
        start, length = index * seconds / count, seconds / count * 0.8
        envelope = np.clip(np.sin(np.pi * (t - start) / length), 0, None) * (
            (t >= start) & (t < start + length)
        )
        pitch = rng.uniform(100, 220) * (1 + rng.uniform(-0.3, 0.3) * (t - start))
        phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
        for harmonic in range(1, 8):
            signal += envelope * rng.uniform(0.1, 1.0) / harmonic * np.sin(harmonic * phase)
    signal += 0.002 * rng.standard_normal(t.size)
    return (0.5 * signal / np.abs(signal).max()).astype(np.float32)


def write_audio(path: Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, sample_rate)
    return path
