"""`mmauth report`: reports/report.html and its PNG figures, rebuilt from the workspace's files.

The seed notebook's analysis made reproducible: customer distributions, feature distributions
and correlations, sample counts, and how the trained models did (comparison, importances,
confusion matrices, score histograms with the threshold, DET curves). Each section says when its
input is missing and which command creates it. Figures are drawn with matplotlib's Agg canvas
directly (no pyplot, no global backend), so this runs headless and from worker threads.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import io
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import InputError, MissingStageError, ModelIntegrityError
from engine.core.fileio import atomic_write_bytes, atomic_write_text
from engine.core.progress import Progress, ProgressCallback, check_cancelled, no_progress
from engine.core.workspace import Workspace
from engine.models.names import ModelName
from engine.reports.stats import Table

STAGE = "report"
REPORT_NAME = "report.html"
MAX_DISTRIBUTION_FEATURES = 6
MAX_HEATMAP_FEATURES = 16
MAX_IMPORTANCES = 15
MAX_BARS = 12


@dataclasses.dataclass(frozen=True)
class Figure:
    """One PNG of the report."""

    file: str
    """File name inside reports/."""
    caption: str
    """What the figure shows, for the page and for screen readers."""


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


@dataclasses.dataclass(frozen=True)
class ReportResult:
    """What `mmauth report` wrote."""

    html: Path
    """reports/report.html."""
    figures: tuple[Path, ...]
    """Every PNG written."""
    sections: tuple[Section, ...]
    seconds: float


class _Canvas:
    """Writes figures into reports/ and remembers them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: list[Path] = []

    def draw(self, file: str, caption: str, plot: Callable[[Any], None], size=(6.4, 4.0)) -> Figure:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure as MatplotlibFigure

        figure = MatplotlibFigure(
            figsize=size, dpi=100, layout="tight"
        )  # constrained layout took twice as long
        FigureCanvasAgg(figure)
        plot(figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        path = self.folder / file
        atomic_write_bytes(path, buffer.getvalue())
        self.written.append(path)
        return Figure(file=file, caption=caption)


def build_report(
    workspace: Workspace,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> ReportResult:
    """Draw every figure the workspace's files allow and write reports/report.html (last)."""
    started = time.perf_counter()
    canvas = _Canvas(workspace.reports_dir)
    builders: list[tuple[str, Callable[[Workspace, _Canvas], list[Section]]]] = [
        ("customers", _customer_sections),
        ("face features", _image_sections),
        ("voice features", _audio_sections),
        ("models", _model_sections),
        ("probe evaluation", _evaluation_sections),
    ]
    sections: list[Section] = []
    for step, (name, builder) in enumerate(builders, start=1):
        check_cancelled(cancel, STAGE)
        try:
            sections += builder(workspace, canvas)
        except InputError as error:
            # One unreadable input costs its section, not the report.
            sections.append(Section(name.capitalize(), missing=error.message))
        progress(Progress(STAGE, step, len(builders) + 1, f"drew the {name} figures"))
    check_cancelled(cancel, STAGE)
    page = workspace.reports_dir / REPORT_NAME
    atomic_write_text(page, render_html(workspace, sections))
    progress(
        Progress(STAGE, len(builders) + 1, len(builders) + 1, f"wrote {workspace.relative(page)}")
    )
    return ReportResult(
        html=page,
        figures=tuple(canvas.written),
        sections=tuple(sections),
        seconds=time.perf_counter() - started,
    )


# Customers ---------------------------------------------------------------------------------


def _customer_sections(workspace: Workspace, canvas: _Canvas) -> list[Section]:
    from engine.models.product import read_merged_dataset
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
                lambda f: _bars(f, names, counts, "customers", "preferred category"),
            )
        )
    if stats.ages:
        figures.append(
            canvas.draw(
                "customers_age.png",
                "Age distribution",
                lambda f: _histogram(f, stats.ages, "age", "customers"),
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
                lambda f: _bars(
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
                lambda f: _histogram(f, stats.purchase_amounts, stats.purchase_column, "customers"),
            )
        )
    if stats.engagement_vs_purchase:
        pairs = np.asarray(stats.engagement_vs_purchase)
        figures.append(
            canvas.draw(
                "customers_engagement_purchase.png",
                f"{stats.engagement_column} against {stats.purchase_column}, one dot per customer",
                lambda f: _scatter(
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
                lambda f: _heatmap(f, np.asarray(corr.matrix), list(corr.names)),
                size=(7.5, 6.5),
            )
        )
    return [Section(title, tuple(figures), tuple(notes))]


# Feature tables ----------------------------------------------------------------------------


def _image_sections(workspace: Workspace, canvas: _Canvas) -> list[Section]:
    return _feature_sections(
        workspace,
        canvas,
        path=workspace.image_features,
        title="Face features (data/image_features.csv)",
        prefix="feature_",
        counted=("member", "emotion", "augmentation"),
        stem="image",
    )


def _audio_sections(workspace: Workspace, canvas: _Canvas) -> list[Section]:
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
    canvas: _Canvas,
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
                    lambda f, c=counts, name=column: _bars(
                        f, list(c.index), list(c.values), "rows", name
                    ),
                )
            )
    if columns and len(enrolment):
        shown = columns[:MAX_DISTRIBUTION_FEATURES]
        figures.append(
            canvas.draw(
                f"{stem}_distributions.png",
                f"Distributions of the first {len(shown)} features per member (enrolment rows)",
                lambda f: _distributions(f, enrolment, shown),
                size=(9.0, 5.5),
            )
        )
        heat = columns[:MAX_HEATMAP_FEATURES]
        matrix = np.nan_to_num(enrolment[heat].corr().to_numpy(), nan=0.0)
        figures.append(
            canvas.draw(
                f"{stem}_correlation.png",
                f"Correlation of the first {len(heat)} features",
                lambda f: _heatmap(f, matrix, heat),
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


def _model_sections(workspace: Workspace, canvas: _Canvas) -> list[Section]:
    import pandas as pd

    from engine.models.persistence import load_model_bundle

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
                    lambda f: _model_bars(f, summary),
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


def _product_section(comparison: Any, canvas: _Canvas) -> Section:
    figures = [
        canvas.draw(
            "product_candidates.png",
            "Candidates and baselines on the same folds: mean ± std of accuracy and macro-F1",
            lambda f: _candidate_bars(f, comparison),
            size=(8.0, 4.2),
        ),
        canvas.draw(
            "product_importance.png",
            "Feature importance of the chosen model: drop in macro-F1 when shuffled (held-out "
            "folds), and impurity importance where the model has it",
            lambda f: _importance_bars(f, comparison),
            size=(8.0, 5.5),
        ),
        canvas.draw(
            "product_confusion.png",
            "Held-out confusion matrix of the chosen model, summed over repeats",
            lambda f: _confusion(f, np.asarray(comparison.confusion), list(comparison.classes)),
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


def _biometric_section(name: str, model: Any, canvas: _Canvas) -> Section:
    evaluation = dict(getattr(model, "evaluation_", {}) or {})
    threshold = float(getattr(model, "threshold_", evaluation.get("threshold", np.nan)))
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
                lambda f: _confusion(f, np.asarray(confusion), [str(v) for v in labels]),
                size=(6.5, 5.5),
            )
        )
    if genuine.size and impostor.size:
        figures.append(
            canvas.draw(
                f"{name}_scores.png",
                f"{name.title()} model: held-out genuine and impostor scores and the threshold",
                lambda f: _score_histogram(f, genuine, {"impostor": impostor}, threshold),
            )
        )
        figures.append(
            canvas.draw(
                f"{name}_det.png",
                f"{name.title()} model: DET curve (FNMR against FMR, held-out scores)",
                lambda f: _det(f, genuine, {"impostor": impostor}),
            )
        )
    else:
        notes.append("The model kept no held-out scores, so there is no histogram or DET curve.")
    return Section(f"{name.title()} model", tuple(figures), tuple(notes))


def _evaluation_sections(workspace: Workspace, canvas: _Canvas) -> list[Section]:
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
    fusion = document.get("fusion")
    if fusion:
        sections.append(
            Section(
                "Fusion on the probes (chimeric face + voice pairs)",
                notes=(
                    f"AND rule: FMR {_percent(fusion.get('and_fmr'))}, FNMR "
                    f"{_percent(fusion.get('and_fnmr'))}; score-level fusion: FMR "
                    f"{_percent(fusion.get('score_fmr'))}, FNMR {_percent(fusion.get('score_fnmr'))}, "
                    f"EER {_percent(fusion.get('score_eer'))}; {fusion.get('pairs')} genuine pairs; "
                    f"rule in force: {fusion.get('rule')}.",
                ),
            )
        )
    return sections or [Section(title, missing="the evaluation holds no figures")]


def _probe_section(
    name: str,
    figures_of: dict[str, Any],
    impostor_sets: dict[str, Any],
    rates: Sequence[tuple[str, str]],
    canvas: _Canvas,
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
                lambda f: _score_histogram(f, genuine, impostors, threshold),
            )
        )
        figures.append(
            canvas.draw(
                f"probe_{name}_det.png",
                f"{name.title()} probes: DET curves",
                lambda f: _det(f, genuine, impostors),
            )
        )
    else:
        notes.append("Genuine or impostor probe scores are missing: no histogram or DET curve.")
    return Section(f"{name.title()} model on the probes", tuple(figures), tuple(notes))


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.2%}"


