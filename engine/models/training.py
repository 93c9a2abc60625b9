"""Training the three models from the workspace's tables and saving them with their manifest.

Face and voice models learn from the enrolment rows of the feature tables (data/image_features.csv,
data/audio_features.csv); the product model from data/merged_dataset.csv. Every model is fitted
before anything is written, and cancellation is checked between steps, so a cancelled or failed
run leaves the previous models valid.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.core.defences import accepted_defences, record_defences, weakened
from engine.core.errors import InputError, MissingStageError
from engine.core.feature_tables import feature_matrix, read_feature_table
from engine.core.fileio import check_writable, file_sha256
from engine.core.metrics import format_rate, rate
from engine.core.progress import Progress, ProgressCallback, check_cancelled, no_progress
from engine.core.settings import Settings
from engine.core.workspace import Workspace, member_folders
from engine.models.enrolment_check import (
    Misfit,
    enrolment_notes,
    face_misfits,
    voice_misfits,
)
from engine.models.names import MODEL_NAMES, SUMMARY_COLUMNS, ModelName
from engine.models.saving import ModelRecord, check_kept_models, save_models

ENROL_ROLE = "enrol"


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    """What one training run produced."""

    trained: tuple[str, ...]
    """Models fitted and saved by this run."""
    summary: tuple[dict[str, Any], ...]
    """One row per model in models/ (trained now or kept), as in training_summary.csv."""
    manifest: dict[str, Any]
    """The manifest written (models/manifest.json)."""
    confusion_matrices: dict[str, tuple[list[str], list[list[int]]]]
    """Per model trained now: (labels, held-out confusion matrix, rows true and columns
    predicted), where the model measured one."""
    product_verdict: str
    """Whether the product model beats the baselines, in words ("" when not trained now)."""
    product_comparison: Any
    """The product model's engine.models._product_comparison.ModelComparison (None when not trained now)."""
    seconds: float
    """Wall time of the run."""
    notes: tuple[str, ...] = ()
    """Warnings about the models trained now, in words: a threshold that does not fit the
    enrolled people (``calibration_note``), enrolment files that fit another member or phrase
    better than their own (engine.models.enrolment_check)."""


