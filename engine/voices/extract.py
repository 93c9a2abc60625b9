"""The voice pipeline: recordings -> cleaned speech -> augmented copies -> features.

``extract_voice_features`` runs over every enrolment and probe recording of a workspace with
the shared batch machinery (engine.core.batch: local, loky or dask, content-hash cache) and writes
data/audio_features.csv (member, phrase, augmentation, source, role, audio_feature_0..N), the
frame-level MFCC sequences for the phrase check (data/processed/mfcc_sequences.npz) and a run
report (data/audio_features_report.json). ``voice_sample`` is the same code path for one probe
at authentication time. Only enrolment recordings are augmented.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.batch import BatchItem, ItemOutput, ItemResult
from engine.core.blas import single_threaded_blas
from engine.core.errors import InputError, MissingStageError, MmauthError
from engine.core.feature_tables import (
    ENROL,
    PROBE,
    FeatureRunReport,
    collect_items,
    execution_plan,
    refuse_empty_run,
    run_by_role,
    run_report,
    write_feature_table,
)
from engine.core.fileio import atomic_write_bytes, atomic_write_json, file_sha256
from engine.core.metrics import rate
from engine.core.progress import ProgressCallback, no_progress
from engine.core.settings import Settings, VoiceAugmentSettings, VoiceSettings
from engine.core.workspace import Workspace
from engine.voices.audio import SPEECH_DETECTOR, Recording, load_recording, phrase_from_filename
from engine.voices.augment import ORIGINAL, augment, augmentation_rng
from engine.voices.embedding import CHECKPOINT_SHA256, EMBEDDING_SIZE, speaker_embedding
from engine.voices.features import FrameConfig, frame_config, mfcc, stft_magnitude

BACKEND = "ge2e-speaker-embedding"
"""Name of the feature set in reports: the pretrained speaker embedding of
engine.voices.embedding (the MFCC sequences for the phrase check are stored beside it)."""
BABBLE_POOL_SIZE = 8
"""Enrolment clips babble noise is drawn from (the same few for every file, see babble_pool)."""


@dataclasses.dataclass(frozen=True)
class VoiceSample:
    """One probe recording, ready for the voice model."""

    vector: np.ndarray
    """The clip's speaker embedding, the same layout as audio_feature_0..N."""
    mfcc_sequence: np.ndarray
    """(frames, n_mfcc) float32 MFCC, 10 ms apart, for the phrase check (DTW)."""
    duration_s: float
    """Seconds of speech kept after trimming silence."""
    phrase_hint: str | None
    """The phrase the file name announces (``yes_approve_2.wav`` -> ``yes_approve``), if any."""
    sample_rate: int
    """Rate the features were computed at."""


@dataclasses.dataclass(frozen=True)
class ClipFeatures:
    """Features of one (possibly augmented) clip."""

    vector: np.ndarray
    """The clip's speaker embedding (engine.voices.embedding)."""
    mfcc_sequence: np.ndarray
    """(frames, n_mfcc) float32."""


def clip_features(y: np.ndarray, config: FrameConfig) -> ClipFeatures:
    """The speaker embedding and the MFCC sequence of a cleaned clip."""
    magnitude = stft_magnitude(
        y, n_fft=config.n_fft, hop_length=config.hop_length, win_length=config.win_length
    )
    cepstra = mfcc(
        S=magnitude, sr=config.sr, n_fft=config.n_fft, n_mels=config.n_mels, n_mfcc=config.n_mfcc
    )
    return ClipFeatures(
        vector=speaker_embedding(y, config.sr),
        mfcc_sequence=np.ascontiguousarray(cepstra.T, dtype=np.float32),
    )


def voice_sample(path: str | Path, settings: Settings) -> VoiceSample:
    """Features of one recording to authenticate (no augmentation).

    Raises AcquisitionError for silence or too little speech, InputError for a bad file.
    """
    return recording_sample(load_probe_recording(path, settings), settings, path)


def load_probe_recording(path: str | Path, settings: Settings) -> Recording:
    """The cleaned speech of a probe recording, loaded as the batch loads it."""
    with single_threaded_blas():
        return load_recording(path, settings.voice)


def recording_sample(recording: Recording, settings: Settings, path: str | Path) -> VoiceSample:
    """``voice_sample`` of an already loaded recording, so a caller that also needs the samples
    (the replay check) loads the file once; ``path`` gives the phrase hint."""
    with single_threaded_blas():
        config = frame_config(recording.sample_rate, settings.voice.n_mfcc)
        features = clip_features(recording.samples, config)
    return VoiceSample(
        vector=features.vector,
        mfcc_sequence=features.mfcc_sequence,
        duration_s=recording.duration_s,
        phrase_hint=phrase_from_filename(path) or None,
        sample_rate=recording.sample_rate,
    )


def voice_feature_names() -> list[str]:
    """What audio_feature_0..N hold, in order: the speaker embedding's components."""
    return [f"speaker_embedding_{i}" for i in range(EMBEDDING_SIZE)]


