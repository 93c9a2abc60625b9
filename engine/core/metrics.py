"""Biometric error rates (ISO/IEC 19795-1) with their uncertainty.

Scores follow one convention everywhere: higher means more alike, and a comparison is a match
when ``score >= threshold``. Genuine scores come from mated comparisons (same person), impostor
scores from non-mated ones.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

Z_95 = 1.959963984540054


@dataclasses.dataclass(frozen=True)
class Rate:
    """A proportion measured on a finite sample, with its Wilson 95% interval."""

    count: int
    """Events observed (errors, or successes, as the name of the rate says)."""
    trials: int
    """Attempts the rate is measured on."""
    value: float
    """count / trials (NaN when there were no trials)."""
    low: float
    """Lower bound of the Wilson 95% interval."""
    high: float
    """Upper bound of the Wilson 95% interval; with zero events about 3/trials."""

    def __str__(self) -> str:
        return format_rate(self, decimals=2)


def format_rate(measured: Rate, *, decimals: int = 1, counts: bool = True) -> str:
    """``x% [low%, high%] (k/n)`` (the Wilson interval, the counts unless ``counts`` is False),
    or ``n/a (no trials)``: how every front end shows a rate."""
    if measured.trials == 0:
        return "n/a (no trials)"
    d = decimals
    shown = f"{measured.value:.{d}%} [{measured.low:.{d}%}, {measured.high:.{d}%}]"
    return f"{shown} ({measured.count}/{measured.trials})" if counts else shown


def held_out_rates(row: Mapping[str, Any]) -> dict[str, Rate]:
    """FMR and FNMR of a biometric model's held-out metrics (its manifest metrics, or its row of
    training_summary.csv) as rates with their counts and Wilson intervals; empty for a model
    without them (the product model, or a summary written before the counts were kept)."""
    try:
        # Read back from a CSV, counts may come as text, or as floats ("12.0").
        impostor, genuine, matches = (
            int(float(row[key])) for key in ("n_impostor", "n_genuine", "false_matches")
        )
        fnmr = float(row["fnmr"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return {}
    return {"fmr": rate(matches, impostor), "fnmr": rate(round(fnmr * genuine), genuine)}


def wilson_interval(count: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (0, 1) when there are no trials."""
    if trials <= 0:
        return 0.0, 1.0
    p = count / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # At the edges the bound is exact (0 or 1); floating point would land a hair inside.
    low = 0.0 if count == 0 else max(0.0, centre - half)
    high = 1.0 if count == trials else min(1.0, centre + half)
    return low, high


def rate(count: int, trials: int) -> Rate:
    """A Rate with its Wilson interval."""
    low, high = wilson_interval(count, trials)
    value = count / trials if trials else float("nan")
    return Rate(count=int(count), trials=int(trials), value=value, low=low, high=high)


@dataclasses.dataclass(frozen=True)
class OperatingPoint:
    """Error rates of a verifier at one threshold."""

    threshold: float
    """Scores at or above it are matches."""
    fmr: Rate
    """False match rate: impostor comparisons accepted."""
    fnmr: Rate
    """False non-match rate: genuine comparisons rejected."""


def operating_point(genuine: ArrayLike, impostor: ArrayLike, threshold: float) -> OperatingPoint:
    """FMR and FNMR (with intervals) of the given scores at ``threshold``."""
    genuine_scores = np.asarray(genuine, dtype=float)
    impostor_scores = np.asarray(impostor, dtype=float)
    return OperatingPoint(
        threshold=float(threshold),
        fmr=rate(int(np.sum(impostor_scores >= threshold)), impostor_scores.size),
        fnmr=rate(int(np.sum(genuine_scores < threshold)), genuine_scores.size),
    )


def threshold_at_fmr(impostor: ArrayLike, target_fmr: float) -> float:
    """The lowest threshold whose false match rate on ``impostor`` is at most ``target_fmr``.

    With N impostor scores the achievable FMR moves in steps of 1/N, so with N < 1/target the
    threshold lands just above the highest impostor score: the measured FMR is then 0, which
    only means "at most about 3/N".
    """
    scores = np.sort(np.asarray(impostor, dtype=float))[::-1]
    if scores.size == 0:
        raise ValueError("no impostor scores to calibrate a threshold on")
    allowed = int(math.floor(target_fmr * scores.size))
    # Accepting the top `allowed` impostors is fine; the next one must fall below the threshold.
    boundary = scores[allowed] if allowed < scores.size else scores[-1] - 1.0
    return float(np.nextafter(boundary, np.inf))


def det_curve(genuine: ArrayLike, impostor: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FMR and FNMR at every distinct score used as a threshold, thresholds ascending."""
    genuine_scores = np.sort(np.asarray(genuine, dtype=float))
    impostor_scores = np.sort(np.asarray(impostor, dtype=float))
    if genuine_scores.size == 0 or impostor_scores.size == 0:
        raise ValueError("DET needs both genuine and impostor scores")
    thresholds = np.unique(np.concatenate([genuine_scores, impostor_scores]))
    fnmr = np.searchsorted(genuine_scores, thresholds, side="left") / genuine_scores.size
    fmr = 1.0 - np.searchsorted(impostor_scores, thresholds, side="left") / impostor_scores.size
    return fmr, fnmr, thresholds


def equal_error_rate(genuine: ArrayLike, impostor: ArrayLike) -> tuple[float, float]:
    """(EER, threshold) where FMR and FNMR cross, interpolated between neighbouring thresholds."""
    fmr, fnmr, thresholds = det_curve(genuine, impostor)
    difference = fmr - fnmr  # decreasing in the threshold
    crossing = int(np.argmax(difference <= 0))
    if crossing == 0:
        return float((fmr[0] + fnmr[0]) / 2), float(thresholds[0])
    before, after = crossing - 1, crossing
    span = difference[before] - difference[after]
    weight = difference[before] / span if span > 0 else 0.5
    eer_before = (fmr[before] + fnmr[before]) / 2
    eer_after = (fmr[after] + fnmr[after]) / 2
    eer = eer_before + weight * (eer_after - eer_before)
    threshold = thresholds[before] + weight * (thresholds[after] - thresholds[before])
    return float(eer), float(threshold)
