"""Replay defence on the shared real data: false alarms on every pair of distinct samples of one
person (BPCER), and the catch rate of each kind of altered copy (1 - APCER), per ISO/IEC 30107-3.

    .venv/bin/python -m benchmarks.replay [--part dev|test|all] [--datasets ../shared/datasets]
    .venv/bin/python -m benchmarks.replay --cost ROUNDS [--seed 0]

Photos (Yale faces): every ordered pair of distinct photos of one subject (byte-identical files
are left out: they are replays by definition) is a bona fide presentation; each photo altered
as a replay would be (JPEG q70, half size, cropped to 80-95% of each side, mirrored, rotated
1-5 degrees either way, mirrored + rotated + cropped, brightness x1.1, contrast x0.9; all but the
first saved as JPEG q85) is an attack. Recordings (FSDD): every pair of distinct takes of one
digit by one speaker that pass the voice loader is bona fide; every fifth take altered
(``recording_attacks``: gain, white noise, padding, resampling through 8 or 44.1 kHz, MP3 and
Opus re-encoding, playback rate 3-5% faster or slower, tempo 5% faster or slower with the pitch
kept) is an attack. The development part (Yale subjects 1-7, FSDD digits 0-4) chose the bounds;
the test part (subjects 8-15, digits 5-9) reports them. Also prints the comparison's time per
pair.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from engine.auth.replay import audio_fingerprint
from engine.auth.replay_photos import (
    copy_residual,
    photo_template,
    photo_thumbnail,
    probe_templates,
)
from engine.auth.replay_recordings import (
    EnrolledTake,
    decode_spectrogram,
    enrolled_take,
    log_frequency_spectrogram,
    recording_copy,
)
from engine.core.errors import AcquisitionError
from engine.core.metrics import format_rate, rate
from engine.core.settings import Settings
from engine.voices.audio import Recording, load_recording

DEFAULT_DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
PARTS = {
    "dev": (range(1, 8), range(0, 5)),
    "test": (range(8, 16), range(5, 10)),
    "all": (range(1, 16), range(0, 10)),
}
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def _report(label: str, flagged: int, trials: int, worst: str) -> None:
    print(f"  {label:<34} {format_rate(rate(flagged, trials), decimals=2)}  ({worst})")


def photo_benchmark(yale: Path, subjects: Iterable[int], bound: float, seed: int) -> None:
    from PIL import Image, ImageEnhance

    wanted = set(subjects)
    files = sorted(
        p for p in yale.iterdir() if p.name.startswith("subject") and int(p.name[7:9]) in wanted
    )
    images = {f: Image.open(f).convert("RGB") for f in files}
    contents = {f: f.read_bytes() for f in files}
    thumbnails = {f: photo_thumbnail(np.asarray(images[f])) for f in files}
    enrolled = {f: photo_template(thumbnails[f]) for f in files}
    probes = {f: probe_templates(thumbnails[f]) for f in files}
    pairs = [
        (a, b)
        for a, b in itertools.permutations(files, 2)
        if a.name.split(".")[0] == b.name.split(".")[0] and contents[a] != contents[b]
    ]
    started = time.perf_counter()
    residuals = [copy_residual(enrolled[a], probes[b]) for a, b in pairs]
    per_pair_ms = (time.perf_counter() - started) / len(pairs) * 1000
    print(
        f"Photos ({yale}, subjects {min(wanted)}-{max(wanted)}): {len(files)} files; replay at "
        f"copy residual <= {bound}"
    )
    _report(
        "bona fide: distinct photos, flagged",
        sum(r <= bound for r in residuals),
        len(residuals),
        f"min residual {min(residuals):.1f}; {per_pair_ms:.1f} ms per pair",
    )
    rng = np.random.default_rng(seed)

    def jpeg(image: Image.Image, quality: int = 85) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        buffer.seek(0)
        return Image.open(buffer).convert("RGB")

    def crop(image: Image.Image) -> Image.Image:
        keep_width, keep_height = rng.uniform(0.8, 0.95, 2)
        left = rng.uniform(0, 1 - keep_width) * image.width
        top = rng.uniform(0, 1 - keep_height) * image.height
        return image.crop(
            (
                int(left),
                int(top),
                int(left + keep_width * image.width),
                int(top + keep_height * image.height),
            )
        )

    def rotate(image: Image.Image) -> Image.Image:
        degrees = rng.choice([-1, 1]) * rng.uniform(1, 5)
        return image.rotate(degrees, resample=Image.Resampling.BILINEAR)

    def mirror(image: Image.Image) -> Image.Image:
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

    attacks: dict[str, Callable[[Image.Image], Image.Image]] = {
        "JPEG q70": lambda image: jpeg(image, 70),
        "half size": lambda image: jpeg(image.resize((image.width // 2, image.height // 2))),
        "cropped 80-95%": lambda image: jpeg(crop(image)),
        "mirrored": lambda image: jpeg(mirror(image)),
        "rotated 1-5 degrees": lambda image: jpeg(rotate(image)),
        "mirrored + rotated + cropped": lambda image: jpeg(crop(rotate(mirror(image)))),
        "brightness x1.1": lambda image: jpeg(ImageEnhance.Brightness(image).enhance(1.1)),
        "contrast x0.9": lambda image: jpeg(ImageEnhance.Contrast(image).enhance(0.9)),
    }
    for name, alter in attacks.items():
        copies = [
            copy_residual(
                enrolled[f], probe_templates(photo_thumbnail(np.asarray(alter(images[f]))))
            )
            for f in files
        ]
        _report(
            f"attack: {name}, caught",
            sum(r <= bound for r in copies),
            len(copies),
            f"max residual {max(copies):.1f}",
        )


def voice_benchmark(
    fsdd: Path, digits: Iterable[int], settings: Settings, seed: int, scores: Path | None = None
) -> None:
    recordings = {}
    wanted = list(digits)
    for speaker in SPEAKERS:
        for digit in wanted:
            for take in range(50):
                try:
                    recordings[(speaker, digit, take)] = load_recording(
                        fsdd / f"{digit}_{speaker}_{take}.wav", settings.voice
                    )
                except AcquisitionError:
                    continue  # too little speech for the voice pipeline: never enrolled
    # As the replay guard keeps them: from the float16 fingerprint, prepared once.
    takes = {
        key: enrolled_take(log_frequency_spectrogram(r.samples, r.sample_rate).astype(np.float16))
        for key, r in recordings.items()
    }
    keys = sorted(recordings)
    pairs = [(a, b) for a, b in itertools.combinations(keys, 2) if a[:2] == b[:2]]
    started = time.perf_counter()
    similarities = np.array([_similarity(recordings[a], takes[b]) for a, b in pairs])
    per_pair_ms = (time.perf_counter() - started) / len(pairs) * 1000
    bound = settings.auth.replay_audio_similarity
    print(
        f"Recordings ({fsdd}, digits {min(wanted)}-{max(wanted)}): {len(keys)} takes pass the "
        f"voice loader; replay at similarity >= {bound}"
    )
    _report(
        "bona fide: distinct takes, flagged",
        int((similarities >= bound).sum()),
        len(similarities),
        f"max similarity {similarities.max():.4f}, 99.9th percentile "
        f"{np.quantile(similarities, 0.999):.4f}; {per_pair_ms:.1f} ms per pair",
    )
    saved = {"bona fide": similarities.tolist()}
    for name, alter in recording_attacks(np.random.default_rng(seed)).items():
        copies = saved[name] = []
        for key in keys[::5]:
            recording = recordings[key]
            altered = alter(recording.samples.astype(np.float64), recording.sample_rate)
            copies.append(recording_copy(altered, recording.sample_rate, [takes[key]])[0])
        _report(
            f"attack: {name}, caught",
            sum(s >= bound for s in copies),
            len(copies),
            f"min similarity {min(copies):.4f}",
        )
    if scores is not None:
        scores.write_text(json.dumps(saved))


def _similarity(probe: Recording, take: EnrolledTake) -> float:
    return recording_copy(probe.samples, probe.sample_rate, [take])[0]


Alteration = Callable[[np.ndarray, int], np.ndarray]


def recording_attacks(rng: np.random.Generator) -> dict[str, Alteration]:
    """How an attacker holding an enrolment recording might alter it before presenting it."""
    import librosa
    import soundfile

    def playback_rate(factor: float) -> Alteration:
        # Played faster: resampled as if recorded at factor x its rate (time and pitch scale).
        return lambda y, sr: librosa.resample(y, orig_sr=sr * factor, target_sr=sr)

    def tempo(factor: float) -> Alteration:
        # Faster with the pitch kept: librosa's phase-vocoder time stretch.
        return lambda y, sr: librosa.effects.time_stretch(y, rate=factor)

    def through(rate: int) -> Alteration:
        return lambda y, sr: librosa.resample(
            librosa.resample(y, orig_sr=sr, target_sr=rate), orig_sr=rate, target_sr=sr
        )

    def encoded(container: str, codec: str) -> Alteration:
        def encode(y: np.ndarray, sr: int) -> np.ndarray:
            buffer = io.BytesIO()
            soundfile.write(buffer, y, sr, format=container, subtype=codec)
            buffer.seek(0)
            decoded, _ = soundfile.read(buffer)
            return decoded

        return encode

    return {
        "gain -6 dB": lambda y, sr: 0.5 * y,
        "noise 30 dB SNR": lambda y, sr: y + rng.normal(0, np.std(y) * 10 ** (-1.5), y.size),
        "padded 0.3 s": lambda y, sr: np.concatenate([np.zeros(int(0.3 * sr)), y]),
        "resampled via 8 kHz": through(8_000),
        "resampled via 44.1 kHz": through(44_100),
        "MP3 (libsndfile/LAME)": encoded("MP3", "MPEG_LAYER_III"),
        "Opus (libsndfile)": encoded("OGG", "OPUS"),
        "playback 3% faster": playback_rate(1.03),
        "playback 5% faster": playback_rate(1.05),
        "playback 3% slower": playback_rate(0.97),
        "playback 5% slower": playback_rate(0.95),
        "tempo 5% faster, pitch kept": tempo(1.05),
        "tempo 5% slower, pitch kept": tempo(0.95),
    }


def sample_bounds(seeds: list[int], settings: Settings) -> None:
    """The sample workspace's genuine voice probes against their member's enrolment takes: the
    synthetic takes must stay under the bound chosen on real recordings."""
    best = []
    for seed in seeds:
        takes, probes = _sample_recordings(seed, settings)
        best += [recording_copy(r.samples, r.sample_rate, takes[m])[0] for m, r in probes]
    bound = settings.auth.replay_audio_similarity
    print(f"Sample workspace (mmauth sample, seeds {', '.join(map(str, seeds))})")
    _report(
        "bona fide: probe takes, flagged",
        sum(b >= bound for b in best),
        len(best),
        f"max similarity {max(best):.4f}",
    )


def _sample_recordings(
    seed: int, settings: Settings
) -> tuple[dict[str, list[EnrolledTake]], list[tuple[str, Recording]]]:
    """A sample workspace's enrolment takes per member, prepared as the replay guard keeps them
    (from the stored fingerprint), and its members' genuine probe recordings."""
    import tempfile

    from engine.core.workspace import Workspace, member_folders
    from engine.sample.workspace import write_sample_workspace

    with tempfile.TemporaryDirectory() as folder:
        workspace = Workspace(root=Path(folder))
        write_sample_workspace(workspace.root, seed=seed)
        takes = {
            member: [_take(audio_fingerprint(path, settings)) for path in paths]
            for member, paths in member_folders(workspace.voices_dir).items()
        }
        probes = [
            (member, load_recording(probe, settings.voice))
            for member, paths in member_folders(workspace.probe_voices_dir).items()
            if member in takes
            for probe in paths
        ]
    return takes, probes


