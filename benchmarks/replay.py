"""Replay-defence bounds on the shared real data: how close do genuinely different samples of one
person come, and how close do altered copies of an enrolment file stay?

    .venv/bin/python -m benchmarks.replay [--datasets ../shared/datasets]

Photos (Yale faces): 256-bit pHash distance between distinct files of one subject (files with
identical bytes are left out: they are replays by definition) and between each photo and copies
altered the way a replay would be (JPEG re-encode, half size, brightness x1.1, contrast x0.9).
Recordings (FSDD): fingerprint similarity between different takes of one digit by one speaker,
and between a take and its altered copies (gain -6 dB, resampled to 16 kHz, 0.3 s of silence
padded, white noise at 30 dB SNR). The sample workspace (``mmauth sample``, ``--sample-seeds``):
members' synthetic probe takes against their enrolment takes, which must not look like replays
either. Prints the bounds' false-replay rate (bona fide samples
flagged: BPCER) and detection rate (altered copies caught: 1 - APCER) with Wilson intervals.
"""

from __future__ import annotations

import argparse
import io
import itertools
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.auth.replay import (
    audio_fingerprint,
    decode_envelope,
    envelope_similarity,
    hash_distance,
    image_fingerprint,
    perceptual_hash,
)
from engine.core.errors import AcquisitionError
from engine.core.metrics import rate
from engine.core.settings import Settings

DEFAULT_DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


def photo_bounds(yale: Path, settings: Settings) -> None:
    from PIL import Image, ImageEnhance

    files = sorted(p for p in yale.iterdir() if p.is_file() and not p.name.startswith("."))
    hashes = {f: image_fingerprint(f, settings) for f in files}
    contents = {f: f.read_bytes() for f in files}
    distinct = [
        hash_distance(hashes[a], hashes[b])
        for a, b in itertools.combinations(files, 2)
        if a.name.split(".")[0] == b.name.split(".")[0] and contents[a] != contents[b]
    ]
    identical = sum(
        1
        for a, b in itertools.combinations(files, 2)
        if a.name.split(".")[0] == b.name.split(".")[0] and contents[a] == contents[b]
    )
    alterations: dict[str, Callable[[Image.Image], Image.Image]] = {
        "jpeg q70": lambda image: image,
        "half size": lambda image: image.resize((image.width // 2, image.height // 2)),
        "brightness x1.1": lambda image: ImageEnhance.Brightness(image).enhance(1.1),
        "contrast x0.9": lambda image: ImageEnhance.Contrast(image).enhance(0.9),
    }
    bound = settings.auth.replay_image_distance
    print(f"Photos ({yale}): {len(files)} files; {identical} same-subject pairs are byte-identical")
    print(
        f"  distinct photos of one subject: min distance {min(distinct)} bits; flagged at "
        f"<= {bound}: {rate(sum(d <= bound for d in distinct), len(distinct))}"
    )
    for name, alter in alterations.items():
        distances = []
        for path in files:
            buffer = io.BytesIO()
            alter(Image.open(path).convert("RGB")).save(buffer, "JPEG", quality=70)
            buffer.seek(0)
            altered = perceptual_hash(np.asarray(Image.open(buffer).convert("RGB")))
            distances.append(hash_distance(altered, hashes[path]))
        caught = sum(d <= bound for d in distances)
        print(
            f"  {name:<16} max distance {max(distances):>3}; caught: {rate(caught, len(distances))}"
        )


def voice_bounds(fsdd: Path, settings: Settings) -> None:
    import librosa
    import soundfile

    speakers = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
    candidates = [fsdd / f"{d}_{s}_{i}.wav" for s in speakers for d in (1, 7) for i in range(10)]
    envelopes = {}
    for path in candidates:
        try:
            envelopes[path] = decode_envelope(audio_fingerprint(path, settings))
        except AcquisitionError:
            continue  # too little speech for the voice pipeline: never enrolled, never compared
    files = list(envelopes)
    takes = [
        envelope_similarity(envelopes[a], envelopes[b])
        for a, b in itertools.combinations(files, 2)
        if a.name.split("_")[:2] == b.name.split("_")[:2]
    ]
    bound = settings.auth.replay_audio_similarity
    print(
        f"Recordings ({fsdd}): {len(files)} of {len(candidates)} files (6 speakers x digits "
        "1 and 7 x takes 0-9) pass the voice loader"
    )
    print(
        f"  different takes, same speaker and digit: max similarity {max(takes):.4f}, "
        f"median {np.median(takes):.3f}; flagged at >= {bound}: "
        f"{rate(sum(t >= bound for t in takes), len(takes))}"
    )
    rng = np.random.default_rng(0)
    alterations: dict[str, Callable[[np.ndarray, int], tuple[np.ndarray, int]]] = {
        "gain -6 dB": lambda y, sr: (0.5 * y, sr),
        "resampled 16 kHz": lambda y, sr: (
            librosa.resample(y, orig_sr=sr, target_sr=16_000),
            16_000,
        ),
        "padded 0.3 s": lambda y, sr: (np.concatenate([np.zeros(int(0.3 * sr)), y]), sr),
        "noise 30 dB SNR": lambda y, sr: (y + rng.normal(0, np.std(y) * 10 ** (-1.5), y.size), sr),
    }
    with tempfile.TemporaryDirectory() as folder:
        for name, alter in alterations.items():
            similarities = []
            for path in files[::2]:
                y, sr = soundfile.read(path)
                altered, altered_sr = alter(y, sr)
                copy = Path(folder) / "copy.wav"
                soundfile.write(copy, altered, altered_sr)
                copy_envelope = decode_envelope(audio_fingerprint(copy, settings))
                similarities.append(envelope_similarity(copy_envelope, envelopes[path]))
            caught = sum(s >= bound for s in similarities)
            print(
                f"  {name:<17} min similarity {min(similarities):.4f}; "
                f"caught: {rate(caught, len(similarities))}"
            )


def sample_bounds(seeds: list[int], settings: Settings) -> None:
    """The sample workspace's genuine voice probes against their member's enrolment takes: the
    synthetic takes must stay under the bound chosen on real recordings."""
    from engine.core.workspace import Workspace, member_folders
    from engine.sample.workspace import write_sample_workspace

    best = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as folder:
            workspace = Workspace(root=Path(folder))
            write_sample_workspace(workspace.root, seed=seed)
            enrolled = {
                member: [decode_envelope(audio_fingerprint(p, settings)) for p in paths]
                for member, paths in member_folders(workspace.voices_dir).items()
            }
            for member, probes in member_folders(workspace.probe_voices_dir).items():
                for probe in probes if member in enrolled else []:
                    envelope = decode_envelope(audio_fingerprint(probe, settings))
                    best.append(max(envelope_similarity(envelope, e) for e in enrolled[member]))
    bound = settings.auth.replay_audio_similarity
    print(
        f"Sample workspace (mmauth sample, seeds {', '.join(map(str, seeds))}): members' probe "
        f"recordings against their enrolment takes: max similarity {max(best):.4f}, median "
        f"{np.median(best):.3f}; flagged at >= {bound}: {rate(sum(b >= bound for b in best), len(best))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument(
        "--sample-seeds", type=int, nargs="*", default=[0, 1, 2, 3], help="sample workspaces"
    )
    arguments = parser.parse_args()
    settings = Settings()
    photo_bounds(arguments.datasets / "yalefaces", settings)
    voice_bounds(arguments.datasets / "fsdd" / "recordings", settings)
    if arguments.sample_seeds:
        sample_bounds(arguments.sample_seeds, settings)


if __name__ == "__main__":
    main()
