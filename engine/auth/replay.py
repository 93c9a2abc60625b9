"""Replay defence: is a presented file one of the member's own enrolment files, or nearly so?

An attacker who obtains a member's enrolment photo or recording (a leaked backup, a copy of the
workspace) can present it as is, or re-encoded. Three checks catch that:

- byte identity: the probe's SHA-256 equals an enrolment file's;
- photos: a 256-bit DCT perceptual hash (pHash) within ``settings.auth.replay_image_distance``
  bits of an enrolment photo's hash survives re-encoding, resizing and small brightness changes;
- recordings: the best correlation of the two log-mel spectrograms over time shifts (an audio
  fingerprint similarity) at or above ``settings.auth.replay_audio_similarity`` survives
  re-encoding, resampling, gain changes and leading/trailing silence.

The default bounds were measured on the shared datasets (docs/AUTHENTICATION.md).

Limits, stated plainly: this is not liveness detection (ISO/IEC 30107 presentation attack
detection). It catches replays of the enrolment files themselves. It does not catch a new photo
of the member printed or shown on a screen, a recording of the member made elsewhere, a heavily
edited (cropped, rotated, filtered) copy, or synthetic speech.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.auth.store import AuditStore, SampleRecord
from engine.core.blas import single_threaded_blas
from engine.core.errors import InputError
from engine.core.fileio import file_sha256
from engine.core.settings import Settings
from engine.core.workspace import Workspace, member_folders

if TYPE_CHECKING:
    from engine.voices.audio import Recording

FACE = "face"
VOICE = "voice"
HASH_SIDE = 16
"""pHash keeps the HASH_SIDE x HASH_SIDE lowest DCT frequencies of a 32 x 32 thumbnail: 256 bits
(64 bits cannot tell apart two different photos taken by a fixed camera, as in Yale faces)."""
_DCT_INPUT_SIDE = 32
N_MELS = 40
_HOP_S = 0.010
_MIN_OVERLAP = 0.8
"""Alignments must overlap by at least this fraction of the shorter clip."""
_AMIN = 1e-10
"""librosa.power_to_db's floor of power before the logarithm."""
_FLOOR_DB = 60.0
"""The fingerprint keeps this many decibels below the clip's peak."""


# Photos ---------------------------------------------------------------------------------------


def perceptual_hash(image: np.ndarray) -> bytes:
    """256-bit DCT perceptual hash (pHash) of an image (H x W or H x W x C, any dtype), 32 bytes.

    The image is reduced to 32 x 32 grey, its 2-D DCT taken, and each of the 16 x 16 lowest
    frequencies becomes one bit: above or below their median (the DC term is left out of the
    median because it only encodes overall brightness).
    """
    from PIL import Image
    from scipy.fft import dctn

    pixels = np.asarray(image, dtype=np.float64)
    if pixels.ndim == 3:
        pixels = pixels[..., :3].mean(axis=2)
    if pixels.ndim != 2 or min(pixels.shape) < 1:
        raise ValueError(f"expected an image array, got shape {np.shape(image)}")
    small = Image.fromarray(pixels.astype(np.float32), mode="F").resize(
        (_DCT_INPUT_SIDE, _DCT_INPUT_SIDE), Image.Resampling.BOX
    )
    low = dctn(np.asarray(small, dtype=np.float64), norm="ortho")[:HASH_SIDE, :HASH_SIDE].ravel()
    bits = low > np.median(low[1:])
    return np.packbits(bits).tobytes()


def hash_distance(first: bytes, second: bytes) -> int:
    """Hamming distance in bits between two perceptual hashes."""
    a = np.frombuffer(first, dtype=np.uint8)
    b = np.frombuffer(second, dtype=np.uint8)
    return int(np.unpackbits(np.bitwise_xor(a, b)).sum())


def image_fingerprint(path: Path, settings: Settings) -> bytes:
    """pHash of an image file; raises InputError when the file cannot be decoded."""
    from engine.faces.extract import read_probe_photo

    return perceptual_hash(read_probe_photo(path, settings).pixels)


