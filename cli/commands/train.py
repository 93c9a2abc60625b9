"""`mmauth train`: fit the face, voice and product models and save them with their manifest."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cli.commands.features import FaceBackendOption
from cli.context import open_workspace
from cli.output import (
    JsonOption,
    WorkspaceOption,
    console,
    handle_errors,
    print_json,
    progress_bars,
    shown,
)
from engine.models.names import MODEL_NAMES, ModelName

if TYPE_CHECKING:
    from engine.models.training import TrainingResult


def train(
    ctx: typer.Context,
    workspace: WorkspaceOption = None,
    only: Annotated[
        list[ModelName] | None,
        typer.Option("--only", help="Train only this model (repeatable); the others are kept."),
    ] = None,
    face_backend: FaceBackendOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train the models on the workspace's feature tables and merged customer data.

    The face model uses the backend its features were extracted with; --face-backend checks
    that it is the one you expect.

    Writes models/{face,voice,product}.skops, the same models as state files for fast loading
    (models/{face,voice,product}.state.npz, when a model can be stored so),
    models/training_summary.csv and models/manifest.json (last). Exit status 0 on success, 2 when an earlier stage is missing,
    130 when cancelled (the previous models stay valid).
    """
    with handle_errors(as_json):
        from engine.core.errors import ConfigError
        from engine.models.training import face_table_backend, train_models

        space, settings = open_workspace(ctx, workspace, {"face.backend": face_backend})
        which = tuple(only) if only else MODEL_NAMES
        extracted = face_table_backend(space)
        if face_backend and ModelName.FACE in which and extracted and extracted != face_backend:
            raise ConfigError(
                f"data/image_features.csv holds {extracted} features, not {face_backend}: "
                f"run mmauth features --face-backend {face_backend} first"
            )
        with progress_bars(not as_json) as progress:
            result = train_models(space, settings, which=which, progress=progress)
        if as_json:
            print_json(
                {
                    "ok": True,
                    "trained": list(result.trained),
                    "summary": [_json_row(row) for row in result.summary],
                    "product_verdict": result.product_verdict,
                    "product_comparison": _comparison_json(result.product_comparison),
                    "notes": list(result.notes),
                    "manifest": space.relative(space.manifest),
                    "seconds": round(result.seconds, 2),
                }
            )
            return
        show_result(result)


def show_result(result: TrainingResult) -> None:
    """A table of every model's held-out metrics (one column per model) and the product verdict."""
    table = Table(title="Held-out metrics (± std over folds)")
    from engine.models.training import SUMMARY_COLUMNS

    metrics = SUMMARY_COLUMNS[1 : SUMMARY_COLUMNS.index("backend") + 1]
    table.add_column("metric")
    for row in result.summary:
        kept = "" if row["model"] in result.trained else " (kept)"
        table.add_column(f"{row['model']}{kept}", justify="right")
    for column in metrics:
        table.add_row(column, *(_cell(row, column) for row in result.summary))
    console.print(table)
    if result.product_comparison is not None:
        show_comparison(result.product_comparison)
        console.print(f"[bold]Product model:[/] {shown(result.product_verdict)}", highlight=False)
    for note in result.notes:
        console.print(f"[yellow]Note: {shown(note)}[/]", highlight=False)
    console.print(f"[dim]Trained {', '.join(result.trained)} in {result.seconds:.1f} s.[/]")


def show_comparison(comparison: Any) -> None:
    """The product model's candidates and baselines, scored on the same folds."""
    table = Table(
        title=f"Product model candidates ({comparison.cv_splits} folds x "
        f"{comparison.cv_repeats} repeats, mean ± std)"
    )
    for column in ("candidate", "accuracy", "macro-F1", "log loss"):
        table.add_column(column, justify="left" if column == "candidate" else "right")
    for candidate in comparison.candidates:
        chosen = " (chosen)" if candidate.name == comparison.best else ""
        table.add_row(
            f"{candidate.name}{chosen}" + (" (baseline)" if candidate.kind == "baseline" else ""),
            str(candidate.accuracy),
            str(candidate.f1_score),
            str(candidate.log_loss),
        )
    console.print(table)
    for note in comparison.notes:
        console.print(f"[yellow]{shown(note)}[/]", highlight=False)


def _comparison_json(comparison: Any) -> dict[str, Any] | None:
    if comparison is None:
        return None
    return {
        "best": comparison.best,
        "beats_baseline": comparison.beats_baseline,
        "cv_splits": comparison.cv_splits,
        "cv_repeats": comparison.cv_repeats,
        "n_samples": comparison.n_samples,
        "classes": list(comparison.classes),
        "dropped_classes": list(comparison.dropped_classes),
        "notes": list(comparison.notes),
        "candidates": [
            {
                "name": c.name,
                "kind": c.kind,
                **{
                    metric: {"mean": c.metric(metric).mean, "std": c.metric(metric).std}
                    for metric in ("accuracy", "f1_score", "log_loss")
                },
            }
            for c in comparison.candidates
        ],
        "differences": [dataclasses.asdict(d) for d in comparison.differences],
        "importances": [dataclasses.asdict(i) for i in comparison.importances],
    }


def _cell(row: dict[str, Any], column: str) -> str:
    from engine.core.metrics import format_rate, held_out_rates

    rates = held_out_rates(row)
    if column in rates:
        return format_rate(rates[column])
    value = row.get(column)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if column in ("n_train", "n_test"):
        return str(int(value))
    if isinstance(value, float):
        spread = row.get(f"{column}_std")
        text = f"{value:.3f}"
        return f"{text} ± {spread:.3f}" if isinstance(spread, float) and spread == spread else text
    return str(value)


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        key: None if isinstance(value, float) and math.isnan(value) else value
        for key, value in row.items()
    }


def register(app: typer.Typer) -> None:
    app.command("train")(train)
