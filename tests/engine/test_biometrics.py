"""The face and voice models on synthetic clusters: identification, rejection of strangers,
held-out calibration, grouped splits, enrolment, the DTW phrase check and persistence."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from engine.core.errors import EnrolmentError, InputError
from engine.core.metrics import threshold_at_fmr
from engine.models._calibration import (
    DLIB_IMPOSTOR_TAIL,
    POPULATION_MIN_FMR,
    VOICE_IMPOSTOR_TAIL,
    gaussian_tail_threshold,
    population_threshold,
    source_folds,
    threshold_by_rule,
)
from engine.models.dtw import dtw_cost, dtw_costs
from engine.models.face import FACE_THRESHOLD_RULES, UNKNOWN, FaceIdentifier
from engine.models.voice import VOICE_THRESHOLD_RULES, VoiceVerifier

DIMENSIONS = 24


def face_rows(
    centres: dict[str, np.ndarray], rng: np.random.Generator, sources: int = 3, copies: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of each member: ``sources`` files, each with ``copies`` augmented neighbours."""
    rows, members, groups = [], [], []
    for member, centre in centres.items():
        for source in range(sources):
            photo = centre + rng.normal(0, 0.35, DIMENSIONS)
            for _ in range(copies):
                rows.append(photo + rng.normal(0, 0.1, DIMENSIONS))
                members.append(member)
                groups.append(f"{member}/{source}")
    return np.array(rows), np.array(members), np.array(groups)


@pytest.fixture
def clusters() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {f"person{i}": rng.normal(0, 2.0, DIMENSIONS) for i in range(12)}


@pytest.fixture
def face_data(clusters: dict[str, np.ndarray]) -> dict[str, object]:
    rng = np.random.default_rng(2)
    enrolled = dict(list(clusters.items())[:9])
    strangers = dict(list(clusters.items())[9:])
    X, y, groups = face_rows(enrolled, rng)
    probes, probe_y, _ = face_rows(enrolled, rng, sources=2, copies=1)
    stranger_probes, _, _ = face_rows(strangers, rng, sources=2, copies=1)
    return {
        "X": X,
        "y": y,
        "groups": groups,
        "probes": probes,
        "probe_y": probe_y,
        "strangers": stranger_probes,
    }


@pytest.mark.parametrize("backend", ["dlib", "classic"])
def test_face_identifies_members_and_rejects_strangers(backend: str, face_data: dict) -> None:
    # Synthetic clusters are not dlib's embedding space: calibrate on the enrolment data.
    model = FaceIdentifier(backend=backend, threshold_rule="gaussian_tail").fit(
        face_data["X"], face_data["y"], face_data["groups"]
    )
    assert model.predict(face_data["probes"]).tolist() == face_data["probe_y"].tolist()
    assert set(model.predict(face_data["strangers"])) == {UNKNOWN}
    match = model.identify(face_data["probes"][0])
    assert match.member == face_data["probe_y"][0] == match.best_member
    assert match.score >= match.threshold == model.threshold_
    rejected = model.identify(face_data["strangers"][0])
    assert rejected.member is None and rejected.best_member in model.members_
    assert model.decision_function(face_data["probes"]).shape == (len(face_data["probes"]), 9)


def double_precision_best(
    model: FaceIdentifier, rows: np.ndarray, owners: np.ndarray, probe: np.ndarray
) -> tuple[str, float, float]:
    """(best member, its score, the runner-up's score) scoring every member's every template in
    float64, as identification did before its float32 templates."""
    templates, embedded = model._embed(rows), model._embed(probe[None, :])[0]
    scores = {
        member: sum(
            float(np.max(templates[owners == member, start:stop] @ embedded[start:stop]))
            for start, stop in zip(model.part_bounds_[:-1], model.part_bounds_[1:], strict=True)
        )
        for member in model.members_
    }
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    return ranked[0][0], ranked[0][1], ranked[1][1]


