"""Seeded augmentation of enrolment recordings: pitch, tempo, noise, reverberation, gain.

Each augmented copy applies one transformation, named in the ``augmentation`` column
(``pitch_shift``, ``time_stretch``, ``noise_white``, ``noise_pink``, ``noise_babble``,
``reverb``, ``gain``); its parameters go to ``augmentation_detail``. The random generator is
seeded from settings.seed and the file's content hash, so a file gets the same copies on every
machine and in any batch order. The transformations are pure functions of (y, sr, parameters).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from engine.core.settings import VoiceAugmentSettings

ORIGINAL = "original"
RT60_RANGE_S = (0.2, 0.7)
"""Reverberation times of the synthetic rooms (a furnished office to a bare hall)."""
BABBLE_TALKERS = 3
"""Other voices mixed into babble noise."""


@dataclasses.dataclass(frozen=True)
class AugmentedClip:
    """One augmented copy of a recording."""

    name: str
    """The ``augmentation`` column value."""
    detail: str
    """The parameters drawn, e.g. ``pitch_shift=+1.37 st``."""
    samples: np.ndarray
    """float32 samples at the recording's rate."""


def augmentation_rng(seed: int, content_sha256: str) -> np.random.Generator:
    """The generator for one file: from the global seed and the file's content hash."""
    return np.random.default_rng([seed, int(content_sha256[:16], 16)])


def enabled_kinds(settings: VoiceAugmentSettings) -> list[str]:
    """Transformations the settings allow (a zero range switches one off)."""
    kinds = []
    if settings.pitch_semitones > 0:
        kinds.append("pitch_shift")
    if settings.stretch_min != 1.0 or settings.stretch_max != 1.0:
        kinds.append("time_stretch")
    kinds.append("noise")
    if settings.reverb:
        kinds.append("reverb")
    if settings.gain_db > 0:
        kinds.append("gain")
    return kinds


def augment(
    y: np.ndarray,
    sr: int,
    settings: VoiceAugmentSettings,
    *,
    rng: np.random.Generator,
    babble_sources: Sequence[np.ndarray] = (),
) -> list[AugmentedClip]:
    """``settings.copies`` augmented copies of ``y``, each with one transformation.

    The kinds are dealt in a random order per file so that every kind is used about equally
    across a batch, and ``copies`` beyond the number of kinds reuse them with new parameters
    (names then get a ``_2``, ``_3`` suffix, keeping (source, augmentation) unique).
    ``babble_sources`` are other speakers' cleaned clips; without them babble becomes pink noise.
    """
    kinds = enabled_kinds(settings)
    order = [kinds[i] for i in rng.permutation(len(kinds))]
    clips: list[AugmentedClip] = []
    seen: dict[str, int] = {}
    for copy in range(settings.copies):
        name, detail, samples = _apply(
            order[copy % len(order)], y, sr, settings, rng, babble_sources
        )
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}_{seen[name]}"
        clips.append(AugmentedClip(name, detail, samples.astype(np.float32, copy=False)))
    return clips


def _apply(
    kind: str,
    y: np.ndarray,
    sr: int,
    settings: VoiceAugmentSettings,
    rng: np.random.Generator,
    babble_sources: Sequence[np.ndarray],
) -> tuple[str, str, np.ndarray]:
    if kind == "pitch_shift":
        steps = float(rng.uniform(-settings.pitch_semitones, settings.pitch_semitones))
        return kind, f"pitch_shift={steps:+.2f} st", pitch_shift(y, sr, n_steps=steps)
    if kind == "time_stretch":
        rate = float(rng.uniform(settings.stretch_min, settings.stretch_max))
        return kind, f"time_stretch={rate:.3f}x", time_stretch(y, rate=rate)
    if kind == "noise":
        noise_kind = str(rng.choice(["white", "pink", "babble"]))
        if noise_kind == "babble" and not babble_sources:
            noise_kind = "pink"
        noise = {
            "white": lambda: rng.standard_normal(len(y)),
            "pink": lambda: pink_noise(len(y), rng=rng),
            "babble": lambda: babble_noise(len(y), babble_sources, rng=rng),
        }[noise_kind]()
        detail = f"noise={noise_kind} snr={settings.snr_db:g} dB"
        return f"noise_{noise_kind}", detail, add_noise(y, noise, snr_db=settings.snr_db)
    if kind == "reverb":
        rt60 = float(rng.uniform(*RT60_RANGE_S))
        rir = room_impulse_response(sr, rt60_s=rt60, rng=rng)
        return kind, f"reverb rt60={rt60:.2f} s", reverberate(y, rir)
    gain_db = float(rng.uniform(-settings.gain_db, settings.gain_db))
    return "gain", f"gain={gain_db:+.1f} dB", apply_gain(y, gain_db=gain_db)


