"""The face-threshold benchmark (benchmarks/face_threshold.py): its open-set counts over every
gallery and the population tail it refits, on hand-made scores."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.face_threshold import Scores, exponential_tail, impostor_pairs, open_set_rates


def three_subjects() -> Scores:
    # Rows: a's probe, b's probe, c's probe, a's enrolment photo (no genuine attempt).
    matrix = np.array(
        [
            [0.97, 0.90, 0.80],
            [0.96, 0.95, 0.70],
            [0.94, 0.60, 0.99],
            [1.00, 0.85, 0.75],
        ]
    )
    return Scores(
        subjects=["a", "b", "c"],
        matrix=matrix,
        owners=np.array(["a", "b", "c", "a"]),
        conditions=np.array(["glasses", "wink", "sad", "normal"]),
        genuine_allowed=np.array([True, True, True, False]),
        threshold=0.95,
        target_fmr=0.01,
    )


def test_open_set_rates_count_every_gallery() -> None:
    # Galleries of 2: {a,b}: a identified; b loses to a (0.96 > 0.95): a miss; c (stranger)
    # scores 0.94 < 0.95. {a,c}: a, c identified; b (stranger) 0.96 >= 0.95: a false positive.
    # {b,c}: b, c identified; a's two photos as a stranger: 0.90 and 0.85 refused.
    fnir, fpir = open_set_rates(three_subjects(), threshold=0.95, members=2)
    assert (fnir.count, fnir.trials) == (1, 6)
    assert (fpir.count, fpir.trials) == (1, 4)


def test_impostor_pairs_leave_out_own_scores_and_the_left_out_subject() -> None:
    scores = three_subjects()
    assert sorted(impostor_pairs(scores)) == pytest.approx(
        sorted([0.90, 0.80, 0.96, 0.70, 0.94, 0.60, 0.85, 0.75])
    )
    assert sorted(impostor_pairs(scores, without="c")) == pytest.approx([0.85, 0.90, 0.96])


def test_exponential_tail_starts_at_the_ninetieth_percentile() -> None:
    impostor = np.linspace(0.0, 1.0, 101)
    p0, t0, beta = exponential_tail(impostor)
    assert (p0, t0) == pytest.approx((0.1, 0.9))
    assert beta == pytest.approx(0.05)
