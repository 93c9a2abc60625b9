import dataclasses
import json
import threading
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest

from engine.core.errors import AcquisitionError, CancelledError, InputError, MissingStageError
from engine.core.settings import Settings, VoiceAugmentSettings
from engine.core.workspace import Workspace
from engine.voices import features as af
from engine.voices.augment import (
    add_noise,
    apply_gain,
    augment,
    augmentation_rng,
    babble_noise,
    pink_noise,
    reverberate,
    room_impulse_response,
    time_stretch,
)
from engine.voices.embedding import EMBEDDING_SIZE
from engine.voices.extract import (
    clip_features,
    extract_voice_features,
    load_mfcc_sequences,
    voice_feature_names,
    voice_sample,
)
from engine.voices.views import clip_view, pool_matrix, save_clip_png, waveform_envelope
from tests.engine.audio_signals import (
    broadband_speech,
    framing,
    speech_like,
    with_silence,
    write,
)

SR = 16_000
CONFIG = af.frame_config(SR)
FRAMING = framing(CONFIG)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return broadband_speech(SR)


def test_features_are_finite_deterministic_and_named(clip: np.ndarray) -> None:
    first, second = clip_features(clip, CONFIG), clip_features(clip, CONFIG)
    assert np.isfinite(first.vector).all()
    np.testing.assert_array_equal(first.vector, second.vector)
    assert len(first.vector) == EMBEDDING_SIZE
    assert np.linalg.norm(first.vector) == pytest.approx(1.0, abs=1e-5)
    assert first.mfcc_sequence.shape == (1 + len(clip) // CONFIG.hop_length, 20)
    assert first.mfcc_sequence.dtype == np.float32


def test_mfcc_from_the_shared_stft_match_librosas(clip: np.ndarray) -> None:
    S = af.stft_magnitude(clip, **FRAMING)
    ours = af.mfcc(S=S, sr=SR, n_fft=CONFIG.n_fft, n_mels=af.N_MELS, n_mfcc=20)
    expected = librosa.feature.mfcc(y=clip, sr=SR, n_mfcc=20, n_mels=af.N_MELS, **FRAMING)
    np.testing.assert_allclose(ours, expected, atol=1e-2)


def test_features_at_8_khz_are_embedded_at_the_encoders_rate() -> None:
    config = af.frame_config(8_000)
    vector = clip_features(speech_like(1.0, 8_000), config).vector
    assert len(vector) == EMBEDDING_SIZE and np.isfinite(vector).all()


def test_augmentation_is_deterministic_per_file_and_names_what_it_did(clip: np.ndarray) -> None:
    settings = VoiceAugmentSettings(copies=7)
    babble = [speech_like(0.7, SR, f0=200.0, seed=5), speech_like(0.9, SR, f0=110.0, seed=6)]
    first = augment(clip, SR, settings, rng=augmentation_rng(0, "ab" * 32), babble_sources=babble)
    again = augment(clip, SR, settings, rng=augmentation_rng(0, "ab" * 32), babble_sources=babble)
    other = augment(clip, SR, settings, rng=augmentation_rng(0, "cd" * 32), babble_sources=babble)
    assert [c.name for c in first] == [c.name for c in again]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.samples, b.samples)
    assert [c.detail for c in first] != [c.detail for c in other]
    names = [c.name for c in first]
    assert len(set(names)) == 7  # copies beyond the five kinds get a suffix
    assert {n.split("_2")[0] for n in names} >= {"pitch_shift", "time_stretch", "reverb", "gain"}
    assert any(n.startswith("noise_") for n in names)
    for augmented in first:
        assert augmented.samples.dtype == np.float32 and np.isfinite(augmented.samples).all()
        assert not np.array_equal(augmented.samples[: len(clip)], clip[: len(augmented.samples)])