def extract_voice_features(
    workspace: Workspace,
    settings: Settings,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> FeatureRunReport:
    """Features of every enrolment (augmented) and probe (original only) recording.

    Writes data/audio_features.csv, data/processed/mfcc_sequences.npz and
    data/audio_features_report.json; files that fail are listed with their reason and the rest
    of the batch goes on. Nothing is written when cancelled.
    """
    started = time.perf_counter()
    items = collect_items(workspace, workspace.voices_dir, workspace.probe_voices_dir)
    enrolment = [item for item in items if item.role == ENROL]
    if not enrolment:
        raise InputError(
            "no enrolment recordings: put each member's clips in "
            f"{workspace.relative(workspace.voices_dir)}/<member>/ (wav, flac, ogg or mp3)"
        )
    base = recording_params(settings)
    enrol_params = base | {
        "augment": dataclasses.asdict(settings.voice_augment),
        "seed": settings.seed,
        "babble_pool": babble_pool(enrolment),
    }
    results = run_by_role(
        items,
        process_recording,
        {ENROL: enrol_params, PROBE: base},
        stage="voices",
        cache_dir=workspace.cache_dir,
        plan=execution_plan(settings),
        progress=progress,
        cancel=cancel,
    )
    # The cache is keyed by content: what the file name says is added here, never cached.
    for result in results:
        if result.output is not None:
            phrase = phrase_from_filename(result.item.path)
            result.output.records = [{"phrase": phrase, **r} for r in result.output.records]
    succeeded = any(result.output is not None for result in results)
    rows = 0
    if succeeded:
        write_mfcc_sequences(workspace, results)
        rows = write_feature_table(
            results,
            workspace.audio_features,
            label_column="member",
            feature_prefix="audio_feature_",
            constant_columns={"sample_rate": settings.voice.sample_rate},
        )
    report = run_report("voices", workspace.audio_features, results, rows, BACKEND, started)
    document = _report_document(workspace, report, results, settings)
    atomic_write_json(audio_report_path(workspace), document)
    refuse_empty_run(report, "recordings", workspace.relative(audio_report_path(workspace)))
    return report


def recording_params(settings: Settings) -> dict[str, Any]:
    """JSON parameters of process_recording without augmentation (the cache key's settings,
    with the speaker encoder's weights and the speech detector's constants: other weights or
    other trimming, other features)."""
    return {
        "voice": dataclasses.asdict(settings.voice),
        "augment": None,
        "speaker_encoder": CHECKPOINT_SHA256,
        "speech_detector": SPEECH_DETECTOR,
    }


def babble_pool(enrolment: Sequence[BatchItem]) -> list[dict[str, str]]:
    """The enrolment clips babble noise is mixed from: the BABBLE_POOL_SIZE smallest content
    hashes (a bottom-k sample). Adding a file changes the pool only when its hash ranks among
    them, so the cache of every other file survives new enrolments."""
    hashed = []
    for item in enrolment:
        with contextlib.suppress(OSError):
            hashed.append((file_sha256(item.path), item))
    hashed.sort(key=lambda pair: pair[0])
    return [
        {"path": str(item.path), "sha256": digest} for digest, item in hashed[:BABBLE_POOL_SIZE]
    ]


def process_recording(path: Path, params: dict[str, Any]) -> ItemOutput:
    """Per-file work of the batch: clean, augment (enrolment only), extract features."""
    with single_threaded_blas():
        return _process_recording(path, params)


def _process_recording(path: Path, params: dict[str, Any]) -> ItemOutput:
    voice = VoiceSettings(**params["voice"])
    recording = load_recording(path, voice)
    config = frame_config(recording.sample_rate, voice.n_mfcc)
    clips = [(ORIGINAL, "", recording.samples)]
    if params["augment"] is not None:
        augment_settings = VoiceAugmentSettings(**params["augment"])
        digest = file_sha256(path)
        babble = _babble_sources(params["babble_pool"], digest, voice)
        clips += [
            (clip.name, clip.detail, clip.samples)
            for clip in augment(
                recording.samples,
                recording.sample_rate,
                augment_settings,
                rng=augmentation_rng(params["seed"], digest),
                babble_sources=babble,
            )
        ]
    records, vectors, sequences = [], [], []
    for name, detail, samples in clips:
        features = clip_features(samples, config)
        records.append(
            {
                "augmentation": name,
                "augmentation_detail": detail,
                "duration_s": round(len(samples) / recording.sample_rate, 4),
            }
        )
        vectors.append(features.vector)
        sequences.append(features.mfcc_sequence)
    return ItemOutput(records=records, features=np.vstack(vectors), sequences=sequences)


def _babble_sources(
    pool: list[dict[str, str]], own_sha256: str, voice: VoiceSettings
) -> list[np.ndarray]:
    """Cleaned clips of the pool other than the file itself.

    Only the content may decide (results are cached by content), so a pool clip of the same
    member can be among the talkers; with clips drawn from every member that is the minority.
    """
    sources: list[np.ndarray] = []
    for entry in pool:
        if entry["sha256"] == own_sha256:
            continue
        # A pool file that cannot be used just contributes no voice to the babble.
        with contextlib.suppress(MmauthError):
            sources.append(_pool_recording(entry["path"], entry["sha256"], voice).samples)
    return sources


@functools.lru_cache(maxsize=2 * BABBLE_POOL_SIZE)
def _pool_recording(path: str, sha256: str, voice: VoiceSettings) -> Recording:
    # Every enrolment file mixes babble from the same pool: load each pool file once per process
    # (the content hash in the key keeps the memo honest when a file changes).
    return load_recording(path, voice)


def mfcc_sequences_path(workspace: Workspace) -> Path:
    return workspace.processed_dir / "mfcc_sequences.npz"


def audio_report_path(workspace: Workspace) -> Path:
    return workspace.data_dir / "audio_features_report.json"


def write_mfcc_sequences(workspace: Workspace, results: Sequence[ItemResult]) -> None:
    """All MFCC sequences of a run in one compressed archive, keyed like audio_features.csv."""
    sources, augmentations, lengths, frames = [], [], [], []
    for result in results:
        if result.output is None:
            continue
        for record, sequence in zip(result.output.records, result.output.sequences, strict=True):
            sources.append(result.item.source)
            augmentations.append(record["augmentation"])
            lengths.append(len(sequence))
            frames.append(np.asarray(sequence, dtype=np.float32))
    n_mfcc = frames[0].shape[1] if frames else 0
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        source=np.array(sources, dtype=str),
        augmentation=np.array(augmentations, dtype=str),
        length=np.array(lengths, dtype=np.int64),
        frames=np.vstack(frames) if frames else np.zeros((0, n_mfcc), dtype=np.float32),
    )
    atomic_write_bytes(mfcc_sequences_path(workspace), buffer.getvalue())


