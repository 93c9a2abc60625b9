"""The comparison of the product model's candidates with baselines: its results, and the paired
test that says whether the best candidate beats guessing.

The dataclasses are held by a fitted ProductRecommender (``comparison_``), so they are saved in
its model file.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

METRICS = ("accuracy", "f1_score", "log_loss")
LOWER_IS_BETTER = frozenset({"log_loss"})
SELECTION_METRIC = "f1_score"
SIGNIFICANCE = 0.05
MIN_FOLDS_TO_TELL = 5
"""With fewer paired folds the spread of the differences means nothing: no model is declared
better than the baselines, and the verdict says the comparison is inconclusive."""


@dataclasses.dataclass(frozen=True)
class Spread:
    """A metric over cross-validation folds."""

    mean: float
    """Mean over folds."""
    std: float
    """Standard deviation over folds (ddof=1; 0 with one fold)."""
    folds: tuple[float, ...]
    """The per-fold values, in the order of the shared folds."""

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        array = np.asarray(values, dtype=float)
        std = float(array.std(ddof=1)) if array.size > 1 else 0.0
        return cls(mean=float(array.mean()), std=std, folds=tuple(float(v) for v in array))

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.std:.3f}"


@dataclasses.dataclass(frozen=True)
class CandidateResult:
    """How one candidate or baseline scored on the shared folds."""

    name: str
    """Candidate name, e.g. ``random_forest`` or ``majority``."""
    kind: str
    """``model`` or ``baseline``."""
    accuracy: Spread
    f1_score: Spread
    """Macro-averaged F1 over every category (the selection metric)."""
    log_loss: Spread
    seconds: float
    """Wall time spent fitting and scoring it on every fold."""

    def metric(self, name: str) -> Spread:
        return getattr(self, name)


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """The best model against the best baseline on one metric, fold by fold."""

    metric: str
    """``accuracy``, ``f1_score`` or ``log_loss``."""
    model: str
    baseline: str
    """The baseline scoring best on this metric."""
    mean: float
    """Mean improvement of the model over the baseline (positive = better, for every metric)."""
    std: float
    """Standard deviation of the per-fold improvement."""
    wins: int
    """Folds where the model scored better."""
    losses: int
    """Folds where the baseline scored better."""
    p_value: float
    """One-sided p-value of "no improvement" (Nadeau-Bengio corrected resampled t-test, which
    allows for the overlap of training sets), times the number of candidates (Bonferroni:
    picking the best of several on the same folds flatters it)."""
    better: bool
    """Improvement positive, p_value below 0.05, over at least MIN_FOLDS_TO_TELL folds."""


@dataclasses.dataclass(frozen=True)
class FeatureImportance:
    """How much one feature matters to the chosen model."""

    feature: str
    permutation_mean: float
    """Mean drop in macro-F1 when the feature is shuffled, on held-out folds."""
    permutation_std: float
    impurity: float | None
    """Mean decrease in impurity of the refitted model (None when the model has none)."""


@dataclasses.dataclass(frozen=True)
class ModelComparison:
    """Everything the cross-validated comparison measured."""

    candidates: tuple[CandidateResult, ...]
    """Models then baselines, each scored on the same folds."""
    best: str
    """The model with the highest mean macro-F1."""
    differences: tuple[PairedDifference, ...]
    """The best model against the best baseline, per metric."""
    beats_baseline: bool
    """True only when the best model's macro-F1 is significantly above every baseline's."""
    verdict: str
    """One paragraph saying whether the model is better than guessing, with the figures."""
    classes: tuple[str, ...]
    """Categories the model can recommend."""
    dropped_classes: tuple[str, ...]
    """Categories left out because fewer than two customers prefer them."""
    features: tuple[str, ...]
    n_samples: int
    cv_splits: int
    """Folds per repeat actually used (may be fewer than asked; see notes)."""
    cv_repeats: int
    n_train: int
    """Training rows per fold (median)."""
    n_test: int
    """Held-out rows per fold (median)."""
    importances: tuple[FeatureImportance, ...]
    """Feature importances of the best model, most important first."""
    confusion: tuple[tuple[int, ...], ...]
    """Held-out confusion matrix of the best model summed over repeats (rows true, columns
    predicted, in the order of ``classes``)."""
    notes: tuple[str, ...]
    """Adjustments made to the protocol and why."""

    def candidate(self, name: str) -> CandidateResult:
        return next(c for c in self.candidates if c.name == name)


def held_out_fraction(splits: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Held-out rows per training row of the folds (the Nadeau-Bengio correction needs it)."""
    train, test = splits[0]
    return len(test) / len(train)


