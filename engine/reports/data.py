"""The report's sections: what the workspace's files, the trained models and the probe
evaluation hold, gathered into figures, notes and tables.

The seed notebook's analysis made reproducible: customer distributions, feature distributions
and correlations, sample counts, and how the trained models did (comparison, importances,
confusion matrices, score histograms with the threshold, DET curves). Each section says when its
input is missing and which command creates it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import InputError, MissingStageError, ModelIntegrityError
from engine.core.workspace import Workspace
from engine.models.names import ModelName
from engine.reports.figures import (
    Canvas,
    Figure,
    plot_bars,
    plot_candidate_bars,
    plot_confusion,
    plot_det,
    plot_distributions,
    plot_heatmap,
    plot_histogram,
    plot_importances,
    plot_model_bars,
    plot_scatter,
    plot_score_histogram,
)
from engine.reports.stats import Table

MAX_DISTRIBUTION_FEATURES = 6
MAX_HEATMAP_FEATURES = 16
MAX_BARS = 12


@dataclasses.dataclass(frozen=True)
class Section:
    """One section of the report."""

    title: str
    figures: tuple[Figure, ...] = ()
    notes: tuple[str, ...] = ()
    """Paragraphs of text (figures measured, verdicts)."""
    missing: str = ""
    """Why the section is empty, naming the command that creates its input ("" when complete)."""
    tables: tuple[Table, ...] = ()
    """Figures as numbers, shown under the notes."""


# Customers ---------------------------------------------------------------------------------


def customer_sections(workspace: Workspace, canvas: Canvas) -> list[Section]:
    """Customer counts and distributions from data/merged_dataset.csv."""
    from engine.models.recommend import read_merged_dataset
    from engine.reports.stats import customer_stats

    title = "Customers (data/merged_dataset.csv)"
    if not workspace.merged_dataset.is_file():
        return [Section(title, missing="data/merged_dataset.csv is missing: run mmauth merge")]
    table = read_merged_dataset(workspace)
    stats = customer_stats(table)
    figures = []
    notes = [f"{stats.customers} customers, {stats.numeric_columns} numeric feature columns."]
    if stats.categories.rows:
        names = [str(row[0]) for row in stats.categories.rows]
        counts = [int(row[1]) for row in stats.categories.rows]
        figures.append(
            canvas.draw(
                "customers_category.png",
                "Customers per preferred product category (the majority is the baseline's guess)",
                lambda f: plot_bars(f, names, counts, "customers", "preferred category"),
            )
        )
    if stats.ages:
        figures.append(
            canvas.draw(
                "customers_age.png",
                "Age distribution",
                lambda f: plot_histogram(f, stats.ages, "age", "customers"),
            )
        )
    else:
        notes.append("No age column in the merged table (the assignment's tables have none).")
    gender = [c for c in table.columns if c.lower().startswith("gender_")]
    if gender:
        shares = table[gender].sum()
        figures.append(
            canvas.draw(
                "customers_gender.png",
                "Customers per gender",
                lambda f: plot_bars(
                    f, [c[len("gender_") :] for c in gender], list(shares), "customers", "gender"
                ),
            )
        )
    else:
        notes.append("No gender column in the merged table.")
    if stats.purchase_amounts:
        figures.append(
            canvas.draw(
                "customers_purchase.png",
                f"Distribution of {stats.purchase_column}",
                lambda f: plot_histogram(
                    f, stats.purchase_amounts, stats.purchase_column, "customers"
                ),
            )
        )
    if stats.engagement_vs_purchase:
        pairs = np.asarray(stats.engagement_vs_purchase)
        figures.append(
            canvas.draw(
                "customers_engagement_purchase.png",
                f"{stats.engagement_column} against {stats.purchase_column}, one dot per customer",
                lambda f: plot_scatter(
                    f, pairs[:, 0], pairs[:, 1], stats.engagement_column, stats.purchase_column
                ),
            )
        )
    if stats.correlation is not None:
        corr = stats.correlation
        figures.append(
            canvas.draw(
                "customers_correlation.png",
                "Correlation of the most varying customer features",
                lambda f: plot_heatmap(f, np.asarray(corr.matrix), list(corr.names)),
                size=(7.5, 6.5),
            )
        )
    return [Section(title, tuple(figures), tuple(notes))]


# Feature tables ----------------------------------------------------------------------------


def image_sections(workspace: Workspace, canvas: Canvas) -> list[Section]:
    """Row counts, distributions and correlations of data/image_features.csv."""
    return _feature_sections(
        workspace,
        canvas,
        path=workspace.image_features,
        title="Face features (data/image_features.csv)",
        prefix="feature_",
        counted=("member", "emotion", "augmentation"),
        stem="image",
    )


def audio_sections(workspace: Workspace, canvas: Canvas) -> list[Section]:
    """Row counts, distributions and correlations of data/audio_features.csv."""
    return _feature_sections(
        workspace,
        canvas,
        path=workspace.audio_features,
        title="Voice features (data/audio_features.csv)",
        prefix="audio_feature_",
        counted=("member", "phrase", "augmentation"),
        stem="audio",
    )


def _feature_sections(
    workspace: Workspace,
    canvas: Canvas,
    *,
    path: Path,
    title: str,
    prefix: str,
    counted: Sequence[str],
    stem: str,
) -> list[Section]:
    from engine.core.feature_tables import read_feature_table

    if not path.is_file():
        return [
            Section(title, missing=f"{workspace.relative(path)} is missing: run mmauth features")
        ]
    table = read_feature_table(workspace, path, prefix)
    columns = [c for c in table.columns if str(c).startswith(prefix)]
    enrolment = table[table["role"] == "enrol"] if "role" in table.columns else table
    figures = []
    notes = [
        f"{len(table)} rows ({len(enrolment)} enrolment, {len(table) - len(enrolment)} probe), "
        f"{len(columns)} features per row."
    ]
    for column in counted:
        if column in enrolment.columns and len(enrolment):
            counts = _top_counts(enrolment[column])
            figures.append(
                canvas.draw(
                    f"{stem}_count_{column}.png",
                    f"Enrolment rows per {column}"
                    + (" (the most common; the rest pooled)" if len(counts) >= MAX_BARS else ""),
                    functools.partial(
                        _plot_counts,
                        counts=list(counts.values),
                        names=list(counts.index),
                        name=column,
                    ),
                )
            )
    if columns and len(enrolment):
        shown = columns[:MAX_DISTRIBUTION_FEATURES]
        figures.append(
            canvas.draw(
                f"{stem}_distributions.png",
                f"Distributions of the first {len(shown)} features per member (enrolment rows)",
                lambda f: plot_distributions(f, enrolment, shown),
                size=(9.0, 5.5),
            )
        )
        heat = columns[:MAX_HEATMAP_FEATURES]
        matrix = np.nan_to_num(enrolment[heat].corr().to_numpy(), nan=0.0)
        figures.append(
            canvas.draw(
                f"{stem}_correlation.png",
                f"Correlation of the first {len(heat)} features",
                lambda f: plot_heatmap(f, matrix, heat),
                size=(7.5, 6.5),
            )
        )
    return [Section(title, tuple(figures), tuple(notes))]


def _top_counts(values: Any) -> Any:
    """Rows per value, in name order; past MAX_BARS values, the rarest are pooled as "other"."""
    counts = values.astype(str).value_counts()
    if len(counts) <= MAX_BARS:
        return counts.sort_index()
    kept = counts.iloc[: MAX_BARS - 1].sort_index()
    pooled = counts.iloc[MAX_BARS - 1 :]
    kept[f"other ({len(pooled)} kinds)"] = int(pooled.sum())
    return kept


# Models ------------------------------------------------------------------------------------


def model_sections(workspace: Workspace, canvas: Canvas) -> list[Section]:
    """How each trained model did on held-out data, from the training summary and the saved models."""
    import pandas as pd

    from engine.models.loading import load_model_bundle

    title = "Models (models/training_summary.csv)"
    if not workspace.training_summary.is_file():
        return [Section(title, missing="models/training_summary.csv is missing: run mmauth train")]
    try:
        summary = pd.read_csv(workspace.training_summary)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(
            f"cannot be read ({error}); run mmauth train again",
            path=workspace.relative(workspace.training_summary),
        ) from error
    sections = [
        Section(
            title,
            (
                canvas.draw(
                    "models_comparison.png",
                    "Held-out accuracy and F1 of each model (product: macro-F1, mean over folds)",
                    lambda f: plot_model_bars(f, summary),
                ),
            ),
            tables=(_summary_table(summary),),
        )
    ]
    try:
        bundle = load_model_bundle(workspace, require=())
    except (MissingStageError, ModelIntegrityError) as error:
        sections.append(Section("Trained models", missing=f"{error.message}"))
        return sections
    if bundle.version_mismatches:
        sections.append(
            Section(
                "Library versions",
                notes=(
                    "The models were trained with other library versions: "
                    + "; ".join(bundle.version_mismatches)
                    + ". Retrain with mmauth train if results look off.",
                ),
            )
        )
    if bundle.product is not None:
        sections.append(_product_section(bundle.product.comparison_, canvas))
    else:
        sections.append(
            Section("Product model", missing="no product model: run mmauth train --only product")
        )
    for name in (ModelName.FACE, ModelName.VOICE):
        model = getattr(bundle, name)
        if model is None:
            sections.append(
                Section(
                    f"{name.title()} model",
                    missing=f"no {name} model: run mmauth train --only {name}",
                )
            )
        else:
            sections.append(_biometric_section(name, model, canvas))
    return sections


SUMMARY_SHOWN = ("model", "accuracy", "f1_score", "log_loss", "eer", "fmr", "fnmr", "threshold")


def _summary_table(summary: Any) -> Table:
    """training_summary.csv's main columns, with the spread over folds where there is one."""
    rows = []
    for row in summary.to_dict("records"):
        cells = [str(row["model"])]
        for key in SUMMARY_SHOWN[1:]:
            value, spread = row.get(key), row.get(f"{key}_std")
            if not isinstance(value, float) or not np.isfinite(value):
                cells.append("-")
            elif isinstance(spread, float) and np.isfinite(spread):
                cells.append(f"{value:.3f} ± {spread:.3f}")
            else:
                cells.append(f"{value:.3f}")
        rows.append(tuple(cells))
    return Table(SUMMARY_SHOWN, tuple(rows))


