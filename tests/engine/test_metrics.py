import numpy as np
import pytest
from hypothesis import given, strategies as st

from engine.core.metrics import (
    det_curve,
    equal_error_rate,
    operating_point,
    rate,
    threshold_at_fmr,
    wilson_interval,
)

scores = st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=60)


@pytest.mark.parametrize(
    ("count", "trials", "low", "high"),
    [
        (5, 10, 0.2366, 0.7634),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (1, 100, 0.0018, 0.0545),
    ],
)
def test_wilson_interval_matches_published_values(count, trials, low, high) -> None:
    assert wilson_interval(count, trials) == pytest.approx((low, high), abs=1e-4)


def test_edges_are_exact_and_zero_errors_mean_about_three_over_n() -> None:
    assert wilson_interval(0, 300)[0] == 0.0
    assert wilson_interval(300, 300)[1] == 1.0
    # Wilson gives z^2 / (n + z^2), about 3.8/n: the same order as the "rule of three".
    assert 3 / 300 < rate(0, 300).high < 4 / 300
    assert str(rate(0, 0)) == "n/a (no trials)"


@given(scores, st.sampled_from([0.001, 0.01, 0.05, 0.2]))
def test_threshold_at_fmr_never_exceeds_the_target(impostor, target) -> None:
    threshold = threshold_at_fmr(impostor, target)
    accepted = np.mean(np.asarray(impostor) >= threshold)
    assert accepted <= target


def test_threshold_at_fmr_is_the_lowest_such_threshold() -> None:
    impostor = np.linspace(0, 1, 100)
    threshold = threshold_at_fmr(impostor, 0.05)
    assert np.sum(impostor >= threshold) == 5
    assert np.sum(impostor >= np.nextafter(threshold, -np.inf)) == 6


def test_operating_point_counts_errors() -> None:
    point = operating_point([0.9, 0.8, 0.3], [0.1, 0.5, 0.85], threshold=0.5)
    assert (point.fnmr.count, point.fnmr.trials) == (1, 3)
    assert (point.fmr.count, point.fmr.trials) == (2, 3)


def test_equal_error_rate_of_separated_and_overlapping_scores() -> None:
    assert equal_error_rate([2, 3, 4], [0, 1])[0] == 0.0
    rng = np.random.default_rng(0)
    genuine, impostor = rng.normal(2, 1, 20_000), rng.normal(0, 1, 20_000)
    # Two unit normals two apart cross at 1, where each tail holds Phi(-1) = 15.87%.
    assert equal_error_rate(genuine, impostor)[0] == pytest.approx(0.1587, abs=0.006)


@given(scores, scores)
def test_det_curve_rates_move_in_opposite_directions(genuine, impostor) -> None:
    fmr, fnmr, thresholds = det_curve(genuine, impostor)
    assert np.all(np.diff(thresholds) > 0)
    assert np.all(np.diff(fmr) <= 0) and np.all(np.diff(fnmr) >= 0)
    assert 0 <= equal_error_rate(genuine, impostor)[0] <= 1


def test_held_out_rates_come_with_counts_and_intervals_from_any_source() -> None:
    """From a manifest's metrics (numbers) or training_summary.csv (text, floats for counts);
    none for a model without them, or a summary written before the counts were kept."""
    from engine.core.metrics import held_out_rates

    manifest = {"n_impostor": 12, "n_genuine": 12, "false_matches": 2, "fnmr": 0.0}
    csv_row = {"n_impostor": "192.0", "n_genuine": "32.0", "false_matches": "4.0", "fnmr": "0.0625"}
    rates = held_out_rates(manifest)
    assert (rates["fmr"].count, rates["fmr"].trials) == (2, 12)
    assert rates["fnmr"].count == 0 and rates["fnmr"].high > 0.2  # zero errors in 12: not 0%
    rates = held_out_rates(csv_row)
    assert (rates["fmr"].count, rates["fnmr"].count, rates["fnmr"].trials) == (4, 2, 32)
    assert held_out_rates({"fnmr": 0.1}) == {}
    assert held_out_rates({**csv_row, "n_genuine": "nan"}) == {}
