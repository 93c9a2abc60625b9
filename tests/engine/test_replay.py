"""Replay defence: identical and near-identical copies of enrolment files are caught, other
samples are not."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine.auth.replay import ReplayGuard, audio_fingerprint, photo_fingerprint
from engine.auth.replay_photos import (
    copy_residual,
    decode_thumbnail,
    photo_template,
    photo_thumbnail,
    probe_templates,
)
from engine.auth.replay_recordings import (
    FORMAT,
    N_BINS,
    closest_copy,
    copy_similarity,
    decode_spectrogram,
    encode_spectrogram,
    enrolled_take,
    log_frequency_spectrogram,
    recording_copy,
)
from engine.auth.store import AuditStore
from engine.core.errors import InputError
from engine.core.settings import Settings
from engine.core.workspace import Workspace
from tests.engine.replay_fixtures import (
    SAMPLE_RATE,
    blob_image,
    syllables,
    write_audio,
    write_image,
)

SETTINGS = Settings()


def test_photo_fingerprint_is_a_thumbnail_that_round_trips() -> None:
    image = blob_image(1)
    thumbnail = decode_thumbnail(photo_fingerprint(image))
    assert thumbnail is not None and max(thumbnail.shape) == 128
    assert np.array_equal(thumbnail, photo_thumbnail(image[..., 0]))
    assert decode_thumbnail(b"\x00" * 32) is None  # an older store's pHash


def _residual(enrolled: np.ndarray, probe: np.ndarray) -> float:
    return copy_residual(
        photo_template(photo_thumbnail(enrolled)), probe_templates(photo_thumbnail(probe))
    )


def test_copy_residual_is_small_for_mirrored_rotated_cropped_copies() -> None:
    from PIL import Image

    image = Image.fromarray(blob_image(1))
    copies = {
        "mirrored": image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        "rotated": image.rotate(4, resample=Image.Resampling.BILINEAR),
        "cropped": image.crop((5, 5, 155, 155)),
        "half size": image.resize((80, 80)),
    }
    for name, copy in copies.items():
        assert _residual(blob_image(1), np.asarray(copy)) <= SETTINGS.auth.replay_photo_residual, (
            name
        )


def test_copy_residual_separates_different_images() -> None:
    residuals = [_residual(blob_image(a), blob_image(b)) for a, b in [(1, 2), (3, 4), (5, 6)]]
    assert min(residuals) > SETTINGS.auth.replay_photo_residual


def test_a_brightened_yale_photo_whose_highlights_clip_is_still_a_copy(
    shared_yalefaces: Path,
) -> None:
    from PIL import Image, ImageEnhance

    photo = Image.open(shared_yalefaces / "subject03.normal").convert("RGB")
    brightened = np.asarray(ImageEnhance.Brightness(photo).enhance(1.1))
    assert (brightened == 255).mean() > (np.asarray(photo) == 255).mean()  # highlights clipped
    bound = SETTINGS.auth.replay_photo_residual
    assert _residual(np.asarray(photo), brightened) <= bound
    other = Image.open(shared_yalefaces / "subject03.happy").convert("RGB")
    assert _residual(np.asarray(photo), np.asarray(other)) > bound


def test_photo_thumbnail_refuses_non_images() -> None:
    with pytest.raises(ValueError, match="expected an image"):
        photo_thumbnail(np.zeros(5))


def _spectrogram(samples: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    return log_frequency_spectrogram(samples, sr).astype(np.float64)


def _played_at(samples: np.ndarray, factor: float) -> np.ndarray:
    """The clip played ``factor`` times faster: time and pitch scale together."""
    import soxr

    return soxr.resample(samples, SAMPLE_RATE * factor, SAMPLE_RATE, quality="HQ")


def test_copy_similarity_is_one_for_identical_and_survives_shift_and_gain() -> None:
    clip = syllables(1)
    spectrogram = _spectrogram(clip)
    assert copy_similarity(spectrogram, spectrogram) == pytest.approx(1.0)
    shifted = np.concatenate([np.zeros(1600, dtype=np.float32), 0.5 * clip])
    assert copy_similarity(_spectrogram(shifted), spectrogram) > 0.99
    other = _spectrogram(syllables(2))
    assert copy_similarity(other, spectrogram) < SETTINGS.auth.replay_audio_similarity


@pytest.mark.parametrize("factor", [0.97, 1.03, 1.05])
def test_a_copy_played_faster_or_slower_is_still_a_copy(factor: float) -> None:
    clip = syllables(3)
    similarity = copy_similarity(_spectrogram(_played_at(clip, factor)), _spectrogram(clip))
    assert similarity >= SETTINGS.auth.replay_audio_similarity


def _stored(samples: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """An enrolment take as the replay guard keeps it: through the float16 fingerprint."""
    spectrogram = decode_spectrogram(encode_spectrogram(log_frequency_spectrogram(samples, sr)))
    assert spectrogram is not None
    return spectrogram.astype(np.float16)


@pytest.mark.parametrize("factor", [0.95, 0.97, 1.03, 1.05])
def test_recording_copy_played_faster_or_slower_comes_back_to_its_take(factor: float) -> None:
    clip = syllables(3)
    takes = [_stored(syllables(seed)) for seed in (1, 2, 3)]
    similarity, index = recording_copy(_played_at(clip, factor), SAMPLE_RATE, takes)
    assert index == 2 and similarity > 0.99
    fresh, _ = recording_copy(syllables(4), SAMPLE_RATE, takes)
    assert fresh < SETTINGS.auth.replay_audio_similarity


def test_recording_copy_scores_an_unaltered_recording_as_the_spectrogram_search() -> None:
    """No playback rate to undo: the one search decides, on the fingerprint's precision."""
    clip, take = syllables(5), _stored(syllables(5))
    probe = _stored(clip).astype(np.float64)
    assert recording_copy(clip, SAMPLE_RATE, [take]) == closest_copy(probe, [take])


