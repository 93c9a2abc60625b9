"""scikit-learn's estimator conventions without importing scikit-learn.

Importing ``sklearn.base`` imports scipy and most of scikit-learn: nearly all of a cold login's
start-up (docs/BENCHMARKS.md, "Cold and warm login (issue 15)"). Our estimators derive from
``Estimator`` instead of ``BaseEstimator``: the same ``get_params``/``set_params``/``repr``
contract that ``sklearn.base.clone`` and grid searches rely on, and tags built lazily when
scikit-learn asks for them (``__sklearn_tags__``), so only fitting imports the library.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


class NotFittedError(ValueError, AttributeError):
    """A fitted attribute was needed before ``fit``: a ValueError and an AttributeError, as
    scikit-learn's own ``NotFittedError`` is."""


class Estimator:
    """Parameters are the keyword arguments of ``__init__``, stored under their own names."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(
            name
            for name, parameter in signature.parameters.items()
            if name != "self" and parameter.kind != parameter.VAR_KEYWORD
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters (and, ``deep``, those of nested estimators)."""
        params: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            params[name] = value
        return params

    def set_params(self, **params: Any) -> Estimator:
        """Set constructor parameters; an unknown name is a ValueError, as in scikit-learn."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {self!r}. "
                    f"Valid parameters are: {valid!r}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params(deep=False).items()
            if not _same(value, defaults.get(name, inspect.Parameter.empty))
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False))


class Classifier(Estimator):
    """An estimator that scikit-learn treats as a classifier (``is_classifier``)."""

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        return tags


def check_fitted(estimator: Any, attribute: str) -> None:
    """NotFittedError unless ``estimator`` has the fitted ``attribute``."""
    if not hasattr(estimator, attribute):
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )


def checked_rows(estimator: Any, X: ArrayLike) -> np.ndarray:
    """Rows to score by a fitted estimator: a finite 2-D float64 array with the features it
    was fitted on (what scikit-learn's ``validate_data(reset=False)`` checks, without it)."""
    rows = np.asarray(X, dtype=np.float64)
    if rows.ndim != 2:
        raise ValueError(f"Expected a 2D array of rows, got an array of shape {rows.shape}")
    expected = getattr(estimator, "n_features_in_", rows.shape[1])
    if rows.shape[1] != expected:
        raise ValueError(
            f"X has {rows.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{expected} features as input."
        )
    if not np.isfinite(rows).all():
        raise ValueError("Input X contains NaN or infinity.")
    return rows


def _same(value: Any, default: Any) -> bool:
    try:
        return bool(value is default or value == default)
    except ValueError:  # arrays compare element-wise
        return False
