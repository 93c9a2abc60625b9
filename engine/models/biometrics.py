"""The two biometric models: open-set face identification and voice verification with a phrase
check, plus the fusion of their scores.

Scores follow engine.core.metrics' convention (higher = more alike, match when ``score >= threshold``).
Thresholds are calibrated on held-out scores only, at a target false match rate:

- genuine scores come from grouped cross-validation: every member's source files are dealt
  round-robin into folds, so a file and its augmented copies are always on the same side;
- impostor scores come from leave-one-member-out: each member in turn is removed from the
  training data and plays a stranger against the others (face), or claims every other member
  (voice, together with the held-out rows of members claiming someone else).

No score of a sample against a model fitted on that sample is ever used. ``evaluation_`` holds the
held-out figures (ISO/IEC 19795-1 names: for open-set identification ``fmr`` is the false positive
identification rate FPIR and ``fnmr`` the false negative identification rate FNIR).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from engine.core.blas import single_threaded_blas
from engine.core.errors import EnrolmentError, InputError
from engine.core.metrics import equal_error_rate, threshold_at_fmr
from engine.core.progress import Progress, ProgressCallback, check_cancelled, no_progress

FaceBackendName = Literal["classic", "dlib"]
ScoreNormalisation = Literal["none", "cohort"]
UNKNOWN = "<unknown>"
"""Label of a rejected probe in confusion matrices and F1 scores."""
_EPSILON = 1e-12
LDA_MIN_MEMBERS = 8
"""The classic face space is learned with LDA from this many members on, else it is plain PCA:
LDA has (members - 1) dimensions, too few with a handful of members to keep strangers apart.
Enrolment-only cross-validation on Yale (5 splits, the single-space model with augmented copies
scored): EER 51.7% with LDA against 32.7% with PCA for 4 members, 34.4% against 32.2% for 6,
23.5% against 29.7% for 8, 20.8% against 29.7% for 10. With the six-part model on the Yale
development protocol (5 splits, probe EER): 20.9% against 17.5% for 4 members, 16.3% against
18.2% for 6, 15.9% against 19.3% for 8, 18.0% against 20.0% for 10 (docs/BENCHMARKS.md).
"""
_MAX_CHIMERIC_PAIRS = 200_000


@dataclasses.dataclass(frozen=True)
class FaceMatch:
    """The face model's answer for one photo."""

    member: str | None
    """The identified member, or None when the photo is rejected as unknown."""
    score: float
    """Score of the best-matching member (higher = more alike)."""
    threshold: float
    """Scores at or above it identify; below it the photo is rejected."""
    best_member: str
    """The closest enrolled member, even when rejected (for explanations)."""
    scores: dict[str, float]
    """Score of every enrolled member."""


@dataclasses.dataclass(frozen=True)
class VoiceMatch:
    """The voice model's answer for one recording and a claimed member."""

    accepted: bool
    """True when the voice matches the claimed member and the phrase is one of theirs."""
    score: float
    """Combined speaker + phrase score (higher = more alike)."""
    threshold: float
    """The combined score must reach it."""
    speaker_score: float
    """Similarity of the voice to the claimed member's enrolled voice."""
    phrase_score: float
    """Similarity of the spoken phrase to the closest enrolled phrase (minus its DTW cost)."""
    phrase: str | None
    """The closest of the claimed member's enrolled phrases (None when the member has none)."""
    phrase_ok: bool
    """True when the phrase matches the enrolled takes closely enough."""


# --------------------------------------------------------------------------------------------
# Shared helpers


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, _EPSILON)


def _labels(values: ArrayLike, name: str, n_rows: int) -> np.ndarray:
    labels = np.asarray(values).astype(str)
    if labels.shape != (n_rows,):
        raise InputError(f"{name} has {labels.size} values for {n_rows} feature rows")
    return labels


def _groups(groups: ArrayLike | None, n_rows: int) -> np.ndarray:
    """Source file per row; without groups every row is its own source (only honest when there
    are no augmented copies)."""
    if groups is None:
        return np.arange(n_rows).astype(str)
    return _labels(groups, "groups", n_rows)


def _original_rows(augmented: ArrayLike | None, n_rows: int) -> np.ndarray:
    """True for rows that are not augmented copies (all rows when nothing is flagged)."""
    if augmented is None:
        return np.ones(n_rows, dtype=bool)
    flags = np.asarray(augmented, dtype=bool)
    if flags.shape != (n_rows,):
        raise InputError(f"augmented has {flags.size} values for {n_rows} feature rows")
    if flags.all():
        raise InputError("every row is flagged as an augmented copy; the originals are needed")
    return ~flags


def source_folds(
    members: np.ndarray, groups: np.ndarray, n_splits: int, random_state: int
) -> list[np.ndarray]:
    """Boolean held-out masks of grouped cross-validation: each member's source files are
    shuffled and dealt round-robin into ``n_splits`` folds, so every fold holds out some of every
    member's files (when they have enough) and all copies of a file stay together."""
    rng = np.random.default_rng(random_state)
    fold_of_source: dict[tuple[str, str], int] = {}
    for member in np.unique(members):
        sources = np.unique(groups[members == member])
        for position, source in enumerate(rng.permutation(sources)):
            fold_of_source[(member, str(source))] = position % n_splits
    fold = np.array([fold_of_source[(m, g)] for m, g in zip(members, groups, strict=True)])
    return [fold == k for k in range(n_splits) if np.any(fold == k)]


def _n_folds(members: np.ndarray, groups: np.ndarray, cv_splits: int) -> int:
    most_sources = max(len(np.unique(groups[members == m])) for m in np.unique(members))
    return max(2, min(cv_splits, most_sources))


@dataclasses.dataclass(frozen=True)
class _HeldOutFit:
    """A model fitted without some rows, and those rows."""

    model: Any
    held_out: np.ndarray
    """Boolean mask of the rows the model never saw."""
    stranger: str | None
    """The member left out entirely (leave-one-member-out), None for a cross-validation fold."""


def _held_out_fits(
    y: np.ndarray,
    groups: np.ndarray,
    fit: Callable[[np.ndarray], Any],
    *,
    cv_splits: int,
    random_state: int,
    stage: str,
    progress: ProgressCallback,
    cancel: threading.Event | None,
) -> Iterator[_HeldOutFit]:
    """The held-out models of calibration, ``fit(train_mask)`` each: one per fold of the grouped
    cross-validation (genuine scores), then one per member left out (stranger scores)."""
    folds = source_folds(y, groups, _n_folds(y, groups, cv_splits), random_state)
    members = np.unique(y)
    total = len(folds) + len(members)
    for step, held_out in enumerate(folds, start=1):
        check_cancelled(cancel, stage)
        yield _HeldOutFit(fit(~held_out), held_out, None)
        _report(progress, stage, step, total, f"cross-validation fold {step}/{len(folds)}")
    for step, stranger in enumerate(members, start=len(folds) + 1):
        check_cancelled(cancel, stage)
        others = y != stranger
        yield _HeldOutFit(fit(others), ~others, str(stranger))
        _report(progress, stage, step, total, f"{stranger} plays a stranger")


def _calibrated(
    progress: ProgressCallback, stage: str, total: int, metrics: dict[str, Any]
) -> None:
    progress(Progress(stage, total, total, "calibrated", metrics=metrics))