def pitch_shift(y: np.ndarray, sr: int, *, n_steps: float) -> np.ndarray:
    """Shift pitch by ``n_steps`` semitones, keeping the duration (phase vocoder + soxr)."""
    import librosa

    return librosa.effects.pitch_shift(y, sr=sr, n_steps=n_steps, res_type="soxr_hq")


def time_stretch(y: np.ndarray, *, rate: float) -> np.ndarray:
    """Speak ``rate`` times faster (rate > 1 shortens), keeping the pitch."""
    import librosa

    return librosa.effects.time_stretch(y, rate=rate)


def pink_noise(n: int, *, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of 1/f (pink) noise, unit variance: white noise shaped in frequency."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequency = np.arange(len(spectrum), dtype=np.float64)
    frequency[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(frequency), n=n)
    return noise / max(float(noise.std()), 1e-12)


def babble_noise(n: int, sources: Sequence[np.ndarray], *, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of several other voices talking at once, from random points of ``sources``."""
    picks = rng.choice(len(sources), size=min(BABBLE_TALKERS, len(sources)), replace=False)
    babble = np.zeros(n)
    for index in picks:
        source = np.asarray(sources[index], dtype=np.float64)
        looped = np.resize(np.roll(source, -int(rng.integers(len(source)))), n)
        babble += looped / max(float(np.sqrt(np.mean(np.square(looped)))), 1e-12)
    return babble


def add_noise(y: np.ndarray, noise: np.ndarray, *, snr_db: float) -> np.ndarray:
    """``y`` plus ``noise`` scaled to a signal-to-noise ratio of ``snr_db``."""
    signal_power = float(np.mean(np.square(y, dtype=np.float64)))
    noise_power = max(float(np.mean(np.square(noise, dtype=np.float64))), 1e-20)
    scale = np.sqrt(signal_power / noise_power / 10.0 ** (snr_db / 10.0))
    return (y + scale * noise).astype(np.float32)


def room_impulse_response(sr: int, *, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: the direct sound, then exponentially decaying diffuse noise whose
    energy falls by 60 dB in ``rt60_s`` (Schroeder's statistical model of a late tail)."""
    length = int(rt60_s * sr)
    t = np.arange(length) / sr
    # Amplitude decays by 10^(-60/20) = 1/1000 over rt60: exp(-ln(1000) t / rt60).
    tail = rng.standard_normal(length) * np.exp(-np.log(1000.0) * t / rt60_s)
    pre_delay = max(1, int(rng.uniform(0.002, 0.010) * sr))
    tail[:pre_delay] = 0.0
    direct_to_reverberant = 10.0 ** (rng.uniform(-3.0, 6.0) / 20.0)
    tail *= 1.0 / (direct_to_reverberant * np.sqrt(np.sum(np.square(tail))))
    tail[0] = 1.0
    return tail


def reverberate(y: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``y`` played in the room ``rir``, cut to its length and brought back to its RMS."""
    import scipy.signal

    wet = scipy.signal.fftconvolve(y.astype(np.float64), rir)[: len(y)]
    dry_rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    wet_rms = max(float(np.sqrt(np.mean(np.square(wet)))), 1e-12)
    return (wet * dry_rms / wet_rms).astype(np.float32)


def apply_gain(y: np.ndarray, *, gain_db: float) -> np.ndarray:
    """A level change, clipped at full scale as an overloaded input would be."""
    return np.clip(y * 10.0 ** (gain_db / 20.0), -1.0, 1.0).astype(np.float32)