# Recordings -----------------------------------------------------------------------------------


def log_mel_envelope(y: np.ndarray, sr: int) -> np.ndarray:
    """Log-mel spectrogram in dB below the clip's peak (floored at -60 dB), frames x N_MELS,
    float32: the audio fingerprint of a clip (librosa's centred, Hann-windowed STFT and Slaney
    mel filterbank, computed by engine.voices.features without importing librosa)."""
    from engine.voices.features import mel_basis, stft_magnitude

    hop = max(1, int(round(_HOP_S * sr)))
    n_fft = 4 * hop
    magnitude = stft_magnitude(
        np.asarray(y, dtype=np.float32), n_fft=n_fft, hop_length=hop, win_length=n_fft
    )
    mel = mel_basis(sr, n_fft, N_MELS) @ np.square(magnitude)
    decibels = 10.0 * np.log10(np.maximum(mel, _AMIN))
    decibels -= 10.0 * np.log10(max(_AMIN, float(mel.max())))
    return np.maximum(decibels, decibels.max() - _FLOOR_DB).T.astype(np.float32)


def envelope_similarity(first: np.ndarray, second: np.ndarray) -> float:
    """Best correlation of two log-mel envelopes over time shifts (1.0 = identical).

    Each band's mean over the overlapping frames is removed before correlating, so what is
    compared is how the spectrum moves in time, not the speaker's average timbre (two takes of
    one phrase by one speaker share that, and correlate at about 0.96 at most on FSDD). Shifts
    keep at least 80% of the shorter clip overlapped; a gain change is a constant in dB, which
    the mean removal cancels. Every shift is computed at once from a sliding-window product and
    running sums.
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        return 0.0
    if len(a) > len(b):
        a, b = b, a
    shorter, longer, bands = len(a), len(b), a.shape[1]
    min_overlap = max(1, int(np.ceil(_MIN_OVERLAP * shorter)))
    shifts = np.arange(min_overlap - shorter, longer - min_overlap + 1)
    padding = np.zeros((shorter - 1, bands))
    windows = np.lib.stride_tricks.sliding_window_view(
        np.concatenate([padding, b, padding]), shorter, axis=0
    )
    products = np.einsum("kbi,ib->kb", windows, a)[shifts + shorter - 1]
    start = np.maximum(0, -shifts)
    end = np.minimum(shorter, longer - shifts)
    length = (end - start)[:, None]

    def window_sums(values: np.ndarray, first_row: np.ndarray, last_row: np.ndarray):
        running = np.vstack([np.zeros((1, bands)), np.cumsum(values, axis=0)])
        squares = np.vstack([np.zeros((1, bands)), np.cumsum(values * values, axis=0)])
        return running[last_row] - running[first_row], squares[last_row] - squares[first_row]

    sum_a, squares_a = window_sums(a, start, end)
    sum_b, squares_b = window_sums(b, start + shifts, end + shifts)
    covariance = (products - sum_a * sum_b / length).sum(axis=1)
    variance_a = np.clip((squares_a - sum_a**2 / length).sum(axis=1), 0.0, None)
    variance_b = np.clip((squares_b - sum_b**2 / length).sum(axis=1), 0.0, None)
    denominator = np.sqrt(variance_a * variance_b)
    usable = denominator > 0
    if not usable.any():
        return 0.0
    return float(max(0.0, (covariance[usable] / denominator[usable]).max()))


def audio_fingerprint(path: Path, settings: Settings) -> bytes:
    """The log-mel envelope of a recording's speech as float16 bytes (N_MELS values per frame);
    raises InputError (AcquisitionError for silence) like the voice pipeline's loader."""
    from engine.voices.audio import load_recording

    return recording_fingerprint(load_recording(path, settings.voice))