def _max_per_member(similarity: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Column-block maxima: templates are sorted by member and ``starts`` marks each block."""
    return np.maximum.reduceat(similarity, starts, axis=1)


def _cohort_normalise(raw: np.ndarray, cohort_size: int | None) -> np.ndarray:
    """Each member's score minus the mean of the ``cohort_size`` best other members' scores
    (None: all other members)."""
    n_members = raw.shape[1]
    size = n_members - 1 if cohort_size is None else min(cohort_size, n_members - 1)
    normalised = np.empty_like(raw)
    for column in range(n_members):
        others = np.delete(raw, column, axis=1)
        top = np.partition(others, others.shape[1] - size, axis=1)[:, -size:]
        normalised[:, column] = raw[:, column] - top.mean(axis=1)
    return normalised


def gaussian_tail_threshold(impostor: ArrayLike, target_fmr: float) -> float:
    """The higher of the empirical threshold at ``target_fmr`` and the normal fit's (impostor
    mean + z(1 - target) standard deviations).

    A face model has few impostor scores (members x photos, and augmented copies of a photo are
    not independent), so the empirical 99th percentile is about the second-highest score and
    does not carry over to new strangers. On enrolment-only data of the Yale benchmark (10
    splits, each member in turn left out of the calibration and scored as a stranger) the
    empirical threshold let 4.1% of them through (61/1500) for a 1% target, this rule 1.1%
    (16/1500), at a cross-validated FNIR of 4.8% instead of 0.8% (docs/BENCHMARKS.md).
    """
    from scipy.stats import norm

    scores = np.asarray(impostor, dtype=np.float64)
    empirical = threshold_at_fmr(scores, target_fmr)
    if scores.size < 2:
        return empirical
    fitted = float(scores.mean() + norm.isf(target_fmr) * scores.std(ddof=1))
    return max(empirical, fitted)


def _cross_fitted_false_matches(
    impostor: np.ndarray,
    owners: np.ndarray,
    target: float,
    rule: Callable[[np.ndarray, float], float] = threshold_at_fmr,
    counted: np.ndarray | None = None,
) -> int:
    """False matches when each impostor's threshold is calibrated (by ``rule``) without that
    impostor's own identity: an honest FMR estimate from the calibration data itself. Only the
    ``counted`` attempts (default: all) are counted; every score calibrates."""
    counted = np.ones(len(impostor), dtype=bool) if counted is None else counted
    false_matches = 0
    for owner in np.unique(owners):
        own = owners == owner
        if np.all(own):
            continue
        threshold = rule(impostor[~own], target)
        false_matches += int(np.sum(impostor[own & counted] >= threshold))
    return false_matches


def _macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    from sklearn.metrics import f1_score

    if not len(truth):
        return math.nan
    return float(f1_score(truth, predicted, average="macro", zero_division=0))


def _confusion(
    truth: Sequence[str], predicted: Sequence[str], labels: list[str]
) -> list[list[int]]:
    from sklearn.metrics import confusion_matrix

    if not len(truth):
        return []
    return confusion_matrix(truth, predicted, labels=labels).tolist()


def _eer_or_nan(genuine: np.ndarray, impostor: np.ndarray) -> float:
    if genuine.size == 0 or impostor.size == 0:
        return math.nan
    return equal_error_rate(genuine, impostor)[0]


def _report(progress: ProgressCallback, stage: str, step: int, total: int, message: str) -> None:
    progress(Progress(stage=stage, step=step, total=total, message=message))


# --------------------------------------------------------------------------------------------
# Face identification


class FaceIdentifier(BaseEstimator):
    """Open-set face identification: which enrolled member is this, or nobody?

    A probe is compared with every enrolled template in an embedding space; a member's score is
    the best cosine similarity to their templates (augmented copies included), optionally
    cohort-normalised. The ``dlib`` backend's 128-d embedding is already a metric space, so
    templates are the embeddings themselves and enrolling a member adds templates without
    retraining anything. The ``classic`` backend (HOG + LBP) learns a space for each of six parts
    of the feature vector (whole HOG, whole LBP, left and right halves of each; see
    engine.faces.extract.classic_feature_spaces): standardise -> PCA -> linear discriminant analysis
    (Fisherfaces: LDA on augmented copies learns to ignore lighting and pose; from
    LDA_MIN_MEMBERS members on, plain PCA below), and a member's score is the mean of the parts'
    best cosines to the member's templates. Enrolling retrains these spaces (quickly).

    Parameters
    ----------
    backend : "classic" or "dlib"
    target_fmr : false positive identification rate the rejection threshold is set to.
    score_normalisation : "none", or "cohort" (subtract the mean of the best other members'
        scores).
    cohort_size : members in the cohort of "cohort" normalisation.
    max_pca_components : upper bound of the classic backend's PCA step.
    threshold_rule : "gaussian_tail" (the default: the higher of the empirical quantile and a
        normal fit's, see ``gaussian_tail_threshold``) or "empirical" (the quantile alone).
        A few hundred stranger scores of correlated rows (3 photos per member and their copies)
        put the empirical 1% quantile near the highest score. On enrolment-only data of the Yale
        benchmark (10 splits, each member left out of the calibration in turn and its 3
        original photos scored as a stranger, 1% target; development / test enrolment photos)
        the empirical threshold let 5/300 and 6/300 through for the classic backend and 10/300
        and 10/300 for dlib, the Gaussian tail 2/300, 4/300, 5/300 and 3/300
        (docs/BENCHMARKS.md).
    cv_splits : folds of the grouped cross-validation producing held-out genuine scores.
    random_state : seed of the fold assignment.
    """

    def __init__(
        self,
        backend: FaceBackendName = "classic",
        target_fmr: float = 0.01,
        score_normalisation: ScoreNormalisation = "none",
        cohort_size: int = 3,
        max_pca_components: int = 150,
        threshold_rule: str = "gaussian_tail",
        cv_splits: int = 3,
        random_state: int = 0,
    ) -> None:
        self.backend = backend
        self.target_fmr = target_fmr
        self.score_normalisation = score_normalisation
        self.cohort_size = cohort_size
        self.max_pca_components = max_pca_components
        self.threshold_rule = threshold_rule
        self.cv_splits = cv_splits
        self.random_state = random_state

    # ---- fitting

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        groups: ArrayLike | None = None,
        augmented: ArrayLike | None = None,
        *,
        progress: ProgressCallback = no_progress,
        cancel: threading.Event | None = None,
    ) -> FaceIdentifier:
        """Enrol every member of ``y`` and calibrate the rejection threshold on held-out scores.

        ``groups`` names each row's source file (augmented copies share it). ``augmented`` flags
        the rows that are augmented copies: every row is a template and trains the classic
        space, and the copies' stranger scores help calibrate the threshold (see
        ``_calibrate``), but only original rows are genuine or stranger attempts in
        ``evaluation_``, because probes are never augmented (scoring the copies made it far
        harsher than real probes). Needs at least two members: the threshold is calibrated with
        each member playing a stranger to the others.
        """
        if self.backend not in ("classic", "dlib"):
            raise ValueError(f"backend must be 'classic' or 'dlib', not {self.backend!r}")
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
        y = y.astype(str)
        groups = _groups(groups, len(y))
        original = _original_rows(augmented, len(y))
        if len(np.unique(y)) < 2:
            raise EnrolmentError(
                "at least 2 members are needed to calibrate the rejection of strangers"
            )
        with single_threaded_blas():
            self.discriminant_ = len(np.unique(y)) >= LDA_MIN_MEMBERS
            self._fit_gallery(X, y, groups)
            if self.backend == "classic":
                # Kept so that enrolling or removing a member can retrain the learned space.
                self.training_X_, self.training_y_, self.training_groups_ = X, y, groups
                self.training_augmented_ = ~original
            self._calibrate(X, y, groups, original, progress, cancel)
        return self

    def _fit_gallery(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> FaceIdentifier:
        """Learn the embedding (classic) and store the templates sorted by member."""
        classic = self.backend == "classic"
        self.embedding_ = self._fit_embedding(X, y, groups) if classic else None
        order = np.argsort(y, kind="stable")
        parts = self._embedded_parts(X[order])
        self.part_bounds_ = np.cumsum([0, *(part.shape[1] for part in parts)])
        self.templates_ = np.hstack(parts)
        self.template_members_ = y[order]
        self.members_, self.template_starts_ = np.unique(self.template_members_, return_index=True)
        self.members_ = [str(m) for m in self.members_]
        self.normalised_ = self.score_normalisation == "cohort"
        return self

    def _fit_embedding(
        self, X: np.ndarray, y: np.ndarray, groups: np.ndarray
    ) -> list[tuple[np.ndarray, Any]]:
        """One learned space per part of the classic feature vector (engine.faces.extract'
        ``classic_feature_spaces``), as (columns, fitted pipeline) pairs."""
        from engine.faces.extract import classic_feature_spaces

        return [
            (columns, self._fit_space(X[:, columns], y, groups))
            for columns in classic_feature_spaces(X.shape[1])
        ]

    def _fit_space(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> Any:
        from sklearn.decomposition import PCA
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        n_members = len(np.unique(y))
        # PCA first keeps the within-class scatter invertible for LDA (Fisherfaces). Augmented
        # copies of a photo add rows but hardly any independent variation, so the dimensions
        # are bounded by the number of distinct photos: with one per row (150 PCA components
        # for 30 Yale photos x 5 copies) LDA overfitted the copies and the enrolment-only
        # cross-validated EER was 37%, with one per photo 13% (docs/BENCHMARKS.md).
        n_photos = len(np.unique(groups))
        n_components = max(
            1, min(self.max_pca_components, X.shape[1], n_photos, len(X) - n_members)
        )
        steps = [StandardScaler(), PCA(n_components=n_components, random_state=self.random_state)]
        if self.discriminant_:
            steps.append(LinearDiscriminantAnalysis(n_components=min(n_components, n_members - 1)))
        return make_pipeline(*steps).fit(X, y)

    def _embed(self, X: np.ndarray) -> np.ndarray:
        """Unit rows; classic: the parts' unit embeddings side by side (``_embedded_parts``)."""
        return np.hstack(self._embedded_parts(X))

    def _embedded_parts(self, X: np.ndarray) -> list[np.ndarray]:
        """One block of unit rows per part (the whole vector for dlib), each scaled by
        1/sqrt(parts) so that a part's dot product is its cosine over the number of parts."""
        if self.embedding_ is None:
            return [_unit_rows(np.asarray(X, dtype=np.float64))]
        parts = [_unit_rows(model.transform(X[:, columns])) for columns, model in self.embedding_]
        return [part / np.sqrt(len(parts)) for part in parts]

    def _calibrate(
        self,
        X: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray,
        original: np.ndarray,
        progress: ProgressCallback,
        cancel: threading.Event | None,
    ) -> None:
        """Held-out scores: genuine from grouped cross-validation (original rows only), stranger
        from leave-one-member-out. The threshold is calibrated on every stranger row, augmented
        copies included; ``evaluation_`` counts only original rows as attempts.

        Why the copies calibrate: with only the originals (about 3 photos per member) the
        threshold let more left-out members through. Enrolment-only, 10 Yale splits, each
        member left out of the calibration in turn and its 3 originals scored as a stranger
        (1% target): dlib 9/300 and 7/300 (development and test enrolment photos) against 5/300
        and 3/300 with the copies; classic 1/300 and 6/300 against 2/300 and 4/300
        (docs/BENCHMARKS.md)."""
        stage = "train.face"
        genuine, genuine_truth, genuine_rank1 = [], [], []
        impostor, impostor_owner, impostor_rank1, impostor_original = [], [], [], []
        for fitted in _held_out_fits(
            y,
            groups,
            lambda train: self._sub_model(X[train], y[train], groups[train]),
            cv_splits=self.cv_splits,
            random_state=self.random_state,
            stage=stage,
            progress=progress,
            cancel=cancel,
        ):
            model = fitted.model
            if fitted.stranger is None:
                scored = fitted.held_out & original & np.isin(y, model.members_)
                scores = model._scores(X[scored])
                truth = y[scored]
                columns = np.searchsorted(model.members_, truth)
                genuine.append(scores[np.arange(len(truth)), columns])
                genuine_truth.append(truth)
                genuine_rank1.append(np.asarray(model.members_)[scores.argmax(axis=1)])
            else:
                scores = model._scores(X[fitted.held_out])
                impostor.append(scores.max(axis=1))
                impostor_owner.append(np.full(len(scores), fitted.stranger))
                impostor_original.append(original[fitted.held_out])
                impostor_rank1.append(np.asarray(model.members_)[scores.argmax(axis=1)])
        genuine_scores = np.concatenate(genuine)
        impostor_scores = np.concatenate(impostor)
        self.threshold_ = self._threshold(impostor_scores)
        self.evaluation_ = _identification_evaluation(
            genuine_scores,
            np.concatenate(genuine_truth),
            np.concatenate(genuine_rank1),
            impostor_scores,
            np.concatenate(impostor_owner),
            np.concatenate(impostor_rank1),
            threshold=self.threshold_,
            target_fmr=self.target_fmr,
            n_train=len(X),
            rule=lambda scores, target: self._threshold(scores),
            counted=np.concatenate(impostor_original),
        )
        self.evaluation_["backend"] = self.backend
        _calibrated(
            progress,
            stage,
            len(genuine) + len(impostor),
            {k: self.evaluation_[k] for k in ("accuracy", "eer", "fmr", "fnmr")},
        )

    def _threshold(self, impostor: np.ndarray) -> float:
        if self.threshold_rule == "empirical":
            return threshold_at_fmr(impostor, self.target_fmr)
        if self.threshold_rule == "gaussian_tail":
            return gaussian_tail_threshold(impostor, self.target_fmr)
        raise ValueError(
            f"threshold_rule must be 'gaussian_tail' or 'empirical', not {self.threshold_rule!r}"
        )

    def _sub_model(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> FaceIdentifier:
        model = clone(self)
        # The full model's choice of space, so that held-out scores are comparable with it.
        model.discriminant_ = self.discriminant_
        model._fit_gallery(X, y, groups)
        # The decision of whether to normalise is the full model's, so that held-out scores
        # are on the same scale as the scores the threshold is applied to.
        model.normalised_ = self.normalised_ and len(model.members_) >= 2
        return model

    # ---- members

    def enrol(
        self,
        member: str,
        X: ArrayLike,
        groups: ArrayLike | None = None,
        augmented: ArrayLike | None = None,
    ) -> FaceIdentifier:
        """Add (or extend) a member. dlib: templates are appended, nothing is retrained and the
        threshold stays; classic: the learned space is refitted and the threshold recalibrated
        (``augmented`` flags the new rows that are augmented copies, as in ``fit``)."""
        check_is_fitted(self, "templates_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        member = str(member)
        if not member:
            raise EnrolmentError("a member name cannot be empty")
        if self.backend == "classic":
            rows = len(X)
            new_groups = (
                _groups(groups, rows)
                if groups is not None
                else np.array([f"{member}#enrol{i}" for i in range(rows)])
            )
            return self.fit(
                np.vstack([self.training_X_, X]),
                np.concatenate([self.training_y_, np.full(rows, member)]),
                np.concatenate([self.training_groups_, new_groups]),
                np.concatenate([self.training_augmented_, ~_original_rows(augmented, rows)]),
            )
        templates = np.vstack([self.templates_, self._embed(X)])
        owners = np.concatenate([self.template_members_, np.full(len(X), member)])
        order = np.argsort(owners, kind="stable")
        self.templates_, self.template_members_ = templates[order], owners[order]
        members, self.template_starts_ = np.unique(self.template_members_, return_index=True)
        self.members_ = [str(m) for m in members]
        return self

    def remove(self, member: str) -> FaceIdentifier:
        """Forget a member (dlib: drop their templates; classic: retrain without them)."""
        check_is_fitted(self, "templates_")
        if member not in self.members_:
            raise EnrolmentError(f"{member!r} is not enrolled")
        if len(self.members_) <= 2:
            raise EnrolmentError("the face model needs at least 2 members; enrol another first")
        if self.backend == "classic":
            keep = self.training_y_ != member
            return self.fit(
                self.training_X_[keep],
                self.training_y_[keep],
                self.training_groups_[keep],
                self.training_augmented_[keep],
            )
        keep = self.template_members_ != member
        self.templates_, self.template_members_ = (
            self.templates_[keep],
            self.template_members_[keep],
        )
        members, self.template_starts_ = np.unique(self.template_members_, return_index=True)
        self.members_ = [str(m) for m in members]
        return self

    # ---- scoring

    def _scores(self, X: np.ndarray) -> np.ndarray:
        """Per member, the mean over the embedding's parts of the best cosine to the member's
        templates (one part for dlib). Each part picks its own best template: on the Yale
        development protocol rank-1 92.3% / EER 17.0% against 91.3% / 17.0% with the best
        template of the mean cosine."""
        embedded = self._embed(X)
        raw = sum(
            _max_per_member(
                embedded[:, start:stop] @ self.templates_[:, start:stop].T, self.template_starts_
            )
            for start, stop in itertools.pairwise(self.part_bounds_)
        )
        return _cohort_normalise(raw, self.cohort_size) if self.normalised_ else raw

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Scores of every row against every member, shape (n_rows, n_members), columns in
        ``members_`` order."""
        check_is_fitted(self, "templates_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        with single_threaded_blas():
            return self._scores(X)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The identified member per row, or UNKNOWN where the best score is under threshold."""
        scores = self.decision_function(X)
        best = np.asarray(self.members_, dtype=object)[scores.argmax(axis=1)]
        return np.where(scores.max(axis=1) >= self.threshold_, best, UNKNOWN)

    def identify(self, vector: ArrayLike) -> FaceMatch:
        """Identify one photo's feature vector, or reject it as unknown."""
        scores = self.decision_function(np.asarray(vector, dtype=np.float64).reshape(1, -1))[0]
        best = int(np.argmax(scores))
        score = float(scores[best])
        accepted = score >= self.threshold_
        return FaceMatch(
            member=self.members_[best] if accepted else None,
            score=score,
            threshold=float(self.threshold_),
            best_member=self.members_[best],
            scores={m: float(s) for m, s in zip(self.members_, scores, strict=True)},
        )


def _identification_evaluation(
    genuine: np.ndarray,
    genuine_truth: np.ndarray,
    genuine_rank1: np.ndarray,
    impostor: np.ndarray,
    impostor_owner: np.ndarray,
    impostor_rank1: np.ndarray,
    *,
    threshold: float,
    target_fmr: float,
    n_train: int,
    rule: Callable[[np.ndarray, float], float] = threshold_at_fmr,
    counted: np.ndarray | None = None,
) -> dict[str, Any]:
    """Held-out open-set identification figures (FPIR cross-fitted with the threshold ``rule``,
    FNIR at the threshold); only the ``counted`` stranger scores (default: all) are attempts,
    the others only calibrate."""
    identified = (genuine_rank1 == genuine_truth) & (genuine >= threshold)
    predicted_genuine = np.where(genuine >= threshold, genuine_rank1, UNKNOWN)
    false_matches = _cross_fitted_false_matches(impostor, impostor_owner, target_fmr, rule, counted)
    if counted is not None:
        impostor, impostor_rank1 = impostor[counted], impostor_rank1[counted]
    # Which strangers were the cross-fitted false matches is not tracked row by row; the F1
    # uses the single calibrated threshold for them.
    predicted_impostor = np.where(impostor >= threshold, impostor_rank1, UNKNOWN)
    truth = list(genuine_truth) + [UNKNOWN] * len(impostor)
    predicted = list(predicted_genuine) + list(predicted_impostor)
    labels = sorted(set(genuine_truth)) + [UNKNOWN]
    return {
        "accuracy": float(np.mean(genuine_rank1 == genuine_truth)) if genuine.size else math.nan,
        "f1_score": _macro_f1(truth, predicted),
        "log_loss": math.nan,
        "eer": _eer_or_nan(genuine, impostor),
        "fmr": false_matches / impostor.size if impostor.size else math.nan,
        "fnmr": float(np.mean(~identified)) if genuine.size else math.nan,
        "threshold": float(threshold),
        "target_fmr": float(target_fmr),
        "n_train": int(n_train),
        "n_test": int(genuine.size + impostor.size),
        "n_genuine": int(genuine.size),
        "n_impostor": int(impostor.size),
        "false_matches": int(false_matches),
        "genuine": genuine.astype(np.float64),
        "impostor": impostor.astype(np.float64),
        "labels": labels,
        "confusion": _confusion(truth, predicted, labels),
        "protocol": (
            "open-set identification; genuine: grouped cross-validation by source file; "
            "impostor: leave-one-member-out (the member plays a stranger); fmr = FPIR with "
            "thresholds cross-fitted across strangers, fnmr = FNIR at the calibrated threshold"
        ),
    }


# --------------------------------------------------------------------------------------------
# DTW


def dtw_cost(query: np.ndarray, reference: np.ndarray) -> float:
    """Dynamic time warping cost of two frame sequences (frames x coefficients): the summed
    euclidean frame distances along the best path divided by the path's length, so that long and
    short phrases are comparable."""
    query = np.ascontiguousarray(query, dtype=np.float64)
    reference = np.ascontiguousarray(reference, dtype=np.float64)
    if query.ndim != 2 or reference.ndim != 2 or query.shape[1] != reference.shape[1]:
        raise InputError(
            f"MFCC sequences must be frames x coefficients with equal coefficients, "
            f"not {query.shape} and {reference.shape}"
        )
    if len(query) == 0 or len(reference) == 0:
        raise InputError("an MFCC sequence has no frames")
    squared = (
        np.sum(query**2, axis=1)[:, None]
        + np.sum(reference**2, axis=1)[None, :]
        - 2.0 * query @ reference.T
    )
    return float(_dtw_normalised(np.sqrt(np.maximum(squared, 0.0))))


def _dtw_normalised_python(cost: np.ndarray) -> float:
    rows, columns = cost.shape
    total = np.full((rows + 1, columns + 1), np.inf)
    length = np.zeros((rows + 1, columns + 1))
    total[0, 0] = 0.0
    for i in range(1, rows + 1):
        for j in range(1, columns + 1):
            diagonal, up, left = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
            if diagonal <= up and diagonal <= left:
                total[i, j], length[i, j] = diagonal, length[i - 1, j - 1]
            elif up <= left:
                total[i, j], length[i, j] = up, length[i - 1, j]
            else:
                total[i, j], length[i, j] = left, length[i, j - 1]
            total[i, j] += cost[i - 1, j - 1]
            length[i, j] += 1.0
    return total[rows, columns] / length[rows, columns]


def _compile_dtw() -> Any:
    # numba ships with librosa; the compiled loop is ~100x faster than the Python one, which
    # matters because every verification runs a DTW per enrolled take of the claimed member.
    try:
        import numba
    except ImportError:  # pragma: no cover - librosa always brings numba
        return _dtw_normalised_python
    return numba.njit(cache=True, nogil=True)(_dtw_normalised_python)


_dtw_normalised = _compile_dtw()


# --------------------------------------------------------------------------------------------
# Voice verification


class VoiceVerifier(BaseEstimator):
    """Text-dependent speaker verification: is this the claimed member's voice, saying one of
    the member's enrolled approval phrases?

    Speaker evidence: by default the decision values of a logistic regression over the members
    on the standardised clip statistics (the claimed member's column), trained on the original
    clips (and their augmented copies with ``augmented_training``); ``speaker_score="log_odds"`` uses the log posterior odds of
    the claimed member instead; ``pca``/``lda`` use the best cosine to the member's enrolled
    clips in a whitened-PCA or LDA space. DTW evidence: minus the length-normalised DTW cost of
    the probe's MFCC sequence against the member's enrolled takes (best take); same speaker and
    same phrase give the lowest cost. Optional cohort normalisation subtracts the mean of the
    ``cohort_size`` best other members' values (None: all others). Both are z-normalised with
    held-out impostor scores and added, ``phrase_weight`` weighing the DTW term. Accepted when
    the combined score reaches ``threshold_`` and the raw DTW cost to the closest enrolled phrase
    passes the phrase check ``phrase_threshold_`` (a separate decision).

    The defaults come from enrolment-only cross-validation of five FSDD benchmark workspaces
    (docs/BENCHMARKS.md). Held-out original takes nearly saturate (EER 0-4%), so a second
    comparison also scores the held-out sources' realistic augmented copies (reverb, noise, gain,
    tempo): there, training the speaker model on the copies lowered the speaker evidence's EER
    against members from 7.7% to 2.8%, but on the benchmark's probes it did not help (EER 3.10% /
    5.47% against members / strangers, 2.88% / 5.10% without), so ``augmented_training`` is off
    by default. That comparison favours a low DTW weight, but it is biased towards the speaker
    evidence (trained on copies of the same kinds, while the DTW takes are originals). The DTW
    weight comes from FSDD's development digits (0-4; ``python -m benchmarks.voice_designs``,
    never the test digits): mean EER against members / strangers over 15 splits with weight 1
    1.84% / 4.92%, 1.25 2.02% / 4.74%, 1.5 2.33% / 4.63%, 1.75 2.48% / 4.64%, 2 2.69% / 4.74%,
    3 3.35% / 5.12%; 1.25 has the lowest mean of the two (tied with 1) and is at least as good
    as the previous 2, chosen on enrolment-only cross-validation, on both.

    Parameters
    ----------
    target_fmr : false match rate the thresholds are set to.
    phrase_weight : weight of the z-normalised DTW evidence in the combined score.
    speaker_space : "logistic", "pca" (whitened cosine) or "lda" (discriminant space cosine).
    speaker_score : "logit" (decision value) or "log_odds" (log posterior odds) of the logistic
        speaker space.
    pca_variance : fraction of variance the whitened speaker space keeps.
    cohort_size : best other members in the cohort (None: all of them; 0 disables it).
    use_augmented : enrol augmented copies as templates and DTW takes too (see ``fit``).
    augmented_training : train the speaker space on the augmented copies as well (they are
        never templates nor calibration attempts unless ``use_augmented``).
    cv_splits : folds of the grouped cross-validation producing held-out scores.
    random_state : seed of the fold assignment.
    """

    def __init__(
        self,
        target_fmr: float = 0.01,
        phrase_weight: float = 1.25,
        speaker_space: str = "logistic",
        speaker_score: str = "logit",
        pca_variance: float = 0.95,
        cohort_size: int | None = 0,
        use_augmented: bool = False,
        augmented_training: bool = False,
        cv_splits: int = 3,
        random_state: int = 0,
    ) -> None:
        self.target_fmr = target_fmr
        self.phrase_weight = phrase_weight
        self.speaker_space = speaker_space
        self.speaker_score = speaker_score
        self.pca_variance = pca_variance
        self.cohort_size = cohort_size
        self.use_augmented = use_augmented
        self.augmented_training = augmented_training
        self.cv_splits = cv_splits
        self.random_state = random_state

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        phrases: ArrayLike,
        sequences: Sequence[np.ndarray],
        groups: ArrayLike | None = None,
        augmented: ArrayLike | None = None,
        *,
        progress: ProgressCallback = no_progress,
        cancel: threading.Event | None = None,
    ) -> VoiceVerifier:
        """Enrol every member's clips (vectors, phrase labels and MFCC sequences) and calibrate
        the thresholds on held-out scores.

        ``augmented`` flags rows that are augmented copies. They are never scored during
        calibration: probes are never augmented, and some copies are not realistic attempts (a
        pitch-shifted voice is another voice; babble noise mixes in other members' enrolment
        takes). With ``use_augmented=False`` (the default) they are not templates: as
        templates they made the held-out EER against strangers worse on enrolment-only
        cross-validation of FSDD (docs/BENCHMARKS.md); with ``augmented_training`` they train the
        speaker space (meant to make it ignore channel and tempo changes; off by default, see
        the class docstring).
        """
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
        y = y.astype(str)
        phrases = _labels(phrases, "phrases", len(y))
        groups = _groups(groups, len(y))
        sequences = _check_sequences(sequences, len(y))
        original = _original_rows(augmented, len(y))
        if not (self.use_augmented or self.augmented_training):
            X, y, phrases, groups = X[original], y[original], phrases[original], groups[original]
            sequences = [s for s, keep in zip(sequences, original, strict=True) if keep]
            original = original[original]
        if len(np.unique(y)) < 2:
            raise EnrolmentError("at least 2 members are needed to calibrate against impostors")
        with single_threaded_blas():
            self._fit_templates(X, y, phrases, sequences, original)
            self._calibrate(X, y, phrases, sequences, groups, original, progress, cancel)
        return self

    def _fit_templates(
        self,
        X: np.ndarray,
        y: np.ndarray,
        phrases: np.ndarray,
        sequences: list[np.ndarray],
        original: np.ndarray,
    ) -> VoiceVerifier:
        """Speaker model on the original rows (plus the augmented copies with
        ``augmented_training``); templates and DTW takes from the original rows (every row with
        ``use_augmented``)."""
        learn = original | self.augmented_training | self.use_augmented
        self.speaker_model_ = self._fit_speaker_model(X[learn], y[learn])
        if not self.use_augmented:
            X, y, phrases = X[original], y[original], phrases[original]
            sequences = [s for s, keep in zip(sequences, original, strict=True) if keep]
        order = np.argsort(y, kind="stable")
        self.template_members_ = y[order]
        members, self.template_starts_ = np.unique(self.template_members_, return_index=True)
        self.members_ = [str(m) for m in members]
        # Enrolled clips in the learned space, for the cosine speaker evidence.
        self.templates_ = None if self.speaker_space == "logistic" else self._embed(X[order])
        frames = np.vstack(sequences)
        # Per-coefficient scaling keeps c0 (loudness) from dominating the frame distances.
        self.sequence_mean_ = frames.mean(axis=0)
        self.sequence_scale_ = np.maximum(frames.std(axis=0), _EPSILON)
        # Plain lists and arrays (no tuple keys) so that skops can persist them; sorted by
        # member like the templates.
        self.take_sequences_ = [self._scale_sequence(sequences[i]) for i in order]
        self.take_members_ = y[order]
        self.take_phrases_ = phrases[order]
        self.take_starts_ = np.unique(self.take_members_, return_index=True)[1]
        self.member_phrases_ = {m: sorted({str(p) for p in phrases[y == m]}) for m in self.members_}
        return self

    def _fit_speaker_model(self, X: np.ndarray, y: np.ndarray) -> Any:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.speaker_space == "logistic":
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(C=1.0, max_iter=2000)
        elif self.speaker_space == "lda":
            from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

            model = LinearDiscriminantAnalysis(n_components=len(np.unique(y)) - 1)
        elif self.speaker_space == "pca":
            from sklearn.decomposition import PCA

            model = PCA(n_components=self.pca_variance, whiten=True, random_state=self.random_state)
        else:
            raise ValueError(
                f"speaker_space must be 'logistic', 'pca' or 'lda', not {self.speaker_space!r}"
            )
        return make_pipeline(StandardScaler(), model).fit(X, y)

    def _embed(self, X: np.ndarray) -> np.ndarray:
        return _unit_rows(self.speaker_model_.transform(X))

    def _scale_sequence(self, sequence: np.ndarray) -> np.ndarray:
        return (np.asarray(sequence, dtype=np.float64) - self.sequence_mean_) / self.sequence_scale_

    # ---- raw scores (before z-normalisation)

    def _speaker_scores(self, X: np.ndarray) -> np.ndarray:
        """Speaker similarity per member, shape (n_rows, n_members): best-template cosine, or
        the logistic regression's decision values (columns in sorted member order)."""
        if self.speaker_space == "logistic":
            if self.speaker_score not in ("logit", "log_odds"):
                raise ValueError(
                    f"speaker_score must be 'logit' or 'log_odds', not {self.speaker_score!r}"
                )
            if self.speaker_score == "log_odds":
                return _log_odds(self.speaker_model_.predict_proba(X))
            decision = self.speaker_model_.decision_function(X)
            return np.column_stack([-decision, decision]) if decision.ndim == 1 else decision
        return _max_per_member(self._embed(X) @ self.templates_.T, self.template_starts_)

    def _evidence(self, X: np.ndarray, sequences: Sequence[np.ndarray]) -> _VoiceEvidence:
        """Every row against every member (arrays of shape (n_rows, n_members))."""
        speaker = self._speaker_scores(X)
        costs = np.empty((len(sequences), len(self.members_)))
        matched = np.empty(costs.shape, dtype=object)
        for row, sequence in enumerate(sequences):
            scaled = self._scale_sequence(sequence)
            take_costs = np.array([dtw_cost(scaled, take) for take in self.take_sequences_])
            for column, (start, stop) in enumerate(self._take_blocks()):
                best = start + int(np.argmin(take_costs[start:stop]))
                costs[row, column] = take_costs[best]
                matched[row, column] = str(self.take_phrases_[best])
        phrase = -costs
        if self.cohort_size != 0 and len(self.members_) > 1:
            speaker = _cohort_normalise(speaker, self.cohort_size)
            evidence = _cohort_normalise(phrase, self.cohort_size)
        else:
            evidence = phrase
        return _VoiceEvidence(speaker=speaker, dtw=evidence, phrase=phrase, matched=matched)

    def _take_blocks(self) -> list[tuple[int, int]]:
        bounds = [*self.take_starts_.tolist(), len(self.take_members_)]
        return list(itertools.pairwise(bounds))

    def _combine(self, speaker: np.ndarray, dtw: np.ndarray) -> np.ndarray:
        """z-normalised speaker evidence plus weighted z-normalised DTW evidence."""
        speaker_z = (speaker - self.speaker_norm_[0]) / self.speaker_norm_[1]
        dtw_z = (dtw - self.dtw_norm_[0]) / self.dtw_norm_[1]
        return speaker_z + self.phrase_weight * dtw_z

    # ---- calibration

    def _calibrate(
        self,
        X: np.ndarray,
        y: np.ndarray,
        phrases: np.ndarray,
        sequences: list[np.ndarray],
        groups: np.ndarray,
        scored: np.ndarray,
        progress: ProgressCallback,
        cancel: threading.Event | None,
    ) -> None:
        stage = "train.voice"
        collected = _HeldOutVoiceScores()
        steps = 0

        def fit(train: np.ndarray) -> VoiceVerifier:
            return clone(self)._fit_templates(
                X[train],
                y[train],
                phrases[train],
                [sequences[i] for i in np.flatnonzero(train)],
                scored[train],
            )

        for fitted in _held_out_fits(
            y,
            groups,
            fit,
            cv_splits=self.cv_splits,
            random_state=self.random_state,
            stage=stage,
            progress=progress,
            cancel=cancel,
        ):
            rows = fitted.held_out & scored
            if fitted.stranger is None:
                rows &= np.isin(y, fitted.model.members_)
            collected.add(
                fitted.model,
                X,
                y,
                phrases,
                sequences,
                np.flatnonzero(rows),
                stranger=fitted.stranger is not None,
            )
            steps += 1
        self._set_thresholds(collected, n_train=len(X))
        _calibrated(
            progress, stage, steps, {k: self.evaluation_[k] for k in ("eer", "fmr", "fnmr")}
        )

    def _set_thresholds(self, collected: _HeldOutVoiceScores, *, n_train: int) -> None:
        scores = collected.arrays()
        kind, owners = scores["kind"], scores["owner"]
        impostor = kind != "genuine"
        enrolled = scores["phrase_enrolled"]
        # Phrase check: attempts saying a phrase the claimed member never enrolled are the
        # phrase impostors. When every clip says an enrolled phrase (no such attempts), the check
        # only refuses what is further than every held-out genuine take.
        genuine = (kind == "genuine") & enrolled
        if np.any(~enrolled):
            self.phrase_threshold_ = threshold_at_fmr(scores["phrase"][~enrolled], self.target_fmr)
        elif np.any(genuine):
            self.phrase_threshold_ = float(np.min(scores["phrase"][genuine]))
        else:
            self.phrase_threshold_ = -math.inf
        phrase_ok = scores["phrase"] >= self.phrase_threshold_
        self.speaker_norm_ = _mean_and_scale(scores["speaker"][impostor])
        self.dtw_norm_ = _mean_and_scale(scores["dtw"][impostor])
        combined = self._combine(scores["speaker"], scores["dtw"])
        # Impostors refused by the phrase check cannot be false matches: the threshold is set on
        # those that get past it, which keeps the overall FMR at or under the target.
        candidates = impostor & phrase_ok
        calibration = candidates if np.any(candidates) else impostor
        self.threshold_ = threshold_at_fmr(combined[calibration], self.target_fmr)
        accepted = (combined >= self.threshold_) & phrase_ok
        false_matches = _cross_fitted_false_matches(
            combined[calibration], owners[calibration], self.target_fmr
        )
        self.evaluation_ = _verification_evaluation(combined, accepted, genuine, kind)
        self.evaluation_.update(
            fmr=false_matches / int(np.sum(impostor)),
            false_matches=false_matches,
            threshold=float(self.threshold_),
            target_fmr=float(self.target_fmr),
            n_train=int(n_train),
            phrase_threshold=float(self.phrase_threshold_),
            wrong_phrase_acceptance=(
                float(np.mean(phrase_ok[~enrolled])) if np.any(~enrolled) else math.nan
            ),
            n_wrong_phrase=int(np.sum(~enrolled)),
        )

    # ---- verification

    def score_claims(self, X: ArrayLike, sequences: Sequence[np.ndarray]) -> ClaimScores:
        """Every row against every member's claim at once (the DTW runs once per row and
        enrolled take), arrays of shape (n_rows, n_members) in ``members_`` order."""
        check_is_fitted(self, "threshold_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        with single_threaded_blas():
            evidence = self._evidence(X, _check_sequences(sequences, len(X)))
        combined = self._combine(evidence.speaker, evidence.dtw)
        phrase_ok = evidence.phrase >= self.phrase_threshold_
        return ClaimScores(
            combined=combined,
            speaker=evidence.speaker,
            phrase=evidence.phrase,
            matched=evidence.matched,
            phrase_ok=phrase_ok,
            accepted=phrase_ok & (combined >= self.threshold_),
        )

    def decision_scores(
        self, X: ArrayLike, sequences: Sequence[np.ndarray], claims: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str | None]]:
        """Vectorised verification: (combined, speaker, phrase scores, matched phrases) of each
        row against its own claimed member."""
        check_is_fitted(self, "threshold_")
        unknown = sorted(set(map(str, claims)) - set(self.members_))
        if unknown:
            raise EnrolmentError(f"not enrolled in the voice model: {', '.join(unknown)}")
        scores = self.score_claims(X, sequences)
        rows = np.arange(len(scores.combined))
        columns = np.searchsorted(self.members_, np.asarray(claims, dtype=str))
        return (
            scores.combined[rows, columns],
            scores.speaker[rows, columns],
            scores.phrase[rows, columns],
            list(scores.matched[rows, columns]),
        )

    def verify(
        self, vector: ArrayLike, mfcc_sequence: np.ndarray, claimed_member: str
    ) -> VoiceMatch:
        """Does this clip carry the claimed member's voice saying one of their phrases?"""
        combined, speaker, phrase, matched = self.decision_scores(
            np.asarray(vector, dtype=np.float64).reshape(1, -1), [mfcc_sequence], [claimed_member]
        )
        phrase_ok = bool(phrase[0] >= self.phrase_threshold_)
        score = float(combined[0])
        return VoiceMatch(
            accepted=bool(phrase_ok and score >= self.threshold_),
            score=score,
            threshold=float(self.threshold_),
            speaker_score=float(speaker[0]),
            phrase_score=float(phrase[0]),
            phrase=matched[0],
            phrase_ok=phrase_ok,
        )


@dataclasses.dataclass(frozen=True)
class ClaimScores:
    """Voice scores of rows against every member's claim, arrays (n_rows, n_members)."""

    combined: np.ndarray
    """Combined score compared with ``threshold_``."""
    speaker: np.ndarray
    """Speaker evidence (cohort-normalised when the model uses a cohort)."""
    phrase: np.ndarray
    """Minus the best DTW cost against the claimed member's takes (the phrase check)."""
    matched: np.ndarray
    """The claimed member's enrolled phrase closest to the clip."""
    phrase_ok: np.ndarray
    """The phrase check passed."""
    accepted: np.ndarray
    """Both the combined threshold and the phrase check passed."""


@dataclasses.dataclass(frozen=True)
class _VoiceEvidence:
    """Scores of rows against every member, arrays of shape (n_rows, n_members)."""

    speaker: np.ndarray
    """Speaker similarity (cohort-normalised unless cohort_size is 0)."""
    dtw: np.ndarray
    """Minus the best DTW cost (cohort-normalised unless cohort_size is 0): speaker and phrase."""
    phrase: np.ndarray
    """Minus the best DTW cost, raw: the phrase check compares it with phrase_threshold_."""
    matched: np.ndarray
    """The enrolled phrase of the best take."""


def _check_sequences(sequences: Sequence[np.ndarray], n_rows: int) -> list[np.ndarray]:
    checked = [np.asarray(s, dtype=np.float64) for s in sequences]
    if len(checked) != n_rows:
        raise InputError(f"{len(checked)} MFCC sequences for {n_rows} feature rows")
    widths = {s.shape[1] for s in checked if s.ndim == 2}
    if any(s.ndim != 2 or len(s) == 0 for s in checked) or len(widths) > 1:
        raise InputError("every MFCC sequence must be a non-empty frames x coefficients array")
    return checked


class _HeldOutVoiceScores:
    """Scores collected during calibration, one entry per (held-out clip, claimed member)."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {
            name: []
            for name in (
                "speaker",
                "dtw",
                "phrase",
                "kind",
                "owner",
                "phrase_enrolled",
            )
        }

    def add(
        self,
        model: VoiceVerifier,
        X: np.ndarray,
        y: np.ndarray,
        phrases: np.ndarray,
        sequences: list[np.ndarray],
        rows: np.ndarray,
        *,
        stranger: bool,
    ) -> None:
        """Score held-out ``rows`` against every member of ``model`` (a model not fitted on
        them): their own member is the genuine claim, the others impostor claims."""
        if rows.size == 0:
            return
        evidence = model._evidence(X[rows], [sequences[i] for i in rows])
        for column, claim in enumerate(model.members_):
            if stranger:
                kind = np.full(rows.size, "stranger")
            else:
                kind = np.where(y[rows] == claim, "genuine", "member")
            enrolled = set(model.member_phrases_[claim])
            self.columns["speaker"] += list(evidence.speaker[:, column])
            self.columns["dtw"] += list(evidence.dtw[:, column])
            self.columns["phrase"] += list(evidence.phrase[:, column])
            self.columns["kind"] += list(kind)
            self.columns["owner"] += list(y[rows])
            self.columns["phrase_enrolled"] += [p in enrolled for p in phrases[rows]]

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(values) for name, values in self.columns.items()}


def _verification_evaluation(
    combined: np.ndarray, accepted: np.ndarray, genuine: np.ndarray, kind: np.ndarray
) -> dict[str, Any]:
    """Held-out verification figures at the calibrated threshold (fmr is set by the caller,
    cross-fitted)."""
    impostor = kind != "genuine"
    scored = genuine | impostor
    return {
        "accuracy": float(np.mean(np.where(genuine, accepted, ~accepted)[scored])),
        "f1_score": _binary_f1(accepted[scored], genuine[scored]),
        "log_loss": math.nan,
        "eer": _eer_or_nan(combined[genuine], combined[impostor]),
        "eer_members": _eer_or_nan(combined[genuine], combined[kind == "member"]),
        "eer_strangers": _eer_or_nan(combined[genuine], combined[kind == "stranger"]),
        "fnmr": float(np.mean(~accepted[genuine])) if np.any(genuine) else math.nan,
        "n_test": int(np.sum(scored)),
        "n_genuine": int(np.sum(genuine)),
        "n_impostor": int(np.sum(impostor)),
        "genuine": combined[genuine].astype(np.float64),
        "impostor": combined[impostor].astype(np.float64),
        "protocol": (
            "verification; genuine: grouped cross-validation by source file, own claim; "
            "impostor: held-out clips of other members claiming each member, and each member "
            "left out in turn claiming every other member (stranger); fmr cross-fitted"
        ),
    }


def _log_odds(probabilities: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) per column, clipped away from 0 and 1."""
    clipped = np.clip(probabilities, 1e-15, 1.0 - 1e-15)
    return np.log(clipped) - np.log1p(-clipped)


def _mean_and_scale(scores: np.ndarray) -> tuple[float, float]:
    scale = float(np.std(scores)) if scores.size > 1 else 0.0
    return float(np.mean(scores)) if scores.size else 0.0, scale if scale > _EPSILON else 1.0


def _binary_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    if truth.size == 0:
        return math.nan
    return float(f1_score(truth, predicted, zero_division=0))


# --------------------------------------------------------------------------------------------
# Fusion


@dataclasses.dataclass(frozen=True)
class FusionDecision:
    """The combined face + voice decision."""

    accepted: bool
    """True when the fusion rule accepts the attempt."""
    rule: str
    """``and`` (both modalities pass their own threshold) or ``score`` (fused score threshold)."""
    fused_score: float
    """Sum of the z-normalised face and voice scores."""
    threshold: float
    """Threshold of the fused score (used by the ``score`` rule; reported for ``and``)."""
    face_ok: bool
    """The face score reached the face model's threshold."""
    voice_ok: bool
    """The voice model accepted (voice threshold and phrase check)."""


class ScoreFusion(BaseEstimator):
    """Face + voice decision: the AND rule, or a threshold on the sum of z-normalised scores.

    The normalisation uses each modality's held-out impostor scores; the fused threshold is set
    at ``target_fmr`` on chimeric impostor pairs (every face impostor score with every voice
    impostor score, sampled when there are too many), i.e. assuming a stranger's face and voice
    scores are independent. The phrase check stays mandatory under both rules.
    """

    def __init__(self, rule: str = "and", target_fmr: float = 0.01, random_state: int = 0) -> None:
        self.rule = rule
        self.target_fmr = target_fmr
        self.random_state = random_state

    def fit(
        self,
        face_genuine: ArrayLike,
        face_impostor: ArrayLike,
        voice_genuine: ArrayLike,
        voice_impostor: ArrayLike,
    ) -> ScoreFusion:
        """Calibrate from held-out genuine and impostor scores of each modality."""
        if self.rule not in ("and", "score"):
            raise ValueError(f"rule must be 'and' or 'score', not {self.rule!r}")
        face_impostor = np.asarray(face_impostor, dtype=np.float64)
        voice_impostor = np.asarray(voice_impostor, dtype=np.float64)
        self.face_norm_ = _mean_and_scale(face_impostor)
        self.voice_norm_ = _mean_and_scale(voice_impostor)
        rng = np.random.default_rng(self.random_state)
        impostor = self._chimeric(face_impostor, voice_impostor, rng)
        genuine = self._chimeric(
            np.asarray(face_genuine, dtype=np.float64),
            np.asarray(voice_genuine, dtype=np.float64),
            rng,
        )
        self.threshold_ = threshold_at_fmr(impostor, self.target_fmr)
        self.evaluation_ = {
            "eer": _eer_or_nan(genuine, impostor),
            "fmr": float(np.mean(impostor >= self.threshold_)),
            "fnmr": float(np.mean(genuine < self.threshold_)) if genuine.size else math.nan,
            "threshold": float(self.threshold_),
            "n_genuine": int(genuine.size),
            "n_impostor": int(impostor.size),
            "genuine": genuine,
            "impostor": impostor,
        }
        return self

    @classmethod
    def from_models(
        cls, face: FaceIdentifier, voice: VoiceVerifier, rule: str = "and", random_state: int = 0
    ) -> ScoreFusion:
        """A fusion calibrated on the two fitted models' held-out scores."""
        face_eval, voice_eval = face.evaluation_, voice.evaluation_
        return cls(rule=rule, target_fmr=face.target_fmr, random_state=random_state).fit(
            face_eval["genuine"],
            face_eval["impostor"],
            voice_eval["genuine"],
            voice_eval["impostor"],
        )

    def _chimeric(
        self, face: np.ndarray, voice: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        if face.size == 0 or voice.size == 0:
            return np.empty(0)
        if face.size * voice.size <= _MAX_CHIMERIC_PAIRS:
            return self.fused(face[:, None], voice[None, :]).ravel()
        return self.fused(
            rng.choice(face, _MAX_CHIMERIC_PAIRS), rng.choice(voice, _MAX_CHIMERIC_PAIRS)
        )

    def fused(self, face_score: ArrayLike, voice_score: ArrayLike) -> np.ndarray:
        """Sum of the z-normalised scores."""
        face_z = (np.asarray(face_score, dtype=np.float64) - self.face_norm_[0]) / self.face_norm_[
            1
        ]
        voice_z = (
            np.asarray(voice_score, dtype=np.float64) - self.voice_norm_[0]
        ) / self.voice_norm_[1]
        return face_z + voice_z

    def decide(self, face: FaceMatch, voice: VoiceMatch) -> FusionDecision:
        """Accept or refuse one attempt from the two models' answers."""
        check_is_fitted(self, "threshold_")
        fused = float(self.fused(face.score, voice.score))
        face_ok = face.score >= face.threshold
        voice_ok = voice.accepted
        if self.rule == "and":
            accepted = face_ok and voice_ok
        else:
            accepted = voice.phrase_ok and fused >= self.threshold_
        return FusionDecision(
            accepted=bool(accepted),
            rule=self.rule,
            fused_score=fused,
            threshold=float(self.threshold_),
            face_ok=bool(face_ok),
            voice_ok=bool(voice_ok),
        )