def paired_difference(
    best: CandidateResult,
    candidates: Sequence[CandidateResult],
    metric: str,
    held_out_fraction: float,
    n_models: int,
) -> PairedDifference:
    from scipy import stats

    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    baselines = [c for c in candidates if c.kind == "baseline"]
    baseline = max(baselines, key=lambda c: sign * c.metric(metric).mean)
    differences = sign * (
        np.asarray(best.metric(metric).folds) - np.asarray(baseline.metric(metric).folds)
    )
    mean = float(differences.mean())
    std = float(differences.std(ddof=1)) if differences.size > 1 else 0.0
    # Nadeau & Bengio (2003): fold scores share training rows, so the naive variance is too small.
    corrected = (1.0 / differences.size + held_out_fraction) * std**2
    if corrected > 0:
        statistic = mean / math.sqrt(corrected)
        p_value = float(stats.t.sf(statistic, df=differences.size - 1))
    else:
        p_value = 0.0 if mean > 0 else 1.0
    p_value = min(1.0, p_value * n_models)
    return PairedDifference(
        metric=metric,
        model=best.name,
        baseline=baseline.name,
        mean=mean,
        std=std,
        wins=int(np.sum(differences > 0)),
        losses=int(np.sum(differences < 0)),
        p_value=p_value,
        better=bool(mean > 0 and p_value < SIGNIFICANCE and differences.size >= MIN_FOLDS_TO_TELL),
    )


_METRIC_WORDS = {"accuracy": "accuracy", "f1_score": "macro-F1", "log_loss": "log loss"}


def comparison_verdict(
    best: CandidateResult,
    candidates: Sequence[CandidateResult],
    differences: Sequence[PairedDifference],
    n_folds: int,
) -> str:
    by_metric = {d.metric: d for d in differences}
    main = by_metric[SELECTION_METRIC]
    baseline = next(c for c in candidates if c.name == main.baseline)
    figures = (
        f"macro-F1 {best.f1_score} against {baseline.f1_score} for the {baseline.name} baseline, "
        f"a paired difference of {main.mean:+.3f} ± {main.std:.3f} over {n_folds} shared folds "
        f"(better on {main.wins}, worse on {main.losses}, p = {main.p_value:.3g})"
    )
    others = "; ".join(
        f"{_METRIC_WORDS[d.metric]} vs {d.baseline}: {d.mean:+.3f} ± {d.std:.3f} ({_judgement(d)})"
        for d in differences
        if d.metric != SELECTION_METRIC
    )
    if main.better:
        return f"{best.name} beats the baselines: {figures}. Other metrics: {others}."
    verdict = (
        f"No candidate beats the baseline. The best, {best.name}, scores {figures}. "
        f"Other metrics: {others}. Its recommendations are not shown to be better than guessing "
        "from how common each category is; treat them as no better."
    )
    if main.mean > 0 and n_folds < MIN_FOLDS_TO_TELL:
        verdict += (
            f" {n_folds} folds are too few to tell: raise models.cv_splits or models.cv_repeats."
        )
    return verdict


def _judgement(difference: PairedDifference) -> str:
    if difference.better:
        return "better"
    return "worse on average" if difference.mean < 0 else "not significantly better"
