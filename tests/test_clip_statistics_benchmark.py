"""The clip statistics of the voice benchmarks (benchmarks/clip_statistics.py): each frame-level
feature agrees with librosa.feature's own function on the same frames, and F0 finds the pitch."""

import librosa
import numpy as np
import pytest

from benchmarks import clip_statistics as cs
from engine.voices.features import frame_config, stft_magnitude
from tests.engine.audio_signals import broadband_speech, framing, speech_like

SR = 16_000
CONFIG = frame_config(SR)
FRAMING = framing(CONFIG)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return broadband_speech(SR)


def test_shared_stft_features_match_librosas_own_functions(clip: np.ndarray) -> None:
    frames = cs.frame_features(clip, CONFIG)
    S = np.abs(librosa.stft(clip, **FRAMING))
    expected = {
        "centroid": librosa.feature.spectral_centroid(y=clip, sr=SR, **FRAMING),
        "bandwidth": librosa.feature.spectral_bandwidth(y=clip, sr=SR, **FRAMING),
        "rolloff": librosa.feature.spectral_rolloff(y=clip, sr=SR, **FRAMING),
        "flatness": librosa.feature.spectral_flatness(y=clip, **FRAMING),
        "rms": librosa.feature.rms(S=S, frame_length=CONFIG.n_fft),
        "zcr": librosa.feature.zero_crossing_rate(
            clip, frame_length=CONFIG.win_length, hop_length=CONFIG.hop_length
        ),
    }
    for row, name in enumerate(cs.SPECTRAL_NAMES):
        np.testing.assert_allclose(frames.spectral[row], expected[name][0], rtol=1e-3, atol=1e-6)
    contrast = librosa.feature.spectral_contrast(
        y=clip, sr=SR, fmin=cs.CONTRAST_FMIN, n_bands=6, **FRAMING
    )
    np.testing.assert_allclose(frames.contrast, contrast, atol=1e-2)
    for order, delta in ((1, frames.delta), (2, frames.delta2)):
        np.testing.assert_allclose(
            delta, librosa.feature.delta(frames.mfcc, width=9, order=order), atol=1e-3
        )


def test_summary_is_one_fixed_length_vector_per_clip(clip: np.ndarray) -> None:
    # Mean and std of 20 MFCC, their deltas and delta-deltas, 6 spectral rows and 7 contrast
    # bands, then F0 mean, std, 10th and 90th percentiles and the voiced fraction.
    summary = cs.summarise(cs.frame_features(clip, CONFIG))
    assert summary.shape == (2 * (3 * 20 + 6 + 7) + 5,) and np.isfinite(summary).all()
    assert summary[-1] > 0.5  # the synthetic voice is voiced most of the time


@pytest.mark.parametrize("f0", [95.0, 140.0, 220.0])
def test_spectrum_f0_finds_the_pitch_like_yin(f0: float) -> None:
    y = speech_like(1.0, SR, f0=f0)
    S = stft_magnitude(y, **FRAMING)
    ours = cs.f0_autocorrelation(S=S, sr=SR, n_fft=CONFIG.n_fft, win_length=CONFIG.win_length)
    yin = librosa.yin(y, fmin=70, fmax=400, sr=SR, frame_length=1024, hop_length=160)
    voiced = ours[np.isfinite(ours)]
    assert len(voiced) > 0.8 * len(ours)
    # The synthetic voice glides +-5% around f0.
    assert np.median(voiced) == pytest.approx(f0, rel=0.04)
    assert np.median(voiced) == pytest.approx(np.median(yin), rel=0.03)


def test_f0_is_unvoiced_in_noise() -> None:
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    S = stft_magnitude(noise, **FRAMING)
    f0 = cs.f0_autocorrelation(S=S, sr=SR, n_fft=CONFIG.n_fft, win_length=CONFIG.win_length)
    assert np.isnan(f0).mean() > 0.8
