"""The cheaper copy search scores every pair as the search it replaced did (float rounding
apart) and flags the same takes: on real FSDD takes, their altered copies and synthetic clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks import replay_reference
from engine.auth.replay_recordings import (
    closest_copy,
    decode_spectrogram,
    encode_spectrogram,
    enrolled_take,
    log_frequency_spectrogram,
)
from engine.core.settings import Settings
from tests.engine.replay_fixtures import SAMPLE_RATE, syllables

SETTINGS = Settings()
TOLERANCE = 1e-6


def _fingerprinted(samples: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """As the replay guard sees a recording: through the stored float16 fingerprint."""
    spectrogram = decode_spectrogram(encode_spectrogram(log_frequency_spectrogram(samples, sr)))
    assert spectrogram is not None
    return spectrogram


def _altered(samples: np.ndarray, sr: int) -> list[np.ndarray]:
    import soxr

    return [
        soxr.resample(samples, sr * 1.05, sr, quality="HQ"),  # played 5% faster
        soxr.resample(samples, sr * 0.97, sr, quality="HQ"),  # played 3% slower
        np.concatenate([np.zeros(sr // 4, dtype=np.float32), 0.5 * samples]),
    ]


def _assert_same_scores(probes: list[np.ndarray], takes: list[np.ndarray]) -> None:
    bound = SETTINGS.auth.replay_audio_similarity
    prepared = [enrolled_take(take) for take in takes]
    flagged = []
    for probe in probes:
        expected, expected_index = replay_reference.closest_copy(probe, takes)
        similarity, index = closest_copy(probe, prepared)
        assert similarity == pytest.approx(expected, abs=TOLERANCE)
        assert index == expected_index
        assert (similarity >= bound) == (expected >= bound)
        flagged.append(similarity >= bound)
        for take in takes[:2]:
            pair = replay_reference.closest_copy(probe, [take])[0]
            assert closest_copy(probe, [take])[0] == pytest.approx(pair, abs=TOLERANCE)
    # Both outcomes occur, so the flags are compared where they matter.
    assert any(flagged) and not all(flagged)


def test_fsdd_takes_and_their_copies_score_as_before(shared_fsdd: Path) -> None:
    from engine.voices.audio import load_recording

    def fingerprints(speaker: str, digit: int, numbers: range) -> list[np.ndarray]:
        return [
            _fingerprinted(r.samples, r.sample_rate)
            for r in (
                load_recording(shared_fsdd / f"{digit}_{speaker}_{n}.wav", SETTINGS.voice)
                for n in numbers
            )
        ]

    takes = fingerprints("theo", 3, range(3)) + fingerprints("jackson", 7, range(3))
    first = load_recording(shared_fsdd / "3_theo_0.wav", SETTINGS.voice)
    copies = [
        _fingerprinted(y, first.sample_rate) for y in _altered(first.samples, first.sample_rate)
    ]
    fresh = fingerprints("theo", 3, range(3, 5)) + fingerprints("jackson", 7, range(3, 5))
    _assert_same_scores(copies + fresh, takes)


def test_synthetic_clips_score_as_before() -> None:
    takes = [_fingerprinted(syllables(seed)) for seed in (1, 2, 3)]
    copies = [_fingerprinted(y) for y in _altered(syllables(1), SAMPLE_RATE)]
    fresh = [_fingerprinted(syllables(seed, seconds)) for seed, seconds in ((4, 1.0), (5, 1.4))]
    _assert_same_scores(copies + fresh, takes)


@pytest.mark.parametrize("bins", [60, 400])
def test_spectrograms_of_other_widths_score_as_before(bins: int) -> None:
    rng = np.random.default_rng(bins)
    takes = [rng.uniform(-40.0, 0.0, (frames, bins)) for frames in (50, 64)]
    probes = [takes[0][5:] - 3.0, rng.uniform(-40.0, 0.0, (57, bins))]
    for probe in probes:
        expected = replay_reference.closest_copy(probe, takes)
        similarity, index = closest_copy(probe, takes)
        assert similarity == pytest.approx(expected[0], abs=TOLERANCE)
        assert index == expected[1]
