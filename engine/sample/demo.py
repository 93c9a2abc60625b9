"""`mmauth demo`: the whole system end to end on the sample workspace.

Writes the sample workspace when the folder is empty, then runs merge -> face features -> voice
features -> train -> simulate. The stages are listed explicitly (DEMO_STAGES); one whose module
or function is not part of this build is reported as "not available" in the result, never
skipped silently.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import threading
import time
from pathlib import Path
from typing import Any, Literal

from engine.core.errors import InputError
from engine.core.metrics import rate
from engine.core.progress import Progress, ProgressCallback, check_cancelled, no_progress
from engine.core.settings import Settings, load_settings
from engine.core.workspace import Workspace, is_empty_workspace, member_folders
from engine.sample.workspace import (
    SampleReport,
    recover_interrupted_run,
    write_sample_workspace,
)

STAGE = "demo"


@dataclasses.dataclass(frozen=True)
class DemoStage:
    """One pipeline stage the demo runs, named by where its function lives."""

    name: str
    """Short name shown in the summary."""
    module: str
    """Engine module holding the stage function."""
    function: str
    """Function called as ``function(workspace, settings, progress=[, cancel=])``."""
    cancellable: bool
    """Whether the function takes ``cancel=``."""


DEMO_STAGES = (
    DemoStage("merge", "engine.customers.merge", "merge_customers", cancellable=False),
    DemoStage("faces", "engine.faces.extract", "extract_face_features", cancellable=True),
    DemoStage("voices", "engine.voices.extract", "extract_voice_features", cancellable=True),
    DemoStage("train", "engine.models.training", "train_models", cancellable=True),
    DemoStage("simulate", "engine.auth.simulate", "run_simulation", cancellable=True),
)


@dataclasses.dataclass(frozen=True)
class StageOutcome:
    """What one stage of the demo did."""

    name: str
    """The stage's short name (DemoStage.name)."""
    status: Literal["done", "not available"]
    """``not available`` when the stage's module or function is not part of this build."""
    seconds: float
    """Wall time of the stage."""
    headline: dict[str, Any]
    """The stage's key figures as plain JSON values (counts, metrics, rates, output paths)."""
    detail: str = ""
    """Why a stage did not run, in words."""
    report: Any = dataclasses.field(default=None, repr=False, compare=False)
    """The stage's own report object (MergeReport, FeatureRunReport, ...), when it ran."""


@dataclasses.dataclass(frozen=True)
class DemoResult:
    """The demo run: the sample it wrote (if any) and every stage's outcome."""

    workspace: Path
    """The workspace folder."""
    sample: SampleReport | None
    """The sample written by this run; None when the workspace already held data."""
    members: tuple[str, ...]
    """Members with enrolment photos."""
    stages: tuple[StageOutcome, ...]
    """One outcome per DEMO_STAGES entry, in order."""
    outputs: dict[str, str]
    """Where each output lives, relative to the workspace."""
    seconds: float
    """Wall time of the whole demo, the sample included."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (stage report objects left out; their headlines kept)."""
        return {
            "workspace": str(self.workspace),
            "sample": self.sample.to_dict() if self.sample else None,
            "members": list(self.members),
            "stages": [
                {
                    "name": stage.name,
                    "status": stage.status,
                    "seconds": round(stage.seconds, 3),
                    "headline": stage.headline,
                    "detail": stage.detail,
                }
                for stage in self.stages
            ],
            "outputs": self.outputs,
            "seconds": round(self.seconds, 3),
        }


def run_demo(
    workspace: Workspace,
    settings: Settings,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
    *,
    seed: int | None = None,
    members: int = 4,
    strangers: int = 6,
) -> DemoResult:
    """Write the sample workspace if the folder is empty, then run every available stage.

    A folder that is not empty and has no data/raw is refused rather than filled with sample
    files. ``seed`` (default: ``settings.seed``), ``members`` and ``strangers`` only matter
    when the sample is written.
    """
    started = time.perf_counter()
    sample: SampleReport | None = None
    recover_interrupted_run(workspace.root)
    if is_empty_workspace(workspace.root):
        sample = write_sample_workspace(
            workspace.root,
            members=members,
            strangers=strangers,
            seed=settings.seed if seed is None else seed,
            progress=progress,
            cancel=cancel,
        )
        # The sample's mmauth.toml now applies (environment variables still override it).
        settings = load_settings(workspace.root)
    elif not _has_raw_data(workspace):
        raise InputError(
            f"{workspace.root} is not empty and has no data/raw/ to run on; give an empty or new "
            "folder with --workspace, or write the sample into it with `mmauth sample --force`"
        )

    outcomes = []
    for number, stage in enumerate(DEMO_STAGES):
        check_cancelled(cancel, STAGE)
        progress(Progress(STAGE, number, len(DEMO_STAGES), f"{stage.name} ..."))
        outcomes.append(_run_stage(stage, workspace, settings, progress, cancel))
    progress(Progress(STAGE, len(DEMO_STAGES), len(DEMO_STAGES), "done"))
    return DemoResult(
        workspace=workspace.root,
        sample=sample,
        members=tuple(member_folders(workspace.faces_dir)),
        stages=tuple(outcomes),
        outputs={
            "merged dataset": workspace.relative(workspace.merged_dataset),
            "merge report": workspace.relative(workspace.merge_report),
            "image features": workspace.relative(workspace.image_features),
            "audio features": workspace.relative(workspace.audio_features),
            "models": workspace.relative(workspace.models_dir) + "/",
            "reports": workspace.relative(workspace.reports_dir) + "/",
        },
        seconds=time.perf_counter() - started,
    )