def _product_section(comparison: Any, canvas: Canvas) -> Section:
    figures = [
        canvas.draw(
            "product_candidates.png",
            "Candidates and baselines on the same folds: mean ± std of accuracy and macro-F1",
            lambda f: plot_candidate_bars(f, comparison),
            size=(8.0, 4.2),
        ),
        canvas.draw(
            "product_importance.png",
            "Feature importance of the chosen model: drop in macro-F1 when shuffled (held-out "
            "folds), and impurity importance where the model has it",
            lambda f: plot_importances(f, comparison),
            size=(8.0, 5.5),
        ),
        canvas.draw(
            "product_confusion.png",
            "Held-out confusion matrix of the chosen model, summed over repeats",
            lambda f: plot_confusion(f, np.asarray(comparison.confusion), list(comparison.classes)),
            size=(6.0, 5.0),
        ),
    ]
    notes = [comparison.verdict, *comparison.notes]
    notes.append(
        f"{comparison.cv_splits} folds x {comparison.cv_repeats} repeats, "
        f"{comparison.n_train} training and {comparison.n_test} held-out customers per fold."
    )
    candidates = Table(
        ("candidate", "kind", "accuracy", "macro-F1", "log loss", "seconds"),
        tuple(
            (
                c.name + (" (chosen)" if c.name == comparison.best else ""),
                c.kind,
                str(c.accuracy),
                str(c.f1_score),
                str(c.log_loss),
                f"{c.seconds:.1f}",
            )
            for c in comparison.candidates
        ),
    )
    differences = Table(
        ("metric", "model", "baseline", "difference", "better / worse folds", "p"),
        tuple(
            (
                d.metric,
                d.model,
                d.baseline,
                f"{d.mean:+.3f} ± {d.std:.3f}",
                f"{d.wins} / {d.losses}",
                f"{d.p_value:.3g}",
            )
            for d in comparison.differences
        ),
    )
    return Section("Product model", tuple(figures), tuple(notes), tables=(candidates, differences))


