"""Product recommendation: the category a customer prefers, predicted from their merged row.

Candidate models (logistic regression, random forest, histogram gradient boosting) are compared
with dummy baselines on the same repeated stratified folds; the best by macro-F1 is refitted on
every row. The comparison (engine.models._product_comparison) says plainly whether that best
model beats the baselines: on tables whose values carry no signal it will not, and
recommendations are then no better than guessing from how common each category is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.core.errors import InputError
from engine.core.progress import Progress, ProgressCallback, check_cancelled, no_progress
from engine.models._estimator import Classifier, check_fitted
from engine.models._product_comparison import (
    METRICS,
    SELECTION_METRIC,
    CandidateResult,
    FeatureImportance,
    ModelComparison,
    Spread,
    comparison_verdict,
    held_out_fraction,
    paired_difference,
)

if TYPE_CHECKING:
    import pandas as pd

CANDIDATES = ("logistic_regression", "random_forest", "hist_gradient_boosting")
BASELINES = ("majority", "stratified")
MIN_CLASS_MEMBERS = 2
"""A category with fewer customers cannot be both learned from and tested on."""
STAGE = "train.product"


def candidate_estimator(name: str, random_state: int) -> Any:
    """A fresh, unfitted estimator for a candidate or baseline name."""
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def imputed(model: Any) -> Any:
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), model)

    if name == "majority":
        # "prior" predicts the most frequent class exactly like "most_frequent", but gives the
        # class frequencies as probabilities, so its log loss is finite and comparable.
        return DummyClassifier(strategy="prior")
    if name == "stratified":
        # Guessing with the class frequencies: the chance level of macro-F1.
        return DummyClassifier(strategy="stratified", random_state=random_state)
    if name == "logistic_regression":
        return make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(max_iter=2000, class_weight="balanced"),
        )
    if name == "random_forest":
        return imputed(
            RandomForestClassifier(
                n_estimators=100, class_weight="balanced", random_state=random_state, n_jobs=1
            )
        )
    if name == "hist_gradient_boosting":
        # The default leaf size (20) cannot split tables of a few dozen customers at all.
        return HistGradientBoostingClassifier(
            max_iter=100,
            min_samples_leaf=5,
            class_weight="balanced",
            early_stopping=False,
            random_state=random_state,
        )
    raise ValueError(f"unknown candidate {name!r}; known: {', '.join(CANDIDATES + BASELINES)}")


class ProductRecommender(Classifier):
    """Chooses among candidate classifiers by repeated stratified cross-validation, then refits
    the best on every row.

    Every candidate and the dummy baselines (``BASELINES``) are scored on the same folds; the
    best candidate by macro-F1 is compared fold by fold with the best baseline, and
    ``comparison_.beats_baseline`` says whether it is significantly better than guessing.

    Parameters
    ----------
    candidates : sequence of str, default=CANDIDATES
        Names of the candidate models (see ``candidate_estimator``).
    cv_splits : int, default=5
        Folds per repeat (fewer when the smallest category has fewer customers).
    cv_repeats : int, default=3
        Repeats of the stratified k-fold split.
    importance_repeats : int, default=5
        Shuffles per feature of the permutation importance.
    random_state : int, default=0
        Seed of the folds, the models and the shuffles.

    Attributes
    ----------
    best_estimator_ : estimator
        The chosen candidate refitted on every row.
    comparison_ : ModelComparison
        Everything the cross-validated comparison measured, with its verdict.
    evaluation_ : dict
        The chosen model's cross-validated accuracy, f1_score and log_loss (means and standard
        deviations), fold sizes, its name and whether it beats the baselines.
    classes_ : ndarray of shape (n_classes,)
        Categories the model can recommend.
    feature_names_in_ : ndarray of shape (n_features,)
        Feature columns seen during ``fit``; ``predict`` needs them.
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    engine.models.recommend.recommend_for_member : the recommendation for an enrolled member.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from engine.models import ProductRecommender
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"spend": rng.normal(size=60), "visits": rng.normal(size=60)})
    >>> y = np.where(X["spend"] > 0, "Books", "Sports")
    >>> model = ProductRecommender(cv_repeats=1, importance_repeats=1).fit(X, y)
    >>> model.classes_.tolist()
    ['Books', 'Sports']
    >>> model.predict(pd.DataFrame({"spend": [2.0], "visits": [0.0]})).tolist()
    ['Books']
    """

    def __init__(
        self,
        candidates: Sequence[str] = CANDIDATES,
        cv_splits: int = 5,
        cv_repeats: int = 3,
        importance_repeats: int = 5,
        random_state: int = 0,
    ) -> None:
        self.candidates = candidates
        self.cv_splits = cv_splits
        self.cv_repeats = cv_repeats
        self.importance_repeats = importance_repeats
        self.random_state = random_state

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        *,
        progress: ProgressCallback = no_progress,
        cancel: threading.Event | None = None,
    ) -> ProductRecommender:
        """Compare the candidates on shared folds, keep the best by macro-F1, refit it on all rows.

        ``X`` holds numeric feature columns only; ``y`` the category of each row.
        """
        from threadpoolctl import threadpool_limits

        # On tables this small, OpenMP threads cost far more than the work itself: on a busy
        # machine one boosting fit took 20 s with threads and 0.15 s without.
        with threadpool_limits(limits=1):
            return self._fit(X, y, progress, cancel)

    def _fit(
        self,
        X: pd.DataFrame,
        y: Any,
        progress: ProgressCallback,
        cancel: threading.Event | None,
    ) -> ProductRecommender:
        from sklearn.base import clone

        features = _numeric_features(X)
        labels = np.asarray(y, dtype=object).astype(str)
        if len(labels) != len(features):
            raise InputError(f"{len(features)} feature rows but {len(labels)} categories")
        features, labels, dropped, notes = _drop_rare_classes(features, labels)
        splits, split_notes = _shared_folds(
            labels, self.cv_splits, self.cv_repeats, self.random_state
        )
        notes += split_notes
        classes = np.unique(labels)
        names = [*self.candidates, *BASELINES]
        total = len(names) * len(splits) + 2
        candidates, fold_models = _cross_validate(
            names, splits, features, labels, classes, self.random_state, progress, cancel, total
        )
        step = len(names) * len(splits)
        models = [c for c in candidates if c.kind == "model"]
        best = max(models, key=lambda c: c.f1_score.mean)
        fraction = held_out_fraction(splits)
        differences = tuple(
            paired_difference(best, candidates, metric, fraction, len(models)) for metric in METRICS
        )

        check_cancelled(cancel, STAGE)
        # Fitted on the bare array, as it is called at prediction (no feature names to check).
        self.best_estimator_ = clone(candidate_estimator(best.name, self.random_state)).fit(
            features.to_numpy(dtype=np.float64), labels
        )
        step += 1
        progress(Progress(STAGE, step, total, f"refitted {best.name} on {len(labels)} rows"))
        importances = _importances(
            fold_models[best.name][: len(splits) // self.cv_repeats],
            splits[: len(splits) // self.cv_repeats],
            features,
            labels,
            classes,
            self.best_estimator_,
            self.importance_repeats,
            self.random_state,
            cancel,
        )
        step += 1
        progress(Progress(STAGE, step, total, "permutation importances on held-out folds"))

        confusion = _confusion(fold_models[best.name], splits, features, labels, classes)
        main = next(d for d in differences if d.metric == SELECTION_METRIC)
        self.comparison_ = ModelComparison(
            candidates=candidates,
            best=best.name,
            differences=differences,
            beats_baseline=main.better,
            verdict=comparison_verdict(best, candidates, differences, len(splits)),
            classes=tuple(str(c) for c in classes),
            dropped_classes=dropped,
            features=tuple(features.columns),
            n_samples=len(labels),
            cv_splits=len(splits) // self.cv_repeats,
            cv_repeats=self.cv_repeats,
            n_train=int(np.median([len(train) for train, _ in splits])),
            n_test=int(np.median([len(test) for _, test in splits])),
            importances=importances,
            confusion=confusion,
            notes=tuple(notes),
        )
        self.classes_ = np.asarray(self.best_estimator_.classes_)
        self.feature_names_in_ = np.asarray(features.columns, dtype=object)
        self.n_features_in_ = features.shape[1]
        self.evaluation_ = {
            "accuracy": best.accuracy.mean,
            "accuracy_std": best.accuracy.std,
            "f1_score": best.f1_score.mean,
            "f1_score_std": best.f1_score.std,
            "log_loss": best.log_loss.mean,
            "log_loss_std": best.log_loss.std,
            "n_train": self.comparison_.n_train,
            "n_test": self.comparison_.n_test,
            "chosen": best.name,
            "beats_baseline": main.better,
        }
        return self

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Probability of each category in ``classes_`` for each row: a table holding the
        columns of ``feature_names_in_``, or an array of rows in their order (which needs no
        pandas: the login's product step passes one)."""
        from threadpoolctl import threadpool_limits

        features = self._features(X)
        with threadpool_limits(limits=1):
            return self.best_estimator_.predict_proba(features)

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def _features(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_fitted(self, "best_estimator_")
        expected = [str(c) for c in self.feature_names_in_]
        if hasattr(X, "columns"):
            absent = [c for c in expected if c not in X.columns]
            if absent:
                raise InputError(
                    f"the product model needs the columns {', '.join(absent)}, which the "
                    "customer data lacks; re-run mmauth merge and mmauth train --only product"
                )
            X = X[expected]
        try:
            rows = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise InputError(f"product features must be numeric: {error}") from error
        if rows.ndim != 2 or rows.shape[1] != len(expected):
            raise InputError(
                f"product features must be rows of {len(expected)} values, not shape {rows.shape}"
            )
        return rows


def _numeric_features(X: Any) -> pd.DataFrame:
    import pandas as pd

    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    frame.columns = [str(c) for c in frame.columns]
    try:
        return frame.astype(float)
    except (TypeError, ValueError) as error:
        raise InputError(f"product features must be numeric: {error}") from error


def _drop_rare_classes(
    features: pd.DataFrame, labels: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray, tuple[str, ...], list[str]]:
    names, counts = np.unique(labels, return_counts=True)
    rare = tuple(str(n) for n, c in zip(names, counts, strict=True) if c < MIN_CLASS_MEMBERS)
    if not rare:
        return features, labels, (), []
    keep = ~np.isin(labels, rare)
    if len(np.unique(labels[keep])) < 2:
        raise InputError(
            "fewer than two product categories are preferred by at least "
            f"{MIN_CLASS_MEMBERS} customers; there is nothing to learn"
        )
    note = (
        f"left out {', '.join(rare)} ({int((~keep).sum())} customer(s)): a category preferred by "
        f"fewer than {MIN_CLASS_MEMBERS} customers cannot be both learned and tested"
    )
    return features.loc[keep].reset_index(drop=True), labels[keep], rare, [note]


def _shared_folds(
    labels: np.ndarray, cv_splits: int, cv_repeats: int, random_state: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    """The folds every candidate is scored on; fewer per repeat when a class is too small."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    _, counts = np.unique(labels, return_counts=True)
    splits = min(cv_splits, int(counts.min()))
    notes = []
    if splits < cv_splits:
        notes.append(
            f"{splits} folds per repeat instead of {cv_splits}: the smallest category has only "
            f"{int(counts.min())} customers, and stratified folds need one in each"
        )
    folds = RepeatedStratifiedKFold(
        n_splits=splits, n_repeats=cv_repeats, random_state=random_state
    )
    return list(folds.split(np.zeros(len(labels)), labels)), notes


def _aligned_proba(model: Any, X: pd.DataFrame, classes: np.ndarray) -> np.ndarray:
    """Probabilities in the order of ``classes`` (0 for a class the fold's model never saw)."""
    proba = model.predict_proba(X)
    aligned = np.zeros((len(X), len(classes)))
    positions = np.searchsorted(classes, model.classes_)
    aligned[:, positions] = proba
    return aligned


def _cross_validate(
    names: Sequence[str],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    features: pd.DataFrame,
    labels: np.ndarray,
    classes: np.ndarray,
    random_state: int,
    progress: ProgressCallback,
    cancel: threading.Event | None,
    total: int,
) -> tuple[tuple[CandidateResult, ...], dict[str, list[Any]]]:
    """Every candidate fitted and scored on the same folds, with its fold models."""
    from sklearn.base import clone

    step = 0
    results = []
    fold_models: dict[str, list[Any]] = {}
    for name in names:
        started = time.perf_counter()
        scores: dict[str, list[float]] = {metric: [] for metric in METRICS}
        fold_models[name] = []
        for fold, (train, test) in enumerate(splits, start=1):
            check_cancelled(cancel, STAGE)
            model = clone(candidate_estimator(name, random_state)).fit(
                features.iloc[train], labels[train]
            )
            fold_models[name].append(model)
            for metric, value in _fold_scores(
                model, features.iloc[test], labels[test], classes
            ).items():
                scores[metric].append(value)
            step += 1
            message = f"{name} fold {fold}/{len(splits)}"
            latest = {metric: values[-1] for metric, values in scores.items()}
            progress(Progress(STAGE, step, total, message, latest))
        result = CandidateResult(
            name=name,
            kind="baseline" if name in BASELINES else "model",
            accuracy=Spread.of(scores["accuracy"]),
            f1_score=Spread.of(scores["f1_score"]),
            log_loss=Spread.of(scores["log_loss"]),
            seconds=time.perf_counter() - started,
        )
        results.append(result)
        means = {metric: result.metric(metric).mean for metric in METRICS}
        progress(Progress(STAGE, step, total, f"{name}: macro-F1 {result.f1_score}", means))
    return tuple(results), fold_models


def _fold_scores(
    model: Any, X: pd.DataFrame, y: np.ndarray, classes: np.ndarray
) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, log_loss

    proba = _aligned_proba(model, X, classes)
    predicted = classes[np.argmax(proba, axis=1)]
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1_score": _macro_f1(y, predicted, classes),
        "log_loss": float(log_loss(y, np.clip(proba, 1e-15, 1.0), labels=classes)),
    }


def _macro_f1(y: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> float:
    """Macro-averaged F1 over ``classes`` (a class never seen nor predicted scores 0), as
    sklearn's f1_score(labels=classes, average="macro", zero_division=0) computes it, without
    its validation overhead: permutation importance calls it hundreds of times per fold."""
    truth = y[:, np.newaxis] == classes
    guess = predicted[:, np.newaxis] == classes
    true_positives = np.sum(truth & guess, axis=0)
    denominator = truth.sum(axis=0) + guess.sum(axis=0)
    scores = np.divide(
        2 * true_positives, denominator, out=np.zeros(len(classes)), where=denominator > 0
    )
    return float(scores.mean())


def _importances(
    fold_models: Sequence[Any],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    features: pd.DataFrame,
    labels: np.ndarray,
    classes: np.ndarray,
    refitted: Any,
    repeats: int,
    random_state: int,
    cancel: threading.Event | None,
) -> tuple[FeatureImportance, ...]:
    """Permutation importance on each held-out fold of the first repeat, plus impurity importance
    of the model refitted on every row when it has one."""
    rng = np.random.default_rng(random_state)
    drops = []
    for model, (_, test) in zip(fold_models, splits, strict=True):
        check_cancelled(cancel, STAGE)
        drops.append(
            _permutation_drops(model, features.iloc[test], labels[test], classes, repeats, rng)
        )
    stacked = np.concatenate(drops, axis=1)
    impurity = _impurity_importance(refitted)
    ranked = [
        FeatureImportance(
            feature=name,
            permutation_mean=float(stacked[i].mean()),
            permutation_std=float(stacked[i].std()),
            impurity=None if impurity is None else float(impurity[i]),
        )
        for i, name in enumerate(features.columns)
    ]
    return tuple(sorted(ranked, key=lambda f: f.permutation_mean, reverse=True))


def _permutation_drops(
    model: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    classes: np.ndarray,
    repeats: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Drop in macro-F1 when each feature is shuffled, (n_features, repeats): the same measure
    as sklearn's permutation_importance, with every shuffled copy scored in one predict call
    (one call per copy made it the slowest part of training)."""
    import pandas as pd

    values = X.to_numpy()
    rows, n_features = values.shape
    copies = np.repeat(values[np.newaxis], n_features * repeats, axis=0)
    for feature in range(n_features):
        for repeat in range(repeats):
            copies[feature * repeats + repeat, :, feature] = values[rng.permutation(rows), feature]
    stacked = pd.DataFrame(copies.reshape(-1, n_features), columns=X.columns)
    predicted = classes[np.argmax(_aligned_proba(model, stacked, classes), axis=1)]
    reference = _macro_f1(y, classes[np.argmax(_aligned_proba(model, X, classes), axis=1)], classes)
    shuffled = [
        _macro_f1(y, block, classes) for block in predicted.reshape(n_features * repeats, rows)
    ]
    return reference - np.asarray(shuffled).reshape(n_features, repeats)


def _impurity_importance(model: Any) -> np.ndarray | None:
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    return getattr(final, "feature_importances_", None)


def _confusion(
    fold_models: Sequence[Any],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    features: pd.DataFrame,
    labels: np.ndarray,
    classes: np.ndarray,
) -> tuple[tuple[int, ...], ...]:
    from sklearn.metrics import confusion_matrix

    total = np.zeros((len(classes), len(classes)), dtype=int)
    for model, (_, test) in zip(fold_models, splits, strict=True):
        predicted = classes[np.argmax(_aligned_proba(model, features.iloc[test], classes), axis=1)]
        total += confusion_matrix(labels[test], predicted, labels=classes)
    return tuple(tuple(int(v) for v in row) for row in total)
