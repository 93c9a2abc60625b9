"""`mmauth sample`: a complete, realistic demo workspace generated from a seed.

Writes the workspace layout every command relies on: customer tables in the assignment's shape
with members.csv, each member's three enrolment photos and enrolment takes of both approval
phrases, and probes (photos and recordings to authenticate) for members and strangers. Every
file is a pure function of the seed and the person's index, so the same seed gives byte-identical
files, and adding strangers does not change the members.

Everything is written into a hidden staging folder inside the workspace first; only when every
file is there does ``data/raw`` get swapped into place (one rename), followed by mmauth.toml. A
failure or cancellation leaves the workspace as it was. A killed run (nothing can clean up after
SIGKILL) leaves its staging folder, which the next run removes; if it was killed in the middle of
the swap, the previous data/raw is in that folder and is put back first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from engine.core.errors import InputError
from engine.core.fileio import atomic_write_text, file_sha256
from engine.core.installation import retire_records
from engine.core.progress import Progress, ProgressCallback, check_cancelled, no_progress
from engine.core.settings import dump_toml
from engine.core.workspace import Workspace, is_empty_workspace
from engine.sample import (
    customers as sample_customers,
    face_parameters,
    face_rendering,
    voices as sample_voices,
)

STAGE = "sample"
STAGING_PREFIX = ".mmauth-sample-"
"""Hidden staging folders inside the workspace; a killed run's is removed by the next run."""
OWNER_FILE = "owner.pid"
PREVIOUS_RAW = "previous-raw"
MEMBER_NAMES = ("alice", "bruno", "chiara", "dmitri", "esther", "farid", "greta", "hiro")
STRANGER_NAMES = ("mallory", "oscar", "trudy", "victor", "wendy", "yusuf", "zora", "quentin")
MAX_MEMBERS = 40
MAX_STRANGERS = 100
CUSTOMERS = 220
FACE_BACKEND = "dlib"
"""The face backend the sample's mmauth.toml names (the default backend, written out so the
workspace says which one it was made for). Both backends find the faces (see
benchmarks/sample_faces.py), but with four members only dlib's pretrained embedding separates
them at a 1% FMR threshold: the classic model rejected 23 of 24 genuine attempts in the demo."""
JOBS = 2
"""Worker processes the sample's mmauth.toml sets: the dlib embedding is the demo's slowest step
and this machine class has two cores."""
ENROLMENT_RETAKES = 8
"""Captures tried per enrolment photo before the person's face is redrawn."""
MEMBER_PROBE_DIFFICULTIES = (0.2, 0.45, 0.7, 0.95)
STRANGER_PROBE_DIFFICULTIES = (0.25, 0.6, 0.9)
ENROL_TAKES = 4
MEMBER_PROBE_TAKES = 3
STRANGER_PROBE_TAKES = 2
WRONG_PHRASE_TAKES = 2
"""Probe takes per member of a phrase they never enrolled (sample_voices.OTHER_PHRASES)."""
LOOKALIKE_EVERY = 3
"""One stranger in this many is a look-alike (face and voice) of a member: the hard impostors."""
MANIFEST_NAME = "sample_manifest.json"
"""Written to data/raw/: the seed, the counts and every file's SHA-256."""

_RELATIVE = Workspace(Path())
"""The layout's paths relative to the workspace folder."""

# Stream identifiers keep each person's random draws independent of everything else.
_FACE_STREAM, _VOICE_STREAM, _CUSTOMER_STREAM = 1, 2, 3
_FACE_IDENTITY_STREAM, _VOICE_IDENTITY_STREAM = 4, 5


