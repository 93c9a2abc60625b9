from pathlib import Path

import numpy as np
import pytest
import soundfile

from engine.core.errors import AcquisitionError, InputError
from engine.core.settings import VoiceSettings
from engine.voices.audio import (
    TARGET_SPEECH_DBFS,
    clipped_samples,
    load_recording,
    phrase_from_filename,
    read_audio,
)
from tests.engine.audio_signals import speech_like, with_silence, write

VOICE = VoiceSettings()


@pytest.mark.parametrize(
    ("name", "subtype"),
    [
        ("pcm8.wav", "PCM_U8"),
        ("pcm16.wav", "PCM_16"),
        ("pcm24.wav", "PCM_24"),
        ("pcm32.wav", "PCM_32"),
        ("float.wav", "FLOAT"),
        ("double.wav", "DOUBLE"),
        ("clip.flac", "PCM_16"),
        ("clip24.flac", "PCM_24"),
        ("clip.ogg", "VORBIS"),
        ("clip.mp3", "MPEG_LAYER_III"),
    ],
)
def test_every_format_loads_to_clean_16k_mono(tmp_path: Path, name: str, subtype: str) -> None:
    path = write(tmp_path / name, speech_like(1.0, 16_000), 16_000, subtype)
    recording = load_recording(path, VOICE)
    assert recording.sample_rate == 16_000 and recording.samples.dtype == np.float32
    assert recording.samples.ndim == 1
    # mp3 encoders add a few ms of padding; nothing else changes the length of this clip.
    assert recording.duration_s == pytest.approx(1.0, abs=0.06)
    level = 10 * np.log10(np.mean(np.square(recording.samples)))
    assert abs(level - TARGET_SPEECH_DBFS) < 2.0 or np.abs(recording.samples).max() > 0.98


@pytest.mark.parametrize("sr", [8_000, 11_025, 22_050, 44_100, 48_000, 96_000])
def test_any_rate_from_8_to_96_khz_is_resampled(tmp_path: Path, sr: int) -> None:
    recording = load_recording(write(tmp_path / "a.wav", speech_like(0.8, sr), sr), VOICE)
    assert recording.source_sample_rate == sr and recording.sample_rate == 16_000
    assert len(recording.samples) == pytest.approx(0.8 * 16_000, abs=0.03 * 16_000)


def test_rates_outside_the_supported_range_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "low.wav", speech_like(1.0, 4_000), 4_000)
    with pytest.raises(InputError, match="sample rate 4000 Hz is outside"):
        load_recording(path, VOICE)


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_is_mixed_to_mono(tmp_path: Path, channels: int) -> None:
    mono = speech_like(1.0)
    frames = np.stack([mono * (0.5 + 0.1 * c) for c in range(channels)], axis=1)
    recording = load_recording(write(tmp_path / "multi.wav", frames, 16_000), VOICE)
    assert recording.channels == channels and recording.samples.ndim == 1


def test_dc_is_removed_and_silence_trimmed(tmp_path: Path) -> None:
    audio = with_silence(speech_like(1.0), 16_000, before_s=1.0, after_s=0.7) + 0.2
    recording = load_recording(write(tmp_path / "dc.wav", audio, 16_000, "FLOAT"), VOICE)
    assert abs(float(recording.samples.mean())) < 0.01
    assert recording.speech_start_s == pytest.approx(1.0, abs=0.03)
    assert recording.duration_s == pytest.approx(1.0, abs=0.05)
    assert recording.source_duration_s == pytest.approx(2.7, abs=0.01)


def room_recording(before_s: float, after_s: float, noise: float) -> np.ndarray:
    """One second of speech between pauses, all over a steady room noise of std ``noise``."""
    sr = 16_000
    silent = [np.zeros(int(s * sr), dtype=np.float32) for s in (before_s, after_s)]
    audio = np.concatenate([silent[0], speech_like(1.0), silent[1]])
    return audio + noise * np.random.default_rng(2).standard_normal(len(audio)).astype(np.float32)


@pytest.mark.parametrize("noise", [0.001, 0.003, 0.006])
def test_a_room_noise_bed_around_the_words_is_trimmed(tmp_path: Path, noise: float) -> None:
    """Pauses of room noise 30-45 dB under the words, before and after them, as a phone or
    laptop records: they used to count as speech (the whole clip), so the voice model learnt
    and scored the room."""
    path = write(tmp_path / "room.wav", room_recording(1.0, 1.5, noise), 16_000, "FLOAT")
    recording = load_recording(path, VOICE)
    assert recording.speech_start_s == pytest.approx(1.0, abs=0.05)
    assert recording.duration_s == pytest.approx(1.0, abs=0.08)


def test_a_short_pause_at_the_edges_is_kept(tmp_path: Path) -> None:
    """A clip cut close to the word keeps its edges, as before: only a pause of at least
    EDGE_PAUSE_S is cut."""
    path = write(tmp_path / "close.wav", room_recording(0.2, 0.25, 0.003), 16_000, "FLOAT")
    recording = load_recording(path, VOICE)
    assert recording.speech_start_s < 0.05
    assert recording.duration_s == pytest.approx(1.45, abs=0.05)