@pytest.mark.parametrize("factor", [0.95, 1.05])
def test_fsdd_take_played_5_percent_faster_or_slower_is_caught(
    shared_fsdd: Path, factor: float
) -> None:
    """A take whose copies the spectrogram search alone scores under the bound: played back at
    the rate its alignment shows, the copy is its take again."""
    from engine.voices.audio import load_recording

    take = load_recording(shared_fsdd / "3_theo_5.wav", SETTINGS.voice)
    copy = _played_at(take.samples, factor)
    stored = enrolled_take(_stored(take.samples))
    bound = SETTINGS.auth.replay_audio_similarity
    assert closest_copy(_stored(copy).astype(np.float64), [stored])[0] < bound
    assert recording_copy(copy, SAMPLE_RATE, [stored])[0] >= bound


@pytest.mark.parametrize(
    "first, second", [("4_george_18", "4_george_19"), ("2_nicolas_2", "2_nicolas_3")]
)
def test_fsdd_closest_distinct_takes_are_not_copies(
    shared_fsdd: Path, first: str, second: str
) -> None:
    """The two most similar distinct takes of one speaker and digit in the development part
    (docs/BENCHMARKS.md, "Replay defence"), either way round."""
    from engine.voices.audio import load_recording

    takes = [
        load_recording(shared_fsdd / f"{name}.wav", SETTINGS.voice) for name in (first, second)
    ]
    bound = SETTINGS.auth.replay_audio_similarity
    for probe, take in (takes, takes[::-1]):
        similarity, _ = recording_copy(probe.samples, SAMPLE_RATE, [_stored(take.samples)])
        assert similarity < bound


@pytest.mark.parametrize(
    "first, second",
    [(np.zeros((0, N_BINS)), np.zeros((5, N_BINS))), (np.zeros((5, N_BINS)), np.zeros((5, 20)))],
    ids=["empty", "bin-mismatch"],
)
def test_copy_similarity_of_unusable_spectrograms_is_zero(first, second) -> None:
    assert copy_similarity(first, second) == 0.0


def test_audio_fingerprint_refuses_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(InputError):
        audio_fingerprint(path, SETTINGS)


@pytest.fixture
def enrolled(workspace: Workspace) -> tuple[Workspace, ReplayGuard]:
    write_image(workspace.faces_dir / "alice" / "front.png", blob_image(10))
    write_image(workspace.faces_dir / "bob" / "front.png", blob_image(20))
    write_audio(workspace.voices_dir / "alice" / "hello_0.wav", syllables(10))
    guard = ReplayGuard(workspace, SETTINGS, AuditStore(workspace.database)).sync()
    return workspace, guard


def _check(guard: ReplayGuard, member: str, face: Path | None = None, voice: Path | None = None):
    from engine.core.fileio import file_sha256

    return guard.check(
        member,
        face_path=face,
        face_sha256=file_sha256(face) if face else None,
        voice_path=voice,
        voice_sha256=file_sha256(voice) if voice else None,
    )


def test_byte_identical_photo_is_a_replay(enrolled, tmp_path: Path) -> None:
    workspace, guard = enrolled
    copy = tmp_path / "copy.png"
    copy.write_bytes((workspace.faces_dir / "alice" / "front.png").read_bytes())
    verdict = _check(guard, "alice", face=copy)
    assert verdict.suspected and verdict.how == "identical" and verdict.modality == "face"
    assert "data/raw/faces/alice/front.png" in verdict.message