def attempt_cost(seed: int, settings: Settings, rounds: int) -> None:
    """What the replay check of one attempt costs on the sample workspace: the probe's
    fingerprint and its comparisons with the member's enrolment takes (prepared once, as the
    replay guard keeps them), with and without the second search at the playback rate the
    first one shows, timed alternately on the same probes."""
    import statistics

    from engine.auth.replay_recordings import closest_copy
    from engine.core.blas import single_threaded_blas

    takes, probes = _sample_recordings(seed, settings)
    current: list[float] = []
    single: list[float] = []
    with single_threaded_blas():
        for _ in range(rounds):
            for member, recording in probes:
                started = time.perf_counter()
                recording_copy(recording.samples, recording.sample_rate, takes[member])
                current.append(time.perf_counter() - started)
                started = time.perf_counter()
                spectrogram = log_frequency_spectrogram(recording.samples, recording.sample_rate)
                closest_copy(spectrogram.astype(np.float16).astype(np.float64), takes[member])
                single.append(time.perf_counter() - started)

    def spread(seconds: list[float]) -> str:
        return (
            f"median {1000 * statistics.median(seconds):.1f} ms, "
            f"p95 {1000 * float(np.quantile(seconds, 0.95)):.1f} ms"
        )

    counts = sorted(len(t) for t in takes.values())
    kept = [t.spectrogram.nbytes + t.bands.nbytes for member in takes.values() for t in member]
    frames = [len(t.spectrogram) for member in takes.values() for t in member]
    print(
        f"Replay check cost (sample workspace seed {seed}: {len(probes)} probes x {rounds} "
        f"rounds, {counts[0]}-{counts[-1]} enrolment takes per member)"
    )
    print(f"  fingerprint + search + rate search {spread(current)}")
    print(f"  fingerprint + search alone         {spread(single)}")
    print(
        f"  kept per take                      {np.mean(kept) / 1024:.0f} KiB "
        f"({np.mean(frames):.0f} frames on average), "
        f"{np.mean(kept) * 1000 / 2**20:.0f} MiB per 1,000 takes"
    )