@dataclasses.dataclass(frozen=True)
class SampleReport:
    """What `mmauth sample` wrote."""

    root: Path
    """The workspace folder."""
    seed: int
    """Seed every file was drawn from."""
    members: tuple[str, ...]
    """Enrolled people: enrolment photos, enrolment takes, probes and a customer link."""
    strangers: tuple[str, ...]
    """People who only appear as probes."""
    enrolment_photos: int
    probe_photos: int
    enrolment_clips: int
    probe_clips: int
    customers: int
    """Distinct customer ids in the social profiles."""
    transactions: int
    files: int
    """Files written under data/raw (the manifest included) plus mmauth.toml."""
    total_bytes: int
    """Their total size."""
    face_backend: str
    """Face backend set in the workspace's mmauth.toml."""
    enrolment_retakes: int
    """Enrolment photos taken again because a face detector (LBP cascade or dlib) missed the
    face in the first capture."""
    lookalikes: dict[str, str]
    """Strangers drawn to resemble a member (face and voice), stranger -> member."""
    previous_records: Path | None = None
    """Where this installation's records of a deleted workspace at the same path went (see
    engine.core.installation.retire_records); None when there were none."""

    def previous_records_note(self) -> str | None:
        """What happened to the records of a deleted workspace at this path, for the user."""
        if self.previous_records is None:
            return None
        return (
            "this installation kept records (audit log head, trusted models) of an earlier "
            f"workspace at {self.root}, since deleted; they were moved to {self.previous_records}, "
            "and the new workspace's audit log starts afresh"
        )

    def to_dict(self) -> dict[str, object]:
        values = dataclasses.asdict(self)
        values["root"] = str(self.root)
        values["previous_records"] = self.previous_records and str(self.previous_records)
        return values


