"""What the face and voice pipelines share around the per-file work: which files to process and
how their rows become a feature table (image_features.csv, audio_features.csv)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.core.batch import BatchItem, ExecutionPlan, ItemResult, ProcessFunction, run_batch
from engine.core.errors import InputError, MissingStageError
from engine.core.fileio import atomic_write_csv
from engine.core.progress import ProgressCallback, no_progress
from engine.core.settings import Settings
from engine.core.workspace import Workspace, member_folders

ENROL = "enrol"
PROBE = "probe"
TEXT_COLUMNS = (
    "member",
    "emotion",
    "phrase",
    "augmentation",
    "augmentation_detail",
    "source",
    "role",
    "backend",
)
"""Columns of the feature tables that hold names, never numbers (member "007", phrase "3")."""


@dataclasses.dataclass(frozen=True)
class FileFailure:
    """A file that produced no rows, and why."""

    source: str
    """The file, relative to the workspace."""
    reason: str
    """What is wrong with it, in words a person can act on."""


@dataclasses.dataclass(frozen=True)
class FeatureRunReport:
    """Summary of one feature-extraction run."""

    stage: str
    """``faces`` or ``voices``."""
    output: Path
    """The feature table written."""
    files: int
    """Input files considered (enrolment and probes)."""
    rows: int
    """Rows written (one per file and augmentation)."""
    cached: int
    """Files whose features came from the on-disk cache."""
    failures: tuple[FileFailure, ...]
    """Files that failed (failure to acquire, unreadable, ...); the rest of the batch went on."""
    backend: str
    """Feature backend used."""
    seconds: float
    """Wall time of the run."""

    @property
    def ok(self) -> bool:
        return not self.failures


def collect_items(workspace: Workspace, enrol_dir: Path, probe_dir: Path) -> list[BatchItem]:
    """Every enrolment file (``<dir>/<member>/<file>``) then every probe file, in a stable order."""
    items: list[BatchItem] = []
    for role, folder in ((ENROL, enrol_dir), (PROBE, probe_dir)):
        for label, files in member_folders(folder).items():
            items += [
                BatchItem(path=f, label=label, role=role, source=workspace.relative(f))
                for f in files
            ]
    return items


def execution_plan(settings: Settings) -> ExecutionPlan:
    """Where the per-file work runs, from settings (``--jobs``, ``--executor``, ``--scheduler``)."""
    return ExecutionPlan(
        jobs=settings.jobs, executor=settings.executor, scheduler=settings.scheduler
    )


def write_feature_table(
    results: Sequence[ItemResult],
    output: Path,
    *,
    label_column: str,
    feature_prefix: str,
    constant_columns: dict[str, Any],
) -> int:
    """Write successful results as one CSV row per record, atomically; returns the row count.

    Columns: ``label_column`` (member or probe label), the records' own columns (emotion,
    phrase, augmentation, ...), ``source``, ``role``, the constant columns (e.g. backend), then
    ``<feature_prefix>0..N``.
    """
    import numpy as np
    import pandas as pd

    frames = []
    for result in results:
        if result.output is None:
            continue
        meta = pd.DataFrame(result.output.records)
        meta.insert(0, label_column, result.item.label)
        meta["source"] = result.item.source
        meta["role"] = result.item.role
        for column, value in constant_columns.items():
            meta[column] = value
        features = np.atleast_2d(np.asarray(result.output.features, dtype=float))
        columns = [f"{feature_prefix}{i}" for i in range(features.shape[1])]
        frames.append(pd.concat([meta, pd.DataFrame(features, columns=columns)], axis=1))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[label_column])
    atomic_write_csv(output, table)
    return len(table)


def run_report(
    stage: str, output: Path, results: Sequence[ItemResult], rows: int, backend: str, started: float
) -> FeatureRunReport:
    """The FeatureRunReport of a finished run (``started`` from time.perf_counter())."""
    return FeatureRunReport(
        stage=stage,
        output=output,
        files=len(results),
        rows=rows,
        cached=sum(r.cached for r in results),
        failures=tuple(
            FileFailure(r.item.source, r.error or "") for r in results if r.output is None
        ),
        backend=backend,
        seconds=time.perf_counter() - started,
    )


def run_by_role(
    items: Sequence[BatchItem],
    process: ProcessFunction,
    params_by_role: Mapping[str, dict[str, Any]],
    *,
    stage: str,
    cache_dir: Path,
    plan: ExecutionPlan,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> list[ItemResult]:
    """Every file in one batch, each with its role's parameters (only enrolment files are
    augmented)."""
    return run_batch(
        items,
        process,
        lambda item: params_by_role[item.role],
        stage=stage,
        cache_dir=cache_dir,
        plan=plan,
        progress=progress,
        cancel=cancel,
    )


def refuse_empty_run(report: FeatureRunReport, what: str, run_report_path: str) -> None:
    """InputError when no file of the run gave features (the table was then not written)."""
    if report.rows or not report.files:
        return
    reasons = "; ".join(f"{f.source}: {f.reason}" for f in report.failures[:3])
    raise InputError(
        f"none of the {report.files} {what} gave features, so {report.output.name} was not "
        f"written ({reasons}; all in {run_report_path})"
    )


def read_feature_table(workspace: Workspace, path: Path, prefix: str) -> Any:
    """A feature table (image_features.csv or audio_features.csv), checked for the columns every
    reader needs; InputError naming the file and the command that rewrites it."""
    import pandas as pd

    where = workspace.relative(path)
    if not path.is_file():
        raise MissingStageError(f"{where} is missing: run mmauth features first")
    try:
        # Names are text even when they look like numbers: member "007", phrase "3".
        table = pd.read_csv(path, dtype=dict.fromkeys(TEXT_COLUMNS, str))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(
            f"cannot be read ({error}); run mmauth features again", path=where
        ) from error
    for column in ("member", "source", "role"):
        if column not in table.columns:
            raise InputError("is missing; run mmauth features again", path=where, column=column)
    if not any(str(c).startswith(prefix) for c in table.columns):
        raise InputError(f"has no {prefix}* columns; run mmauth features again", path=where)
    text = [column for column in TEXT_COLUMNS if column in table.columns]
    table[text] = table[text].fillna("")
    return table


def feature_matrix(table: Any, prefix: str) -> Any:
    """The ``<prefix>0..N`` columns of a feature table as a float matrix, in numeric order."""
    import numpy as np

    columns = [c for c in table.columns if str(c).startswith(prefix)]
    columns.sort(key=lambda c: int(str(c)[len(prefix) :]))
    return table[columns].to_numpy(dtype=np.float64)
