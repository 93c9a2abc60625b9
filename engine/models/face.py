"""Open-set face identification: which enrolled member is in a photo, or nobody.

The threshold that rejects strangers is calibrated on held-out scores (engine.models._calibration
describes the protocol).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import threading
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from engine.core.blas import single_threaded_blas
from engine.core.errors import EnrolmentError
from engine.core.progress import ProgressCallback, no_progress
from engine.models._calibration import (
    DLIB_IMPOSTOR_TAIL,
    UNKNOWN,
    check_groups,
    cohort_normalise,
    held_out_fits,
    identification_evaluation,
    max_per_member,
    original_rows,
    report_calibrated,
    threshold_by_rule,
    unit_rows,
    validated_rows_and_labels,
)
from engine.models._estimator import Estimator, check_fitted, checked_rows
from engine.models._face_search import nearest_template, photo_cones

FaceBackendName = Literal["classic", "dlib"]
ScoreNormalisation = Literal["none", "cohort"]
FACE_THRESHOLD_RULES = ("auto", "population", "gaussian_tail", "empirical")
"""The values of ``FaceIdentifier``'s ``threshold_rule``."""
LDA_MIN_MEMBERS = 8
"""The classic face space is learned with LDA from this many members on, else it is plain PCA:
LDA has (members - 1) dimensions, too few with a handful of members to keep strangers apart
(docs/BENCHMARKS.md, sections "Results before this change" and "Faces: designs compared on a
development protocol")."""
PRUNED_SEARCH_MIN_PHOTOS = 3000
"""``identify`` scores photo cones first (engine.models._face_search) from this many enrolment
photos on; below it, scoring every template at once is as fast (docs/BENCHMARKS.md,
"Identification against large galleries"), so smaller galleries do not build the cones."""
PRUNED_SEARCH_MIN_TEMPLATES_PER_PHOTO = 2
"""Pruning also needs this many templates per photo on average: with fewer (augmentation off)
scoring the photos' directions reads nearly as many bytes as scoring every template."""


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


