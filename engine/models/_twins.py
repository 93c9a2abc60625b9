"""Inference twins: numpy stand-ins for the scikit-learn objects our saved models hold.

A login only scores: it needs ``transform``, ``decision_function`` or ``predict_proba`` of a
few fitted library objects, not scikit-learn, whose import (with scipy's) is nearly all of a
cold login's start-up (docs/BENCHMARKS.md, "Cold and warm login (issue 15)"). When a state file
is loaded for inference (``engine.models.state_file.loads(..., twins=TWINS)``), each object of a
class in ``TWINS`` becomes its twin: the same attribute dictionary, with the library's inference
arithmetic written in numpy in the library's own order of operations (tests/engine/
test_twins.py compares every twin with the object it replaces). A twin refuses (``from_state``
returns None) any configuration it does not reproduce, and the library class is built instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

_LEAF = -1
"""scikit-learn's child index of a tree leaf (``TREE_LEAF``)."""


class _Twin:
    """The fitted attributes of a library object, restored as unpickling would."""

    replaces: ClassVar[str]
    """The scikit-learn class path this twin stands in for."""

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Twin | None:
        twin = object.__new__(cls)
        twin.__dict__.update(state)
        return twin if twin._supported() else None

    def _supported(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(twin of {self.replaces})"


class StandardScalerTwin(_Twin):
    replaces = "sklearn.preprocessing._data.StandardScaler"
    with_mean: bool
    with_std: bool
    mean_: np.ndarray | None
    scale_: np.ndarray | None

    def transform(self, X: np.ndarray) -> np.ndarray:
        rows = np.array(X, dtype=np.float64)
        if self.with_mean and self.mean_ is not None:
            rows -= self.mean_
        if self.with_std and self.scale_ is not None:
            rows /= self.scale_
        return rows


class LogisticRegressionTwin(_Twin):
    replaces = "sklearn.linear_model._logistic.LogisticRegression"
    classes_: np.ndarray
    coef_: np.ndarray
    intercept_: np.ndarray

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        scores = np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_
        return scores.reshape(-1) if scores.shape[1] == 1 else scores

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        decision = self.decision_function(X)
        if len(self.classes_) <= 2:
            positive = 1.0 / (1.0 + np.exp(-decision))
            return np.stack([1 - positive, positive], axis=1)
        decision -= decision.max(axis=1).reshape(-1, 1)
        np.exp(decision, out=decision)
        decision /= decision.sum(axis=1).reshape(-1, 1)
        return decision


class PCATwin(_Twin):
    replaces = "sklearn.decomposition._pca.PCA"
    components_: np.ndarray
    explained_variance_: np.ndarray
    mean_: np.ndarray
    whiten: bool

    def transform(self, X: np.ndarray) -> np.ndarray:
        transformed = np.asarray(X, dtype=np.float64) @ self.components_.T
        transformed -= self.mean_.reshape(1, -1) @ self.components_.T
        if self.whiten:
            scale = np.sqrt(self.explained_variance_)
            scale[scale < np.finfo(scale.dtype).eps] = np.finfo(scale.dtype).eps
            transformed /= scale
        return transformed


class LinearDiscriminantAnalysisTwin(_Twin):
    replaces = "sklearn.discriminant_analysis.LinearDiscriminantAnalysis"
    solver: str
    scalings_: np.ndarray
    xbar_: np.ndarray
    _max_components: int

    def _supported(self) -> bool:
        return getattr(self, "solver", "") in ("svd", "eigen")

    def transform(self, X: np.ndarray) -> np.ndarray:
        rows = np.asarray(X, dtype=np.float64)
        projected = (
            (rows - self.xbar_) @ self.scalings_
            if self.solver == "svd"
            else (rows @ self.scalings_)
        )
        return projected[:, : self._max_components]


class SimpleImputerTwin(_Twin):
    """Missing values (NaN only, dense rows, no indicator columns) become the fitted
    statistics; columns never observed in fitting are dropped unless kept."""

    replaces = "sklearn.impute._base.SimpleImputer"
    missing_values: Any
    add_indicator: bool
    keep_empty_features: bool
    statistics_: np.ndarray

    def _supported(self) -> bool:
        missing = self.missing_values
        return isinstance(missing, float) and np.isnan(missing) and not self.add_indicator

    def transform(self, X: np.ndarray) -> np.ndarray:
        rows = np.array(X, dtype=np.float64)
        statistics = np.asarray(self.statistics_, dtype=np.float64)
        missing = np.isnan(rows)
        rows[missing] = np.broadcast_to(statistics, rows.shape)[missing]
        if self.keep_empty_features:
            return rows
        return rows[:, ~np.isnan(statistics)]


class TreeTwin(_Twin):
    """A fitted ``sklearn.tree._tree.Tree``: its node array, traversed for all rows at once."""

    replaces = "sklearn.tree._tree.Tree"
    nodes: np.ndarray
    values: np.ndarray

    def apply(self, X: np.ndarray) -> np.ndarray:
        """The leaf each row of float32 ``X`` falls in, as the library's dense traversal."""
        nodes = self.nodes
        left, right = nodes["left_child"], nodes["right_child"]
        leaves = np.zeros(len(X), dtype=np.intp)
        active = np.flatnonzero(left[leaves] != _LEAF)
        while active.size:
            current = leaves[active]
            values = X[active, nodes["feature"][current]]
            go_left = np.where(
                np.isnan(values),
                nodes["missing_go_to_left"][current].astype(bool),
                values <= nodes["threshold"][current],
            )
            leaves[active] = np.where(go_left, left[current], right[current])
            active = active[left[leaves[active]] != _LEAF]
        return leaves

    def predict(self, X: np.ndarray) -> np.ndarray:
        values = self.values[self.apply(X)]
        return values.reshape(len(X), -1) if values.shape[1] == 1 else values


class DecisionTreeClassifierTwin(_Twin):
    replaces = "sklearn.tree._classes.DecisionTreeClassifier"
    tree_: TreeTwin
    n_classes_: int

    def _supported(self) -> bool:
        return getattr(self, "n_outputs_", 1) == 1  # unfitted: a forest's template tree

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.tree_.predict(np.asarray(X, dtype=np.float32))[:, : self.n_classes_]


class RandomForestClassifierTwin(_Twin):
    replaces = "sklearn.ensemble._forest.RandomForestClassifier"
    estimators_: list[DecisionTreeClassifierTwin]
    n_classes_: int

    def _supported(self) -> bool:
        return getattr(self, "n_outputs_", 1) == 1  # unfitted: a forest's template tree

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        rows = np.asarray(X, dtype=np.float32)
        total = np.zeros((len(rows), int(self.n_classes_)), dtype=np.float64)
        for tree in self.estimators_:  # summed in the library's order, then averaged
            total += tree.predict_proba(rows)
        total /= len(self.estimators_)
        return total


class PipelineTwin(_Twin):
    """Every step but the last transforms; the last one's method gives the result."""

    replaces = "sklearn.pipeline.Pipeline"
    steps: list[tuple[str, Any]]

    def _supported(self) -> bool:
        return all(step not in (None, "passthrough") for _, step in self.steps)

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.steps[-1][1].classes_)

    def _transformed(self, X: np.ndarray) -> np.ndarray:
        for _, step in self.steps[:-1]:
            X = step.transform(X)
        return X

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.steps[-1][1].transform(self._transformed(X)))

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.steps[-1][1].decision_function(self._transformed(X)))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.steps[-1][1].predict_proba(self._transformed(X)))


TWINS: Mapping[str, Callable[[dict[str, Any]], Any]] = {
    twin.replaces: twin.from_state
    for twin in (
        StandardScalerTwin,
        LogisticRegressionTwin,
        PCATwin,
        LinearDiscriminantAnalysisTwin,
        SimpleImputerTwin,
        TreeTwin,
        DecisionTreeClassifierTwin,
        RandomForestClassifierTwin,
        PipelineTwin,
    )
}
"""Class path -> builder of its twin from the object's state (None: not reproduced)."""
