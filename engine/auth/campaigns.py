"""The simulation's campaigns: which probe pairs, replays and bad files make which campaign.

Pairings are deterministic; every probe is used at least once where it fits:

- ``genuine``: a member's face probe with one of the same member's voice probes saying an
  enrolled phrase. Success = GRANTED as that member. Its rate is the authorised success rate,
  1 - FNMR of the whole system (FTA included).
- ``stranger_face``: a stranger's face probe (a probe label that is not a member) with the
  stranger's own voice probe (or, without one, a member's voice probe).
- ``stranger_voice``: a member's face probe with a stranger's voice probe.
- ``cross_member``: member A's face probe with member B's voice probe (B != A).
- ``wrong_phrase``: a member's face probe with the same member's voice saying a phrase they did
  not enrol. Real probes when data/raw/probes/voices/<member>/ has such phrases; otherwise
  synthesised from the member's genuine voice probes cut into quarters and put back in another
  order (same voice, session and sounds in a different sequence), and the report says so. Not
  played backwards: the phrase check measures a clip against the member's takes played
  backwards (engine.models.voice), so a reversed probe would be an easier wrong phrase than a
  real one.
- ``replay``: a member's own enrolment files presented again: the photo as is, the photo
  re-encoded as JPEG, the recording as is, the recording 6 dB quieter (ISO/IEC 30107-3: the
  block rate is 1 - APCER for these attack instruments).
- ``bad_input``: empty, corrupt, truncated and non-media files, a silent recording, a missing
  file and a folder, each paired with a good counterpart.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.core.workspace import Workspace, member_folders

GENUINE = "genuine"
IMPOSTOR = "impostor"
ATTACK = "attack"
BAD_INPUT = "bad_input"


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One simulated presentation."""

    campaign: str
    face: Path
    voice: Path
    expected_member: str | None
    """The member a correct system grants (genuine), or None when it must deny."""
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Campaign:
    """What one campaign tests, and which modality's own rate it measures."""

    kind: str
    """``genuine``, ``impostor``, ``attack`` or ``bad_input``."""
    description: str
    measured: frozenset[str]
    """Modalities whose own rate is measured. A face rate is only meaningful where the face is
    the genuine article (genuine) or the attack (stranger_face); a voice rate where the voice
    is."""


CAMPAIGNS: dict[str, Campaign] = {
    "genuine": Campaign(
        GENUINE,
        "member's face + same member's voice, enrolled phrase",
        frozenset({"face", "voice"}),
    ),
    "stranger_face": Campaign(IMPOSTOR, "stranger's face + a voice", frozenset({"face", "voice"})),
    "stranger_voice": Campaign(IMPOSTOR, "member's face + stranger's voice", frozenset({"voice"})),
    "cross_member": Campaign(IMPOSTOR, "member A's face + member B's voice", frozenset({"voice"})),
    "wrong_phrase": Campaign(
        IMPOSTOR,
        "member's face + own voice, phrase not enrolled",
        frozenset({"voice"}),
    ),
    "replay": Campaign(ATTACK, "member's own enrolment files presented again", frozenset()),
    "bad_input": Campaign(BAD_INPUT, "unusable files paired with a good counterpart", frozenset()),
}
"""Every campaign by name, in the order of the report."""


