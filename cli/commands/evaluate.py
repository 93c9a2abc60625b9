"""`mmauth evaluate`: the trained face and voice models measured on the workspace's probes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

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

if TYPE_CHECKING:
    from engine.models.evaluation import EvaluationReport


def evaluate(
    ctx: typer.Context,
    workspace: WorkspaceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Measure the trained models on the probes (data/raw/probes/): open-set face
    identification (accuracy, FNIR, FPIR against strangers, EER, FTA) and voice verification
    (FNMR, FMR against other members and strangers, EERs, the phrase check), with Wilson 95%
    intervals, plus the decision (face AND voice: both must match) on chimeric pairs.

    Probe folders whose label is not an enrolled member are strangers. Writes
    reports/evaluation.json. Exit status 0 on success, 2 when models or probes are missing or a
    model file fails its integrity check.
    """
    with handle_errors(as_json):
        from engine.models.evaluation import evaluate_models, report_document

        space, settings = open_workspace(ctx, workspace)
        with progress_bars(not as_json) as progress:
            report = evaluate_models(space, settings, progress=progress)
        if as_json:
            print_json({"ok": True, **report_document(report)})
        else:
            show_report(report, space.relative)


def show_report(report: EvaluationReport, relative: Any) -> None:
    """Tables of the face, voice and decision (face AND voice) figures."""
    table = Table(title="Evaluation on the probes (Wilson 95% intervals)")
    from engine.core.metrics import format_rate

    for column in ("model", "figure", "value [interval]", "count"):
        table.add_column(column)
    for model, figure, value in _rows(report):
        if hasattr(value, "trials"):
            cell = format_rate(value, decimals=2, counts=False)
            table.add_row(model, figure, cell, f"{value.count}/{value.trials}")
        else:
            cell = "n/a" if isinstance(value, float) and math.isnan(value) else _number(value)
            table.add_row(model, figure, cell, "")
    console.print(table)
    if report.face is not None and report.face.strangers:
        console.print(f"face strangers: {shown(', '.join(report.face.strangers))}")
    if report.voice is not None and report.voice.strangers:
        console.print(f"voice strangers: {shown(', '.join(report.voice.strangers))}")
    if report.output is not None:
        console.print(f"written: {shown(relative(report.output))}")


def _rows(report: EvaluationReport) -> list[tuple[str, str, Any]]:
    rows: list[tuple[str, str, Any]] = []
    if report.face is not None:
        face = report.face
        rows += [
            (
                f"face ({face.backend})",
                "rank-1 identification accuracy",
                face.identification_accuracy,
            ),
            ("", "FNIR at threshold", face.fnir),
            ("", "FPIR (strangers accepted)", face.fpir),
            ("", "FTA (no face)", face.fta),
            ("", "EER vs strangers", face.eer),
            ("", f"FNIR at FPIR {face.target_fmr:.1%} (oracle)", face.fnir_at_target),
            ("", "threshold (score)", f"{face.threshold:.4f}"),
        ]
    if report.voice is not None:
        voice = report.voice
        rows += [
            ("voice", "FNMR at threshold", voice.fnmr),
            ("", "FMR vs other members", voice.fmr_members),
            ("", "FMR vs strangers", voice.fmr_strangers),
            ("", "wrong phrase accepted", voice.wrong_phrase_acceptance),
            ("", "FTA (no speech)", voice.fta),
            ("", "EER vs other members", voice.eer_members),
            ("", "EER vs strangers", voice.eer_strangers),
            ("", "threshold (score)", f"{voice.threshold:.4f}"),
        ]
    if report.decision is not None:
        decision = report.decision
        rows += [
            ("face AND voice", "FMR (chimeric pairs)", decision.fmr),
            ("", "FNMR (chimeric pairs)", decision.fnmr),
        ]
    return rows


def _number(value: Any) -> str:
    """Error rates as percentages; anything else (thresholds) as given."""
    return f"{value:.2%}" if isinstance(value, float) else str(value)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