def write_sample_workspace(
    root: Path,
    members: int = 4,
    strangers: int = 6,
    seed: int = 0,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> SampleReport:
    """Write the sample workspace into ``root``, replacing its data/raw and mmauth.toml.

    The caller decides whether overwriting is allowed (see ``is_empty_workspace``). Into an
    empty folder, the sample is a new workspace: this installation's records of an earlier one
    at the same path are retired once the sample is in place (``SampleReport.previous_records``).
    """
    if not 1 <= members <= MAX_MEMBERS:
        raise InputError(f"members must be between 1 and {MAX_MEMBERS}, not {members}")
    if not 0 <= strangers <= MAX_STRANGERS:
        raise InputError(f"strangers must be between 0 and {MAX_STRANGERS}, not {strangers}")
    if seed < 0:
        raise InputError(f"seed must be zero or positive, not {seed}")
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise InputError("the workspace path is a file, not a folder", path=str(root))
    new_workspace = is_empty_workspace(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        recover_interrupted_run(root)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
        (staging / OWNER_FILE).write_text(str(os.getpid()))
    except OSError as error:
        raise InputError(f"cannot write here: {error.strerror or error}", path=str(root)) from error
    member_names = _names(MEMBER_NAMES, "member", members)
    stranger_names = _names(STRANGER_NAMES, "stranger", strangers)

    try:
        layout = Workspace(staging)
        writer = _Writer(layout, progress, cancel, total=_file_count(members, strangers))
        tables = _write_customers(writer, seed, member_names)
        retakes = 0
        people = _people(member_names, stranger_names)
        for job in _person_jobs(seed, people):
            check_cancelled(cancel, STAGE)
            person = job()
            retakes += person.retakes
            for file in person.files:
                writer.bytes(staging / file.path, file.data, file.kind)
        settings_text = (
            f"# Written by `mmauth sample --seed {seed}`: settings of this demo workspace.\n"
            + dump_toml(
                {
                    "seed": seed,
                    "jobs": JOBS,
                    "face": {"backend": FACE_BACKEND},
                }
            )
        )
        writer.text(layout.settings_file, settings_text)
        manifest = {
            "seed": seed,
            "members": member_names,
            "strangers": stranger_names,
            "lookalikes": {
                person.name: member_names[person.resembles]
                for person in people
                if person.resembles is not None
            },
            "files": {
                path.relative_to(staging).as_posix(): file_sha256(path)
                for path in sorted(writer.written)
            },
        }
        writer.text(layout.raw_dir / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
        check_cancelled(cancel, STAGE)
        total_bytes = sum(path.stat().st_size for path in writer.written)
        _swap_into_place(staging, Workspace(root))
        previous_records = retire_records(root) if new_workspace else None
    except OSError as error:
        raise InputError(
            f"cannot write the sample workspace: {error.strerror or error}", path=str(root)
        ) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    counts = writer.counts
    report = SampleReport(
        root=root,
        seed=seed,
        members=tuple(member_names),
        strangers=tuple(stranger_names),
        enrolment_photos=counts["enrolment_photos"],
        probe_photos=counts["probe_photos"],
        enrolment_clips=counts["enrolment_clips"],
        probe_clips=counts["probe_clips"],
        customers=int(tables.profiles["customer_id_new"].nunique()),
        transactions=len(tables.transactions),
        files=len(writer.written),
        total_bytes=total_bytes,
        face_backend=FACE_BACKEND,
        enrolment_retakes=retakes,
        lookalikes={
            person.name: member_names[person.resembles]
            for person in people
            if person.resembles is not None
        },
        previous_records=previous_records,
    )
    progress(Progress(STAGE, writer.total, writer.total, f"wrote {report.files} files"))
    return report


def _names(preferred: tuple[str, ...], fallback: str, count: int) -> list[str]:
    return [
        preferred[index] if index < len(preferred) else f"{fallback}_{index + 1:02d}"
        for index in range(count)
    ]


def _file_count(members: int, strangers: int) -> int:
    photos = members * (len(face_parameters.EXPRESSIONS) + len(MEMBER_PROBE_DIFFICULTIES))
    photos += strangers * len(STRANGER_PROBE_DIFFICULTIES)
    phrases = len(sample_voices.PHRASES)
    clips = members * phrases * (ENROL_TAKES + MEMBER_PROBE_TAKES)
    clips += members * len(sample_voices.OTHER_PHRASES) * WRONG_PHRASE_TAKES
    clips += strangers * phrases * STRANGER_PROBE_TAKES
    return photos + clips + 4 + 2  # four customer tables, mmauth.toml, the manifest


class _Writer:
    """Writes files into the staging tree, counting them and reporting progress."""

    def __init__(
        self,
        layout: Workspace,
        progress: ProgressCallback,
        cancel: threading.Event | None,
        total: int,
    ) -> None:
        self.layout = layout
        self.progress = progress
        self.cancel = cancel
        self.total = total
        self.written: list[Path] = []
        self.counts = {
            "enrolment_photos": 0,
            "probe_photos": 0,
            "enrolment_clips": 0,
            "probe_clips": 0,
        }

    def bytes(self, path: Path, data: bytes, kind: str | None = None) -> None:
        check_cancelled(self.cancel, STAGE)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self._done(path, kind)

    def text(self, path: Path, text: str) -> None:
        check_cancelled(self.cancel, STAGE)
        atomic_write_text(path, text)
        self._done(path, None)

    def _done(self, path: Path, kind: str | None) -> None:
        self.written.append(path)
        if kind is not None:
            self.counts[kind] += 1
        step = min(len(self.written), self.total)
        self.progress(Progress(STAGE, step, self.total, self.layout.relative(path)))


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])


def _write_customers(
    writer: _Writer, seed: int, member_names: list[str]
) -> sample_customers.CustomerTables:
    tables = sample_customers.make_customer_tables(
        _rng(seed, _CUSTOMER_STREAM), member_names, customers=CUSTOMERS
    )
    folder = writer.layout.customers_dir
    for name, frame in (
        ("customer_social_profiles.csv", tables.profiles),
        ("customer_transactions.csv", tables.transactions),
        ("id_mapping.csv", tables.mapping),
        ("members.csv", tables.members),
    ):
        writer.text(folder / name, frame.to_csv(index=False, lineterminator="\n"))
    return tables


@dataclasses.dataclass(frozen=True)
class _File:
    """One generated file, before it is written."""

    path: Path
    """Where it goes, relative to the workspace."""
    data: bytes
    kind: str
    """Which SampleReport count it adds to."""


@dataclasses.dataclass(frozen=True)
class _PersonFiles:
    """Everything generated for one person in one modality."""

    files: list[_File]
    retakes: int = 0
    """Enrolment photos taken again (faces of members only)."""


@dataclasses.dataclass(frozen=True)
class _Person:
    """Someone in the sample and where their random draws come from."""

    name: str
    index: int
    """Stream index: members 0.., strangers MAX_MEMBERS + their number."""
    is_member: bool
    resembles: int | None = None
    """For a look-alike stranger, the stream index of the member they resemble."""


def _people(member_names: list[str], stranger_names: list[str]) -> list[_Person]:
    """Members, then strangers; the first strangers are look-alikes of the first members."""
    lookalikes = min(len(member_names), len(stranger_names) // LOOKALIKE_EVERY)
    people = [_Person(name, index, True) for index, name in enumerate(member_names)]
    people += [
        _Person(name, MAX_MEMBERS + number, False, number if number < lookalikes else None)
        for number, name in enumerate(stranger_names)
    ]
    return people


def _person_jobs(seed: int, people: list[_Person]) -> list[functools.partial[_PersonFiles]]:
    """One job per person and modality; each is a pure function of the seed and the person."""
    faces = [functools.partial(_faces, seed, person) for person in people]
    voices = [functools.partial(_voices, seed, person) for person in people]
    return faces + voices


def _faces(seed: int, person: _Person) -> _PersonFiles:
    rng = _rng(seed, _FACE_STREAM, person.index)
    identities = _rng(seed, _FACE_IDENTITY_STREAM, person.index)
    if not person.is_member:
        if person.resembles is None:
            identity = face_parameters.random_identity(identities)
        else:
            identity = face_parameters.resembling_identity(_first_face(seed, person.resembles), rng)
        return _PersonFiles(_face_probes(rng, identity, person.name, STRANGER_PROBE_DIFFICULTIES))
    identity, photos, retakes = _enrolled_face(rng, identities)
    files = [
        _File(
            _RELATIVE.faces_dir / person.name / f"{expression}.png",
            _png(pixels),
            "enrolment_photos",
        )
        for expression, pixels in photos.items()
    ]
    files += _face_probes(rng, identity, person.name, MEMBER_PROBE_DIFFICULTIES)
    return _PersonFiles(files, retakes)


def _first_face(seed: int, index: int) -> face_parameters.FaceIdentity:
    """The first face drawn for a person: a member's face unless it failed every enrolment
    retake (then a look-alike resembles the face that was replaced)."""
    return face_parameters.random_identity(_rng(seed, _FACE_IDENTITY_STREAM, index))


def _enrolled_face(
    rng: np.random.Generator, identities: np.random.Generator
) -> tuple[face_parameters.FaceIdentity, dict[str, np.ndarray], int]:
    """A face and its three enrolment photos, each one both detectors find a face in.

    As an enrolment kiosk does, a photo without a detectable face is taken again under new
    conditions; a face that fails every retake is replaced by the next one ``identities``
    draws.
    """
    retakes = 0
    while True:
        identity = face_parameters.random_identity(identities)
        # One enrolment session: the same backdrop, lamp and colour cast for the three photos.
        session = face_parameters.random_capture(rng, "neutral", difficulty=0.0)
        photos: dict[str, np.ndarray] = {}
        for expression in face_parameters.EXPRESSIONS:
            for _ in range(ENROLMENT_RETAKES):
                capture = dataclasses.replace(
                    face_parameters.random_capture(rng, expression, difficulty=0.0),
                    background=session.background,
                    light=session.light,
                    tint=session.tint,
                )
                pixels = face_rendering.render_face(identity, capture)
                if face_rendering.detectors_find_face(pixels):
                    photos[expression] = pixels
                    break
                retakes += 1
            else:
                break
        if len(photos) == len(face_parameters.EXPRESSIONS):
            return identity, photos, retakes


def _face_probes(
    rng: np.random.Generator,
    identity: face_parameters.FaceIdentity,
    label: str,
    difficulties: tuple[float, ...],
) -> list[_File]:
    files = []
    for number, difficulty in enumerate(difficulties, start=1):
        expression = face_parameters.EXPRESSIONS[
            int(rng.integers(len(face_parameters.EXPRESSIONS)))
        ]
        capture = face_parameters.random_capture(rng, expression, difficulty=difficulty)
        pixels = face_rendering.render_face(identity, capture)
        path = _RELATIVE.probe_faces_dir / label / f"{expression}_{number}.png"
        files.append(_File(path, _png(pixels), "probe_photos"))
    return files


def _voices(seed: int, person: _Person) -> _PersonFiles:
    rng = _rng(seed, _VOICE_STREAM, person.index)
    if person.resembles is None:
        voice = sample_voices.random_voice(_rng(seed, _VOICE_IDENTITY_STREAM, person.index))
    else:
        model = sample_voices.random_voice(_rng(seed, _VOICE_IDENTITY_STREAM, person.resembles))
        voice = sample_voices.resembling_voice(model, rng)
    is_member, name = person.is_member, person.name
    files = []
    for phrase in sample_voices.PHRASES:
        if is_member:
            for number in range(1, ENROL_TAKES + 1):
                take = sample_voices.random_take(rng, difficulty=0.0)
                clip = sample_voices.synthesise(voice, phrase, take)
                path = _RELATIVE.voices_dir / name / f"{phrase}_{number}.wav"
                files.append(_File(path, sample_voices.to_wav_bytes(clip), "enrolment_clips"))
        probe_takes = MEMBER_PROBE_TAKES if is_member else STRANGER_PROBE_TAKES
        for number in range(1, probe_takes + 1):
            take = sample_voices.random_take(rng, difficulty=number / probe_takes)
            clip = sample_voices.synthesise(voice, phrase, take)
            path = _RELATIVE.probe_voices_dir / name / f"{phrase}_{number}.wav"
            files.append(_File(path, sample_voices.to_wav_bytes(clip), "probe_clips"))
    for phrase in sample_voices.OTHER_PHRASES if is_member else ():
        for number in range(1, WRONG_PHRASE_TAKES + 1):
            take = sample_voices.random_take(rng, difficulty=0.3)
            clip = sample_voices.synthesise(voice, phrase, take)
            path = _RELATIVE.probe_voices_dir / name / f"{phrase}_{number}.wav"
            files.append(_File(path, sample_voices.to_wav_bytes(clip), "probe_clips"))
    return _PersonFiles(files)


def _png(pixels: np.ndarray) -> bytes:
    """PNG bytes without timestamps or text chunks: identical pixels give identical bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def recover_interrupted_run(root: Path) -> bool:
    """Remove the staging folders of sample runs that were killed (their process is gone).

    Returns True when one of them held the workspace's previous data/raw (killed mid-swap),
    which is put back first. Callers that protect a non-empty workspace call this before
    checking, so that data is seen.
    """
    workspace = Workspace(Path(root))
    recovered = False
    if not workspace.root.is_dir():
        return recovered
    for staging in workspace.root.glob(f"{STAGING_PREFIX}*"):
        if not staging.is_dir() or _owner_alive(staging):
            continue
        previous = staging / PREVIOUS_RAW
        if previous.is_dir() and not workspace.raw_dir.exists():
            workspace.raw_dir.parent.mkdir(parents=True, exist_ok=True)
            os.replace(previous, workspace.raw_dir)
            recovered = True
        shutil.rmtree(staging, ignore_errors=True)
    return recovered


def _owner_alive(staging: Path) -> bool:
    try:
        pid = int((staging / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return False  # no owner recorded: left by a run that never got that far
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def _swap_into_place(staging: Path, target: Workspace) -> None:
    """Move the staged data/raw and mmauth.toml into the workspace, data/raw in one rename."""
    staged = Workspace(staging)
    target.data_dir.mkdir(parents=True, exist_ok=True)
    previous = staging / PREVIOUS_RAW
    if target.raw_dir.exists():
        os.replace(target.raw_dir, previous)
    try:
        os.replace(staged.raw_dir, target.raw_dir)
    except OSError:
        if previous.exists():
            os.replace(previous, target.raw_dir)
        raise
    os.replace(staged.settings_file, target.settings_file)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(previous)