def load_mfcc_sequences(workspace: Workspace) -> dict[tuple[str, str], np.ndarray]:
    """(source, augmentation) -> (frames, n_mfcc) MFCC sequence, for rows of audio_features.csv."""
    path = mfcc_sequences_path(workspace)
    if not path.is_file():
        raise MissingStageError(
            f"{workspace.relative(path)} is missing: run `mmauth features` first"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            sources, augmentations = archive["source"], archive["augmentation"]
            lengths, frames = archive["length"], archive["frames"]
    except (OSError, ValueError, KeyError) as error:
        raise InputError(
            f"damaged MFCC sequence archive ({error}); run `mmauth features` again",
            path=workspace.relative(path),
        ) from error
    bounds = np.concatenate(([0], np.cumsum(lengths)))
    return {
        (str(source), str(augmentation)): frames[bounds[i] : bounds[i + 1]]
        for i, (source, augmentation) in enumerate(zip(sources, augmentations, strict=True))
    }


def mfcc_sequences_for(workspace: Workspace, table: Any, what: str) -> list[np.ndarray]:
    """The MFCC sequence of every row of an audio feature table, in row order; MissingStageError
    when a row has none (the table and the archive come from different runs)."""
    sequences = load_mfcc_sequences(workspace)
    keys = list(zip(table["source"].astype(str), table["augmentation"].astype(str), strict=True))
    absent = [key for key in keys if key not in sequences]
    if absent:
        raise MissingStageError(
            f"{len(absent)} {what} clip(s) have no MFCC sequence (first: {absent[0][0]}); "
            "run mmauth features again"
        )
    return [sequences[key] for key in keys]


def _report_document(
    workspace: Workspace,
    report: FeatureRunReport,
    results: Sequence[ItemResult],
    settings: Settings,
) -> dict[str, Any]:
    """The run report, in the layout of the face pipeline's (fta, fta_rate, failures[].kind)."""
    fta = sum(r.output is None and r.acquisition_failure for r in results)
    augmentations: dict[str, int] = {}
    for result in results:
        for record in result.output.records if result.output else []:
            augmentations[record["augmentation"]] = augmentations.get(record["augmentation"], 0) + 1
    return {
        "stage": report.stage,
        "backend": report.backend,
        "output": workspace.relative(report.output),
        "files": report.files,
        "enrolment_files": sum(r.item.role == ENROL for r in results),
        "probe_files": sum(r.item.role == PROBE for r in results),
        "rows": report.rows,
        "cached": report.cached,
        "seconds": round(report.seconds, 3),
        "fta": fta,
        "fta_rate": dataclasses.asdict(rate(fta, report.files)),
        "failed": len(report.failures),
        "failures": [
            {
                "source": r.item.source,
                "role": r.item.role,
                "kind": "fta" if r.acquisition_failure else "input",
                "reason": r.error,
            }
            for r in results
            if r.output is None
        ],
        "augmentation_counts": augmentations,
        "settings": {
            "voice": dataclasses.asdict(settings.voice),
            "voice_augment": dataclasses.asdict(settings.voice_augment),
            "seed": settings.seed,
        },
        "feature_names": voice_feature_names(),
    }
