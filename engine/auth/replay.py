"""Replay defence: is a presented file one of the member's own enrolment files, or nearly so?

An attacker who obtains a member's enrolment photo or recording (a leaked backup, a copy of the
workspace) can present it as is, or re-encoded. Three checks catch that:

- byte identity: the probe's SHA-256 equals an enrolment file's;
- photos: registered back onto an enrolment photo (rotation, scale, mirror image, crop, gain),
  a copy differs from it by no more than ``settings.auth.replay_photo_residual`` grey levels in
  any block, where a new take of the same person differs somewhere (engine.auth.replay_photos);
- recordings: the best correlation of two fine log-frequency spectrograms over time shifts, time
  scales and frequency shifts (engine.auth.replay_recordings) at or above
  ``settings.auth.replay_audio_similarity`` survives re-encoding, resampling, noise, gain,
  leading/trailing silence and playback-rate or tempo changes of a few percent, where a new take
  of the same word by the same speaker, whose harmonics fall elsewhere, stays below.

The default bounds were chosen on the shared datasets (docs/BENCHMARKS.md, "Replay defence").

The enrolment files' hashes and fingerprints are kept in the audit store so that a login need
not read every enrolment file again; each record carries this installation's MAC
(``sample_seal``), and a record whose seal does not verify (edited in mmauth.db, or written
before records were sealed) is made again from its file before the check uses it: whoever can
write the workspace cannot swap a member's fingerprints for another's to let that member's own
files through.

Limits, stated plainly: this is not liveness detection (ISO/IEC 30107 presentation attack
detection). It catches replays of the enrolment files themselves. It does not catch a new photo
of the member printed or shown on a screen, a recording of the member made elsewhere, a heavily
edited (filtered, retouched, brightened until it clips) copy, or synthetic speech.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np

from engine.auth.store import AuditStore, SampleRecord
from engine.core.blas import single_threaded_blas
from engine.core.errors import InputError
from engine.core.fileio import file_sha256
from engine.core.installation import installation_mac, signing_key
from engine.core.settings import Settings
from engine.core.workspace import Workspace, member_folders

if TYPE_CHECKING:
    from engine.auth.replay_photos import PhotoTemplate
    from engine.auth.replay_recordings import EnrolledTake
    from engine.voices.audio import Recording

FACE = "face"
VOICE = "voice"
SEAL_PURPOSE = "enrolment-sample"
MAX_PREPARED_TAKES = 2000
"""Enrolment recordings a guard keeps prepared for the copy search, the most recently compared
ones (about 0.2 GiB: docs/BENCHMARKS.md, "Replay defence"); others are prepared again."""


# Photos ---------------------------------------------------------------------------------------


def photo_fingerprint(image: np.ndarray) -> bytes:
    """What the store keeps of an enrolment photo: its grey thumbnail (engine.auth.replay_photos)."""
    from engine.auth.replay_photos import encode_thumbnail, photo_thumbnail

    return encode_thumbnail(photo_thumbnail(image))


def image_fingerprint(path: Path, settings: Settings) -> bytes:
    """``photo_fingerprint`` of an image file; raises InputError when it cannot be decoded."""
    from engine.faces.extract import read_probe_photo

    return photo_fingerprint(read_probe_photo(path, settings).pixels)


# Recordings -----------------------------------------------------------------------------------


def audio_fingerprint(path: Path, settings: Settings) -> bytes:
    """The log-frequency spectrogram of a recording's speech (engine.auth.replay_recordings);
    raises InputError (AcquisitionError for silence) like the voice pipeline's loader."""
    from engine.auth.replay_recordings import encode_spectrogram, log_frequency_spectrogram
    from engine.voices.audio import load_recording

    recording = load_recording(path, settings.voice)
    with single_threaded_blas():
        spectrogram = log_frequency_spectrogram(recording.samples, recording.sample_rate)
    return encode_spectrogram(spectrogram)


# The guard ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ReplayVerdict:
    """Whether a presented file looks like a replayed enrolment file."""

    suspected: bool
    modality: str | None = None
    """``face`` or ``voice`` for the file that matched."""
    matched: str | None = None
    """The enrolment file it matches (workspace-relative)."""
    how: str = ""
    """``identical`` (same bytes) or ``near-identical`` (perceptual match)."""
    face_residual: float | None = None
    """Smallest copy residual to the member's enrolment photos (grey levels; inf when no
    registration held), see engine.auth.replay_photos."""
    voice_similarity: float | None = None
    """Highest fingerprint similarity to the member's enrolment recordings."""

    @property
    def message(self) -> str:
        if not self.suspected:
            return "no enrolment file replayed"
        return (
            f"the {self.modality} is {self.how} to enrolment file {self.matched}: "
            "a copy of an enrolment sample is not accepted"
        )


