"""The numpy GE2E speaker encoder against PyTorch's, its weights' integrity, the checkpoint
reader's restricted unpickler, and the embedding's speaker separation on real recordings."""

import io
import pickle
from pathlib import Path

import numpy as np
import pytest

from engine.core.errors import InputError
from engine.core.settings import VoiceSettings
from engine.voices import embedding
from engine.voices.audio import load_recording
from engine.voices.checkpoint import read_legacy_checkpoint
from tests.engine.audio_signals import speech_like

REFERENCE = Path(__file__).with_name("ge2e_reference.npy")
"""Embeddings of the two clips of ``synthetic_clips`` by Resemblyzer 0.1.4's VoiceEncoder
(PyTorch 2.13, CPU) from the same mel frames: checks the numpy LSTM, head and weights."""
FSDD = Path(__file__).resolve().parents[3] / "shared/datasets/fsdd/recordings"


def synthetic_clips() -> list[np.ndarray]:
    return [
        speech_like(0.7, 16_000, f0=f0, seed=seed).astype(np.float32)
        for f0, seed in ((110.0, 1), (210.0, 2))
    ]


def test_the_numpy_encoder_gives_pytorchs_embeddings() -> None:
    actual = np.stack([embedding.speaker_embedding(c, 16_000) for c in synthetic_clips()])
    np.testing.assert_allclose(actual, np.load(REFERENCE), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(actual, axis=1), 1.0, rtol=1e-5)


def test_a_clip_at_another_rate_is_resampled_for_the_encoder() -> None:
    clip = synthetic_clips()[0]
    at_8k = clip.reshape(-1, 2).mean(axis=1)  # low-passed enough for this harmonic sound
    direct = embedding.speaker_embedding(clip, 16_000)
    assert float(embedding.speaker_embedding(at_8k, 8_000) @ direct) > 0.9


def test_damaged_weights_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    embedding.encoder_weights.cache_clear()
    monkeypatch.setattr(embedding, "CHECKPOINT_SHA256", "0" * 64)
    try:
        with pytest.raises(InputError, match="damaged"):
            embedding.encoder_weights()
    finally:
        embedding.encoder_weights.cache_clear()


def test_missing_weights_name_the_command_that_installs_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    embedding.encoder_weights.cache_clear()
    monkeypatch.setattr(embedding, "CHECKPOINT_DISTRIBUTION", "no-such-distribution")
    try:
        with pytest.raises(InputError, match="not installed: run `pip install --no-deps"):
            embedding.encoder_weights()
    finally:
        embedding.encoder_weights.cache_clear()


def test_the_checkpoint_reader_refuses_a_checkpoint_that_would_run_code() -> None:
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("ran",))

    stream = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, stream, protocol=2)
    pickle.dump(1001, stream, protocol=2)
    pickle.dump({"little_endian": True}, stream, protocol=2)
    pickle.dump({"model_state": Payload()}, stream, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing .*print"):
        read_legacy_checkpoint(stream.getvalue())


@pytest.mark.skipif(not FSDD.is_dir(), reason="shared FSDD recordings absent")
def test_later_takes_are_closest_to_their_own_speakers_enrolment() -> None:
    # FSDD's takes 40-42 are a later session than takes 0-4 for most speakers.
    settings = VoiceSettings(min_speech_s=0.1)
    speakers = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")

    def embed(speaker: str, take: int) -> np.ndarray:
        path = FSDD / f"3_{speaker}_{take}.wav"
        return embedding.speaker_embedding(load_recording(path, settings).samples, 16_000)

    enrolled = np.array([np.mean([embed(s, t) for t in range(5)], axis=0) for s in speakers])
    identified = [
        int(np.argmax(enrolled @ embed(speaker, take))) == index
        for index, speaker in enumerate(speakers)
        for take in (40, 41, 42)
    ]
    assert sum(identified) >= 16
