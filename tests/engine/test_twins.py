"""Inference twins (engine.models._twins) score exactly as the scikit-learn objects they replace,
alone and inside our fitted models, and a login decides the same with either."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.core.errors import ModelIntegrityError
from engine.core.workspace import Workspace
from engine.models import state_file
from engine.models._twins import TWINS
from engine.models.face import FaceIdentifier
from engine.models.loading import ModelBundle
from engine.models.model_files import allowed_types
from engine.models.product import ProductRecommender
from engine.models.recommend import load_product_table, recommend_for_member
from engine.models.voice import VoiceVerifier

RNG = np.random.default_rng(0)
ROWS = RNG.normal(size=(120, 6))
LABELS = np.repeat(["a", "b", "c"], 40)
ROWS[LABELS == "b", 0] += 2  # some signal, so the fits are not degenerate
WITH_GAPS = np.where(RNG.random(ROWS.shape) < 0.15, np.nan, ROWS)
WITH_GAPS[:, 5] = np.nan  # a column never observed


def reloaded(model: Any, *, twins: bool) -> Any:
    """``model`` through a state file, built with or without inference twins."""
    data = state_file.dumps(model, allowed_types())
    return state_file.loads(data, allowed_types(), source="test", twins=TWINS if twins else None)


def assert_same_outputs(library: Any, twin: Any, method: str, X: np.ndarray) -> None:
    assert type(twin).__name__.endswith("Twin"), f"{type(twin)} was built, not a twin"
    expected = getattr(library, method)(X)
    actual = getattr(twin, method)(X)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-15)


LIBRARY_OBJECTS = {
    "scaler": (StandardScaler().fit(ROWS), "transform", ROWS),
    "pca": (PCA(n_components=4, random_state=0).fit(ROWS), "transform", ROWS),
    "pca_whitened": (PCA(n_components=0.9, whiten=True).fit(ROWS), "transform", ROWS),
    "lda_svd": (LinearDiscriminantAnalysis().fit(ROWS, LABELS), "transform", ROWS),
    "lda_eigen": (
        LinearDiscriminantAnalysis(solver="eigen").fit(ROWS, LABELS),
        "transform",
        ROWS,
    ),
    "logistic_binary_decision": (
        LogisticRegression().fit(ROWS, LABELS == "b"),
        "decision_function",
        ROWS,
    ),
    "logistic_binary_proba": (
        LogisticRegression().fit(ROWS, LABELS == "b"),
        "predict_proba",
        ROWS,
    ),
    "logistic_multiclass_decision": (
        LogisticRegression().fit(ROWS, LABELS),
        "decision_function",
        ROWS,
    ),
    "logistic_multiclass_proba": (LogisticRegression().fit(ROWS, LABELS), "predict_proba", ROWS),
    "imputer_median": (
        SimpleImputer(strategy="median").fit(WITH_GAPS),
        "transform",
        WITH_GAPS,
    ),
    "imputer_keep_empty": (
        SimpleImputer(strategy="median", keep_empty_features=True).fit(WITH_GAPS),
        "transform",
        WITH_GAPS,
    ),
    # Trained on gaps, so that nodes send missing values left or right.
    "forest_with_gaps": (
        RandomForestClassifier(n_estimators=25, random_state=0).fit(WITH_GAPS[:, :5], LABELS),
        "predict_proba",
        WITH_GAPS[:, :5],
    ),
    "product_pipeline_forest": (
        make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            RandomForestClassifier(n_estimators=25, class_weight="balanced", random_state=0),
        ).fit(WITH_GAPS, LABELS),
        "predict_proba",
        WITH_GAPS,
    ),
    "product_pipeline_logistic": (
        make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(class_weight="balanced"),
        ).fit(WITH_GAPS, LABELS),
        "predict_proba",
        WITH_GAPS,
    ),
    "face_space_pipeline": (
        make_pipeline(StandardScaler(), PCA(n_components=5), LinearDiscriminantAnalysis()).fit(
            ROWS, LABELS
        ),
        "transform",
        ROWS,
    ),
}


@pytest.mark.parametrize("name", LIBRARY_OBJECTS)
def test_each_twin_gives_the_library_objects_outputs(name: str) -> None:
    library, method, X = LIBRARY_OBJECTS[name]
    assert_same_outputs(library, reloaded(library, twins=True), method, X)


def test_the_library_class_is_built_when_a_twin_does_not_reproduce_it() -> None:
    imputer = SimpleImputer(missing_values=-1.0).fit(ROWS)
    assert isinstance(reloaded(imputer, twins=True), SimpleImputer)
    assert isinstance(reloaded(StandardScaler().fit(ROWS), twins=False), StandardScaler)


def test_twins_leave_the_allow_list_in_force() -> None:
    X, members, phrases, sequences = voice_data(1)
    model = VoiceVerifier(cv_splits=2).fit(X, members, phrases, sequences, np.arange(24) // 2)
    data = state_file.dumps(model, allowed_types())
    with pytest.raises(ModelIntegrityError, match="not on the allow-list"):
        state_file.loads(data, (), source="test", twins=TWINS)


def voice_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    members = np.repeat(["ana", "bo", "cy"], 8)
    centres = rng.normal(size=(3, 10))[np.repeat([0, 1, 2], 8)]
    X = centres + rng.normal(0, 0.3, centres.shape)
    phrases = np.tile(["one", "two"], 12)
    sequences = [rng.normal(size=(20 + i % 5, 13)) for i in range(len(members))]
    return X, members, phrases, sequences


def test_the_voice_model_scores_the_same_with_twins() -> None:
    X, members, phrases, sequences = voice_data(1)
    model = VoiceVerifier(cv_splits=2).fit(X, members, phrases, sequences, np.arange(len(X)) // 2)
    library, twin = reloaded(model, twins=False), reloaded(model, twins=True)
    expected, actual = library.score_claims(X, sequences), twin.score_claims(X, sequences)
    for field in ("combined", "speaker", "phrase"):
        np.testing.assert_allclose(getattr(actual, field), getattr(expected, field), rtol=1e-12)
    np.testing.assert_array_equal(actual.accepted, expected.accepted)


def test_the_classic_face_model_scores_the_same_with_twins() -> None:
    rng = np.random.default_rng(2)
    members = np.repeat(["ana", "bo", "cy", "di"], 6)
    centres = rng.normal(size=(4, 30))[np.repeat([0, 1, 2, 3], 6)]
    X = centres + rng.normal(0, 0.5, centres.shape)
    model = FaceIdentifier(backend="classic", cv_splits=2).fit(X, members, np.arange(24) // 2)
    library, twin = reloaded(model, twins=False), reloaded(model, twins=True)
    assert [type(space).__name__ for _, space in twin.embedding_] == ["PipelineTwin"]
    np.testing.assert_allclose(twin.decision_function(X), library.decision_function(X), rtol=1e-12)
    np.testing.assert_array_equal(twin.predict(X), library.predict(X))


@pytest.mark.parametrize("candidate", ["random_forest", "logistic_regression"])
def test_the_product_model_predicts_the_same_with_twins(candidate: str) -> None:
    features = pd.DataFrame(WITH_GAPS[:, :5], columns=[f"f{i}" for i in range(5)])
    model = ProductRecommender(
        candidates=(candidate,), cv_splits=3, cv_repeats=1, importance_repeats=1
    ).fit(features, LABELS)
    library, twin = reloaded(model, twins=False), reloaded(model, twins=True)
    assert type(twin.best_estimator_).__name__ == "PipelineTwin"
    np.testing.assert_array_equal(twin.classes_, library.classes_)
    rows = features.to_numpy()
    np.testing.assert_allclose(
        twin.predict_proba(rows), library.predict_proba(features), rtol=1e-12
    )
    np.testing.assert_array_equal(twin.predict(rows), model.predict(features))


def test_every_decision_of_a_login_is_the_same_with_twins(workspace: Workspace) -> None:
    """The three models a login consults, each loaded both ways: the same member identified,
    the same voice verdict and the same recommendation for every probe."""
    from tests.engine.model_fixtures import write_merged_dataset

    rng = np.random.default_rng(3)
    members = np.repeat(["ana", "bo", "cy"], 6)
    faces = rng.normal(size=(3, 128))[np.repeat([0, 1, 2], 6)] + rng.normal(0, 0.3, (18, 128))
    voices, _, phrases, sequences = voice_data(4)
    voice_members = np.repeat(["ana", "bo", "cy"], 8)
    write_merged_dataset(workspace, rows=60)
    workspace.members_file.parent.mkdir(parents=True, exist_ok=True)
    workspace.members_file.write_text("member,customer_id\nana,A5\nbo,A17\ncy,A42\n")
    models = {
        "face": FaceIdentifier(backend="dlib", cv_splits=2).fit(faces, members, np.arange(18) // 2),
        "voice": VoiceVerifier(cv_splits=2).fit(
            voices, voice_members, phrases, sequences, np.arange(24) // 2
        ),
        "product": ProductRecommender(
            candidates=("random_forest",), cv_splits=3, cv_repeats=1, importance_repeats=1
        ).fit(*load_product_table(workspace)[:2]),
    }
    library, twin = (
        ModelBundle(**{n: reloaded(m, twins=t) for n, m in models.items()}, manifest={})
        for t in (False, True)
    )
    probes = np.vstack([faces, rng.normal(size=(6, 128))])  # members, then strangers
    for probe in probes:
        expected, actual = library.face.identify(probe), twin.face.identify(probe)
        assert (actual.member, actual.best_member) == (expected.member, expected.best_member)
        assert actual.score == pytest.approx(expected.score, rel=1e-12)
    for vector, sequence, claimed in zip(voices, sequences, np.roll(voice_members, 3), strict=True):
        expected, actual = (
            bundle.voice.verify(vector, sequence, claimed) for bundle in (library, twin)
        )
        assert (actual.accepted, actual.phrase, actual.phrase_ok) == (
            expected.accepted,
            expected.phrase,
            expected.phrase_ok,
        )
        assert actual.score == pytest.approx(expected.score, rel=1e-12)
    for member in ("ana", "bo", "cy"):
        assert recommend_for_member(workspace, twin, member) == recommend_for_member(
            workspace, library, member
        )