class ReplayGuard:
    """The enrolment files' hashes and fingerprints, kept in the audit store and in memory."""

    def __init__(self, workspace: Workspace, settings: Settings, store: AuditStore) -> None:
        self.workspace = workspace
        self.settings = settings
        self.store = store
        self._samples: dict[tuple[str, str], list[SampleRecord]] = {}
        self._takes: collections.OrderedDict[tuple[str, str], EnrolledTake] = (
            collections.OrderedDict()
        )
        self._photos: dict[tuple[str, str], PhotoTemplate | None] = {}
        self._key: bytes | None = None
        self._proven: set[tuple[str, str]] = set()
        """(member, modality) whose records were proven since the last sync."""

    def sync(self) -> ReplayGuard:
        """Bring the store up to date with the enrolment folders (new, changed, removed files);
        only files whose size or modification time changed are read again."""
        known = {(s.modality, s.path): s for s in self.store.samples()}
        fresh: list[SampleRecord] = []
        seen: set[tuple[str, str]] = set()
        for modality, folder in (
            (FACE, self.workspace.faces_dir),
            (VOICE, self.workspace.voices_dir),
        ):
            for member, files in member_folders(folder).items():
                for path in files:
                    record = self._sample(modality, member, path, known)
                    if record is None:
                        continue
                    seen.add((modality, record.path))
                    if known.get((modality, record.path)) != record:
                        fresh.append(record)
        if fresh:
            self.store.put_samples(fresh, now=time.time())
        for modality in (FACE, VOICE):
            gone = [path for (m, path) in known if m == modality and (m, path) not in seen]
            if gone:
                self.store.delete_samples(modality, gone)
        self._samples = {}
        self._proven.clear()
        for sample in self.store.samples():
            self._samples.setdefault((sample.member, sample.modality), []).append(sample)
        current = {(s.path, s.sha256) for samples in self._samples.values() for s in samples}
        self._takes = collections.OrderedDict(
            (key, take) for key, take in self._takes.items() if key in current
        )
        return self

    def _sample(
        self, modality: str, member: str, path: Path, known: dict[tuple[str, str], SampleRecord]
    ) -> SampleRecord | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        relative = self.workspace.relative(path)
        previous = known.get((modality, relative))
        if (
            previous is not None
            and previous.member == member
            and previous.size == stat.st_size
            and previous.mtime_ns == stat.st_mtime_ns
            and _current_format(previous)
        ):
            return previous
        return make_sample(self.workspace, self.settings, member, modality, path)

    def _take(self, sample: SampleRecord) -> EnrolledTake:
        """An enrolment recording's fingerprint, decoded and prepared for the copy search once
        per guard (memory per take: docs/BENCHMARKS.md, "Replay defence")."""
        from engine.auth.replay_recordings import decode_spectrogram, enrolled_take

        key = (sample.path, sample.sha256)
        assert sample.fingerprint is not None, "only fingerprinted recordings are compared"
        if key in self._takes:
            self._takes.move_to_end(key)
            return self._takes[key]
        spectrogram = decode_spectrogram(sample.fingerprint)
        assert spectrogram is not None, "sync fingerprints older formats again"
        # Stored as float16: back to its own precision, exactly, at a quarter of the memory.
        take = self._takes[key] = enrolled_take(spectrogram.astype(np.float16))
        # A long-running process meets many members: keep the recently compared takes only.
        while len(self._takes) > MAX_PREPARED_TAKES:
            self._takes.popitem(last=False)
        return take

    def _photo(self, sample: SampleRecord) -> PhotoTemplate | None:
        """An enrolment photo's registration template, built once per guard."""
        from engine.auth.replay_photos import decode_thumbnail, photo_template

        key = (sample.path, sample.sha256)
        if key not in self._photos:
            thumbnail = decode_thumbnail(sample.fingerprint) if sample.fingerprint else None
            self._photos[key] = None if thumbnail is None else photo_template(thumbnail)
        return self._photos[key]

    def samples(self, member: str, modality: str) -> Sequence[SampleRecord]:
        """The member's enrolment records, each proven by its seal or made again from its
        file (see the module docstring); a record whose file is gone is left out. Proven once
        per sync: a login asks for them twice (the copy search and the learnt-files check)."""
        stored = self._samples.get((member, modality), ())
        if (member, modality) in self._proven:
            return stored
        if self._key is None:
            self._key = signing_key()
        folder = self.workspace.faces_dir if modality == FACE else self.workspace.voices_dir
        own = PurePosixPath(self.workspace.relative(folder / member))
        proven = []
        for sample in stored:
            if _sealed(sample, self._key):
                proven.append(sample)
                continue
            # The stored path is not trusted either: only a file named in the member's own
            # folder (compared as written, so that an enrolment file that is a link counts).
            relative = PurePosixPath(sample.path)
            path = self.workspace.root / relative
            if relative.parent == own and relative.name not in ("", ".", "..") and path.is_file():
                proven.append(make_sample(self.workspace, self.settings, member, modality, path))
        if len(proven) != len(stored) or any(s not in stored for s in proven):
            self.store.put_samples([s for s in proven if s not in stored], now=time.time())
            self._samples[(member, modality)] = stored = proven
        # Marked proven only once the proven records are in place: a thread sharing this
        # guard must never take the unproven ones for proven.
        self._proven.add((member, modality))
        return stored

    def check(
        self,
        member: str,
        *,
        face_path: Path | None = None,
        face_sha256: str | None = None,
        voice_path: Path | None = None,
        voice_sha256: str | None = None,
    ) -> ReplayVerdict:
        """Compare the presented files with ``member``'s enrolment files, cheapest test first."""
        from engine.voices.audio import load_recording

        settings = self.settings
        return self.check_decoded(
            member,
            face_sha256=face_sha256,
            voice_sha256=voice_sha256,
            face_fingerprint=None
            if face_path is None
            else lambda: image_fingerprint(face_path, settings),
            voice_recording=None
            if voice_path is None
            else lambda: load_recording(voice_path, settings.voice),
        )

    def check_decoded(
        self,
        member: str,
        *,
        face_sha256: str | None = None,
        voice_sha256: str | None = None,
        face_fingerprint: Callable[[], bytes] | None = None,
        voice_recording: Callable[[], Recording] | None = None,
    ) -> ReplayVerdict:
        """``check`` with the photo's fingerprint and the recording given on demand by the
        caller (from files it has already decoded): only the tests that need them call them.
        The recording itself, not its fingerprint: the copy search plays it back at the rate
        its closest alignment shows (engine.auth.replay_recordings)."""
        faces = self.samples(member, FACE)
        voices = self.samples(member, VOICE)
        for modality, sha, samples in ((FACE, face_sha256, faces), (VOICE, voice_sha256, voices)):
            for sample in samples:
                if sha is not None and sample.sha256 == sha:
                    return ReplayVerdict(True, modality, sample.path, "identical")
        # Recordings that could not be fingerprinted (e.g. too little speech) can only be caught
        # as identical copies, above.
        voices = [s for s in voices if s.fingerprint]
        residual = similarity = None
        templates = [(t, s.path) for s in faces if (t := self._photo(s)) is not None]
        if face_fingerprint is not None and templates:
            from engine.auth.replay_photos import copy_residual, decode_thumbnail, probe_templates

            thumbnail = decode_thumbnail(face_fingerprint())
            assert thumbnail is not None, "photo fingerprints are thumbnails"
            probe = probe_templates(thumbnail)
            residual, closest = min((copy_residual(t, probe), path) for t, path in templates)
            if residual <= self.settings.auth.replay_photo_residual:
                return ReplayVerdict(True, FACE, closest, "near-identical", face_residual=residual)
        if voice_recording is not None and voices:
            from engine.auth.replay_recordings import recording_copy

            recording = voice_recording()
            with single_threaded_blas():
                similarity, index = recording_copy(
                    recording.samples, recording.sample_rate, [self._take(s) for s in voices]
                )
            closest = voices[index].path
            if similarity >= self.settings.auth.replay_audio_similarity:
                return ReplayVerdict(
                    True,
                    VOICE,
                    closest,
                    "near-identical",
                    face_residual=residual,
                    voice_similarity=similarity,
                )
        return ReplayVerdict(False, face_residual=residual, voice_similarity=similarity)