@pytest.mark.parametrize("backend", ["dlib", "classic"])
def test_identify_decides_as_scoring_every_member_in_double_precision(
    backend: str, face_data: dict
) -> None:
    X, y, groups = face_data["X"], face_data["y"], face_data["groups"]
    model = FaceIdentifier(backend=backend, threshold_rule="gaussian_tail").fit(X, y, groups)
    rng = np.random.default_rng(5)
    late = rng.normal(0, 2.0, DIMENSIONS) + rng.normal(0, 0.1, (4, DIMENSIONS))
    model.enrol("late", late).remove("person8")
    kept = y != "person8"
    rows, owners = np.vstack([X[kept], late]), np.concatenate([y[kept], np.full(4, "late")])
    probes = np.vstack(
        [face_data["probes"], face_data["strangers"], rng.normal(0, 2.0, (20, DIMENSIONS))]
    )
    references = [double_precision_best(model, rows, owners, probe) for probe in probes]
    best_scores = [score for _, score, _ in references]
    accepted = rejected = 0
    # Thresholds across the scores: the bound's search must stop right whatever the threshold.
    for threshold in np.quantile(best_scores, [0.1, 0.5, 0.9]):
        model.threshold_ = float(threshold)
        for probe, (member, score, runner_up) in zip(probes, references, strict=True):
            match = model.identify(probe)
            if abs(score - threshold) < 1e-5 or score - runner_up < 1e-5:
                continue  # a tie at single precision's resolution
            if score >= threshold:
                accepted += 1
                assert match.member == member == match.best_member
                assert match.score == pytest.approx(score, abs=1e-5)
            else:
                rejected += 1
                assert match.member is None and match.score < threshold
    assert accepted > 0 and rejected > 0
    assert model.templates_.dtype == np.float32


def test_classic_space_needs_enough_members_for_lda(face_data: dict) -> None:
    X, y, groups = face_data["X"], face_data["y"], face_data["groups"]
    assert FaceIdentifier(backend="classic").fit(X, y, groups).discriminant_
    few = np.isin(y, ["person0", "person1", "person2", "person3"])
    model = FaceIdentifier(backend="classic").fit(X[few], y[few], groups[few])
    assert not model.discriminant_
    probes = np.isin(face_data["probe_y"], model.members_)
    assert (
        model.predict(face_data["probes"][probes]).tolist() == face_data["probe_y"][probes].tolist()
    )
    assert set(model.predict(face_data["strangers"])) == {UNKNOWN}


def test_face_evaluation_is_held_out_and_complete(face_data: dict) -> None:
    model = FaceIdentifier(backend="dlib").fit(face_data["X"], face_data["y"], face_data["groups"])
    evaluation = model.evaluation_
    for key in ("accuracy", "f1_score", "eer", "fmr", "fnmr", "threshold", "n_train", "n_test"):
        assert key in evaluation
    assert np.isnan(evaluation["log_loss"])
    assert evaluation["n_train"] == len(face_data["X"])
    # Every row is scored once as a held-out genuine row and once as a stranger.
    assert evaluation["n_genuine"] == evaluation["n_impostor"] == len(face_data["X"])
    assert evaluation["accuracy"] == 1.0 and evaluation["eer"] < 0.05