def test_augmentation_transforms_do_what_they_say(clip: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    for snr in (0.0, 10.0, 20.0):
        noise = pink_noise(len(clip), rng=rng)
        noisy = add_noise(clip, noise, snr_db=snr)
        residual = noisy - clip
        measured = 10 * np.log10(np.mean(clip**2) / np.mean(residual**2))
        assert measured == pytest.approx(snr, abs=0.1)
    assert len(time_stretch(clip, rate=1.25)) == pytest.approx(len(clip) / 1.25, rel=0.02)
    rir = room_impulse_response(SR, rt60_s=0.5, rng=rng)
    assert len(rir) == SR // 2 and rir[0] == 1.0
    wet = reverberate(clip, rir)
    assert len(wet) == len(clip)
    assert np.sqrt(np.mean(wet**2)) == pytest.approx(np.sqrt(np.mean(clip**2)), rel=1e-3)
    loud = apply_gain(clip, gain_db=12.0)
    assert np.abs(loud).max() <= 1.0


def test_babble_mixes_other_voices_at_unit_level() -> None:
    talkers = [speech_like(0.3, SR, f0=f, seed=i) for i, f in enumerate((100.0, 160.0, 240.0))]
    babble = babble_noise(SR, talkers, rng=np.random.default_rng(0))
    assert babble.shape == (SR,) and np.isfinite(babble).all()
    # Three talkers, each brought to unit RMS, partly cancelling: between 1 and 3 in RMS.
    assert 1.0 < np.sqrt(np.mean(babble**2)) < 3.0
    np.testing.assert_array_equal(babble, babble_noise(SR, talkers, rng=np.random.default_rng(0)))


def test_no_enrolment_recordings_is_a_clear_error(workspace: Workspace) -> None:
    with pytest.raises(InputError, match="no enrolment recordings: put each member's clips in"):
        extract_voice_features(workspace, Settings())


def test_disabled_kinds_are_never_drawn(clip: np.ndarray) -> None:
    settings = VoiceAugmentSettings(
        copies=4, pitch_semitones=0, stretch_min=1, stretch_max=1, reverb=False, gain_db=0
    )
    clips = augment(clip, SR, settings, rng=augmentation_rng(1, "0" * 64))
    assert all(c.name.startswith("noise_") and "babble" not in c.name for c in clips)


def make_workspace(workspace: Workspace) -> Workspace:
    """Two members with two phrases each, a probe per member, and one unusable recording."""
    for index, (member, f0) in enumerate((("ana", 210.0), ("bob", 115.0))):
        for take in range(2):
            for phrase in ("yes_approve", "confirm"):
                audio = speech_like(0.8, SR, f0=f0 * (1 + 0.02 * take), seed=index * 10 + take)
                write(workspace.voices_dir / member / f"{phrase}_{take}.wav", audio, SR)
        probe = speech_like(0.8, 22_050, f0=f0 * 1.01, seed=99 + index)
        write(workspace.probe_voices_dir / member / "yes_approve_9.flac", probe, 22_050)
    silent = with_silence(np.zeros(0, dtype=np.float32), SR, 0.5, 0.5)
    write(workspace.voices_dir / "bob" / "silent_0.wav", silent, SR)
    return workspace


def test_extraction_writes_table_sequences_and_report(workspace: Workspace) -> None:
    make_workspace(workspace)
    settings = Settings(voice_augment=VoiceAugmentSettings(copies=2))
    report = extract_voice_features(workspace, settings)
    table = pd.read_csv(workspace.audio_features)
    assert list(table.columns[:4]) == ["member", "phrase", "augmentation", "augmentation_detail"]
    assert {"source", "role", "duration_s"} <= set(table.columns)
    features = [c for c in table.columns if c.startswith("audio_feature_")]
    assert len(features) == len(voice_feature_names()) == EMBEDDING_SIZE
    assert report.files == 11 and report.rows == 8 * 3 + 2 == len(table)
    assert np.isfinite(table[features].to_numpy()).all()
    probes = table[table.role == "probe"]
    assert set(probes.augmentation) == {"original"} and set(probes.phrase) == {"yes_approve"}
    enrol = table[table.role == "enrol"]
    assert set(enrol.phrase) == {"yes_approve", "confirm"}
    assert (enrol.groupby("source").size() == 3).all()
    (failure,) = report.failures
    assert failure.source == "data/raw/voices/bob/silent_0.wav" and "no speech" in failure.reason

    document = json.loads((workspace.data_dir / "audio_features_report.json").read_text())
    assert document["fta"] == 1 and document["rows"] == len(table)
    assert document["failures"][0]["kind"] == "fta" and document["fta_rate"]["trials"] == 11
    assert document["feature_names"][0] == "speaker_embedding_0"

    sequences = load_mfcc_sequences(workspace)
    assert set(sequences) == set(zip(table.source, table.augmentation, strict=True))
    probe_source = "data/raw/probes/voices/ana/yes_approve_9.flac"
    sample = voice_sample(workspace.root / probe_source, settings)
    np.testing.assert_array_equal(sequences[(probe_source, "original")], sample.mfcc_sequence)
    row = probes[probes.source == probe_source][features].to_numpy()[0]
    np.testing.assert_allclose(row, sample.vector, rtol=1e-9, atol=1e-9)
    assert sample.phrase_hint == "yes_approve" and sample.sample_rate == SR


def test_a_second_run_comes_from_the_cache_with_the_same_rows(workspace: Workspace) -> None:
    make_workspace(workspace)
    settings = Settings(voice_augment=VoiceAugmentSettings(copies=1))
    extract_voice_features(workspace, settings)
    first = pd.read_csv(workspace.audio_features)
    again = extract_voice_features(workspace, settings)
    assert again.cached == 10
    pd.testing.assert_frame_equal(pd.read_csv(workspace.audio_features), first)


def test_cancelling_writes_nothing(workspace: Workspace) -> None:
    make_workspace(workspace)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        extract_voice_features(workspace, Settings(), cancel=cancel)
    assert not workspace.audio_features.exists()
    with pytest.raises(MissingStageError, match="run `mmauth features` first"):
        load_mfcc_sequences(workspace)


def test_a_run_where_every_file_fails_writes_no_table(workspace: Workspace) -> None:
    write(workspace.voices_dir / "ana" / "quiet_0.wav", np.zeros(SR, dtype=np.float32), SR)
    with pytest.raises(InputError, match="none of the 1 recordings gave features"):
        extract_voice_features(workspace, Settings())
    assert not workspace.audio_features.exists()
    document = json.loads((workspace.data_dir / "audio_features_report.json").read_text())
    assert document["fta"] == 1


def test_voice_sample_refuses_silence(tmp_path: Path) -> None:
    path = write(tmp_path / "quiet.wav", np.zeros(SR, dtype=np.float32), SR)
    with pytest.raises(AcquisitionError, match="no speech"):
        voice_sample(path, Settings())


def test_views_draw_any_clip_even_a_silent_one(tmp_path: Path) -> None:
    speech = write(tmp_path / "speech.wav", with_silence(speech_like(0.6), SR, 0.3, 0.3), SR)
    view = clip_view(speech, Settings(), width=50, height=8)
    assert view.envelope_min.shape == view.envelope_max.shape == (50,)
    assert view.spectrogram_db.shape == (8, 50) and view.spectrogram_db.max() <= 0.0
    assert view.speech is not None and view.speech[0] == pytest.approx(0.3, abs=0.03)
    silent = write(tmp_path / "silent.wav", np.zeros(SR, dtype=np.float32), SR)
    assert clip_view(silent, Settings(), width=20, height=4).speech is None
    with pytest.raises(AcquisitionError):
        clip_view(silent, Settings(), cleaned=True)
    png = save_clip_png(speech, Settings(), tmp_path / "out" / "speech.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_envelope_and_pooling_keep_extremes_and_means() -> None:
    y = np.array([0.0, 1.0, -1.0, 0.5, 0.2, -0.3], dtype=np.float32)
    lows, highs = waveform_envelope(y, width=3)
    np.testing.assert_allclose(lows, [0.0, -1.0, -0.3], rtol=1e-6)
    np.testing.assert_allclose(highs, [1.0, 0.5, 0.2], rtol=1e-6)
    lows, highs = waveform_envelope(y, width=12)  # wider than the clip: nearest samples
    assert len(lows) == 12 and set(lows) <= set(y)
    matrix = np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose(pool_matrix(matrix, rows=1, cols=2), [[4.5, 6.5]])
    assert pool_matrix(matrix, rows=6, cols=8).shape == (6, 8)


def test_settings_change_the_cache_key(workspace: Workspace) -> None:
    make_workspace(workspace)
    base = Settings(voice_augment=VoiceAugmentSettings(copies=0))
    extract_voice_features(workspace, base)
    changed = dataclasses.replace(base, voice=dataclasses.replace(base.voice, n_mfcc=13))
    report = extract_voice_features(workspace, changed)
    assert report.cached == 0
    assert (
        load_mfcc_sequences(workspace)[("data/raw/voices/ana/confirm_0.wav", "original")].shape[1]
        == 13
    )