def _first(mapping: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if mapping.get(key) is not None:
            return mapping[key]
    return []


# Drawing -----------------------------------------------------------------------------------


def _bars(
    figure: Any, names: Sequence[Any], values: Sequence[float], ylabel: str, xlabel: str
) -> None:
    axes = figure.add_subplot()
    positions = np.arange(len(names))
    axes.bar(positions, values, color="#4472c4")
    axes.set_xticks(
        positions,
        [str(n) for n in names],
        rotation=45 if len(names) > 6 else 0,
        ha="right" if len(names) > 6 else "center",
    )
    axes.set_ylabel(ylabel)
    axes.set_xlabel(xlabel)


def _histogram(figure: Any, values: Sequence[float], xlabel: str | None, ylabel: str) -> None:
    axes = figure.add_subplot()
    axes.hist(values, bins=min(30, max(5, len(values) // 3)), color="#4472c4", edgecolor="white")
    axes.set_xlabel(xlabel or "")
    axes.set_ylabel(ylabel)


def _scatter(
    figure: Any, x: np.ndarray, y: np.ndarray, xlabel: str | None, ylabel: str | None
) -> None:
    axes = figure.add_subplot()
    axes.scatter(x, y, s=18, alpha=0.75, color="#4472c4")
    if len(x) > 2 and np.std(x) > 0 and np.std(y) > 0:
        r = float(np.corrcoef(x, y)[0, 1])
        axes.set_title(f"Pearson r = {r:.2f} (n = {len(x)})")
    axes.set_xlabel(xlabel or "")
    axes.set_ylabel(ylabel or "")


def _heatmap(figure: Any, matrix: np.ndarray, names: Sequence[str]) -> None:
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="coolwarm", vmin=-1, vmax=1)
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, names, rotation=90, fontsize=7)
    axes.set_yticks(ticks, names, fontsize=7)
    figure.colorbar(image, ax=axes, shrink=0.8, label="Pearson r")


def _distributions(figure: Any, table: Any, columns: Sequence[str]) -> None:
    members = sorted(table["member"].astype(str).unique()) if "member" in table else []
    grid = figure.subplots(2, (len(columns) + 1) // 2, squeeze=False)
    for axes, column in zip(grid.flat, columns, strict=False):
        if members and len(members) <= 10:
            for member in members:
                values = table.loc[table["member"].astype(str) == member, column].dropna()
                axes.hist(values, bins=15, alpha=0.5, label=member, histtype="stepfilled")
        else:
            axes.hist(table[column].dropna(), bins=20, color="#4472c4", histtype="stepfilled")
        axes.set_title(column, fontsize=9)
        axes.tick_params(labelsize=7)
    for axes in list(grid.flat)[len(columns) :]:
        axes.set_visible(False)
    if members and len(members) <= 10:
        grid.flat[0].legend(fontsize=6)


def _model_bars(figure: Any, summary: Any) -> None:
    axes = figure.add_subplot()
    positions = np.arange(len(summary))
    width = 0.38
    for offset, column in ((-width / 2, "accuracy"), (width / 2, "f1_score")):
        values = summary[column].astype(float).fillna(0.0)
        spread = summary.get(f"{column}_std")
        # Only the product model has a spread over folds; the others get no error bar.
        errors = None if spread is None else spread.astype(float).to_numpy()
        axes.bar(positions + offset, values, width, label=column)
        if errors is not None and np.isfinite(errors).any():
            axes.errorbar(
                positions + offset, values, yerr=errors, fmt="none", ecolor="black", capsize=3
            )
    axes.set_xticks(positions, list(summary["model"]))
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("held-out score")
    axes.legend()


def _candidate_bars(figure: Any, comparison: Any) -> None:
    axes = figure.add_subplot()
    candidates = list(comparison.candidates)
    positions = np.arange(len(candidates))
    width = 0.38
    for offset, metric in ((-width / 2, "accuracy"), (width / 2, "f1_score")):
        means = [c.metric(metric).mean for c in candidates]
        spreads = [c.metric(metric).std for c in candidates]
        axes.bar(positions + offset, means, width, yerr=spreads, capsize=3, label=metric)
    names = [f"{c.name}\n({c.kind})" for c in candidates]
    axes.set_xticks(positions, names, fontsize=8)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("mean over folds")
    axes.set_title(f"chosen: {comparison.best}; beats the baselines: {comparison.beats_baseline}")
    axes.legend()


def _importance_bars(figure: Any, comparison: Any) -> None:
    shown = list(comparison.importances)[:MAX_IMPORTANCES][::-1]
    names = [i.feature for i in shown]
    positions = np.arange(len(shown))
    has_impurity = any(i.impurity is not None for i in shown)
    grid = figure.subplots(1, 2 if has_impurity else 1, squeeze=False, sharey=True)
    left = grid[0, 0]
    left.barh(
        positions,
        [i.permutation_mean for i in shown],
        xerr=[i.permutation_std for i in shown],
        color="#4472c4",
        capsize=2,
    )
    left.axvline(0, color="black", linewidth=0.8)
    left.set_yticks(positions, names, fontsize=7)
    left.set_xlabel("drop in macro-F1 (permutation)")
    if has_impurity:
        right = grid[0, 1]
        right.barh(positions, [i.impurity or 0.0 for i in shown], color="#ed7d31")
        right.set_xlabel("impurity importance")


def _confusion(figure: Any, matrix: np.ndarray, labels: Sequence[str]) -> None:
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(labels))
    small = len(labels) > 12
    axes.set_xticks(ticks, labels, rotation=90, fontsize=6 if small else 8)
    axes.set_yticks(ticks, labels, fontsize=6 if small else 8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if not small:
        top = matrix.max() if matrix.size else 0
        for (row, column), value in np.ndenumerate(matrix):
            axes.text(
                column,
                row,
                str(int(value)),
                ha="center",
                va="center",
                color="white" if value > top / 2 else "black",
                fontsize=8,
            )
    figure.colorbar(image, ax=axes, shrink=0.8)


def _score_histogram(
    figure: Any, genuine: np.ndarray, impostors: dict[str, np.ndarray], threshold: float
) -> None:
    axes = figure.add_subplot()
    bins = np.histogram_bin_edges(np.concatenate([genuine, *impostors.values()]), bins=40)
    colours = iter(("#c00000", "#ed7d31", "#7030a0"))
    for label, scores in impostors.items():
        axes.hist(
            scores,
            bins=bins,
            alpha=0.55,
            density=True,
            histtype="stepfilled",
            label=f"{label} (n = {scores.size})",
            color=next(colours),
        )
    axes.hist(
        genuine,
        bins=bins,
        alpha=0.6,
        density=True,
        histtype="stepfilled",
        label=f"genuine (n = {genuine.size})",
        color="#2e7d32",
    )
    if np.isfinite(threshold):
        axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}")
    axes.set_xlabel("score (higher = more alike)")
    axes.set_ylabel("density")
    axes.legend(fontsize=8)


def _det(figure: Any, genuine: np.ndarray, impostors: dict[str, np.ndarray]) -> None:
    """FNMR against FMR on log axes, one curve per kind of impostor."""
    from engine.core.metrics import det_curve, equal_error_rate

    axes = figure.add_subplot()
    floors = []
    for label, impostor in impostors.items():
        fmr, fnmr, _ = det_curve(genuine, impostor)
        eer, _ = equal_error_rate(genuine, impostor)
        # Zero rates cannot sit on a log axis: they are drawn at half the smallest measurable rate.
        floor_fmr, floor_fnmr = 0.5 / impostor.size, 0.5 / genuine.size
        floors.append(floor_fmr)
        axes.plot(
            np.maximum(fmr, floor_fmr),
            np.maximum(fnmr, floor_fnmr),
            label=f"{label}: EER {eer:.2%} ({genuine.size} genuine, {impostor.size} impostor)",
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel(f"FMR (zero drawn at 1/{round(1 / min(floors))} or below)")
    axes.set_ylabel(f"FNMR (zero drawn at 1/{2 * genuine.size})")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)


# HTML --------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2rem; }
section { border-top: 1px solid #ccc; margin-top: 1.5rem; }
figure { display: inline-block; margin: 0.5rem; vertical-align: top; max-width: 520px; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; }
.missing { color: #a15c00; font-weight: bold; }
.meta { color: #666; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
"""


def render_html(workspace: Workspace, sections: Sequence[Section]) -> str:
    """The report page: one <section> per Section, figures by relative path."""
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>mmauth report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>mmauth report</h1>",
        f'<p class="meta">Workspace {html.escape(str(workspace.root))}; written {created}. '
        "Rebuild with <code>mmauth report</code>.</p>",
    ]
    for section in sections:
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        if section.missing:
            parts.append(f'<p class="missing">{html.escape(section.missing)}</p>')
        parts += [f"<p>{html.escape(note)}</p>" for note in section.notes]
        parts += [_html_table(table) for table in section.tables]
        for figure in section.figures:
            caption = html.escape(figure.caption)
            parts.append(
                f'<figure><img src="{html.escape(figure.file)}" alt="{caption}">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