@pytest.mark.parametrize(
    "audio",
    [np.zeros(16_000, dtype=np.float32), 1e-5 * np.random.default_rng(0).standard_normal(16_000)],
    ids=["digital-silence", "noise-floor"],
)
def test_silence_is_a_failure_to_acquire(tmp_path: Path, audio: np.ndarray) -> None:
    path = write(tmp_path / "quiet.wav", audio, 16_000, "FLOAT")
    with pytest.raises(AcquisitionError, match="no speech: the recording is silent"):
        load_recording(path, VOICE)


def test_too_little_speech_is_a_failure_to_acquire(tmp_path: Path) -> None:
    audio = with_silence(speech_like(0.05), 16_000, before_s=1.0, after_s=1.0)
    with pytest.raises(AcquisitionError, match=r"under 0.1 s of speech: only 0.0\d s"):
        load_recording(write(tmp_path / "short.wav", audio, 16_000), VOICE)


def test_heavy_clipping_is_refused_but_a_loud_clean_clip_is_not(tmp_path: Path) -> None:
    clipped = np.clip(speech_like(1.0) * 6.0, -1.0, 1.0)
    with pytest.raises(InputError, match="heavy clipping: .* sits flat at full level"):
        load_recording(write(tmp_path / "clipped.wav", clipped, 16_000, "PCM_16"), VOICE)
    loud = speech_like(1.0) / 0.5 * 0.999
    assert load_recording(write(tmp_path / "loud.wav", loud, 16_000, "PCM_16"), VOICE)
    t = np.arange(16_000) / 16_000
    full_scale_sine = np.sin(2 * np.pi * 200 * t)
    assert clipped_samples(full_scale_sine[:, None].astype(np.float32), "FLOAT") == 0


def test_too_long_is_refused_from_the_header_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "long.wav"
    with soundfile.SoundFile(path, "w", samplerate=8_000, channels=1, subtype="PCM_16") as out:
        out.write(np.zeros(31 * 8_000, dtype=np.int16))

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("samples were decoded")

    monkeypatch.setattr(soundfile.SoundFile, "read", no_decoding)
    with pytest.raises(InputError, match=r"lasts 31.0 s, longer than the 30 s maximum"):
        load_recording(path, VOICE)


def test_the_maximum_duration_is_a_setting(tmp_path: Path) -> None:
    path = write(tmp_path / "two.wav", speech_like(2.0), 16_000)
    with pytest.raises(InputError, match="longer than the 1.5 s maximum"):
        load_recording(path, VoiceSettings(max_duration_s=1.5))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_samples_are_refused(tmp_path: Path, bad: float) -> None:
    audio = speech_like(1.0)
    audio[500] = bad
    with pytest.raises(InputError, match="NaN or infinite sample values"):
        load_recording(write(tmp_path / "nan.wav", audio, 16_000, "FLOAT"), VOICE)


def test_a_text_file_named_wav_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    with pytest.raises(InputError, match=r"notes.wav: not a readable audio file"):
        load_recording(path, VOICE)


def test_zero_byte_and_missing_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(InputError, match="the file is empty"):
        load_recording(tmp_path / "empty.wav", VOICE)
    with pytest.raises(InputError, match="no such file"):
        load_recording(tmp_path / "missing.wav", VOICE)


def test_a_wav_without_samples_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "none.wav", np.zeros(0, dtype=np.float32), 16_000)
    with pytest.raises(InputError, match="holds no audio samples"):
        load_recording(path, VOICE)


def test_a_truncated_wav_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "whole.wav", speech_like(2.0), 16_000)
    data = path.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"truncated: its header announces 2.00 s"):
        load_recording(tmp_path / "cut.wav", VOICE)
    (tmp_path / "header.wav").write_bytes(data[:30])
    with pytest.raises(InputError, match="not a readable audio file"):
        load_recording(tmp_path / "header.wav", VOICE)


def test_a_truncated_flac_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "whole.flac", speech_like(2.0), 16_000)
    data = path.read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt or truncated|not a readable audio file"):
        load_recording(tmp_path / "cut.flac", VOICE)


def test_read_audio_keeps_the_file_as_stored(tmp_path: Path) -> None:
    frames = np.stack([speech_like(0.5, 22_050), speech_like(0.5, 22_050, seed=2)], axis=1)
    decoded = read_audio(write(tmp_path / "s.flac", frames, 22_050), max_duration_s=30)
    assert decoded.samples.shape == (11_025, 2) and decoded.sample_rate == 22_050
    assert decoded.format == "FLAC" and decoded.subtype == "PCM_16"


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("yes_approve_2.wav", "yes_approve"),
        ("yes_approve.wav", "yes_approve"),
        ("7_12.wav", "7"),
        ("confirm_transaction_10.flac", "confirm_transaction"),
        ("take_2b.wav", "take_2b"),
    ],
)
def test_phrase_is_the_stem_without_its_take_number(name: str, phrase: str) -> None:
    assert phrase_from_filename(Path("data/raw/voices/ana") / name) == phrase