def recording_fingerprint(recording: Recording) -> bytes:
    """``audio_fingerprint`` of an already loaded recording."""
    with single_threaded_blas():
        envelope = log_mel_envelope(recording.samples, recording.sample_rate)
    return envelope.astype(np.float16).tobytes()


def decode_envelope(fingerprint: bytes) -> np.ndarray:
    return np.frombuffer(fingerprint, dtype=np.float16).reshape(-1, N_MELS)


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
    face_distance: int | None = None
    """Smallest pHash distance to the member's enrolment photos (bits of 64)."""
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
        self._envelopes: dict[tuple[str, str], np.ndarray] = {}

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
        for sample in self.store.samples():
            self._samples.setdefault((sample.member, sample.modality), []).append(sample)
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
        ):
            return previous
        return make_sample(self.workspace, self.settings, member, modality, path)

    def _envelope(self, sample: SampleRecord) -> np.ndarray:
        """An enrolment recording's fingerprint, decoded once per guard."""
        key = (sample.path, sample.sha256)
        if key not in self._envelopes:
            self._envelopes[key] = decode_envelope(sample.fingerprint).astype(np.float64)
        return self._envelopes[key]

    def samples(self, member: str, modality: str) -> Sequence[SampleRecord]:
        return self._samples.get((member, modality), ())

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
        settings = self.settings
        return self.check_decoded(
            member,
            face_sha256=face_sha256,
            voice_sha256=voice_sha256,
            face_hash=None if face_path is None else lambda: image_fingerprint(face_path, settings),
            voice_fingerprint=None
            if voice_path is None
            else lambda: audio_fingerprint(voice_path, settings),
        )

    def check_decoded(
        self,
        member: str,
        *,
        face_sha256: str | None = None,
        voice_sha256: str | None = None,
        face_hash: Callable[[], bytes] | None = None,
        voice_fingerprint: Callable[[], bytes] | None = None,
    ) -> ReplayVerdict:
        """``check`` with the probes' pHash and audio fingerprint computed on demand by the
        caller (from files it has already decoded): only the tests that need them call them."""
        faces = self.samples(member, FACE)
        voices = self.samples(member, VOICE)
        for modality, sha, samples in ((FACE, face_sha256, faces), (VOICE, voice_sha256, voices)):
            for sample in samples:
                if sha is not None and sample.sha256 == sha:
                    return ReplayVerdict(True, modality, sample.path, "identical")
        distance = similarity = None
        if face_hash is not None and faces:
            probe = face_hash()
            distance, closest = min(
                (hash_distance(probe, s.fingerprint), s.path) for s in faces if s.fingerprint
            )
            if distance <= self.settings.auth.replay_image_distance:
                return ReplayVerdict(True, FACE, closest, "near-identical", face_distance=distance)
        if voice_fingerprint is not None and voices:
            probe_envelope = decode_envelope(voice_fingerprint())
            similarity, closest = max(
                (envelope_similarity(probe_envelope, self._envelope(s)), s.path)
                for s in voices
                if s.fingerprint
            )
            if similarity >= self.settings.auth.replay_audio_similarity:
                return ReplayVerdict(
                    True,
                    VOICE,
                    closest,
                    "near-identical",
                    face_distance=distance,
                    voice_similarity=similarity,
                )
        return ReplayVerdict(False, face_distance=distance, voice_similarity=similarity)


def make_sample(
    workspace: Workspace, settings: Settings, member: str, modality: str, path: Path
) -> SampleRecord:
    """A store record for an enrolment file: its hash and fingerprint (None if undecodable)."""
    stat = path.stat()
    fingerprint_of = image_fingerprint if modality == FACE else audio_fingerprint
    try:
        fingerprint: bytes | None = fingerprint_of(path, settings)
    except InputError:
        fingerprint = None
    return SampleRecord(
        member=member,
        modality=modality,
        path=workspace.relative(path),
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        sha256=file_sha256(path),
        fingerprint=fingerprint,
    )