def plan_attempts(
    workspace: Workspace,
    members: Sequence[str],
    face_probes: dict[str, list[Path]],
    voice_probes: dict[str, list[Path]],
    scratch: Path,
) -> tuple[list[Attempt], list[str]]:
    """Every campaign's attempts; synthetic files (scrambled clips, re-encoded replays, bad
    files) are written under ``scratch``. Returns the attempts and notes on how they were made."""
    from engine.voices.audio import phrase_from_filename

    notes: list[str] = []
    enrolled_phrases = {
        member: {phrase_from_filename(p) for p in files}
        for member, files in member_folders(workspace.voices_dir).items()
    }
    member_set = set(members)
    genuine_voices: dict[str, list[Path]] = {}
    wrong_voices: dict[str, list[Path]] = {}
    for member in members:
        for clip in voice_probes.get(member, []):
            known = phrase_from_filename(clip) in enrolled_phrases.get(member, set())
            (genuine_voices if known else wrong_voices).setdefault(member, []).append(clip)
    member_faces = {m: face_probes[m] for m in members if face_probes.get(m)}
    strangers_faces = {k: v for k, v in face_probes.items() if k not in member_set}
    strangers_voices = {k: v for k, v in voice_probes.items() if k not in member_set}
    all_member_faces = [f for m in sorted(member_faces) for f in member_faces[m]]
    all_genuine_voices = [v for m in sorted(genuine_voices) for v in genuine_voices[m]]
    attempts: list[Attempt] = []

    for member in sorted(member_faces):
        attempts += [
            Attempt("genuine", face, voice, member)
            for face, voice in cycle_pairs(member_faces[member], genuine_voices.get(member, []))
        ]
    for stranger, faces in sorted(strangers_faces.items()):
        voices = strangers_voices.get(stranger) or all_genuine_voices
        attempts += [
            Attempt("stranger_face", face, voice, None)
            for face, voice in cycle_pairs(faces, voices)
        ]
    stranger_clips = [v for s in sorted(strangers_voices) for v in strangers_voices[s]]
    attempts += [
        Attempt("stranger_voice", face, voice, None)
        for voice, face in cycle_pairs(stranger_clips, all_member_faces)
    ]
    speakers = sorted(genuine_voices)
    for member in sorted(member_faces):
        others = [s for s in speakers if s != member]
        for index, face in enumerate(member_faces[member]):
            if not others:
                break
            other = others[index % len(others)]
            clips = genuine_voices[other]
            attempts.append(
                Attempt("cross_member", face, clips[index % len(clips)], None, note=other)
            )
    if any(wrong_voices.values()):
        notes.append("wrong_phrase: real probes of members saying phrases they did not enrol")
        for member, clips in sorted(wrong_voices.items()):
            faces = member_faces.get(member, [])
            attempts += [
                Attempt("wrong_phrase", face, voice, None)
                for voice, face in cycle_pairs(clips, faces)
            ]
    elif genuine_voices:
        notes.append(
            "wrong_phrase: no probe says a phrase its member did not enrol, so the member's "
            "genuine voice probes were cut into quarters and reordered (same voice, different "
            "sequence of sounds)"
        )
        for member, clips in sorted(genuine_voices.items()):
            faces = member_faces.get(member, [])
            for index, clip in enumerate(clips):
                if faces:
                    scrambled = _scrambled_recording(clip, scratch / "scrambled" / member)
                    attempts.append(
                        Attempt("wrong_phrase", faces[index % len(faces)], scrambled, None)
                    )
    attempts += _replay_attempts(workspace, members, member_faces, genuine_voices, scratch)
    if all_member_faces and all_genuine_voices:
        attempts += _bad_input_attempts(all_member_faces[0], all_genuine_voices[0], scratch)
    return attempts, notes


def cycle_pairs(first: Sequence[Path], second: Sequence[Path]) -> list[tuple[Path, Path]]:
    """Pairs using every item of both lists at least once (the shorter list cycles)."""
    if not first or not second:
        return []
    count = max(len(first), len(second))
    return [(first[i % len(first)], second[i % len(second)]) for i in range(count)]


def _replay_attempts(
    workspace: Workspace,
    members: Sequence[str],
    member_faces: dict[str, list[Path]],
    genuine_voices: dict[str, list[Path]],
    scratch: Path,
) -> list[Attempt]:
    enrolled_faces = member_folders(workspace.faces_dir)
    enrolled_voices = member_folders(workspace.voices_dir)
    attempts = []
    for member in members:
        faces, voices = enrolled_faces.get(member, []), enrolled_voices.get(member, [])
        probe_faces, probe_voices = member_faces.get(member, []), genuine_voices.get(member, [])
        if faces and probe_voices:
            attempts.append(Attempt("replay", faces[0], probe_voices[0], None, "photo as is"))
            reencoded = _reencoded_photo(faces[-1], scratch / "replay" / member)
            if reencoded is not None:
                attempts.append(
                    Attempt("replay", reencoded, probe_voices[-1], None, "photo re-encoded")
                )
        if voices and probe_faces:
            attempts.append(Attempt("replay", probe_faces[0], voices[0], None, "recording as is"))
            quieter = _quieter_recording(voices[-1], scratch / "replay" / member)
            if quieter is not None:
                attempts.append(
                    Attempt("replay", probe_faces[-1], quieter, None, "recording 6 dB quieter")
                )
    return attempts


