"""Probe evaluation: open-set face identification, voice verification and face AND voice figures, and
evaluate_models on a workspace's feature tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.core.errors import InputError, MissingStageError
from engine.core.settings import Settings
from engine.core.workspace import Workspace
from engine.models.evaluation import (
    evaluate_decision,
    evaluate_face,
    evaluate_models,
    evaluate_voice,
    evaluation_path,
)
from engine.models.face import FaceIdentifier
from engine.models.loading import ModelBundle
from engine.models.voice import VoiceVerifier
from tests.engine.test_biometrics import MEMBER_PHRASES, face_rows, voice_clip, voice_table


@pytest.fixture
def centres() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {f"p{i}": rng.normal(0, 2.0, 24) for i in range(12)}


@pytest.fixture
def face_model(centres: dict[str, np.ndarray]) -> FaceIdentifier:
    X, y, groups = face_rows(dict(list(centres.items())[:9]), np.random.default_rng(8))
    return FaceIdentifier(backend="dlib").fit(X, y, groups)


def test_evaluate_face_counts_members_strangers_and_failures(
    face_model: FaceIdentifier, centres: dict[str, np.ndarray]
) -> None:
    rng = np.random.default_rng(9)
    members, member_labels, _ = face_rows(dict(list(centres.items())[:9]), rng, 2, 1)
    strangers, stranger_labels, _ = face_rows(dict(list(centres.items())[9:]), rng, 2, 1)
    # One member probe is an impostor's photo under the member's name: a rank-1 miss.
    members[0] = strangers[0]
    features = np.vstack([members, strangers])
    labels = np.concatenate([member_labels, stranger_labels])
    result = evaluate_face(face_model, features, labels, failed_labels=["p0", "p10"])
    assert result.members == tuple(f"p{i}" for i in range(9))
    assert result.strangers == ("p10", "p11", "p9")
    assert result.identification_accuracy.trials == 18
    assert result.identification_accuracy.count == 17
    assert result.fnir.count == 1 and result.fnir.trials == 18
    assert result.fpir.trials == 6 and result.fpir.count == 0
    assert result.fta.count == 2 and result.fta.trials == 26
    assert result.fnir_with_fta.count == 2 and result.fnir_with_fta.trials == 19
    assert len(result.genuine) == 18 and len(result.impostor) == 6
    assert 0.0 <= result.eer <= 0.1 and result.threshold == face_model.threshold_


@pytest.fixture
def voices() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {name: rng.normal(0, 1.0, 14) for name in ("ann", "bob", "cyd", "dee", "eve")}


@pytest.fixture
def voice_model(voices: dict[str, np.ndarray]) -> VoiceVerifier:
    X, y, phrases, sequences, groups = voice_table(voices, MEMBER_PHRASES, takes=5, seed=4)
    return VoiceVerifier(target_fmr=0.05).fit(X, y, phrases, sequences, groups)


def voice_probes(voices: dict[str, np.ndarray], rows: list[tuple[str, str]], seed: int):
    rng = np.random.default_rng(seed)
    clips = [voice_clip(voices[speaker], phrase, rng) for speaker, phrase in rows]
    return (
        np.array([vector for vector, _ in clips]),
        np.array([speaker for speaker, _ in rows]),
        np.array([phrase for _, phrase in rows]),
        [sequence for _, sequence in clips],
    )


def test_evaluate_voice_separates_genuine_members_strangers_and_wrong_phrases(
    voice_model: VoiceVerifier, voices: dict[str, np.ndarray]
) -> None:
    rows = [("ann", "yes"), ("ann", "approve"), ("bob", "go"), ("dee", "yes"), ("ann", "go")]
    features, labels, phrases, sequences = voice_probes(voices, rows, seed=12)
    result = evaluate_voice(
        voice_model, features, labels, phrases, sequences, failed_labels=["dee"]
    )
    # Genuine: ann's two enrolled phrases and bob's; ann saying "go" is a wrong-phrase attempt.
    assert result.fnmr.trials == 3
    assert result.wrong_phrase_acceptance.trials == 1
    assert result.wrong_phrase_acceptance.count == 0
    # Every member probe claims the three other members; the stranger claims all four.
    assert result.fmr_members.trials == 4 * 3
    assert result.fmr_strangers.trials == 4
    assert result.fta.count == 1 and result.fta.trials == 6
    assert result.strangers == ("dee",)
    assert max(result.impostor_strangers) < min(result.genuine)


def test_evaluate_decision_on_chimeric_pairs(
    face_model: FaceIdentifier, voice_model: VoiceVerifier, centres: dict, voices: dict
) -> None:
    rng = np.random.default_rng(13)
    members, member_labels, _ = face_rows(dict(list(centres.items())[:9]), rng, 2, 1)
    strangers, stranger_labels, _ = face_rows(dict(list(centres.items())[9:]), rng, 2, 1)
    face = evaluate_face(
        face_model,
        np.vstack([members, strangers]),
        np.concatenate([member_labels, stranger_labels]),
    )
    rows = [("ann", "yes"), ("bob", "go"), ("cyd", "yes"), ("dee", "yes"), ("dee", "go")]
    voice = evaluate_voice(voice_model, *voice_probes(voices, rows, seed=14))
    result = evaluate_decision(face, voice)
    assert result.pairs == len(face.genuine) * len(voice.genuine)
    assert result.fmr == 0.0 and 0.0 <= result.fnmr <= 1.0


def write_face_table(workspace: Workspace, model: FaceIdentifier, centres: dict) -> None:
    rng = np.random.default_rng(15)
    X, y, groups = face_rows(dict(list(centres.items())[:9]), rng, 1, 1)
    probes, labels, _ = face_rows(centres, rng, 2, 1)
    table = pd.DataFrame(np.vstack([X, probes]), columns=[f"feature_{i}" for i in range(24)])
    table.insert(0, "member", np.concatenate([y, labels]))
    table.insert(1, "source", [f"data/raw/x/{i}" for i in range(len(table))])
    table.insert(2, "role", ["enrol"] * len(X) + ["probe"] * len(probes))
    table.insert(3, "backend", "dlib")
    workspace.data_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(workspace.image_features, index=False)


def test_evaluate_models_writes_the_report(
    workspace: Workspace, face_model: FaceIdentifier, centres: dict
) -> None:
    write_face_table(workspace, face_model, centres)
    failures = [
        {"source": "data/raw/probes/faces/p1/dark.jpg", "kind": "fta", "reason": "no face"},
        {"source": "data/raw/probes/faces/p2/bad.jpg", "kind": "input", "reason": "truncated"},
        {"source": "data/raw/faces/p3/enrol.jpg", "kind": "fta", "reason": "no face"},
    ]
    report_file = workspace.data_dir / "image_features_report.json"
    report_file.write_text(json.dumps({"failures": failures}))
    bundle = ModelBundle(face=face_model, voice=None, product=None, manifest={})
    report = evaluate_models(workspace, Settings(), bundle=bundle)
    assert report.voice is None and report.decision is None
    # Only the probe that failed to acquire counts: not the unreadable one, not enrolment.
    assert report.face.fta.count == 1 and report.face.fnir_with_fta.trials == 19
    assert report.face.identification_accuracy.trials == 18
    assert report.face.fpir.trials == 6
    document = json.loads(evaluation_path(workspace).read_text())
    assert document["face"]["fnir"]["trials"] == 18
    assert document["face"]["backend"] == "dlib"


def test_evaluate_models_refuses_mismatched_backend_and_missing_inputs(
    workspace: Workspace, face_model: FaceIdentifier, centres: dict
) -> None:
    bundle = ModelBundle(face=face_model, voice=None, product=None, manifest={})
    with pytest.raises(MissingStageError, match="run mmauth features"):
        evaluate_models(workspace, Settings(), bundle=bundle)
    write_face_table(workspace, face_model, centres)
    table = pd.read_csv(workspace.image_features)
    table["backend"] = "classic"
    table.to_csv(workspace.image_features, index=False)
    with pytest.raises(InputError, match="classic backend"):
        evaluate_models(workspace, Settings(), bundle=bundle)
    empty = ModelBundle(face=None, voice=None, product=None, manifest={})
    with pytest.raises(MissingStageError, match="nothing to evaluate"):
        evaluate_models(workspace, Settings(), bundle=empty)