def train_models(
    workspace: Workspace,
    settings: Settings,
    which: Sequence[str] = MODEL_NAMES,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> TrainingResult:
    """Fit the requested models, then write models/*.skops, training_summary.csv and the
    manifest (last). Models not requested keep their files and manifest entries."""
    started = time.perf_counter()
    requested = tuple(dict.fromkeys(which))
    unknown = [name for name in requested if name not in MODEL_NAMES]
    if unknown or not requested:
        raise InputError(
            f"cannot train {', '.join(unknown) or 'nothing'}; choose from {', '.join(MODEL_NAMES)}"
        )
    trainers: dict[str, Callable[..., TrainedModel]] = {
        ModelName.FACE: train_face,
        ModelName.VOICE: train_voice,
        ModelName.PRODUCT: train_product,
    }
    # Every table is checked before the first (slow) fit, so a missing stage fails at once,
    # and so are the outputs that are written at the end.
    _check_inputs_exist(workspace, requested)
    check_writable(workspace.manifest, workspace.training_summary)
    check_kept_models(workspace, requested)
    inputs = {name: _required_inputs(workspace, name) for name in requested}
    trained: list[TrainedModel] = []
    for name in requested:
        check_cancelled(cancel, f"train.{name}")
        stage = f"train.{name}"
        progress(Progress(stage, 0, 0, f"training the {name} model"))
        model_started = time.perf_counter()
        result = trainers[name](workspace, settings, inputs[name], progress, cancel)
        metrics = {
            **result.record.metrics,
            "seconds": round(time.perf_counter() - model_started, 3),
        }
        result = dataclasses.replace(
            result, record=dataclasses.replace(result.record, metrics=metrics)
        )
        trained.append(result)
        progress(Progress(stage, 1, 1, f"{name} model trained", _scalar_metrics(metrics)))

    product = next((t for t in trained if t.record.name == ModelName.PRODUCT), None)
    check_cancelled(cancel, "train.save")
    progress(Progress("train.save", 0, 1, "writing models/"))
    # The manifest is the source of truth; the summary is a readable copy of its metrics,
    # written in the same batch as the models.
    manifest = save_models(
        workspace,
        [t.record for t in trained],
        settings,
        derived_files=lambda manifest: {
            workspace.training_summary: summary_csv(summary_rows(manifest))
        },
    )
    # Stricter login defences are accepted with the models; looser ones only through mmauth
    # models trust, which the audit log records (training also runs inside enroll and remove).
    loosened = weakened(settings.auth, accepted_defences(workspace))
    if not loosened:
        record_defences(workspace, settings.auth)
    summary = summary_rows(manifest)
    progress(Progress("train.save", 1, 1, f"wrote {len(trained)} model(s) and the manifest"))
    return TrainingResult(
        trained=tuple(t.record.name for t in trained),
        summary=tuple(summary),
        manifest=manifest,
        confusion_matrices={t.record.name: t.confusion for t in trained if t.confusion is not None},
        product_verdict=product.comparison.verdict if product else "",
        product_comparison=product.comparison if product else None,
        seconds=time.perf_counter() - started,
        notes=tuple(note for t in trained for note in t.notes)
        + tuple(
            f"settings: {change}; logins are refused until mmauth models trust accepts it "
            "(recorded in the audit log) or the setting is restored"
            for change in loosened
        ),
    )


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A fitted model with what the training run reports about it."""

    record: ModelRecord
    confusion: tuple[list[str], list[list[int]]] | None = None
    """(labels, held-out confusion matrix), when the model measured one."""
    comparison: Any = None
    """The product model's ModelComparison."""
    notes: tuple[str, ...] = ()
    """Warnings about this model, in words (see ``TrainingResult.notes``)."""


def face_table_backend(workspace: Workspace) -> str | None:
    """The backend data/image_features.csv was extracted with (None before mmauth features)."""
    import pandas as pd

    if not workspace.image_features.is_file():
        return None
    header = pd.read_csv(workspace.image_features, nrows=0).columns
    if "backend" not in header:
        return None
    backends = pd.read_csv(workspace.image_features, usecols=["backend"])["backend"].dropna()
    return str(backends.iloc[0]) if len(backends) else None


def train_face(
    workspace: Workspace,
    settings: Settings,
    inputs: dict[str, str],
    progress: ProgressCallback,
    cancel: threading.Event | None,
) -> TrainedModel:
    """FaceIdentifier fitted on the enrolment rows of data/image_features.csv."""
    from engine.models.face import FaceIdentifier

    table = _enrolment_rows(workspace, workspace.image_features, "feature_")
    backends = sorted(set(table["backend"].astype(str))) if "backend" in table else []
    if len(backends) > 1:
        raise InputError(
            f"mixes feature backends {', '.join(backends)}; re-run mmauth features",
            path=workspace.relative(workspace.image_features),
            column="backend",
        )
    backend = backends[0] if backends else settings.face.backend
    features = feature_matrix(table, "feature_")
    members = table["member"].astype(str).to_numpy()
    sources = table["source"].astype(str).to_numpy()
    originals = (table["augmentation"] == "original").to_numpy()
    model = FaceIdentifier(
        backend=backend,
        target_fmr=settings.models.target_fmr,
        threshold_rule=settings.models.face_threshold_rule,
        random_state=settings.seed,
    ).fit(
        features,
        members,
        groups=sources,
        augmented=~originals,
        progress=progress,
        cancel=cancel,
    )
    # The check's margin was measured on dlib embeddings only (engine.models.enrolment_check).
    misfits = (
        face_misfits(features[originals], members[originals], sources[originals])
        if backend == "dlib"
        else None
    )
    from engine.faces.extract import face_report_path

    stale = stale_table_note(
        workspace,
        ModelName.FACE,
        table,
        workspace.image_features,
        workspace.faces_dir,
        face_report_path(workspace),
    )
    single = single_file_note(ModelName.FACE, members, sources, ("photo", "photos"))
    return _biometric_result(
        ModelName.FACE, model, inputs, backend, settings, misfits, (stale, single)
    )


def train_voice(
    workspace: Workspace,
    settings: Settings,
    inputs: dict[str, str],
    progress: ProgressCallback,
    cancel: threading.Event | None,
) -> TrainedModel:
    """VoiceVerifier fitted on the enrolment rows of data/audio_features.csv and their MFCC
    sequences."""
    from engine.models.voice import VoiceVerifier
    from engine.voices.embedding import EMBEDDING_SIZE
    from engine.voices.extract import mfcc_sequences_for

    table = _enrolment_rows(
        workspace,
        workspace.audio_features,
        "audio_feature_",
        minimum_members=3,
        # Each member in turn is left out to play a stranger; the speaker model learnt from
        # the others needs at least two voices to tell apart.
        why="for the voice model (each member is left out in turn to measure strangers, and "
        "the speaker model needs two voices among the rest)",
    )
    embeddings = feature_matrix(table, "audio_feature_")
    if embeddings.shape[1] != EMBEDDING_SIZE:
        # Tables written before the speaker embedding hold clip statistics instead.
        raise MissingStageError(
            f"{workspace.relative(workspace.audio_features)} was written by an older version of "
            "mmauth (no speaker embeddings): run mmauth features again"
        )
    members = table["member"].astype(str).to_numpy()
    phrases = table["phrase"].astype(str).to_numpy()
    sequences = mfcc_sequences_for(workspace, table, "enrolment")
    sources = table["source"].astype(str).to_numpy()
    originals = (table["augmentation"] == "original").to_numpy()
    model = VoiceVerifier(
        target_fmr=settings.models.target_fmr,
        threshold_rule=settings.models.voice_threshold_rule,
        random_state=settings.seed,
    ).fit(
        embeddings,
        members,
        phrases=phrases,
        sequences=sequences,
        groups=sources,
        augmented=~originals,
        progress=progress,
        cancel=cancel,
    )
    misfits = voice_misfits(
        embeddings[originals],
        members[originals],
        phrases[originals],
        [s for s, keep in zip(sequences, originals, strict=True) if keep],
        sources[originals],
    )
    from engine.voices.extract import audio_report_path

    stale = stale_table_note(
        workspace,
        ModelName.VOICE,
        table,
        workspace.audio_features,
        workspace.voices_dir,
        audio_report_path(workspace),
    )
    single = single_file_note(
        ModelName.VOICE, members, sources, ("recording", "recordings"), phrases
    )
    return _biometric_result(ModelName.VOICE, model, inputs, "", settings, misfits, (stale, single))


def train_product(
    workspace: Workspace,
    settings: Settings,
    inputs: dict[str, str],
    progress: ProgressCallback,
    cancel: threading.Event | None,
) -> TrainedModel:
    """ProductRecommender chosen by repeated stratified cross-validation on the merged table."""
    from engine.customers.members import link_problems
    from engine.models.product import ProductRecommender
    from engine.models.recommend import ID_COLUMN, load_product_table, read_merged_dataset

    features, categories, _ = load_product_table(workspace)
    links = link_problems(workspace, read_merged_dataset(workspace)[ID_COLUMN].astype(str))
    model = ProductRecommender(
        cv_splits=settings.models.cv_splits,
        cv_repeats=settings.models.cv_repeats,
        random_state=settings.seed,
    ).fit(features, categories, progress=progress, cancel=cancel)
    comparison = model.comparison_
    metrics = {
        **model.evaluation_,
        "eer": math.nan,
        "fmr": math.nan,
        "fnmr": math.nan,
        "threshold": math.nan,
        "verdict": comparison.verdict,
    }
    return TrainedModel(
        record=ModelRecord(name=ModelName.PRODUCT, model=model, metrics=metrics, inputs=inputs),
        confusion=(list(comparison.classes), [list(row) for row in comparison.confusion]),
        comparison=comparison,
        notes=tuple(f"product: {problem}" for problem in links),
    )


def summary_rows(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One training_summary.csv row per model listed in the manifest."""
    rows = []
    for name, entry in manifest.get("models", {}).items():
        metrics = entry.get("metrics", {})
        row = {column: metrics.get(column) for column in SUMMARY_COLUMNS}
        row.update(model=name, backend=entry.get("backend", ""), created=entry.get("created", ""))
        rows.append(row)
    return rows


def summary_csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """training_summary.csv's bytes: SUMMARY_COLUMNS, one row per model."""
    import pandas as pd

    frame = pd.DataFrame(list(rows), columns=list(SUMMARY_COLUMNS))
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


_STAGE_COMMANDS = ("mmauth merge", "mmauth features")
"""The commands that write training's inputs, in the order the README runs them."""


def _input_files(workspace: Workspace, name: str) -> list[tuple[Path, str]]:
    """Each input file of a model, with the command that writes it."""
    needed = {
        ModelName.FACE: [(workspace.image_features, "mmauth features")],
        ModelName.VOICE: [(workspace.audio_features, "mmauth features")],
        ModelName.PRODUCT: [(workspace.merged_dataset, "mmauth merge")],
    }[ModelName(name)]
    if name == ModelName.VOICE:
        from engine.voices.extract import mfcc_sequences_path

        needed.append((mfcc_sequences_path(workspace), "mmauth features"))
    return needed


def _check_inputs_exist(workspace: Workspace, requested: Sequence[str]) -> None:
    """MissingStageError naming every missing input of the requested models and every command
    that writes them, so the advice is the whole way to a training that runs, not its first
    step; and the models that could be trained alone."""
    problems: list[str] = []
    commands: set[str] = set()
    ready: list[str] = []
    for name in requested:
        absent = [(p, command) for p, command in _input_files(workspace, name) if not p.is_file()]
        if not absent:
            ready.append(name)
            continue
        paths = " and ".join(workspace.relative(path) for path, _ in absent)
        problems.append(
            f"the {name} model needs {paths}, which {'is' if len(absent) == 1 else 'are'} missing"
        )
        commands.update(command for _, command in absent)
    if not problems:
        return
    ordered = [command for command in _STAGE_COMMANDS if command in commands]
    advice = f"run {' and '.join(ordered)} first"
    if ready:
        advice += ", or train the others alone: mmauth train " + " ".join(
            f"--only {name}" for name in ready
        )
    elif "mmauth merge" in commands and len(requested) > 1:
        others = " ".join(f"--only {name}" for name in requested if name != ModelName.PRODUCT)
        # Without customer tables mmauth merge cannot run: the biometric models train alone.
        advice += f" (without customer tables, mmauth train {others} leaves the product out)"
    raise MissingStageError("; ".join(problems) + ": " + advice)


def _required_inputs(workspace: Workspace, name: str) -> dict[str, str]:
    """SHA-256 of each input file of a model; MissingStageError naming the command to run."""
    hashes = {}
    for path, command in _input_files(workspace, name):
        if not path.is_file():
            raise MissingStageError(
                f"the {name} model needs {workspace.relative(path)}, which is missing: "
                f"run {command} first"
            )
        hashes[workspace.relative(path)] = file_sha256(path)
    return hashes


def _enrolment_rows(
    workspace: Workspace, path: Path, prefix: str, minimum_members: int = 2, why: str = ""
) -> Any:
    where = workspace.relative(path)
    table = read_feature_table(workspace, path, prefix)
    enrolment = table[table["role"] == ENROL_ROLE].reset_index(drop=True)
    members = enrolment["member"].nunique()
    if members < minimum_members:
        raise MissingStageError(
            f"{where} has enrolment rows for {members} member(s); at least {minimum_members} "
            f"are needed {why or 'to calibrate against impostors'}: enrol more members and run "
            "mmauth features"
        )
    return enrolment


def stale_table_note(
    workspace: Workspace, name: str, table: Any, table_path: Path, folder: Path, report: Path
) -> str | None:
    """A warning when the enrolment files under ``folder`` are not those the feature table
    (``table``: its enrolment rows, read from ``table_path``) was made from: files added or
    removed since ``mmauth features`` (files that run could not use, listed in its ``report``,
    do not count); else None.

    Training reads the table, not the folders: without the note, a photo added by hand is
    silently left out, and a removed member's rows come back into the model.
    """
    import json

    on_disk = {
        workspace.relative(path) for files in member_folders(folder).values() for path in files
    }
    listed = set(table["source"].astype(str))
    failed: set[str] = set()
    try:
        document = json.loads(report.read_text(encoding="utf-8"))
        failed = {str(f.get("source")) for f in document.get("failures", [])}
    except (OSError, ValueError, AttributeError, TypeError):
        pass  # no readable report: every file missing from the table counts as added
    added, removed = sorted(on_disk - listed - failed), sorted(listed - on_disk)
    if not added and not removed:
        return None
    changes = [
        f"{len(files)} file(s) {what} since (e.g. {files[0]})"
        for files, what in ((added, "added"), (removed, "removed"))
        if files
    ]
    return (
        f"{name}: {workspace.relative(folder)} changed after {workspace.relative(table_path)} "
        f"was written: {'; '.join(changes)}. This model learnt from the table: run mmauth "
        "features, then mmauth train, to learn from the files as they are."
    )


THRESHOLD_SECTIONS = {
    ModelName.FACE: ("face_threshold_rule", "Face threshold on held-out people"),
    ModelName.VOICE: ("voice_threshold_rule", "Voice threshold from a population"),
}
"""Per biometric model: the setting that chooses its threshold rule, and the docs/BENCHMARKS.md
section that measures it."""


def single_file_note(
    name: str, members: Any, sources: Any, files: tuple[str, str], phrases: Any = None
) -> str | None:
    """A note naming the members enrolled with one file (of each phrase, given ``phrases``),
    else None: none of their genuine attempts is in the held-out figures
    (engine.models._calibration.check_held_out_sources)."""
    from engine.models._calibration import listed, single_source_members

    single = single_source_members(members, sources, phrases)
    if not single:
        return None
    file = files[0] if phrases is None else f"{files[0]} of each phrase"
    return (
        f"{name}: {listed(single)} "
        + (f"has one {file}" if len(single) == 1 else f"have one {file} each")
        + f": the held-out figures hold no genuine attempt of theirs (a {file} is never scored "
        f"by a model that learnt it); a second {file} "
        + ("would" if len(single) == 1 else "of each would")
        + " measure them too"
    )


def calibration_note(name: str, evaluation: Mapping[str, Any], target_fmr: float) -> str | None:
    """A warning when the model's held-out false matches on the enrolment data are clearly above
    ``target_fmr`` (the Wilson interval's lower bound above it), else None.

    The default thresholds are operating points measured on other people; enrolled people more
    alike than those pass more often, and only this workspace's own impostor scores show it.
    """
    matches, trials = evaluation.get("false_matches"), evaluation.get("n_impostor")
    if not isinstance(matches, numbers.Integral) or not isinstance(trials, numbers.Integral):
        return None
    measured = rate(int(matches), int(trials))
    if not trials or measured.low <= target_fmr:
        return None
    setting, section = THRESHOLD_SECTIONS[ModelName(name)]
    return (
        f"{name}: at its threshold, other enrolled people pass {format_rate(measured)} of the "
        f"held-out impostor attempts on the enrolment data, above the {target_fmr:.1%} target: "
        "these people are more alike than those the threshold was measured on "
        f'(docs/BENCHMARKS.md, "{section}"). models.{setting} = "gaussian_tail" calibrates on '
        "them instead, or a stricter models.target_fmr raises the threshold."
    )


def _biometric_result(
    name: str,
    model: Any,
    inputs: dict[str, str],
    backend: str,
    settings: Settings,
    misfits: Sequence[Misfit] | None,
    table_notes: Sequence[str | None],
) -> TrainedModel:
    """The model's record with its scalar metrics, held-out confusion matrix and notes
    (``table_notes``: ``stale_table_note``'s and ``single_file_note``'s); the number of misfit
    enrolment files is kept as ``enrolment_misfits`` (absent when the check did not run: it was
    measured on dlib faces only)."""
    evaluation = dict(model.evaluation_)
    confusion = None
    if evaluation.get("confusion") is not None and evaluation.get("labels") is not None:
        confusion = (
            [str(label) for label in evaluation["labels"]],
            [[int(v) for v in row] for row in evaluation["confusion"]],
        )
    metrics = _scalar_metrics(evaluation)
    metrics.setdefault("threshold", float(model.threshold_))
    if misfits is not None:
        metrics["enrolment_misfits"] = len(misfits)
    note = calibration_note(name, evaluation, settings.models.target_fmr)
    return TrainedModel(
        record=ModelRecord(name=name, model=model, metrics=metrics, inputs=inputs, backend=backend),
        confusion=confusion,
        notes=tuple(
            n for n in (*table_notes, note, *enrolment_notes(name, misfits or [])) if n is not None
        ),
    )


def _scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The plain numbers and words of a metrics mapping (score arrays stay in the model)."""
    plain: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, bool | str | int | float):
            plain[key] = value
        elif hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            plain[key] = value.item()
    return plain