def _biometric_section(name: str, model: Any, canvas: Canvas) -> Section:
    evaluation = dict(getattr(model, "evaluation_", {}) or {})
    threshold_value: Any = getattr(model, "threshold_", evaluation.get("threshold", np.nan))
    threshold = float(threshold_value)
    genuine = np.asarray(_first(evaluation, "genuine_scores", "genuine"), dtype=float)
    impostor = np.asarray(_first(evaluation, "impostor_scores", "impostor"), dtype=float)
    figures = []
    notes = [
        ", ".join(
            f"{key} {evaluation[key]:.4g}"
            for key in ("accuracy", "eer", "fmr", "fnmr", "n_train", "n_test")
            if isinstance(evaluation.get(key), int | float)
        )
        + f"; threshold {threshold:.4g}"
    ]
    labels = evaluation.get("labels")
    confusion = evaluation.get("confusion")
    if labels is not None and confusion is not None:
        figures.append(
            canvas.draw(
                f"{name}_confusion.png",
                f"{name.title()} model: held-out confusion matrix",
                lambda f: plot_confusion(f, np.asarray(confusion), [str(v) for v in labels]),
                size=(6.5, 5.5),
            )
        )
    if genuine.size and impostor.size:
        figures.append(
            canvas.draw(
                f"{name}_scores.png",
                f"{name.title()} model: held-out genuine and impostor scores and the threshold",
                lambda f: plot_score_histogram(f, genuine, {"impostor": impostor}, threshold),
            )
        )
        figures.append(
            canvas.draw(
                f"{name}_det.png",
                f"{name.title()} model: DET curve (FNMR against FMR, held-out scores)",
                lambda f: plot_det(f, genuine, {"impostor": impostor}),
            )
        )
    else:
        notes.append("The model kept no held-out scores, so there is no histogram or DET curve.")
    return Section(f"{name.title()} model", tuple(figures), tuple(notes))