def test_reencoded_photo_is_a_near_identical_replay(enrolled, tmp_path: Path) -> None:
    _, guard = enrolled
    copy = write_image(tmp_path / "copy.jpg", blob_image(10), quality=85)
    verdict = _check(guard, "alice", face=copy)
    assert verdict.suspected and verdict.how == "near-identical"
    assert verdict.face_residual <= SETTINGS.auth.replay_photo_residual


def test_other_members_photo_is_not_this_members_replay(enrolled, tmp_path: Path) -> None:
    workspace, guard = enrolled
    verdict = _check(guard, "alice", face=workspace.faces_dir / "bob" / "front.png")
    assert not verdict.suspected
    assert verdict.face_residual > SETTINGS.auth.replay_photo_residual


def test_recording_replays(enrolled, tmp_path: Path) -> None:
    _, guard = enrolled
    quieter = write_audio(tmp_path / "quieter.wav", 0.3 * syllables(10))
    resampled = write_audio(tmp_path / "resampled.flac", syllables(10)[::2], SAMPLE_RATE // 2)
    faster = write_audio(tmp_path / "faster.wav", _played_at(syllables(10), 1.05))
    fresh = write_audio(tmp_path / "fresh.wav", syllables(11))
    for copy in (quieter, resampled, faster):
        verdict = _check(guard, "alice", voice=copy)
        assert verdict.suspected and verdict.modality == "voice", copy.name
    verdict = _check(guard, "alice", voice=fresh)
    assert not verdict.suspected
    assert verdict.voice_similarity < SETTINGS.auth.replay_audio_similarity


def test_guard_keeps_only_the_recently_compared_takes_prepared(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long-running process must not hold every member's prepared takes; a take prepared
    again gives the same verdict."""
    from engine.auth import replay

    monkeypatch.setattr(replay, "MAX_PREPARED_TAKES", 2)
    for take in range(3):
        write_audio(workspace.voices_dir / "alice" / f"hello_{take}.wav", syllables(10 + take))
    guard = ReplayGuard(workspace, SETTINGS, AuditStore(workspace.database)).sync()
    copy = write_audio(tmp_path / "copy.wav", 0.5 * syllables(12))
    first = _check(guard, "alice", voice=copy)
    assert first.suspected and len(guard._takes) == 2
    again = _check(guard, "alice", voice=copy)
    assert again.voice_similarity == first.voice_similarity and len(guard._takes) == 2


def test_fingerprint_of_stored_sample_round_trips(enrolled) -> None:
    _, guard = enrolled
    (sample,) = guard.samples("alice", "voice")
    assert sample.fingerprint.startswith(FORMAT)
    assert decode_spectrogram(sample.fingerprint).shape[1] == N_BINS
    assert decode_spectrogram(np.zeros((5, 40), dtype=np.float16).tobytes()) is None


def test_sync_fingerprints_again_a_recording_stored_by_an_older_mmauth(enrolled) -> None:
    import dataclasses

    _, guard = enrolled
    (sample,) = guard.samples("alice", "voice")
    legacy = dataclasses.replace(
        sample, fingerprint=np.full((30, 40), -20.0, dtype=np.float16).tobytes()
    )
    guard.store.put_samples([legacy], now=0.0)
    (refreshed,) = guard.sync().samples("alice", "voice")
    assert refreshed.fingerprint == sample.fingerprint


def test_sync_follows_added_changed_and_removed_files(enrolled) -> None:
    workspace, guard = enrolled
    store = guard.store
    (workspace.faces_dir / "bob" / "front.png").unlink()
    write_image(workspace.faces_dir / "alice" / "side.png", blob_image(11))
    guard.sync()
    paths = {s.path for s in store.samples()}
    assert "data/raw/faces/alice/side.png" in paths
    assert "data/raw/faces/bob/front.png" not in paths
    assert guard.samples("bob", "face") == ()


def test_a_record_given_another_members_fingerprints_is_made_again(
    enrolled, tmp_path: Path
) -> None:
    """Whoever can write mmauth.db copies bob's hash and fingerprint onto alice's record, keeping
    its path, size and time (so sync does not read the file again): the seal does not verify,
    the record is made again from alice's file, and her own photo is still caught."""
    import dataclasses

    workspace, guard = enrolled
    store = guard.store
    (alice,) = store.samples("alice", "face")
    (bob,) = store.samples("bob", "face")
    forged = dataclasses.replace(alice, sha256=bob.sha256, fingerprint=bob.fingerprint)
    store.put_samples([forged], now=0.0)
    fresh = ReplayGuard(workspace, SETTINGS, store).sync()
    verdict = _check(fresh, "alice", face=workspace.faces_dir / "alice" / "front.png")
    assert verdict.suspected and verdict.how == "identical"
    assert store.samples("alice", "face") == [alice]


def test_records_being_proven_are_not_handed_out_unproven(enrolled) -> None:
    """A second caller of a shared guard (another thread's login) asking while the first is
    still storing the remade records gets proven ones, never the forged record."""
    import dataclasses

    workspace, guard = enrolled
    store = guard.store
    (alice,) = store.samples("alice", "face")
    (bob,) = store.samples("bob", "face")
    store.put_samples([dataclasses.replace(alice, sha256=bob.sha256)], now=0.0)
    fresh = ReplayGuard(workspace, SETTINGS, store).sync()
    put_samples = store.put_samples
    meanwhile: list = []

    def second_caller_meanwhile(samples, now):
        if not meanwhile:
            meanwhile.append(None)
            meanwhile[0] = fresh.samples("alice", "face")
        return put_samples(samples, now=now)

    store.put_samples = second_caller_meanwhile  # type: ignore[method-assign]
    assert [s.sha256 for s in fresh.samples("alice", "face")] == [alice.sha256]
    assert [s.sha256 for s in meanwhile[0]] == [alice.sha256]


def test_unsealed_records_are_sealed_and_foreign_paths_dropped(enrolled) -> None:
    """Records from before seals are fingerprinted again when first used; a record pointing
    outside the member's own folder is not trusted, whatever it holds."""
    import dataclasses

    workspace, guard = enrolled
    store = guard.store
    (alice,) = store.samples("alice", "face")
    store.put_samples([dataclasses.replace(alice, seal=None)], now=0.0)
    stray = dataclasses.replace(alice, path="data/raw/faces/bob/front.png", seal=None)
    guard.sync()
    guard._samples[("alice", "face")] = [*guard._samples[("alice", "face")], stray]
    assert guard.samples("alice", "face") == [alice]
    assert store.samples("alice", "face") == [alice]


def test_an_unsealed_record_of_a_linked_enrolment_file_is_made_again(
    enrolled, tmp_path: Path
) -> None:
    """An enrolment file that is a link to a file elsewhere is the member's file all the same:
    its record from before seals is fingerprinted again, not dropped."""
    import dataclasses

    workspace, guard = enrolled
    elsewhere = write_image(tmp_path / "shared" / "side.png", blob_image(12))
    (workspace.faces_dir / "alice" / "side.png").symlink_to(elsewhere)
    guard.sync()
    (linked,) = [s for s in guard.store.samples("alice", "face") if s.path.endswith("side.png")]
    guard.store.put_samples([dataclasses.replace(linked, seal=None)], now=0.0)
    fresh = ReplayGuard(workspace, SETTINGS, guard.store).sync()
    assert linked in fresh.samples("alice", "face")
    assert _check(fresh, "alice", face=elsewhere).suspected


def test_undecodable_enrolment_file_keeps_its_hash(workspace: Workspace, tmp_path: Path) -> None:
    broken = workspace.faces_dir / "carol" / "broken.png"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a png at all")
    guard = ReplayGuard(workspace, SETTINGS, AuditStore(workspace.database)).sync()
    (sample,) = guard.samples("carol", "face")
    assert sample.fingerprint is None
    copy = tmp_path / "copy.png"
    copy.write_bytes(broken.read_bytes())
    assert _check(guard, "carol", face=copy).suspected


def test_member_whose_enrolment_files_have_no_fingerprint_is_checked_by_hash_only(
    workspace: Workspace, tmp_path: Path
) -> None:
    # A member whose every recording is unusable (e.g. too short to fingerprint) must not make
    # the check fail for a new, different recording.
    broken = workspace.voices_dir / "carol" / "hello_0.wav"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a recording")
    (workspace.faces_dir / "carol").mkdir(parents=True)
    (workspace.faces_dir / "carol" / "broken.png").write_bytes(b"not a png at all")
    guard = ReplayGuard(workspace, SETTINGS, AuditStore(workspace.database)).sync()
    photo = write_image(tmp_path / "photo.png", blob_image(10))
    fresh = write_audio(tmp_path / "fresh.wav", syllables(11))
    verdict = _check(guard, "carol", face=photo, voice=fresh)
    assert not verdict.suspected
    assert verdict.face_residual is None and verdict.voice_similarity is None


def test_replay_step_says_a_photo_that_registers_nowhere_is_not_a_copy() -> None:
    """No registration gives an infinite residual, which is not a figure to show a person."""
    from engine.auth.flow import replay_details
    from engine.auth.replay import ReplayVerdict

    shown = replay_details(
        ReplayVerdict(suspected=False, face_residual=math.inf, voice_similarity=0.81),
        SETTINGS.auth,
        recording_usable=True,
    )
    assert "inf" not in shown and "does not register onto any enrolment photo" in shown
    assert "recording similarity 0.810" in shown
    measured = replay_details(
        ReplayVerdict(suspected=False, face_residual=12.5), SETTINGS.auth, recording_usable=False
    )
    assert "by 12.5 grey levels" in measured and "recording not compared" in measured
