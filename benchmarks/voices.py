"""Cost of the voice features against librosa.feature.mfcc alone, on real recordings (FSDD).

    .venv/bin/python -m benchmarks.voices [--dataset DIR] [--clips 300] [--rounds 7]

Every clip is loaded and cleaned the product's way (engine.voices.audio.load_recording: 16 kHz mono,
trimmed, normalised; clips it refuses are skipped and counted). Then, per round, each clip goes
through librosa.feature.mfcc (same 25 ms / 10 ms framing, 40 mels, 20 coefficients) and through
the clip statistics that were the product's features before the speaker embedding
(benchmarks.clip_statistics: MFCC + deltas + spectral shape + contrast + ZCR + F0 from the
product's one STFT), alternating which runs first, so both see the same machine load. The
figures are medians over rounds; the ratio is measured within each round. Also timed: librosa's
defaults (n_fft 2048), librosa.yin next to the spectrum-based F0, and the whole per-file path
with and without augmentation.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.clip_statistics import f0_autocorrelation, frame_features, summarise
from engine.core.blas import single_threaded_blas
from engine.core.errors import InputError
from engine.core.settings import Settings
from engine.voices.audio import load_recording
from engine.voices.extract import process_recording, recording_params
from engine.voices.features import frame_config, stft_magnitude

DEFAULT_DATASET = Path(__file__).resolve().parent.parent.parent / "shared/datasets/fsdd/recordings"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--augment-files", type=int, default=40)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = run(args.dataset, args.clips, args.rounds, args.augment_files)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key:44s} {value}")


def run(dataset: Path, n_clips: int, rounds: int, augment_files: int) -> dict[str, object]:
    import librosa

    settings = Settings()
    files = sorted(dataset.glob("*.wav"))
    if not files:
        raise SystemExit(f"no .wav files in {dataset}")
    # An even spread over speakers and digits: every k-th file of the sorted listing, then
    # the files in between when cleaning refuses some (too little speech).
    stride = max(1, len(files) // n_clips)
    spread = files[::stride]
    chosen = set(spread)
    clips, refused = [], 0
    for path in spread + [f for f in files if f not in chosen]:
        if len(clips) == n_clips:
            break
        try:
            clips.append(load_recording(path, settings.voice).samples)
        except InputError:
            refused += 1
    config = frame_config(settings.voice.sample_rate, settings.voice.n_mfcc)
    sr = config.sr
    framing = {
        "n_fft": config.n_fft,
        "hop_length": config.hop_length,
        "win_length": config.win_length,
    }

    def mfcc_alone(y: np.ndarray) -> object:
        return librosa.feature.mfcc(
            y=y, sr=sr, n_mfcc=config.n_mfcc, n_mels=config.n_mels, **framing
        )

    def mfcc_defaults(y: np.ndarray) -> object:
        return librosa.feature.mfcc(y=y, sr=sr, n_mfcc=config.n_mfcc)

    def all_features(y: np.ndarray) -> object:
        return summarise(frame_features(y, config))

    def f0_ours(y: np.ndarray) -> object:
        S = stft_magnitude(y, **framing)
        return f0_autocorrelation(S=S, sr=sr, n_fft=config.n_fft, win_length=config.win_length)

    def f0_yin(y: np.ndarray) -> object:
        return librosa.yin(y, fmin=70, fmax=400, sr=sr, frame_length=1024, hop_length=160)

    with single_threaded_blas():
        for y in clips[:5]:  # warm caches (mel basis, windows) and imports
            mfcc_alone(y), all_features(y), f0_yin(y)
        paired = [_paired_round(clips, mfcc_alone, all_features) for _ in range(rounds)]
        defaults = [_paired_round(clips, mfcc_defaults, all_features) for _ in range(rounds)]
        f0 = [_paired_round(clips, f0_yin, f0_ours) for _ in range(max(3, rounds // 2))]
    per_file = _per_file_costs(spread[:augment_files], settings)
    total_seconds = sum(len(y) for y in clips) / sr
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {_cpu_count()} cores, Python {platform.python_version()}",
        "clips": len(clips),
        "clips_refused_by_cleaning": refused,
        "mean_clip_seconds": round(total_seconds / len(clips), 3),
        "rounds": rounds,
        "mfcc_alone_ms_per_clip": _median_ms(paired, 0, len(clips)),
        "all_features_ms_per_clip": _median_ms(paired, 1, len(clips)),
        "ratio_all_over_mfcc_median": round(statistics.median(b / a for a, b in paired), 3),
        "ratio_all_over_mfcc_range": _ratio_range(paired),
        "mfcc_librosa_defaults_ms_per_clip": _median_ms(defaults, 0, len(clips)),
        "ratio_all_over_mfcc_defaults_median": round(
            statistics.median(b / a for a, b in defaults), 3
        ),
        "yin_ms_per_clip": _median_ms(f0, 0, len(clips)),
        "f0_spectrum_incl_stft_ms_per_clip": _median_ms(f0, 1, len(clips)),
        **per_file,
    }


def _paired_round(clips: list[np.ndarray], first, second) -> tuple[float, float]:
    """Seconds spent in ``first`` and in ``second`` over all clips, alternating the order."""
    spent = [0.0, 0.0]
    for index, y in enumerate(clips):
        order = ((0, first), (1, second)) if index % 2 == 0 else ((1, second), (0, first))
        for slot, function in order:
            start = time.perf_counter()
            function(y)
            spent[slot] += time.perf_counter() - start
    return spent[0], spent[1]


def _per_file_costs(paths: list[Path], settings: Settings) -> dict[str, float]:
    """Whole per-file path (decode, clean, [augment,] features) in ms per file, median of 3."""
    plain = recording_params(settings)
    augmented = plain | {
        "augment": dataclasses.asdict(settings.voice_augment),
        "seed": settings.seed,
        "babble_pool": [],
    }
    figures = {}
    for name, params in (("probe_file_ms", plain), ("enrol_file_with_augmentation_ms", augmented)):
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            for path in paths:
                try:
                    process_recording(path, params)
                except InputError:
                    continue
            runs.append((time.perf_counter() - start) / len(paths) * 1e3)
        figures[name] = round(statistics.median(runs), 2)
    return figures


def _median_ms(rounds: list[tuple[float, float]], slot: int, n_clips: int) -> float:
    return round(statistics.median(r[slot] for r in rounds) / n_clips * 1e3, 3)


def _ratio_range(rounds: list[tuple[float, float]]) -> str:
    ratios = [b / a for a, b in rounds]
    return f"{min(ratios):.3f}-{max(ratios):.3f}"


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    main()
