"""What the biometric estimators share: held-out calibration, thresholds, score normalisation,
evaluation helpers and checks of labels, groups and augmented-copy flags.

Scores follow engine.core.metrics' convention (higher = more alike, match when
``score >= threshold``). Thresholds are calibrated on held-out scores only, at a target false match
rate:

- genuine scores come from grouped cross-validation: every member's source files are dealt
  round-robin into folds, so a file and its augmented copies are always on the same side;
- impostor scores come from leave-one-member-out: each member in turn is removed from the
  training data and plays a stranger against the others (face), or claims every other member
  (voice, together with the held-out rows of members claiming someone else).

No score of a sample against a model fitted on that sample is ever used. An estimator's
``evaluation_`` holds the held-out figures (ISO/IEC 19795-1 names: for open-set identification
``fmr`` is the false positive identification rate FPIR and ``fnmr`` the false negative
identification rate FNIR).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike

from engine.core.errors import EnrolmentError, InputError
from engine.core.metrics import equal_error_rate, threshold_at_fmr
from engine.core.progress import Progress, ProgressCallback, check_cancelled

UNKNOWN = "<unknown>"
"""Label of a rejected probe in confusion matrices and F1 scores."""
EPSILON = 1e-12
"""Floor of norms and scales, so that a zero vector or a constant score never divides by zero."""


def validated_rows_and_labels(
    estimator: Any, X: ArrayLike, y: ArrayLike, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``validate_data`` for X and y, typed."""
    from sklearn.utils.validation import validate_data

    return cast(tuple[np.ndarray, np.ndarray], validate_data(estimator, X, y, **kwargs))


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, so that dot products are cosines."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, EPSILON)


def check_labels(values: ArrayLike, name: str, n_rows: int) -> np.ndarray:
    """One text label per feature row; InputError when the counts differ."""
    labels = np.asarray(values).astype(str)
    if labels.shape != (n_rows,):
        raise InputError(f"{name} has {labels.size} values for {n_rows} feature rows")
    return labels


def check_groups(groups: ArrayLike | None, n_rows: int) -> np.ndarray:
    """Source file per row; without groups every row is its own source (only honest when there
    are no augmented copies)."""
    if groups is None:
        return np.arange(n_rows).astype(str)
    return check_labels(groups, "groups", n_rows)


def original_rows(augmented: ArrayLike | None, n_rows: int) -> np.ndarray:
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
class HeldOutFit:
    """A model fitted without some rows, and those rows."""

    model: Any
    held_out: np.ndarray
    """Boolean mask of the rows the model never saw."""
    stranger: str | None
    """The member left out entirely (leave-one-member-out), None for a cross-validation fold."""


def held_out_fits(
    y: np.ndarray,
    groups: np.ndarray,
    fit: Callable[[np.ndarray], Any],
    *,
    cv_splits: int,
    random_state: int,
    stage: str,
    files: tuple[str, str],
    progress: ProgressCallback,
    cancel: threading.Event | None,
) -> Iterator[HeldOutFit]:
    """The held-out models of calibration, ``fit(train_mask)`` each: one per fold of the grouped
    cross-validation (genuine scores), then one per member left out (stranger scores).

    EnrolmentError when no member has a second source file (``files`` names them, e.g.
    ``("photo", "photos")``): no genuine score could be held out."""
    check_held_out_sources(y, groups, files)
    folds = source_folds(y, groups, _n_folds(y, groups, cv_splits), random_state)
    members = np.unique(y)
    total = len(folds) + len(members)
    for step, held_out in enumerate(folds, start=1):
        check_cancelled(cancel, stage)
        yield HeldOutFit(fit(~held_out), held_out, None)
        report_step(progress, stage, step, total, f"cross-validation fold {step}/{len(folds)}")
    for step, stranger in enumerate(members, start=len(folds) + 1):
        check_cancelled(cancel, stage)
        others = y != stranger
        yield HeldOutFit(fit(others), ~others, str(stranger))
        report_step(progress, stage, step, total, f"{stranger} plays a stranger")