def _take(fingerprint: bytes) -> EnrolledTake:
    """As the replay guard keeps an enrolment take: decoded back to float16, prepared once."""
    spectrogram = decode_spectrogram(fingerprint)
    assert spectrogram is not None, "fingerprints are computed in the current format"
    return enrolled_take(spectrogram.astype(np.float16))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--part", choices=sorted(PARTS), default="test")
    parser.add_argument("--seed", type=int, default=0, help="random alterations")
    parser.add_argument(
        "--sample-seeds", type=int, nargs="*", default=[], help="sample workspaces to check"
    )
    parser.add_argument(
        "--save-scores", type=Path, help="write the recordings' similarities to this JSON file"
    )
    parser.add_argument(
        "--only", choices=["photos", "recordings"], help="run one modality's benchmark"
    )
    parser.add_argument(
        "--cost",
        type=int,
        metavar="ROUNDS",
        help="only time one attempt's replay check on the sample workspace (--seed), "
        "over this many rounds of its probes",
    )
    arguments = parser.parse_args()
    settings = Settings()
    if arguments.cost:
        attempt_cost(arguments.seed, settings, arguments.cost)
        return
    subjects, digits = PARTS[arguments.part]
    if arguments.only != "recordings":
        photo_benchmark(
            arguments.datasets / "yalefaces",
            subjects,
            settings.auth.replay_photo_residual,
            arguments.seed,
        )
    if arguments.only != "photos":
        fsdd = arguments.datasets / "fsdd" / "recordings"
        voice_benchmark(fsdd, digits, settings, arguments.seed, arguments.save_scores)
    if arguments.sample_seeds:
        sample_bounds(arguments.sample_seeds, settings)


if __name__ == "__main__":
    main()