class FaceIdentifier(Estimator):
    """Open-set face identification: which enrolled member is this, or nobody?

    A probe is compared with every enrolled template in an embedding space; a member's score is
    the best cosine similarity to their templates (augmented copies included), optionally
    cohort-normalised. The ``dlib`` backend's 128-d embedding is already a metric space, so
    templates are the embeddings themselves and enrolling a member adds templates without
    retraining anything. The ``classic`` backend (HOG + LBP) learns a space for each of six parts
    of the feature vector (whole HOG, whole LBP, left and right halves of each; see
    engine.faces.extract.classic_feature_spaces): standardise -> PCA -> linear discriminant
    analysis (Fisherfaces: LDA on augmented copies learns to ignore lighting and pose; from
    ``LDA_MIN_MEMBERS`` members on, plain PCA below), and a member's score is the mean of the
    parts' best cosines to the member's templates. Enrolling retrains these spaces (quickly).

    Parameters
    ----------
    backend : {"classic", "dlib"}, default="classic"
        The feature backend the rows come from (engine.faces.extract).
    target_fmr : float, default=0.01
        False positive identification rate the rejection threshold is set to.
    score_normalisation : {"none", "cohort"}, default="none"
        "cohort" subtracts from each member's score the mean of the best other members' scores.
    cohort_size : int, default=3
        Members in the cohort of "cohort" normalisation.
    max_pca_components : int, default=150
        Upper bound of the classic backend's PCA step.
    threshold_rule : {"auto", "population", "gaussian_tail", "empirical"}, default="auto"
        "auto" is "population" for unnormalised dlib scores and "gaussian_tail" otherwise.
        "population" takes the pretrained embedding's operating point at ``target_fmr`` from its
        impostor tail measured on other people (``engine.models._calibration.
        population_threshold``): calibrated on four enrolled members, the threshold moved with
        how alike they looked and let held-out strangers through far above the target
        (docs/BENCHMARKS.md, section "End-to-end decision").
        "gaussian_tail" takes the higher of the empirical quantile and a normal fit's (see
        ``engine.models._calibration.gaussian_tail_threshold``), "empirical" the quantile alone.
        A few hundred stranger scores of correlated rows (3 photos per member and their copies)
        put the empirical 1% quantile near the highest score, and the Gaussian tail let fewer
        left-out members through for both backends (docs/BENCHMARKS.md, section "Faces: designs
        compared on a development protocol", paragraph "Held-out figures of mmauth train").
    cv_splits : int, default=3
        Folds of the grouped cross-validation producing held-out genuine scores.
    random_state : int, default=0
        Seed of the fold assignment and of the PCA.

    Attributes
    ----------
    members_ : list of str
        Enrolled members, sorted; the columns of ``decision_function``.
    threshold_ : float
        Scores at or above it identify; calibrated on held-out stranger scores.
    evaluation_ : dict
        Held-out figures of the calibration (accuracy, f1_score, eer, fmr = FPIR, fnmr = FNIR,
        threshold, counts, the genuine and impostor scores, confusion matrix, protocol, backend).
    templates_ : ndarray of shape (n_templates, n_dimensions), float32
        Every enrolment row embedded (unit rows per part), sorted by member. Single precision:
        reading the templates is the cost of identification, and scores differ from double
        precision's by about 1e-7.
    template_members_ : ndarray of shape (n_templates,)
        The member of each template.
    template_starts_ : ndarray of shape (n_members,)
        Index of each member's first template.
    template_photos_ : ndarray of shape (n_templates,)
        The enrolment photo of each template (a photo's original row and its augmented copies),
        numbered in template order: templates are sorted by member, then photo.
    photo_starts_ : ndarray of shape (n_photos,)
        Index of each enrolment photo's first template.
    photo_directions_ : ndarray of shape (n_photos, n_dimensions), float32, or None
        Unit mean direction of each photo's templates; None while the gallery is too small for
        the pruned search (``PRUNED_SEARCH_MIN_PHOTOS``), which is the only use of the cones.
    photo_cones_ : ndarray of shape (n_photos, 2) or None
        Cosine and sine of the widest angle between a photo's direction and its templates: a
        cone holding every template of the photo, which bounds their cosines to a probe; None
        with ``photo_directions_``.
    part_bounds_ : ndarray of shape (n_parts + 1,)
        Column bounds of the embedding's parts in ``templates_`` (one part for dlib).
    embedding_ : list of (columns, Pipeline) or None
        The classic backend's learned space per part; None for dlib.
    discriminant_ : bool
        Whether the classic spaces end with LDA (``LDA_MIN_MEMBERS`` members or more).
    normalised_ : bool
        Whether scores are cohort-normalised.
    training_X_, training_y_, training_groups_, training_augmented_ : ndarray
        Classic backend only: the training rows, kept so that ``enrol`` and ``remove`` can
        retrain the learned spaces.
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    engine.models.voice.VoiceVerifier : the voice model of the second factor.

    Examples
    --------
    >>> import numpy as np
    >>> from engine.models import FaceIdentifier
    >>> rng = np.random.default_rng(0)
    >>> centres = {name: rng.normal(size=8) for name in ("ana", "ben", "eve")}
    >>> X = np.vstack([centre + rng.normal(0, 0.1, (4, 8)) for centre in centres.values()])
    >>> y = np.repeat(list(centres), 4)
    >>> model = FaceIdentifier(backend="dlib").fit(X, y)
    >>> model.members_
    ['ana', 'ben', 'eve']
    >>> model.identify(centres["ben"]).member
    'ben'
    """

    def __init__(
        self,
        backend: FaceBackendName = "classic",
        target_fmr: float = 0.01,
        score_normalisation: ScoreNormalisation = "none",
        cohort_size: int = 3,
        max_pca_components: int = 150,
        threshold_rule: str = "auto",
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
        X, y = validated_rows_and_labels(self, X, y, dtype=np.float64, ensure_min_samples=2)
        y = y.astype(str)
        groups = check_groups(groups, len(y))
        original = original_rows(augmented, len(y))
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
        parts = self._embedded_parts(X)
        self.part_bounds_ = np.cumsum([0, *(part.shape[1] for part in parts)])
        self.normalised_ = self.score_normalisation == "cohort"
        photos = np.unique(groups, return_inverse=True)[1]
        return self._index_gallery(np.hstack(parts, dtype=np.float32), y, photos)

    def _index_gallery(
        self, templates: np.ndarray, owners: np.ndarray, photos: np.ndarray
    ) -> FaceIdentifier:
        """Store the templates sorted by member then enrolment photo (``photos``: an integer
        per row, shared by a photo's augmented copies), in single precision, with the cone of
        each photo's templates when the gallery is large enough to search by them."""
        order = np.lexsort((photos, owners))
        self.templates_ = np.asarray(templates, dtype=np.float32)[order]
        self.template_members_ = owners[order]
        members, self.template_starts_ = np.unique(self.template_members_, return_index=True)
        self.members_ = [str(m) for m in members]
        photos = photos[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = (photos[1:] != photos[:-1]) | (
            self.template_members_[1:] != self.template_members_[:-1]
        )
        self.photo_starts_ = np.flatnonzero(first)
        self.template_photos_ = np.cumsum(first) - 1
        cones: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
        if self._prunable():
            cones = photo_cones(self.templates_, self.photo_starts_, self.template_photos_)
        self.photo_directions_, self.photo_cones_ = cones
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
        # for 30 Yale photos x 5 copies) LDA overfitted the copies (docs/BENCHMARKS.md, section
        # "Results before this change").
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
            return [unit_rows(np.asarray(X, dtype=np.float64))]
        parts = [unit_rows(model.transform(X[:, columns])) for columns, model in self.embedding_]
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
        threshold let more left-out members through (docs/BENCHMARKS.md, section "Faces:
        designs compared on a development protocol", paragraph "Held-out figures of mmauth
        train")."""
        stage = "train.face"
        genuine, genuine_truth, genuine_rank1 = [], [], []
        impostor, impostor_owner, impostor_rank1, impostor_original = [], [], [], []
        for fitted in held_out_fits(
            y,
            groups,
            lambda train: self._sub_model(X[train], y[train], groups[train]),
            cv_splits=self.cv_splits,
            random_state=self.random_state,
            stage=stage,
            files=("photo", "photos"),
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
        self.evaluation_ = identification_evaluation(
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
        report_calibrated(
            progress,
            stage,
            len(genuine) + len(impostor),
            {k: self.evaluation_[k] for k in ("accuracy", "eer", "fmr", "fnmr")},
        )

    def _threshold(self, impostor: np.ndarray) -> float:
        """The threshold ``threshold_rule`` sets on these stranger scores; the population tail
        is dlib's, so it only describes unnormalised dlib scores."""
        pretrained = self.backend == "dlib" and self.score_normalisation == "none"
        if self.threshold_rule == "population" and not pretrained:
            raise ValueError("threshold_rule 'population' needs backend 'dlib', unnormalised")
        return threshold_by_rule(
            self.threshold_rule,
            impostor,
            self.target_fmr,
            allowed_rules=FACE_THRESHOLD_RULES,
            population_tail=DLIB_IMPOSTOR_TAIL if pretrained else None,
        )

    def _sub_model(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> FaceIdentifier:
        from sklearn.base import clone

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
        check_fitted(self, "templates_")
        X = checked_rows(self, X)
        member = str(member)
        if not member:
            raise EnrolmentError("a member name cannot be empty")
        if self.backend == "classic":
            rows = len(X)
            new_groups = (
                check_groups(groups, rows)
                if groups is not None
                else np.array([f"{member}#enrol{i}" for i in range(rows)])
            )
            return self.fit(
                np.vstack([self.training_X_, X]),
                np.concatenate([self.training_y_, np.full(rows, member)]),
                np.concatenate([self.training_groups_, new_groups]),
                np.concatenate([self.training_augmented_, ~original_rows(augmented, rows)]),
            )
        # The new photos are numbered after the gallery's, so that they form photos of their own.
        new_photos = np.unique(check_groups(groups, len(X)), return_inverse=True)[1]
        return self._index_gallery(
            np.vstack([self.templates_, self._embed(X)]),
            np.concatenate([self.template_members_, np.full(len(X), member)]),
            np.concatenate([self.template_photos_, len(self.photo_starts_) + new_photos]),
        )

    def remove(self, member: str) -> FaceIdentifier:
        """Forget a member (dlib: drop their templates; classic: retrain without them)."""
        check_fitted(self, "templates_")
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
        return self._index_gallery(
            self.templates_[keep], self.template_members_[keep], self.template_photos_[keep]
        )

    # ---- scoring

    def _scores(self, X: np.ndarray) -> np.ndarray:
        """Per member, the mean over the embedding's parts of the best cosine to the member's
        templates (one part for dlib). Each part picks its own best template, which identified
        more probes than the best template of the mean cosine (docs/BENCHMARKS.md, section
        "Faces: designs compared on a development protocol")."""
        probes = self._embed(X).astype(np.float32)
        raw: np.ndarray = functools.reduce(
            np.add,
            (
                max_per_member(
                    probes[:, start:stop] @ self.templates_[:, start:stop].T,
                    self.template_starts_,
                )
                for start, stop in itertools.pairwise(self.part_bounds_)
            ),
        ).astype(np.float64)
        return cohort_normalise(raw, self.cohort_size) if self.normalised_ else raw

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Scores of every row against every member, shape (n_rows, n_members), columns in
        ``members_`` order."""
        check_fitted(self, "templates_")
        X = checked_rows(self, X)
        with single_threaded_blas():
            return self._scores(X)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The identified member per row, or UNKNOWN where the best score is under threshold."""
        scores = self.decision_function(X)
        best = np.asarray(self.members_, dtype=object)[scores.argmax(axis=1)]
        return np.where(scores.max(axis=1) >= self.threshold_, best, UNKNOWN)

    def identify(self, vector: ArrayLike) -> FaceMatch:
        """Identify one photo's feature vector, or reject it as unknown.

        The best member and score are those of ``decision_function``; a large gallery with one
        part and no normalisation (dlib) finds them by pruning enrolment photos whose cone
        cannot hold the best template (engine.models._face_search.nearest_template)."""
        check_fitted(self, "templates_")
        X = checked_rows(self, np.asarray(vector, dtype=np.float64).reshape(1, -1))
        with single_threaded_blas():
            cones = self._search_cones()
            if cones is not None:
                template, score = nearest_template(
                    self.templates_,
                    self.photo_starts_,
                    *cones,
                    self._embed(X)[0].astype(np.float32),
                )
                best = int(np.searchsorted(self.template_starts_, template, side="right")) - 1
            else:
                scores = self._scores(X)[0]
                best = int(np.argmax(scores))
                score = float(scores[best])
        accepted = score >= self.threshold_
        return FaceMatch(
            member=self.members_[best] if accepted else None,
            score=score,
            threshold=float(self.threshold_),
            best_member=self.members_[best],
        )

    def _search_cones(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The photos' directions and cones when ``identify`` prunes by them, else None. A
        model saved under another gallery-size rule may lack them; scoring every template
        gives the same answer."""
        directions, cones = self.photo_directions_, self.photo_cones_
        if not self._prunable() or directions is None or cones is None:
            return None
        return directions, cones

    def _prunable(self) -> bool:
        """Whether a member's score is one template's cosine (one part, no cohort), so that
        photo cones bound it, and the gallery is large enough for pruning to pay."""
        return (
            len(self.part_bounds_) == 2
            and not self.normalised_
            and len(self.photo_starts_) >= PRUNED_SEARCH_MIN_PHOTOS
            and len(self.templates_)
            >= PRUNED_SEARCH_MIN_TEMPLATES_PER_PHOTO * len(self.photo_starts_)
        )
