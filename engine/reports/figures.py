"""The report's figures: matplotlib drawings written as PNG files into reports/.

Figures are drawn with matplotlib's Agg canvas directly (no pyplot, no global backend), so this
runs headless and from worker threads. Each ``plot_*`` function draws into a figure it is given;
``Canvas.draw`` makes the figure, saves it and remembers the file.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.fileio import atomic_write_bytes

MAX_IMPORTANCES = 15


@dataclasses.dataclass(frozen=True)
class Figure:
    """One PNG of the report."""

    file: str
    """File name inside reports/."""
    caption: str
    """What the figure shows, for the page and for screen readers."""


class Canvas:
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


def plot_bars(
    figure: Any, names: Sequence[Any], values: Sequence[float], ylabel: str, xlabel: str
) -> None:
    """One bar per name."""
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


def plot_histogram(figure: Any, values: Sequence[float], xlabel: str | None, ylabel: str) -> None:
    """The distribution of one column."""
    axes = figure.add_subplot()
    axes.hist(values, bins=min(30, max(5, len(values) // 3)), color="#4472c4", edgecolor="white")
    axes.set_xlabel(xlabel or "")
    axes.set_ylabel(ylabel)


def plot_scatter(
    figure: Any, x: np.ndarray, y: np.ndarray, xlabel: str | None, ylabel: str | None
) -> None:
    """One dot per row, titled with Pearson's r when it is defined."""
    axes = figure.add_subplot()
    axes.scatter(x, y, s=18, alpha=0.75, color="#4472c4")
    if len(x) > 2 and np.std(x) > 0 and np.std(y) > 0:
        r = float(np.corrcoef(x, y)[0, 1])
        axes.set_title(f"Pearson r = {r:.2f} (n = {len(x)})")
    axes.set_xlabel(xlabel or "")
    axes.set_ylabel(ylabel or "")


def plot_heatmap(figure: Any, matrix: np.ndarray, names: Sequence[str]) -> None:
    """A correlation matrix on a fixed -1..1 colour scale."""
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="coolwarm", vmin=-1, vmax=1)
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, names, rotation=90, fontsize=7)
    axes.set_yticks(ticks, names, fontsize=7)
    figure.colorbar(image, ax=axes, shrink=0.8, label="Pearson r")


def plot_distributions(figure: Any, table: Any, columns: Sequence[str]) -> None:
    """Histograms of a few feature columns, one colour per member when there are few members."""
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


def plot_model_bars(figure: Any, summary: Any) -> None:
    """Held-out accuracy and F1 per model of training_summary.csv."""
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


def plot_candidate_bars(figure: Any, comparison: Any) -> None:
    """Mean ± std over folds of each product candidate and baseline."""
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


def plot_importances(figure: Any, comparison: Any) -> None:
    """Permutation importances of the chosen product model, with impurity importances beside them
    when it has them."""
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


def plot_confusion(figure: Any, matrix: np.ndarray, labels: Sequence[str]) -> None:
    """A confusion matrix, with counts written in the cells when it is small enough to read."""
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


def plot_score_histogram(
    figure: Any, genuine: np.ndarray, impostors: dict[str, np.ndarray], threshold: float
) -> None:
    """Genuine and impostor score densities on shared bins, with the threshold."""
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


def plot_det(figure: Any, genuine: np.ndarray, impostors: dict[str, np.ndarray]) -> None:
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