def _current_format(sample: SampleRecord) -> bool:
    """False for a file fingerprinted by an older mmauth (a photo's pHash, a recording's log-mel
    envelope): sync computes it again, so an older workspace keeps working."""
    from engine.auth.replay_photos import decode_thumbnail
    from engine.auth.replay_recordings import FORMAT

    if sample.fingerprint is None:
        return True
    if sample.modality == FACE:
        return decode_thumbnail(sample.fingerprint) is not None
    return sample.fingerprint.startswith(FORMAT)


def make_sample(
    workspace: Workspace, settings: Settings, member: str, modality: str, path: Path
) -> SampleRecord:
    """A sealed store record for an enrolment file: its hash and fingerprint (None if
    undecodable)."""
    stat = path.stat()
    fingerprint_of = image_fingerprint if modality == FACE else audio_fingerprint
    try:
        fingerprint: bytes | None = fingerprint_of(path, settings)
    except InputError:
        fingerprint = None
    record = SampleRecord(
        member=member,
        modality=modality,
        path=workspace.relative(path),
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        sha256=file_sha256(path),
        fingerprint=fingerprint,
    )
    return dataclasses.replace(record, seal=sample_seal(record))


def sample_seal(sample: SampleRecord, key: bytes | None = None) -> str:
    """This installation's MAC of everything the replay check reads from a record."""
    fingerprint = None if sample.fingerprint is None else hashlib.sha256(sample.fingerprint)
    payload = json.dumps(
        [
            sample.member,
            sample.modality,
            sample.path,
            sample.size,
            sample.mtime_ns,
            sample.sha256,
            None if fingerprint is None else fingerprint.hexdigest(),
        ]
    ).encode("utf-8")
    return installation_mac(SEAL_PURPOSE, payload, key)


def _sealed(sample: SampleRecord, key: bytes) -> bool:
    return sample.seal is not None and hmac.compare_digest(sample.seal, sample_seal(sample, key))