def single_source_members(
    y: np.ndarray, groups: np.ndarray, phrases: np.ndarray | None = None
) -> list[str]:
    """Members with no second source file (augmented copies share theirs), or, given
    ``phrases``, with no second source file of any one phrase."""
    kinds = np.zeros(len(y), dtype=int) if phrases is None else np.asarray(phrases)
    single = []
    for member in np.unique(y):
        own = y == member
        if all(len(np.unique(groups[own & (kinds == k)])) < 2 for k in np.unique(kinds[own])):
            single.append(str(member))
    return single


def check_held_out_sources(
    y: np.ndarray,
    groups: np.ndarray,
    files: tuple[str, str],
    phrases: np.ndarray | None = None,
) -> None:
    """Refuse to calibrate when no member has a second source file (of one phrase, given
    ``phrases``: a genuine attempt says a phrase the member enrolled).

    A file is never scored by a model that learnt it, so a member's genuine held-out scores
    need a second file of theirs to learn from; with none anywhere, no genuine attempt could be
    measured and the model's error rates would be made up. Members with one file among others
    with more are fine: the genuine figures then come from the others (training says so)."""
    single = single_source_members(y, groups, phrases)
    if single and len(single) == len(np.unique(y)):
        file, plural = files
        needed, have, enrol = (
            (plural, f"one {file} each", f"another {file} of one of them")
            if phrases is None
            else (
                f"{plural} of one phrase",
                f"one {file} of each phrase",
                f"another {file} of a phrase one of them enrolled",
            )
        )
        raise EnrolmentError(
            f"at least one member needs 2 {needed} to measure the model on held-out {plural} "
            f"(a {file} is never scored by a model that learnt it): {listed(single)} have "
            f"{have}; enrol {enrol}"
        )


def listed(names: Sequence[str], shown: int = 10) -> str:
    """Names joined with commas, the first ``shown`` of them and how many more."""
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def report_calibrated(
    progress: ProgressCallback, stage: str, total: int, metrics: dict[str, Any]
) -> None:
    """The last progress report of a calibration, with its held-out figures."""
    progress(Progress(stage, total, total, "calibrated", metrics=metrics))