def _reencoded_photo(path: Path, folder: Path) -> Path | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{path.name}.reencoded.jpg"
            image.convert("RGB").save(target, "JPEG", quality=85)
    except OSError:
        return None
    return target


def _quieter_recording(path: Path, folder: Path) -> Path | None:
    import soundfile

    try:
        samples, sample_rate = soundfile.read(path, always_2d=True)
    except (OSError, soundfile.LibsndfileError):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{path.stem}.quieter.wav"
    soundfile.write(target, samples * 0.5, sample_rate)
    return target


# Every quarter moves, so no stretch of the original order survives.
_SCRAMBLED_ORDER = (2, 0, 3, 1)
_SPLICE_FADE_S = 0.005


def _scrambled_recording(path: Path, folder: Path) -> Path:
    """The recording cut into quarters, put back in ``_SCRAMBLED_ORDER``; each quarter fades in
    and out over ``_SPLICE_FADE_S`` so that the splices add no clicks."""
    import soundfile

    samples, sample_rate = soundfile.read(path, always_2d=True)
    quarters = np.array_split(samples, len(_SCRAMBLED_ORDER))
    fade = max(1, int(_SPLICE_FADE_S * sample_rate))
    pieces = []
    for index in _SCRAMBLED_ORDER:
        piece = quarters[index].copy()
        ramp = np.linspace(0.0, 1.0, min(fade, len(piece) // 2))[:, None]
        if len(ramp):
            piece[: len(ramp)] *= ramp
            piece[len(piece) - len(ramp) :] *= ramp[::-1]
        pieces.append(piece)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"scrambled_{path.stem}.wav"
    soundfile.write(target, np.concatenate(pieces), sample_rate)
    return target


def _bad_input_attempts(good_face: Path, good_voice: Path, scratch: Path) -> list[Attempt]:
    """Unusable files, each paired with a good counterpart."""
    import soundfile

    folder = scratch / "bad"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files: dict[str, bytes] = {
        "empty.jpg": b"",
        "random_bytes.jpg": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "text.png": b"this is a text file, not a photo\n" * 20,
        "truncated.jpg": good_face.read_bytes()[:200],
        "empty.wav": b"",
        "random_bytes.wav": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "text.flac": b"this is a text file, not a recording\n" * 20,
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(16_000, dtype=np.float32), 16_000, format="WAV")
    (folder / "silence.wav").write_bytes(buffer.getvalue())
    buffer = io.BytesIO()
    noise = (0.3 * rng.standard_normal(16_000)).astype(np.float32)
    soundfile.write(buffer, noise, 16_000, format="WAV")
    (folder / "white_noise.wav").write_bytes(buffer.getvalue())
    _blank_photo(folder / "blank.png")
    (folder / "a_folder.jpg").mkdir()
    bad_faces = ["empty.jpg", "random_bytes.jpg", "text.png", "truncated.jpg", "blank.png"]
    bad_faces += ["a_folder.jpg", "missing.jpg"]
    bad_voices = ["empty.wav", "random_bytes.wav", "text.flac", "silence.wav", "missing.wav"]
    bad_voices += ["white_noise.wav"]
    return [
        Attempt("bad_input", folder / name, good_voice, None, f"photo {name}") for name in bad_faces
    ] + [
        Attempt("bad_input", good_face, folder / name, None, f"recording {name}")
        for name in bad_voices
    ]


def _blank_photo(path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (320, 240), (128, 128, 128)).save(path)
