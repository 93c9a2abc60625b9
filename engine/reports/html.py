"""`mmauth report`: reports/report.html and its PNG figures, rebuilt from the workspace's files.

The sections are gathered by engine.reports.data and their figures drawn by
engine.reports.figures; this module runs them in order and renders the page (written last, after
every figure).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.core.errors import InputError
from engine.core.fileio import atomic_write_text
from engine.core.progress import Progress, ProgressCallback, check_cancelled, no_progress
from engine.core.workspace import Workspace
from engine.reports.data import (
    Section,
    audio_sections,
    customer_sections,
    evaluation_sections,
    image_sections,
    model_sections,
)
from engine.reports.figures import Canvas
from engine.reports.stats import Table

STAGE = "report"
REPORT_NAME = "report.html"


@dataclasses.dataclass(frozen=True)
class ReportResult:
    """What `mmauth report` wrote."""

    html: Path
    """reports/report.html."""
    figures: tuple[Path, ...]
    """Every PNG written."""
    sections: tuple[Section, ...]
    seconds: float


def build_report(
    workspace: Workspace,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> ReportResult:
    """Draw every figure the workspace's files allow and write reports/report.html (last)."""
    started = time.perf_counter()
    canvas = Canvas(workspace.reports_dir)
    builders: list[tuple[str, Callable[[Workspace, Canvas], list[Section]]]] = [
        ("customers", customer_sections),
        ("face features", image_sections),
        ("voice features", audio_sections),
        ("models", model_sections),
        ("probe evaluation", evaluation_sections),
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