def evaluation_sections(workspace: Workspace, canvas: Canvas) -> list[Section]:
    """Figures of `mmauth evaluate` (reports/evaluation.json): the probes, never used to fit."""
    import json

    from engine.models.evaluation import evaluation_path

    title = "Evaluation on the probes (reports/evaluation.json)"
    path = evaluation_path(workspace)
    if not path.is_file():
        return [
            Section(title, missing=f"{workspace.relative(path)} is missing: run mmauth evaluate")
        ]
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(
            f"is not valid JSON ({error}); run mmauth evaluate again",
            path=workspace.relative(path),
        ) from error
    sections = []
    face = document.get("face")
    if face:
        sections.append(
            _probe_section(
                "face",
                face,
                {"strangers (best member score)": face.get("impostor")},
                (
                    ("identification accuracy", "identification_accuracy"),
                    ("FNIR", "fnir"),
                    ("FPIR", "fpir"),
                    ("FTA", "fta"),
                ),
                canvas,
            )
        )
    voice = document.get("voice")
    if voice:
        sections.append(
            _probe_section(
                "voice",
                voice,
                {
                    "other members": voice.get("impostor_members"),
                    "strangers": voice.get("impostor_strangers"),
                },
                (
                    ("FNMR", "fnmr"),
                    ("FMR against members", "fmr_members"),
                    ("FMR against strangers", "fmr_strangers"),
                    ("wrong phrase accepted", "wrong_phrase_acceptance"),
                    ("FTA", "fta"),
                ),
                canvas,
            )
        )
    decision = document.get("decision")
    if decision:
        sections.append(
            Section(
                "Face AND voice on the probes (chimeric face + voice pairs)",
                notes=(
                    f"FMR {_percent(decision.get('fmr'))}, FNMR {_percent(decision.get('fnmr'))}; "
                    f"{decision.get('pairs')} genuine pairs.",
                ),
            )
        )
    return sections or [Section(title, missing="the evaluation holds no figures")]


def _probe_section(
    name: str,
    figures_of: dict[str, Any],
    impostor_sets: dict[str, Any],
    rates: Sequence[tuple[str, str]],
    canvas: Canvas,
) -> Section:
    from engine.core.metrics import Rate

    genuine = np.asarray(figures_of.get("genuine") or [], dtype=float)
    impostors = {
        label: np.asarray(values, dtype=float) for label, values in impostor_sets.items() if values
    }
    threshold = figures_of.get("threshold")
    threshold = float(threshold) if threshold is not None else float("nan")
    lines = []
    for label, key in rates:
        value = figures_of.get(key)
        if isinstance(value, dict):
            fields = {
                **value,
                "value": float("nan") if value.get("value") is None else value["value"],
            }
            lines.append(f"{label}: {Rate(**fields)}")
    notes = ["; ".join(lines) + " (Wilson 95% intervals)."] if lines else []
    figures = []
    if genuine.size and impostors:
        figures.append(
            canvas.draw(
                f"probe_{name}_scores.png",
                f"{name.title()} probes: genuine and impostor scores and the threshold",
                lambda f: plot_score_histogram(f, genuine, impostors, threshold),
            )
        )
        figures.append(
            canvas.draw(
                f"probe_{name}_det.png",
                f"{name.title()} probes: DET curves",
                lambda f: plot_det(f, genuine, impostors),
            )
        )
    else:
        notes.append("Genuine or impostor probe scores are missing: no histogram or DET curve.")
    return Section(f"{name.title()} model on the probes", tuple(figures), tuple(notes))


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.2%}"


def _plot_counts(figure: Any, *, names: list[Any], counts: list[float], name: str) -> None:
    plot_bars(figure, names, counts, "rows", name)


def _first(mapping: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if mapping.get(key) is not None:
            return mapping[key]
    return []
