"""Evaluation of the trained face and voice models on the probes (rows with ``role == probe``).

Probes were never used for fitting or calibration: enrolment rows train the models and set the
thresholds (engine.models.face, engine.models.voice), probe rows measure them here. Figures follow ISO/IEC 19795-1:

- face, open-set identification: rank-1 identification accuracy of members' probes, FNIR
  (members' probes not identified as themselves at the threshold), FPIR (strangers' probes, i.e.
  probe labels that are not enrolled members, identified as someone), EER of mated scores against
  strangers' best scores, FTA (probe photos with no usable face);
- voice, verification: FNMR (members' probes against their own claim), FMR against other
  members (members' probes claiming someone else) and against strangers (every stranger probe
  claiming every member), their EERs, the phrase check on probes saying a phrase the member did
  not enrol, FTA;
- the decision: the AND rule of face and voice on chimeric pairs of face and voice scores.

Every rate comes with its Wilson 95% interval (engine.core.metrics.rate).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import InputError, MissingStageError
from engine.core.feature_tables import PROBE, feature_matrix, read_feature_table
from engine.core.fileio import atomic_write_json
from engine.core.metrics import Rate, det_curve, equal_error_rate, rate
from engine.core.progress import Progress, ProgressCallback, check_cancelled, no_progress
from engine.core.settings import Settings
from engine.core.workspace import Workspace

FACE_PREFIX = "feature_"
VOICE_PREFIX = "audio_feature_"


@dataclasses.dataclass(frozen=True)
class FaceEvaluation:
    """Open-set identification figures of the face model on the probe photos."""

    backend: str
    """Feature backend of the model (classic or dlib)."""
    members: tuple[str, ...]
    """Enrolled members."""
    strangers: tuple[str, ...]
    """Probe labels that are not enrolled members."""
    threshold: float
    """The model's calibrated threshold (set on enrolment data only)."""
    identification_accuracy: Rate
    """Members' probes whose best-scoring member is themselves (rank 1, before the threshold)."""
    fnir: Rate
    """False negative identification rate: members' probes not identified as themselves at the
    threshold (rejected or identified as someone else)."""
    fpir: Rate
    """False positive identification rate: strangers' probes identified as a member."""
    fta: Rate
    """Failure to acquire: probe photos that gave no features (no face found)."""
    fnir_with_fta: Rate
    """FNIR counting members' probe photos that failed to acquire as misses."""
    eer: float
    """Equal error rate of mated scores (members' probes, own column) against strangers' best
    scores (NaN without strangers)."""
    fnir_at_target: float
    """FNIR at the threshold giving FPIR = target on these strangers (an oracle threshold: shows
    what the scores allow, not what the calibrated threshold achieves)."""
    target_fmr: float
    """The false positive rate the threshold was calibrated to."""
    genuine: tuple[float, ...]
    """Mated scores of members' probes (for DET plots)."""
    impostor: tuple[float, ...]
    """Best scores of strangers' probes."""


@dataclasses.dataclass(frozen=True)
class VoiceEvaluation:
    """Verification figures of the voice model on the probe recordings."""

    members: tuple[str, ...]
    """Enrolled members."""
    strangers: tuple[str, ...]
    """Probe labels that are not enrolled members."""
    threshold: float
    """The model's calibrated threshold of the combined score."""
    fnmr: Rate
    """Members' probes (of an enrolled phrase) rejected against their own claim."""
    fmr_members: Rate
    """Members' probes accepted when claiming another member."""
    fmr_strangers: Rate
    """Strangers' probes accepted when claiming any member."""
    wrong_phrase_acceptance: Rate
    """Members' own probes saying a phrase they did not enrol that were accepted."""
    fta: Rate
    """Probe recordings that gave no features (silence, too little speech)."""
    eer_members: float
    """EER of genuine scores against other members' claims."""
    eer_strangers: float
    """EER of genuine scores against strangers' claims."""
    fnmr_at_target_members: float
    """FNMR at the threshold giving FMR = target against other members (oracle threshold)."""
    fnmr_at_target_strangers: float
    """FNMR at the threshold giving FMR = target against strangers (oracle threshold)."""
    target_fmr: float
    """The false match rate the threshold was calibrated to."""
    genuine: tuple[float, ...]
    """Combined scores of genuine attempts."""
    impostor_members: tuple[float, ...]
    """Combined scores of other members' attempts."""
    impostor_strangers: tuple[float, ...]
    """Combined scores of strangers' attempts."""


