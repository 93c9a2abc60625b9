from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.core.errors import InputError, MissingStageError
from engine.core.progress import Progress
from engine.core.workspace import Workspace
from engine.models.loading import ModelBundle
from engine.models.product import BASELINES, ProductRecommender
from engine.models.recommend import load_product_table, recommend_for_member

CATEGORIES = np.array(["Books", "Clothing", "Sports"])


def planted_table(rows: int = 60, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three numeric features; the category follows the first one (thresholds), plus noise."""
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["signal", "noise_a", "noise_b"])
    bins = np.digitize(features["signal"], [-0.45, 0.45])
    return features, CATEGORIES[bins]


@pytest.fixture(scope="module")
def planted() -> ProductRecommender:
    features, categories = planted_table()
    return ProductRecommender(cv_splits=4, cv_repeats=2, importance_repeats=2).fit(
        features, categories
    )


def test_a_planted_relation_beats_the_dummy_baselines(planted: ProductRecommender) -> None:
    comparison = planted.comparison_
    assert comparison.beats_baseline
    assert comparison.verdict.startswith(f"{comparison.best} beats the baselines")
    best = comparison.candidate(comparison.best)
    majority = comparison.candidate("majority")
    assert best.f1_score.mean > majority.f1_score.mean + 0.4
    assert best.accuracy.mean > majority.accuracy.mean
    assert best.log_loss.mean < majority.log_loss.mean
    # Every candidate and baseline was scored on the same 4 x 2 folds, with a spread.
    assert {c.name for c in comparison.candidates} == {
        "logistic_regression",
        "random_forest",
        "hist_gradient_boosting",
        *BASELINES,
    }
    assert all(len(c.f1_score.folds) == 8 and c.f1_score.std >= 0 for c in comparison.candidates)
    assert (
        comparison.best
        == max(
            (c for c in comparison.candidates if c.kind == "model"), key=lambda c: c.f1_score.mean
        ).name
    )
    main = next(d for d in comparison.differences if d.metric == "f1_score")
    assert main.better and main.p_value < 0.05 and main.wins >= 7


def test_importances_put_the_planted_feature_first(planted: ProductRecommender) -> None:
    importances = planted.comparison_.importances
    assert [i.feature for i in importances][0] == "signal"
    assert {i.feature for i in importances} == {"signal", "noise_a", "noise_b"}
    assert importances[0].permutation_mean > 0.2
    if planted.comparison_.best == "random_forest":
        assert importances[0].impurity is not None and importances[0].impurity > 0.4


def test_the_fitted_recommender_predicts_and_keeps_a_confusion_matrix(
    planted: ProductRecommender,
) -> None:
    features, categories = planted_table(rows=40, seed=1)
    assert list(planted.classes_) == list(CATEGORIES)
    assert np.mean(planted.predict(features) == categories) > 0.7
    proba = planted.predict_proba(features[["noise_b", "signal", "noise_a"]])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    confusion = np.asarray(planted.comparison_.confusion)
    assert confusion.shape == (3, 3) and confusion.sum() == 60 * 2
    assert planted.evaluation_["n_train"] == 45 and planted.evaluation_["n_test"] == 15
    with pytest.raises(InputError, match="needs the columns signal"):
        planted.predict(features.drop(columns=["signal"]))


def test_random_labels_do_not_beat_the_baseline_and_the_verdict_says_so() -> None:
    features, _ = planted_table(rows=60, seed=2)
    random_categories = np.random.default_rng(3).choice(CATEGORIES, size=60)
    fitted = ProductRecommender(
        candidates=("logistic_regression", "hist_gradient_boosting"),
        cv_splits=4,
        cv_repeats=2,
        importance_repeats=1,
    ).fit(features, random_categories)
    comparison = fitted.comparison_
    assert not comparison.beats_baseline
    assert comparison.verdict.startswith("No candidate beats the baseline.")
    assert "not shown to be better than guessing" in comparison.verdict
    assert not fitted.evaluation_["beats_baseline"]


def test_too_few_folds_are_called_inconclusive_not_a_failure() -> None:
    # A perfectly learnable target, but two folds cannot show it beyond doubt.
    features, _ = planted_table(rows=40)
    categories = np.where(features["signal"] > 0, "Books", "Sports")
    fitted = ProductRecommender(cv_splits=2, cv_repeats=1, importance_repeats=1).fit(
        features, categories
    )
    verdict = fitted.comparison_.verdict
    assert verdict.startswith("No candidate beats the baseline.")
    assert "2 folds are too few to tell" in verdict
    assert not fitted.comparison_.beats_baseline


def test_small_categories_are_left_out_or_reduce_the_folds_and_say_why() -> None:
    features, categories = planted_table(rows=40, seed=4)
    categories = categories.astype(object)
    categories[0] = "Garden"  # one customer: cannot be learned and tested
    rare = np.flatnonzero(categories == "Books")[3:]
    categories[rare] = "Clothing"  # Books keeps 3 customers: only 3 stratified folds fit
    events: list[Progress] = []
    fitted = ProductRecommender(
        candidates=("logistic_regression",), cv_splits=5, cv_repeats=1, importance_repeats=1
    ).fit(features, categories, progress=events.append)
    comparison = fitted.comparison_
    assert comparison.dropped_classes == ("Garden",)
    assert "Garden" not in comparison.classes
    assert comparison.cv_splits == 3
    assert any("left out Garden" in note for note in comparison.notes)
    assert any("3 folds per repeat instead of 5" in note for note in comparison.notes)
    assert events[-1].step == events[-1].total
    assert any(e.message.startswith("logistic_regression fold 1/3") for e in events)
    assert any("f1_score" in e.metrics for e in events)


def write_customer_workspace(workspace: Workspace, features: pd.DataFrame, categories) -> None:
    table = features.copy()
    table.insert(0, "customer_id", [f"A{100 + i}" for i in range(len(table))])
    table["preferred_category"] = categories
    table["platform_name"] = "x"  # not numeric: ignored
    workspace.data_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(workspace.merged_dataset, index=False)
    workspace.customers_dir.mkdir(parents=True, exist_ok=True)
    workspace.members_file.write_text("member,customer_id\nana,A105\nbo,\ncy,A999\n")


def test_recommend_for_member_through_the_member_link(
    workspace: Workspace, planted: ProductRecommender
) -> None:
    features, categories = planted_table()
    write_customer_workspace(workspace, features, categories)
    loaded, target, ignored = load_product_table(workspace)
    assert list(loaded.columns) == ["signal", "noise_a", "noise_b"] and ignored == ["platform_name"]
    assert len(target) == 60
    bundle = ModelBundle(face=None, voice=None, product=planted, manifest={})
    recommendation = recommend_for_member(workspace, bundle, "ana")
    assert recommendation.customer_id == "A105"
    assert recommendation.category == max(
        recommendation.probabilities, key=recommendation.probabilities.get
    )
    assert recommendation.confidence == pytest.approx(max(recommendation.probabilities.values()))
    assert sum(recommendation.probabilities.values()) == pytest.approx(1.0)
    assert recommendation.beats_baseline

    with pytest.raises(InputError, match="member 'bo' has no customer link"):
        recommend_for_member(workspace, bundle, "bo")
    with pytest.raises(InputError, match="member 'zed' has no customer link"):
        recommend_for_member(workspace, bundle, "zed")
    with pytest.raises(InputError, match="customer 'A999', linked to member 'cy', is not in"):
        recommend_for_member(workspace, bundle, "cy")
    with pytest.raises(MissingStageError, match="mmauth train --only product"):
        recommend_for_member(workspace, ModelBundle(None, None, None, {}), "ana")


def test_a_column_the_merge_lost_is_traced_to_its_input_table(
    workspace: Workspace, planted: ProductRecommender
) -> None:
    features, categories = planted_table()
    write_customer_workspace(workspace, features.drop(columns=["signal"]), categories)
    bundle = ModelBundle(face=None, voice=None, product=planted, manifest={})
    with pytest.raises(InputError, match=r"trained on columns this file lacks \(signal\)") as bare:
        recommend_for_member(workspace, bundle, "ana")
    assert "run mmauth merge" in str(bare.value)
    # What the last merge reported about its input tables names the one to fix.
    workspace.merge_report.write_text(
        json.dumps(
            {
                "files": {"profiles": "data/raw/customers/profiles.csv"},
                "missing_columns": {"profiles": ["signal_raw"], "transactions": []},
            }
        )
    )
    with pytest.raises(InputError) as traced:
        recommend_for_member(workspace, bundle, "ana")
    assert (
        "the last mmauth merge found that data/raw/customers/profiles.csv has no column "
        "signal_raw. Restore the column(s) and run mmauth merge, or train the product model on "
        "the tables as they are: mmauth train --only product"
    ) in str(traced.value)


def test_missing_merged_data_names_the_command(workspace: Workspace) -> None:
    with pytest.raises(MissingStageError, match="run mmauth merge"):
        load_product_table(workspace)


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_agrees_with_scikit_learn(seed: int) -> None:
    from sklearn.metrics import f1_score

    from engine.models.product import _macro_f1

    rng = np.random.default_rng(seed)
    classes = np.array(["a", "b", "c", "d"])
    truth = rng.choice(classes[:3], size=12)
    guess = rng.choice(classes, size=12)
    expected = f1_score(truth, guess, labels=classes, average="macro", zero_division=0)
    assert _macro_f1(truth, guess, classes) == pytest.approx(expected)
