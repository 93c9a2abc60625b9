"""`mmauth features`: photos and recordings -> image_features.csv and audio_features.csv."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

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
from engine.core.workspace import member_folders

FaceBackendOption = Annotated[
    str | None,
    typer.Option("--face-backend", help="classic (HOG + LBP) or dlib (128-d ResNet embedding)."),
]
JobsOption = Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes.")]
ExecutorOption = Annotated[
    str | None, typer.Option("--executor", help="loky (local processes) or dask (a cluster).")
]
SchedulerOption = Annotated[
    str | None,
    typer.Option("--scheduler", help="dask scheduler address; a LocalCluster when omitted."),
]


def extraction_overrides(
    face_backend: str | None, jobs: int | None, executor: str | None, scheduler: str | None
) -> dict[str, Any]:
    """Settings overrides from the extraction flags (shared by commands that extract features)."""
    return {
        "face.backend": face_backend,
        "jobs": jobs,
        "executor": executor,
        "scheduler": scheduler,
    }


def features(
    ctx: typer.Context,
    workspace: WorkspaceOption = None,
    faces: Annotated[bool, typer.Option("--faces/--no-faces", help="Process photos.")] = True,
    voices: Annotated[
        bool, typer.Option("--voices/--no-voices", help="Process recordings.")
    ] = True,
    face_backend: FaceBackendOption = None,
    jobs: JobsOption = None,
    executor: ExecutorOption = None,
    scheduler: SchedulerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Extract features from every enrolment and probe file (cached: re-runs only do new files).

    Exit status 0 when every file was processed, 1 when some files failed (each is listed with
    its reason; the rest of the batch went on), 2 on bad settings or a missing folder.
    """
    with handle_errors(as_json):
        overrides = extraction_overrides(face_backend, jobs, executor, scheduler)
        space, settings = open_workspace(ctx, workspace, overrides)
        # A workspace with recordings only (or photos only) gets what it has, and is told so;
        # with neither, the engine's own error says where the files go.
        skipped = []
        have_photos = has_files(space.faces_dir, space.probe_faces_dir)
        have_recordings = has_files(space.voices_dir, space.probe_voices_dir)
        if faces and voices and have_photos != have_recordings:
            if have_recordings:
                faces = False
                skipped.append(f"photos: none under {space.relative(space.raw_dir)}/faces/")
            else:
                voices = False
                skipped.append(f"recordings: none under {space.relative(space.raw_dir)}/voices/")
        reports = []
        with progress_bars(not as_json) as progress:
            if faces:
                from engine.faces.extract import extract_face_features

                reports.append(extract_face_features(space, settings, progress=progress))
            if voices:
                from engine.voices.extract import extract_voice_features

                reports.append(extract_voice_features(space, settings, progress=progress))
        if as_json:
            print_json(
                {
                    "ok": all(r.ok for r in reports),
                    "runs": [dataclasses.asdict(r) for r in reports],
                    "skipped": skipped,
                }
            )
        else:
            show_reports(reports, space.relative)
            for note in skipped:
                console.print(f"[yellow]skipped {note}[/]")
        if not all(r.ok for r in reports):
            raise typer.Exit(code=1)


def has_files(*folders: Path) -> bool:
    """Whether any ``folder/<name>/`` holds a file."""
    return any(any(member_folders(folder).values()) for folder in folders)


def show_reports(reports: list[Any], relative: Any) -> None:
    """A table of feature runs and a list of the files that failed."""
    table = Table(title="Feature extraction")
    for column in ("stage", "backend", "files", "rows", "cached", "failed", "seconds", "output"):
        table.add_column(column)
    for report in reports:
        table.add_row(
            report.stage,
            report.backend,
            str(report.files),
            str(report.rows),
            str(report.cached),
            str(len(report.failures)),
            f"{report.seconds:.1f}",
            shown(relative(report.output)),
        )
    console.print(table)
    for report in reports:
        for failure in report.failures:
            console.print(
                f"[yellow]{report.stage}: {shown(failure.source)}[/]: {shown(failure.reason)}",
                highlight=False,
            )


def register(app: typer.Typer) -> None:
    app.command("features")(features)