@dataclasses.dataclass(frozen=True)
class DecisionEvaluation:
    """Face AND voice decisions on chimeric users (a face probe paired with a voice probe)."""

    fmr: float
    """Chimeric impostors accepted (both modalities at their own threshold)."""
    fnmr: float
    """Chimeric genuine users refused."""
    pairs: int
    """Chimeric genuine pairs (and as many impostor pairs at most) the figures are measured on."""


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    """What ``mmauth evaluate`` measured."""

    face: FaceEvaluation | None
    """Face figures, None when there is no face model or no face probe."""
    voice: VoiceEvaluation | None
    """Voice figures, None when there is no voice model or no voice probe."""
    decision: DecisionEvaluation | None
    """Figures of the AND rule, when both modalities were evaluated."""
    created: str
    """When the evaluation ran (UTC, ISO 8601)."""
    output: Path | None = None
    """reports/evaluation.json, when written."""


# --------------------------------------------------------------------------------------------
# Face


def evaluate_face(
    model: Any,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    failed_labels: list[str] | None = None,
    backend: str = "",
) -> FaceEvaluation:
    """Open-set identification figures of ``model`` on probe feature rows labelled by person.

    ``failed_labels`` has the label of every probe file that failed to acquire (counted in FTA,
    and as misses in ``fnir_with_fta`` when the label is a member).
    """
    labels = np.asarray(labels).astype(str)
    failed = [str(label) for label in (failed_labels or [])]
    members = list(model.members_)
    is_member = np.isin(labels, members)
    scores = model.decision_function(features) if len(labels) else np.empty((0, len(members)))
    best = scores.argmax(axis=1) if len(labels) else np.empty(0, dtype=int)
    best_scores = scores.max(axis=1) if len(labels) else np.empty(0)
    threshold = float(model.threshold_)

    member_columns = np.searchsorted(members, labels[is_member])
    genuine = scores[is_member][np.arange(int(is_member.sum())), member_columns]
    rank1 = best[is_member] == member_columns
    identified = rank1 & (genuine >= threshold)
    impostor = best_scores[~is_member]
    member_fta = sum(label in members for label in failed)
    return FaceEvaluation(
        backend=backend or getattr(model, "backend", ""),
        members=tuple(members),
        strangers=tuple(
            sorted({str(x) for x in labels[~is_member]} | (set(failed) - set(members)))
        ),
        threshold=threshold,
        identification_accuracy=rate(int(rank1.sum()), rank1.size),
        fnir=rate(int((~identified).sum()), identified.size),
        fpir=rate(int((impostor >= threshold).sum()), impostor.size),
        fta=rate(len(failed), len(labels) + len(failed)),
        fnir_with_fta=rate(int((~identified).sum()) + member_fta, identified.size + member_fta),
        eer=_eer(genuine, impostor),
        fnir_at_target=_fnmr_at_fmr(genuine, impostor, model.target_fmr),
        target_fmr=float(model.target_fmr),
        genuine=tuple(map(float, genuine)),
        impostor=tuple(map(float, impostor)),
    )


# --------------------------------------------------------------------------------------------
# Voice