def test_face_calibration_never_scores_a_row_with_a_model_fitted_on_it(
    face_data: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    fit_gallery = FaceIdentifier._fit_gallery
    scores = FaceIdentifier._scores
    scored_calls = []

    def recording_fit(
        self: FaceIdentifier, X: np.ndarray, y: np.ndarray, groups: np.ndarray
    ) -> FaceIdentifier:
        self.seen_rows = {row.tobytes() for row in X}
        return fit_gallery(self, X, y, groups)

    def checking_scores(self: FaceIdentifier, X: np.ndarray) -> np.ndarray:
        assert not any(row.tobytes() in self.seen_rows for row in X)
        scored_calls.append(len(X))
        return scores(self, X)

    monkeypatch.setattr(FaceIdentifier, "_fit_gallery", recording_fit)
    monkeypatch.setattr(FaceIdentifier, "_scores", checking_scores)
    FaceIdentifier(backend="classic").fit(face_data["X"], face_data["y"], face_data["groups"])
    assert sum(scored_calls) == 2 * len(face_data["X"])


def copy_flags(groups: np.ndarray) -> np.ndarray:
    """True for every row but the first of its source file (the original photo)."""
    first = np.unique(groups, return_index=True)[1]
    flags = np.ones(len(groups), dtype=bool)
    flags[first] = False
    return flags


@pytest.mark.parametrize("backend", ["dlib", "classic"])
def test_face_calibration_scores_only_original_rows(backend: str, face_data: dict) -> None:
    X, y, groups = face_data["X"], face_data["y"], face_data["groups"]
    augmented = copy_flags(groups)
    model = FaceIdentifier(backend=backend).fit(X, y, groups, augmented=augmented)
    originals = int(np.sum(~augmented))
    assert model.evaluation_["n_genuine"] == model.evaluation_["n_impostor"] == originals
    assert model.evaluation_["n_train"] == len(X)
    assert len(model.templates_) == len(X)  # the copies are still templates
    unflagged = FaceIdentifier(backend=backend).fit(X, y, groups)
    assert unflagged.evaluation_["n_impostor"] == len(X)
    # The copies' stranger scores still calibrate the threshold.
    assert model.threshold_ == unflagged.threshold_
    if backend == "classic":
        assert model.training_augmented_.tolist() == augmented.tolist()


def test_face_augmented_flags_survive_enrol_and_remove(
    face_data: dict, clusters: dict[str, np.ndarray]
) -> None:
    X, y, groups = face_data["X"], face_data["y"], face_data["groups"]
    model = FaceIdentifier(backend="classic").fit(X, y, groups, augmented=copy_flags(groups))
    newcomer, _, new_groups = face_rows(
        {"person11": clusters["person11"]}, np.random.default_rng(5)
    )
    model.enrol("person11", newcomer, new_groups, augmented=copy_flags(new_groups))
    all_groups = np.concatenate([groups, new_groups])
    assert model.training_augmented_.tolist() == copy_flags(all_groups).tolist()
    assert model.evaluation_["n_impostor"] == len(np.unique(all_groups))
    model.remove("person0")
    assert model.evaluation_["n_impostor"] == len(np.unique(all_groups)) - 3
    assert model.training_augmented_.tolist() == copy_flags(model.training_groups_).tolist()


def test_face_model_refuses_bad_augmented_flags(face_data: dict) -> None:
    X, y, groups = face_data["X"], face_data["y"], face_data["groups"]
    with pytest.raises(InputError, match="augmented has 3 values"):
        FaceIdentifier().fit(X, y, groups, augmented=[True, False, True])
    with pytest.raises(InputError, match="every row is flagged"):
        FaceIdentifier().fit(X, y, groups, augmented=np.ones(len(y), dtype=bool))


def test_source_folds_keep_every_file_on_one_side() -> None:
    members = np.repeat(["a", "b", "c"], 12)
    groups = np.array(
        [f"{m}/{i // 4}" for m, i in zip(members, np.tile(np.arange(12), 3), strict=True)]
    )
    folds = source_folds(members, groups, 3, random_state=0)
    assert len(folds) == 3
    assert np.all(np.sum(folds, axis=0) == 1)  # every row held out exactly once
    for held_out in folds:
        assert not set(groups[held_out]) & set(groups[~held_out])
        assert set(members[held_out]) == {"a", "b", "c"}


def test_dlib_enrol_adds_templates_without_refitting(
    face_data: dict, clusters: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = FaceIdentifier(backend="dlib").fit(face_data["X"], face_data["y"], face_data["groups"])
    threshold = model.threshold_
    newcomer, _, _ = face_rows({"person11": clusters["person11"]}, np.random.default_rng(5))

    def no_refit(*args: object, **kwargs: object) -> None:
        raise AssertionError("enrol must not refit the dlib model")

    monkeypatch.setattr(FaceIdentifier, "fit", no_refit)
    monkeypatch.setattr(FaceIdentifier, "_fit_gallery", no_refit)
    model.enrol("person11", newcomer)
    assert "person11" in model.members_ and model.threshold_ == threshold
    assert model.identify(newcomer[0] + 0.05).member == "person11"
    model.remove("person11")
    assert "person11" not in model.members_


def test_classic_enrol_retrains_and_identifies_the_newcomer(
    face_data: dict, clusters: dict[str, np.ndarray]
) -> None:
    model = FaceIdentifier(backend="classic").fit(
        face_data["X"], face_data["y"], face_data["groups"]
    )
    newcomer, _, groups = face_rows({"person11": clusters["person11"]}, np.random.default_rng(5))
    model.enrol("person11", newcomer, groups)
    assert "person11" in model.members_
    assert model.predict(newcomer).tolist() == ["person11"] * len(newcomer)


def test_face_model_follows_estimator_conventions(face_data: dict) -> None:
    model = FaceIdentifier(backend="dlib", target_fmr=0.05, random_state=3)
    assert model.get_params()["target_fmr"] == 0.05
    assert not hasattr(model, "threshold_")
    with pytest.raises(Exception, match="not fitted"):
        model.decision_function(face_data["probes"])
    fitted = model.fit(face_data["X"], face_data["y"], face_data["groups"])
    assert fitted is model
    assert clone(model).get_params() == model.get_params()
    assert model.n_features_in_ == DIMENSIONS


def test_face_model_refuses_bad_input(face_data: dict) -> None:
    X, y, groups = face_data["X"], face_data["y"], face_data["groups"]
    one = y == y[0]
    with pytest.raises(EnrolmentError, match="at least 2 members"):
        FaceIdentifier().fit(X[one], y[one], groups[one])
    model = FaceIdentifier(backend="dlib").fit(X, y, groups)
    with pytest.raises(ValueError, match="features"):
        model.identify(np.zeros(DIMENSIONS + 1))
    with pytest.raises(EnrolmentError, match="not enrolled"):
        model.remove("nobody")


# --------------------------------------------------------------------------------------------
# DTW and the voice model


def test_dtw_cost_matches_librosa_and_prefers_the_same_phrase() -> None:
    import librosa

    rng = np.random.default_rng(0)
    query, reference = rng.normal(size=(30, 5)), rng.normal(size=(41, 5))
    accumulated, path = librosa.sequence.dtw(X=query.T, Y=reference.T, metric="euclidean")
    assert dtw_cost(query, reference) == pytest.approx(accumulated[-1, -1] / len(path))
    assert dtw_cost(query, query) == pytest.approx(0.0, abs=1e-6)
    stretched = np.repeat(query, 2, axis=0) + rng.normal(0, 0.05, (60, 5))
    assert dtw_cost(stretched, query) < 0.2 < dtw_cost(reference, query)
    with pytest.raises(InputError, match="coefficients"):
        dtw_cost(query, reference[:, :3])


@pytest.mark.parametrize("n_scores", [30, 5000])
def test_gaussian_tail_threshold_is_never_below_the_empirical_one(n_scores: int) -> None:
    scores = np.random.default_rng(n_scores).normal(0.5, 0.1, n_scores)
    threshold = gaussian_tail_threshold(scores, 0.01)
    assert threshold >= threshold_at_fmr(scores, 0.01)
    if n_scores == 5000:
        assert threshold == pytest.approx(0.5 + 2.326 * 0.1, abs=0.01)
    # A bimodal impostor distribution: the normal fit lies above the empirical quantile.
    bimodal = np.concatenate([np.full(99, 0.2), np.full(99, 0.6), [0.61]])
    assert gaussian_tail_threshold(bimodal, 0.01) > 0.7 > threshold_at_fmr(bimodal, 0.01)


def test_threshold_by_rule_resolves_auto_and_names_the_allowed_rules() -> None:
    scores = np.random.default_rng(0).normal(0.5, 0.1, 200)

    def threshold(rule: str, target: float, tail: tuple[float, float, float] | None) -> float:
        return threshold_by_rule(
            rule, scores, target, allowed_rules=FACE_THRESHOLD_RULES, population_tail=tail
        )

    measured, stricter = POPULATION_MIN_FMR, POPULATION_MIN_FMR / 10
    population = population_threshold(measured, VOICE_IMPOSTOR_TAIL)
    assert threshold("auto", measured, VOICE_IMPOSTOR_TAIL) == population
    assert threshold("auto", stricter, VOICE_IMPOSTOR_TAIL) == gaussian_tail_threshold(
        scores, stricter
    )
    assert threshold("auto", measured, None) == gaussian_tail_threshold(scores, measured)
    assert threshold("empirical", measured, None) == threshold_at_fmr(scores, measured)
    with pytest.raises(ValueError, match="no population tail"):
        threshold("population", measured, None)
    with pytest.raises(ValueError, match="must be 'auto', 'population' or 'gaussian_tail', not"):
        threshold_by_rule(
            "empirical",
            scores,
            measured,
            allowed_rules=VOICE_THRESHOLD_RULES,
            population_tail=VOICE_IMPOSTOR_TAIL,
        )


def test_the_threshold_rule_settings_offer_the_estimators_rules() -> None:
    from typing import get_args

    from engine.core.settings import FaceThresholdRule, VoiceThresholdRule

    assert get_args(FaceThresholdRule) == FACE_THRESHOLD_RULES
    assert get_args(VoiceThresholdRule) == VOICE_THRESHOLD_RULES


def test_face_threshold_rules(face_data: dict) -> None:
    arguments = (face_data["X"], face_data["y"], face_data["groups"])
    tail = FaceIdentifier(backend="dlib", threshold_rule="gaussian_tail").fit(*arguments)
    empirical = FaceIdentifier(backend="dlib", threshold_rule="empirical").fit(*arguments)
    assert tail.threshold_ >= empirical.threshold_
    assert tail.threshold_ == gaussian_tail_threshold(tail.evaluation_["impostor"], 0.01)
    classic = FaceIdentifier(backend="classic", threshold_rule="empirical").fit(*arguments)
    assert classic.threshold_ == threshold_at_fmr(classic.evaluation_["impostor"], 0.01)
    with pytest.raises(ValueError, match="threshold_rule"):
        FaceIdentifier(backend="dlib", threshold_rule="bogus").fit(*arguments)


def test_dlib_threshold_is_the_population_operating_point(face_data: dict) -> None:
    arguments = (face_data["X"], face_data["y"], face_data["groups"])
    model = FaceIdentifier(backend="dlib", target_fmr=0.02).fit(*arguments)
    assert model.threshold_ == population_threshold(0.02, DLIB_IMPOSTOR_TAIL)
    # A stricter target moves the operating point up the measured tail.
    assert population_threshold(0.01, DLIB_IMPOSTOR_TAIL) > model.threshold_
    cohort = FaceIdentifier(backend="dlib", score_normalisation="cohort").fit(*arguments)
    assert cohort.threshold_ == gaussian_tail_threshold(cohort.evaluation_["impostor"], 0.01)
    with pytest.raises(ValueError, match="population"):
        FaceIdentifier(backend="classic", threshold_rule="population").fit(*arguments)
    # Past the measured tail (a 0.1% target would put the threshold above any cosine) the
    # automatic rule calibrates on the enrolled members instead of refusing every face.
    strict = FaceIdentifier(backend="dlib", target_fmr=0.001).fit(*arguments)
    assert population_threshold(0.001, DLIB_IMPOSTOR_TAIL) > 1
    assert strict.threshold_ == gaussian_tail_threshold(strict.evaluation_["impostor"], 0.001)


# Each phrase is a path through 6 random anchor points in a 6-d "MFCC" space.
PHRASE_ANCHORS = {
    phrase: np.random.default_rng(seed).normal(0, 2.0, (6, 6))
    for seed, phrase in enumerate(("yes", "approve", "go"))
}
MEMBER_PHRASES = {
    "ann": ("yes", "approve"),
    "bob": ("approve", "go"),
    "cyd": ("go", "yes"),
    "eve": ("yes", "go"),
}


def voice_clip(
    speaker: np.ndarray, phrase: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A clip-level vector and an MFCC-like sequence: the phrase's trajectory at a random speed,
    shifted by the speaker's voice."""
    frames = int(rng.integers(35, 60))
    anchors = PHRASE_ANCHORS[phrase]
    time = np.linspace(0, len(anchors) - 1, frames)
    path = np.stack([np.interp(time, np.arange(len(anchors)), anchors[:, k]) for k in range(6)], 1)
    sequence = path + speaker[:6]
    sequence = sequence + rng.normal(0, 0.15, sequence.shape)
    vector = np.concatenate([sequence.mean(axis=0), sequence.std(axis=0), speaker[6:]])
    return vector + rng.normal(0, 0.1, vector.size), sequence


@pytest.fixture
def voices() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {name: rng.normal(0, 1.0, 14) for name in ("ann", "bob", "cyd", "dee", "eve")}


def voice_table(
    voices: dict[str, np.ndarray], members: dict[str, tuple[str, ...]], takes: int, seed: int
):
    rng = np.random.default_rng(seed)
    X, y, phrases, sequences, groups = [], [], [], [], []
    for member, member_phrases in members.items():
        for phrase in member_phrases:
            for take in range(takes):
                vector, sequence = voice_clip(voices[member], phrase, rng)
                X.append(vector)
                y.append(member)
                phrases.append(phrase)
                sequences.append(sequence)
                groups.append(f"{member}/{phrase}_{take}")
    return np.array(X), np.array(y), np.array(phrases), sequences, np.array(groups)


@pytest.fixture
def voice_model(voices: dict[str, np.ndarray]) -> VoiceVerifier:
    X, y, phrases, sequences, groups = voice_table(voices, MEMBER_PHRASES, takes=5, seed=4)
    return VoiceVerifier().fit(X, y, phrases, sequences, groups)


def test_voice_accepts_the_member_and_rejects_others(
    voice_model: VoiceVerifier, voices: dict[str, np.ndarray]
) -> None:
    rng = np.random.default_rng(9)
    vector, sequence = voice_clip(voices["ann"], "yes", rng)
    match = voice_model.verify(vector, sequence, "ann")
    assert match.accepted and match.phrase == "yes" and match.phrase_ok
    assert match.score >= match.threshold == voice_model.threshold_
    impostor = voice_model.verify(*voice_clip(voices["bob"], "yes", rng), "ann")
    stranger = voice_model.verify(*voice_clip(voices["dee"], "approve", rng), "ann")
    assert not impostor.accepted and not stranger.accepted
    assert impostor.speaker_score < match.speaker_score


def test_voice_rejects_a_phrase_the_member_did_not_enrol(
    voice_model: VoiceVerifier, voices: dict[str, np.ndarray]
) -> None:
    rng = np.random.default_rng(10)
    wrong = voice_model.verify(*voice_clip(voices["ann"], "go", rng), "ann")
    assert not wrong.phrase_ok and not wrong.accepted
    assert voice_model.evaluation_["n_wrong_phrase"] > 0


def _reversed_take_costs(model: VoiceVerifier, sequence: np.ndarray) -> np.ndarray:
    reversed_takes = [take[::-1] for take in model.take_sequences_]
    return dtw_costs([model._scale_sequence(sequence)], reversed_takes)[0]


def test_voice_phrase_evidence_is_relative_to_the_member_s_reversed_takes(
    voice_model: VoiceVerifier, voices: dict[str, np.ndarray]
) -> None:
    rng = np.random.default_rng(12)
    vector, sequence = voice_clip(voices["ann"], "yes", rng)
    costs = dtw_costs([voice_model._scale_sequence(sequence)], voice_model.take_sequences_)[0]
    ann = voice_model.take_members_ == "ann"
    own = costs[ann & (voice_model.take_phrases_ == "yes")].min()
    reference = _reversed_take_costs(voice_model, sequence)[ann].min()
    match = voice_model.verify(vector, sequence, "ann")
    assert match.phrase == "yes"
    assert match.phrase_score == pytest.approx(
        -(own - voice_model.phrase_reference_weight * reference)
    )
    assert match.phrase_ok and voice_model.phrase_reference_weight > 0


def test_voice_claims_scored_alone_equal_the_same_claims_among_every_member(
    voice_model: VoiceVerifier, voices: dict[str, np.ndarray]
) -> None:
    rng = np.random.default_rng(14)
    clips = [voice_clip(voices[name], "yes", rng) for name in ("ann", "bob", "ann")]
    X = np.array([vector for vector, _ in clips])
    sequences = [sequence for _, sequence in clips]
    claims = ["ann", "bob", "cyd"]
    every = voice_model.score_claims(X, sequences)
    columns = np.searchsorted(voice_model.members_, claims)
    combined, speaker, phrase, matched = voice_model.decision_scores(X, sequences, claims)
    rows = np.arange(len(claims))
    np.testing.assert_array_equal(combined, every.combined[rows, columns])
    np.testing.assert_array_equal(phrase, every.phrase[rows, columns])
    np.testing.assert_array_equal(speaker, every.speaker[rows, columns])
    assert matched == list(every.matched[rows, columns])
    alone = voice_model.score_claims(X, sequences, [int(columns[2])])
    assert np.isnan(alone.combined[:, columns[0]]).all() and not alone.accepted[:, columns[0]].any()


def test_voice_phrase_reference_needs_no_other_phrase(voices: dict) -> None:
    everyone_yes: dict[str, tuple[str, ...]] = {
        name: ("yes",) for name in ("ann", "bob", "cyd", "eve")
    }
    X, y, phrases, sequences, groups = voice_table(voices, everyone_yes, takes=5, seed=4)
    model = VoiceVerifier(target_fmr=0.05).fit(X, y, phrases, sequences, groups)
    vector, sequence = voice_clip(voices["ann"], "yes", np.random.default_rng(13))
    ann = model.take_members_ == "ann"
    own = dtw_costs([model._scale_sequence(sequence)], model.take_sequences_)[0][ann].min()
    reference = _reversed_take_costs(model, sequence)[ann].min()
    match = model.verify(vector, sequence, "ann")
    assert match.phrase_score == pytest.approx(-(own - model.phrase_reference_weight * reference))
    assert reference > own and match.accepted


def test_voice_threshold_follows_the_normal_tail_of_the_impostors(
    voices: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.models import _calibration

    calls = []

    def tail(impostor: np.ndarray, target: float) -> float:
        calls.append((len(impostor), target))
        return 1.5 + len(calls)

    monkeypatch.setattr(_calibration, "gaussian_tail_threshold", tail)
    X, y, phrases, sequences, groups = voice_table(voices, MEMBER_PHRASES, takes=5, seed=4)
    model = VoiceVerifier(target_fmr=0.05, threshold_rule="gaussian_tail").fit(
        X, y, phrases, sequences, groups
    )
    # The first call sets the threshold; the others cross-fit the FMR estimate.
    assert model.threshold_ == 2.5 and calls[0][1] == 0.05 and len(calls) > 1


def test_voice_threshold_is_the_population_operating_point(voices: dict) -> None:
    X, y, phrases, sequences, groups = voice_table(voices, MEMBER_PHRASES, takes=5, seed=4)
    model = VoiceVerifier(target_fmr=0.02).fit(X, y, phrases, sequences, groups)
    assert model.threshold_ == population_threshold(0.02, VOICE_IMPOSTOR_TAIL)
    assert population_threshold(0.01, VOICE_IMPOSTOR_TAIL) > model.threshold_
    # Whoever enrolled, the operating point is the same; the workspace's own tail moves with
    # its members.
    others = voice_table(voices, {"bob": ("yes",), "eve": ("yes",)}, takes=5, seed=8)
    assert VoiceVerifier(target_fmr=0.02).fit(*others).threshold_ == model.threshold_
    tail = VoiceVerifier(target_fmr=0.02, threshold_rule="gaussian_tail")
    assert tail.fit(*others).threshold_ != model.threshold_
    # Its FMR estimate counts the held-out impostors at that threshold (those the phrase check
    # lets through).
    evaluation = model.evaluation_
    assert evaluation["false_matches"] <= np.sum(evaluation["impostor"] >= model.threshold_)
    assert evaluation["fmr"] == evaluation["false_matches"] / evaluation["n_impostor"]
    # Past the measured tail the automatic rule calibrates on the enrolled members.
    arguments = (X, y, phrases, sequences, groups)
    strict = VoiceVerifier(target_fmr=0.001).fit(*arguments)
    own_tail = VoiceVerifier(target_fmr=0.001, threshold_rule="gaussian_tail").fit(*arguments)
    assert strict.threshold_ == own_tail.threshold_
    with pytest.raises(ValueError, match="threshold_rule"):
        VoiceVerifier(threshold_rule="empirical").fit(X, y, phrases, sequences, groups)


def test_voice_evaluation_is_held_out(voice_model: VoiceVerifier) -> None:
    evaluation = voice_model.evaluation_
    assert evaluation["n_train"] == 40
    # Each clip is scored as genuine once (its own claim, held out) and as an impostor against
    # the three other members (held out) and, as a left-out stranger, against them again.
    assert evaluation["n_genuine"] == 40 and evaluation["n_impostor"] == 40 * 6
    assert evaluation["eer_members"] <= 0.05 and evaluation["eer_strangers"] <= 0.1
    assert np.isnan(evaluation["log_loss"])


def test_voice_model_refuses_bad_input(voice_model: VoiceVerifier, voices: dict) -> None:
    vector, sequence = voice_clip(voices["ann"], "yes", np.random.default_rng(1))
    with pytest.raises(EnrolmentError, match="not enrolled"):
        voice_model.verify(vector, sequence, "nobody")
    with pytest.raises(InputError, match="frames x coefficients"):
        voice_model.verify(vector, sequence[:0], "ann")
    X, y, phrases, sequences, groups = voice_table(voices, {"ann": ("yes",)}, takes=3, seed=1)
    with pytest.raises(EnrolmentError, match="at least 2 members"):
        VoiceVerifier().fit(X, y, phrases, sequences, groups)


def test_voice_augmented_copies_are_no_templates_by_default(voices: dict) -> None:
    X, y, phrases, sequences, groups = voice_table(voices, MEMBER_PHRASES, takes=5, seed=4)
    rng = np.random.default_rng(5)
    copies = X + rng.normal(0, 0.3, X.shape)
    copied_sequences = [s + rng.normal(0, 0.3, s.shape) for s in sequences]
    arguments = (
        np.vstack([X, copies]),
        np.concatenate([y, y]),
        np.concatenate([phrases, phrases]),
        sequences + copied_sequences,
        np.concatenate([groups, groups]),
    )
    augmented = np.repeat([False, True], len(y))
    plain = VoiceVerifier(target_fmr=0.05).fit(*arguments, augmented=augmented)
    assert len(plain.speaker_templates_) == len(plain.take_sequences_) == len(y)
    # Copies are never calibration attempts.
    assert plain.evaluation_["n_genuine"] == 40 and plain.evaluation_["n_impostor"] == 40 * 6
    enrolled = VoiceVerifier(target_fmr=0.05, use_augmented=True).fit(
        *arguments, augmented=augmented
    )
    assert len(enrolled.speaker_templates_) == len(enrolled.take_sequences_) == 2 * len(y)


# --------------------------------------------------------------------------------------------
# Persistence


def test_fitted_models_survive_skops_round_trip(
    face_data: dict, voice_model: VoiceVerifier
) -> None:
    import skops.io

    face = FaceIdentifier(backend="classic").fit(
        face_data["X"], face_data["y"], face_data["groups"]
    )
    for model, probe in ((face, face_data["probes"][:3]), (voice_model, None)):
        data = skops.io.dumps(model)
        untrusted = skops.io.get_untrusted_types(data=data)
        assert all(t.startswith(("engine.", "numpy.", "sklearn.")) for t in untrusted)
        loaded = skops.io.loads(data, trusted=untrusted)
        assert loaded.threshold_ == model.threshold_
        if probe is not None:
            np.testing.assert_allclose(
                loaded.decision_function(probe), model.decision_function(probe)
            )


@pytest.mark.parametrize(
    "module_name", ["engine.models.face", "engine.models.voice", "engine.models.product"]
)
def test_the_estimators_docstring_examples_hold(module_name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module_name))
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("backend", ["dlib", "classic"])
def test_a_face_model_with_one_photo_per_member_is_refused_by_name(
    backend: str, clusters: dict[str, np.ndarray]
) -> None:
    rng = np.random.default_rng(5)
    X, y, groups = face_rows(dict(list(clusters.items())[:3]), rng, sources=1)
    with pytest.raises(EnrolmentError, match="person0, person1, person2 have one photo each"):
        FaceIdentifier(backend=backend, threshold_rule="gaussian_tail").fit(X, y, groups)


@pytest.mark.parametrize("backend", ["dlib", "classic"])
def test_members_with_one_photo_among_others_give_no_genuine_score(
    backend: str, clusters: dict[str, np.ndarray]
) -> None:
    rng = np.random.default_rng(5)
    X, y, groups = face_rows(dict(list(clusters.items())[:1]), rng, sources=3)
    X1, y1, groups1 = face_rows(dict(list(clusters.items())[1:4]), rng, sources=1)
    model = FaceIdentifier(backend=backend, threshold_rule="gaussian_tail").fit(
        np.vstack([X, X1]), np.concatenate([y, y1]), np.concatenate([groups, groups1])
    )
    # Each row once held out: the 3 photos of person0 as genuine attempts, every photo as a
    # stranger's.
    assert model.evaluation_["n_genuine"] == len(X)
    assert model.evaluation_["n_impostor"] == len(X) + len(X1)


def test_a_voice_model_with_one_recording_per_member_is_refused_by_name(
    voices: dict[str, np.ndarray],
) -> None:
    one_phrase = {member: ("yes",) for member in ("ann", "bob", "cyd")}
    X, y, phrases, sequences, groups = voice_table(voices, one_phrase, takes=1, seed=4)
    with pytest.raises(EnrolmentError, match="ann, bob, cyd have one recording of each phrase"):
        VoiceVerifier().fit(X, y, phrases, sequences, groups)
    # A genuine attempt says a phrase the member enrolled: two phrases said once each are
    # still no held-out genuine attempt.
    two_phrases = {member: ("yes", "go") for member in ("ann", "bob", "cyd")}
    X, y, phrases, sequences, groups = voice_table(voices, two_phrases, takes=1, seed=4)
    with pytest.raises(EnrolmentError, match="cyd have one recording of each phrase"):
        VoiceVerifier().fit(X, y, phrases, sequences, groups)
    X, y, phrases, sequences, groups = voice_table(
        voices, {**one_phrase, "ann": ("yes", "yes")}, takes=1, seed=4
    )
    groups[1] = "ann/yes_1"  # ann said "yes" twice
    model = VoiceVerifier().fit(X, y, phrases, sequences, groups)
    assert model.evaluation_["n_genuine"] == 2