def stage_function(stage: DemoStage) -> Any | None:
    """The stage's function, or None when its module or function is not in this build."""
    if importlib.util.find_spec(stage.module) is None:
        return None
    module = importlib.import_module(stage.module)
    return getattr(module, stage.function, None)


def _has_raw_data(workspace: Workspace) -> bool:
    return workspace.raw_dir.is_dir() and not is_empty_workspace(workspace.raw_dir)


def _run_stage(
    stage: DemoStage,
    workspace: Workspace,
    settings: Settings,
    progress: ProgressCallback,
    cancel: threading.Event | None,
) -> StageOutcome:
    function = stage_function(stage)
    if function is None:
        return StageOutcome(
            name=stage.name,
            status="not available",
            seconds=0.0,
            headline={},
            detail=f"stage not available yet: {stage.module}.{stage.function} is not in this build",
        )
    started = time.perf_counter()
    keywords: dict[str, Any] = {"progress": progress}
    if stage.cancellable:
        keywords["cancel"] = cancel
    report = function(workspace, settings, **keywords)
    return StageOutcome(
        name=stage.name,
        status="done",
        seconds=time.perf_counter() - started,
        headline=_HEADLINES[stage.name](report, workspace),
        report=report,
    )


def _merge_headline(report: Any, workspace: Workspace) -> dict[str, Any]:
    return {
        "customers": report.customers_out,
        "joined_rows": report.joined_rows,
        "duplicates_dropped": sum(report.duplicates_dropped.values()),
        "unmatched_ids": dict(report.unmatched_ids),
        "output": workspace.relative(workspace.merged_dataset),
    }


def _features_headline(report: Any, workspace: Workspace) -> dict[str, Any]:
    return {
        "files": report.files,
        "rows": report.rows,
        "cached": report.cached,
        "failures": len(report.failures),
        "backend": report.backend,
        "output": workspace.relative(report.output),
    }


_MODEL_FIGURES = ("accuracy", "f1_score", "log_loss", "eer", "fmr", "fnmr", "n_train", "n_test")


def _training_headline(report: Any, workspace: Workspace) -> dict[str, Any]:
    models = {}
    for row in report.summary:
        counted = _counted_error_rates(report.manifest["models"][row["model"]]["metrics"])
        models[row["model"]] = {
            key: counted.get(key, row.get(key)) for key in _MODEL_FIGURES if _present(row.get(key))
        }
    return {
        "models": models,
        "product_verdict": report.product_verdict,
        "notes": list(report.notes),
        "output": workspace.relative(workspace.models_dir) + "/",
    }


def _counted_error_rates(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """FMR and FNMR as counts over trials with their Wilson intervals: on a sample's few members
    a held-out rate rests on a dozen trials, and a bare proportion reads like a broken model."""
    rates = {}
    if metrics.get("n_impostor") and _present(metrics.get("false_matches")):
        rates["fmr"] = _rate(rate(metrics["false_matches"], metrics["n_impostor"]))
    if metrics.get("n_genuine") and _present(metrics.get("fnmr")):
        misses = round(metrics["fnmr"] * metrics["n_genuine"])
        rates["fnmr"] = _rate(rate(misses, metrics["n_genuine"]))
    return rates


def _simulation_headline(report: Any, workspace: Workspace) -> dict[str, Any]:
    return {
        "authorised_success": _rate(report.authorised_success),
        "unauthorised_block": _rate(report.unauthorised_block),
        "replay_block": _rate(report.replay_block),
        "bad_input_denied": _rate(report.bad_input_denied),
        "face_backend": report.face_backend,
        "output": workspace.relative(report.json_path),
    }


def _rate(measured: Any) -> dict[str, Any]:
    return {
        "value": measured.value,
        "low": measured.low,
        "high": measured.high,
        "count": measured.count,
        "trials": measured.trials,
    }


def _present(value: Any) -> bool:
    return value is not None and value == value and value != ""  # NaN != NaN


_HEADLINES = {
    "merge": _merge_headline,
    "faces": _features_headline,
    "voices": _features_headline,
    "train": _training_headline,
    "simulate": _simulation_headline,
}