def max_per_member(similarity: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Column-block maxima: templates are sorted by member and ``starts`` marks each block."""
    return np.maximum.reduceat(similarity, starts, axis=1)


def cohort_normalise(raw: np.ndarray, cohort_size: int | None) -> np.ndarray:
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
    does not carry over to new strangers; on left-out Yale members this rule let far fewer of
    them through at the same target (docs/BENCHMARKS.md, section "Results after the threshold
    and voice work").
    """
    from scipy.stats import norm

    scores = np.asarray(impostor, dtype=np.float64)
    empirical = threshold_at_fmr(scores, target_fmr)
    if scores.size < 2:
        return empirical
    fitted = float(scores.mean() + norm.isf(target_fmr) * scores.std(ddof=1))
    return max(empirical, fitted)


DLIB_IMPOSTOR_TAIL = (0.1, 0.8958, 0.0235)
"""(p0, t0, beta): the upper tail of the best-template cosine between different people's
mirror-averaged dlib embeddings, P(score >= t) = p0 exp(-(t - t0) / beta) for t >= t0, fitted on
Yale's development subjects 1-7 (docs/BENCHMARKS.md, section "End-to-end decision")."""

VOICE_IMPOSTOR_TAIL = (0.03, 1.8351, 1.1981)
"""(p0, t0, beta): the upper tail of the voice model's combined score (speaker and DTW evidence,
each z-normalised against the workspace's own held-out impostors) over impostor attempts that
pass the phrase check, P(accepted at t) = p0 exp(-(t - t0) / beta) for t >= t0, fitted on FSDD's
development digits 0-4 (``python -m benchmarks.voice_designs --impostor-tail``;
docs/BENCHMARKS.md, section "Voice threshold from a population")."""

POPULATION_MIN_FMR = 0.005
"""The strictest target the population tail serves: it was measured down to about 1%, and at
0.5% it already extrapolates (threshold 0.966); stricter targets are calibrated per workspace."""


def population_threshold(target_fmr: float, tail: tuple[float, float, float]) -> float:
    """The threshold at ``target_fmr`` of a pretrained matcher's impostor tail measured on a
    population of other people (the way face-recognition vendors publish a matcher's operating
    points), instead of on the handful of enrolled members.

    With four members, the leave-one-member-out stranger scores come from four people, and the
    threshold moved with how alike those four looked: too low in some workspaces (strangers
    accepted), too high in others (members refused). The tail is measured down to about 1%;
    far stricter targets extrapolate it (docs/BENCHMARKS.md, section "End-to-end decision")."""
    p0, t0, beta = tail
    return float(t0 + beta * math.log(p0 / target_fmr))


def threshold_by_rule(
    rule: str,
    impostor: ArrayLike,
    target_fmr: float,
    *,
    allowed_rules: Sequence[str],
    population_tail: tuple[float, float, float] | None,
) -> float:
    """The threshold at ``target_fmr`` that an estimator's ``threshold_rule`` names, one of its
    ``allowed_rules`` (some of "auto", "population", "gaussian_tail", "empirical"): "population" the operating point of ``population_tail`` (the scores'
    impostor tail measured on other people, None when the scores have none), "gaussian_tail"
    the normal tail of the held-out ``impostor`` scores, "empirical" their quantile, and "auto"
    "population" where the tail was measured (``POPULATION_MIN_FMR`` and above) and
    "gaussian_tail" otherwise. ValueError naming the allowed rules for any other rule.
    """
    if rule not in allowed_rules:
        quoted = [repr(allowed) for allowed in allowed_rules]
        raise ValueError(
            f"threshold_rule must be {', '.join(quoted[:-1])} or {quoted[-1]}, not {rule!r}"
        )
    if rule == "auto":
        # Stricter targets would extrapolate the population tail far past its measured scores
        # (for faces, a 0.1% target gives a threshold above 1: every face refused), so they are
        # calibrated on the workspace's own impostors instead.
        measured = target_fmr >= POPULATION_MIN_FMR
        rule = "population" if population_tail is not None and measured else "gaussian_tail"
    if rule == "population":
        if population_tail is None:
            raise ValueError("threshold_rule 'population' has no population tail for these scores")
        return population_threshold(target_fmr, population_tail)
    if rule == "empirical":
        return threshold_at_fmr(impostor, target_fmr)
    return gaussian_tail_threshold(impostor, target_fmr)


def cross_fitted_false_matches(
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


def eer_or_nan(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """The equal error rate, NaN when either side has no score."""
    if genuine.size == 0 or impostor.size == 0:
        return math.nan
    return equal_error_rate(genuine, impostor)[0]


def report_step(
    progress: ProgressCallback, stage: str, step: int, total: int, message: str
) -> None:
    """One progress report of a calibration step."""
    progress(Progress(stage=stage, step=step, total=total, message=message))


def mean_and_scale(scores: np.ndarray) -> tuple[float, float]:
    """(mean, standard deviation) for z-normalising scores; 0 and 1 when there are too few."""
    scale = float(np.std(scores)) if scores.size > 1 else 0.0
    return float(np.mean(scores)) if scores.size else 0.0, scale if scale > EPSILON else 1.0


def identification_evaluation(
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
    false_matches = cross_fitted_false_matches(impostor, impostor_owner, target_fmr, rule, counted)
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
        "eer": eer_or_nan(genuine, impostor),
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


def verification_evaluation(
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
        "eer": eer_or_nan(combined[genuine], combined[impostor]),
        "eer_members": eer_or_nan(combined[genuine], combined[kind == "member"]),
        "eer_strangers": eer_or_nan(combined[genuine], combined[kind == "stranger"]),
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


def _binary_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    if truth.size == 0:
        return math.nan
    return float(f1_score(truth, predicted, zero_division=0))