def evaluate_voice(
    model: Any,
    features: np.ndarray,
    labels: np.ndarray,
    phrases: np.ndarray,
    sequences: list[np.ndarray],
    *,
    failed_labels: list[str] | None = None,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> VoiceEvaluation:
    """Verification figures of ``model`` on probe rows: every probe claims every member."""
    labels = np.asarray(labels).astype(str)
    phrases = np.asarray(phrases).astype(str)
    members = list(model.members_)
    threshold = float(model.threshold_)
    genuine, wrong_phrase_accepted = [], []
    impostor_members: list[tuple[float, bool]] = []
    impostor_strangers: list[tuple[float, bool]] = []
    genuine_accepted = []
    check_cancelled(cancel, "evaluate.voice")
    progress(Progress("evaluate.voice", 0, 1, f"scoring {len(labels)} probe clips"))
    scores = model.score_claims(features, sequences) if len(labels) else None
    for column, claim in enumerate(members):
        combined = scores.combined[:, column] if scores else np.empty(0)
        accepted = scores.accepted[:, column] if scores else np.empty(0, dtype=bool)
        enrolled_phrase = np.isin(phrases, model.member_phrases_.get(claim, []))
        own = labels == claim
        genuine += list(combined[own & enrolled_phrase])
        genuine_accepted += list(accepted[own & enrolled_phrase])
        wrong_phrase_accepted += list(accepted[own & ~enrolled_phrase])
        other_member = np.isin(labels, members) & ~own
        stranger = ~np.isin(labels, members)
        impostor_members += list(zip(combined[other_member], accepted[other_member], strict=True))
        impostor_strangers += list(zip(combined[stranger], accepted[stranger], strict=True))
    progress(Progress("evaluate.voice", 1, 1, "done"))
    genuine_scores = np.asarray(genuine)
    member_scores = np.asarray([s for s, _ in impostor_members])
    stranger_scores = np.asarray([s for s, _ in impostor_strangers])
    failed = [str(label) for label in (failed_labels or [])]
    return VoiceEvaluation(
        members=tuple(members),
        strangers=tuple(
            sorted({str(x) for x in labels} - set(members) | (set(failed) - set(members)))
        ),
        threshold=threshold,
        fnmr=rate(int(np.sum(~np.asarray(genuine_accepted, dtype=bool))), len(genuine_accepted)),
        fmr_members=rate(sum(a for _, a in impostor_members), len(impostor_members)),
        fmr_strangers=rate(sum(a for _, a in impostor_strangers), len(impostor_strangers)),
        wrong_phrase_acceptance=rate(int(sum(wrong_phrase_accepted)), len(wrong_phrase_accepted)),
        fta=rate(len(failed), len(labels) + len(failed)),
        eer_members=_eer(genuine_scores, member_scores),
        eer_strangers=_eer(genuine_scores, stranger_scores),
        fnmr_at_target_members=_fnmr_at_fmr(genuine_scores, member_scores, model.target_fmr),
        fnmr_at_target_strangers=_fnmr_at_fmr(genuine_scores, stranger_scores, model.target_fmr),
        target_fmr=float(model.target_fmr),
        genuine=tuple(map(float, genuine_scores)),
        impostor_members=tuple(map(float, member_scores)),
        impostor_strangers=tuple(map(float, stranger_scores)),
    )


# --------------------------------------------------------------------------------------------
# The decision


def evaluate_decision(
    face: FaceEvaluation,
    voice: VoiceEvaluation,
    *,
    random_state: int = 0,
    max_pairs: int = 100_000,
) -> DecisionEvaluation:
    """AND-rule error rates on chimeric users: each genuine face score paired with a genuine
    voice score, each stranger's face score with a stranger's voice score."""
    rng = np.random.default_rng(random_state)
    face_genuine, face_impostor = np.asarray(face.genuine), np.asarray(face.impostor)
    voice_genuine = np.asarray(voice.genuine)
    voice_impostor = np.asarray(voice.impostor_strangers or voice.impostor_members)
    genuine_pairs = _pairs(face_genuine, voice_genuine, rng, max_pairs)
    impostor_pairs = _pairs(face_impostor, voice_impostor, rng, max_pairs)
    if genuine_pairs is None or impostor_pairs is None:
        return DecisionEvaluation(math.nan, math.nan, 0)

    def accepts(pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return (pairs[0] >= face.threshold) & (pairs[1] >= voice.threshold)

    return DecisionEvaluation(
        fmr=float(np.mean(accepts(impostor_pairs))),
        fnmr=float(np.mean(~accepts(genuine_pairs))),
        pairs=int(genuine_pairs[0].size),
    )


def _pairs(
    first: np.ndarray, second: np.ndarray, rng: np.random.Generator, max_pairs: int
) -> tuple[np.ndarray, np.ndarray] | None:
    if first.size == 0 or second.size == 0:
        return None
    if first.size * second.size <= max_pairs:
        a, b = np.meshgrid(first, second, indexing="ij")
        return a.ravel(), b.ravel()
    return rng.choice(first, max_pairs), rng.choice(second, max_pairs)


# --------------------------------------------------------------------------------------------
# Workspace


def evaluate_models(
    workspace: Workspace,
    settings: Settings,
    bundle: Any = None,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> EvaluationReport:
    """Evaluate the workspace's trained face and voice models on its probes and write
    reports/evaluation.json.

    Loads the models through engine.models.loading (verified against the manifest) unless a bundle
    is given. Raises MissingStageError when there is nothing to evaluate.
    """
    if bundle is None:
        from engine.models.loading import load_model_bundle

        bundle = load_model_bundle(workspace, require=())
    face = voice = None
    if bundle.face is not None:
        progress(Progress("evaluate.face", 0, 1, "scoring probe photos"))
        face = _evaluate_workspace_faces(workspace, bundle.face)
        progress(Progress("evaluate.face", 1, 1, "done"))
    check_cancelled(cancel, "evaluate")
    if bundle.voice is not None:
        voice = _evaluate_workspace_voices(workspace, bundle.voice, progress, cancel)
    if face is None and voice is None:
        raise MissingStageError(
            "nothing to evaluate: train the face or voice model (mmauth train) and put probes in "
            f"{workspace.relative(workspace.probe_faces_dir)}/<label>/ or "
            f"{workspace.relative(workspace.probe_voices_dir)}/<label>/, then run mmauth features"
        )
    decision = None
    if face is not None and voice is not None:
        decision = evaluate_decision(face, voice, random_state=settings.seed)
    report = EvaluationReport(
        face=face,
        voice=voice,
        decision=decision,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        output=evaluation_path(workspace),
    )
    atomic_write_json(evaluation_path(workspace), report_document(report))
    return report


def evaluation_path(workspace: Workspace) -> Path:
    return workspace.reports_dir / "evaluation.json"


def report_document(report: EvaluationReport) -> dict[str, Any]:
    """The report as plain JSON values (rates as value/low/high/count/trials)."""
    return _plain(dataclasses.asdict(report))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _probe_rows(workspace: Workspace, path: Path, prefix: str) -> tuple[Any, np.ndarray] | None:
    """Probe rows of a feature table and their feature matrix, or None when there are none."""
    table = read_feature_table(workspace, path, prefix)
    probes = table[table["role"] == PROBE].reset_index(drop=True)
    if probes.empty:
        return None
    return probes, feature_matrix(probes, prefix)


def _failed_probe_labels(workspace: Workspace, report_path: Path, probe_dir: Path) -> list[str]:
    """Labels of probe files that failed to acquire in the last feature run (its JSON report)."""
    if not report_path.is_file():
        return []
    try:
        document = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    prefix = workspace.relative(probe_dir).rstrip("/") + "/"
    labels = []
    for failure in document.get("failures", []):
        source = str(failure.get("source", ""))
        # Only failures to acquire (no face, no speech) count; an unreadable file is not an
        # attempt the system saw.
        if source.startswith(prefix) and failure.get("kind") == "fta":
            labels.append(source[len(prefix) :].split("/", 1)[0])
    return labels


def _evaluate_workspace_faces(workspace: Workspace, model: Any) -> FaceEvaluation | None:
    from engine.faces.extract import face_report_path

    rows = _probe_rows(workspace, workspace.image_features, FACE_PREFIX)
    if rows is None:
        return None
    probes, features = rows
    failed = _failed_probe_labels(workspace, face_report_path(workspace), workspace.probe_faces_dir)
    backend = str(probes["backend"].iloc[0]) if "backend" in probes else ""
    if backend and backend != getattr(model, "backend", backend):
        raise InputError(
            f"probe features were made with the {backend} backend but the face model with "
            f"{model.backend}: run mmauth features and mmauth train with the same backend",
            path=workspace.relative(workspace.image_features),
        )
    return evaluate_face(
        model,
        features,
        probes["member"].astype(str).to_numpy(),
        failed_labels=failed,
        backend=backend,
    )


def _evaluate_workspace_voices(
    workspace: Workspace,
    model: Any,
    progress: ProgressCallback,
    cancel: threading.Event | None,
) -> VoiceEvaluation | None:
    from engine.voices.extract import audio_report_path, mfcc_sequences_for

    rows = _probe_rows(workspace, workspace.audio_features, VOICE_PREFIX)
    if rows is None:
        return None
    probes, features = rows
    sequences = mfcc_sequences_for(workspace, probes, "probe")
    failed = _failed_probe_labels(
        workspace, audio_report_path(workspace), workspace.probe_voices_dir
    )
    return evaluate_voice(
        model,
        features,
        probes["member"].astype(str).to_numpy(),
        probes["phrase"].astype(str).to_numpy(),
        sequences,
        failed_labels=failed,
        progress=progress,
        cancel=cancel,
    )


def _eer(genuine: np.ndarray, impostor: np.ndarray) -> float:
    if len(genuine) == 0 or len(impostor) == 0:
        return math.nan
    return equal_error_rate(genuine, impostor)[0]


def _fnmr_at_fmr(genuine: np.ndarray, impostor: np.ndarray, target: float) -> float:
    """Lowest FNMR among thresholds whose FMR on these impostors is at most ``target``."""
    if len(genuine) == 0 or len(impostor) == 0:
        return math.nan
    fmr, fnmr, _ = det_curve(genuine, impostor)
    allowed = fmr <= target
    return float(fnmr[allowed].min()) if np.any(allowed) else 1.0
