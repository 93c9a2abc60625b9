"""Training: train every model or one, watch each stage live, read the metrics as they land."""

from __future__ import annotations

import threading
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Label,
    Log,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from engine.models.names import MODEL_NAMES
from tui.errors import engine_errors
from tui.screens.base import RunScreen
from tui.session import session_of
from tui.widgets.stage_progress import StageProgress

METRIC_COLUMNS = ("accuracy", "f1_score", "log_loss", "eer", "threshold")


def metric_text(value: Any) -> str:
    """A metric as shown in the table: 4 decimals for numbers, ``-`` when absent."""
    if value is None or value == "":
        return "-"
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return str(value)


class TrainingScreen(RunScreen):
    """Start or cancel training; progress bars per stage, a log, metrics, confusion matrices."""

    BINDINGS = [Binding("ctrl+r", "start", "Train"), Binding("x", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="training"):
            with Horizontal(classes="toolbar"):
                yield Select[str](
                    [("all models", "all"), *((m.value, m.value) for m in MODEL_NAMES)],
                    value="all",
                    allow_blank=False,
                    id="which",
                )
                yield Button("Train", compact=True, id="start", variant="primary")
                yield Button("Cancel", compact=True, id="cancel", variant="error", disabled=True)
            yield StageProgress(id="stages")
            with TabbedContent(id="training-tabs"):
                with TabPane("Metrics", id="metrics-tab"):
                    yield Label("", id="metrics-note")
                    yield DataTable(id="metrics", cursor_type="row", zebra_stripes=True)
                with TabPane("Confusion", id="confusion-tab"), VerticalScroll():
                    yield Select[str]([], prompt="model", id="confusion-model")
                    yield Static("Train a model to see its confusion matrix.", id="confusion")
                with TabPane("Log", id="log-tab"):
                    yield Log(id="log", max_lines=2000)
        yield Footer()

    def on_mount(self) -> None:
        self.confusion: dict[str, Any] = {}
        table = self.query_one("#metrics", DataTable)
        table.add_column("model", key="model")
        for column in METRIC_COLUMNS:
            table.add_column(column.replace("_", " "), key=column)
        self.load_summary()

    @work(thread=True, exclusive=True, group="summary", exit_on_error=False)
    def load_summary(self) -> None:
        from engine.reports.stats import training_summary

        with engine_errors(self.app):
            summary = training_summary(session_of(self).workspace)
            self.app.call_from_thread(self.show_summary, summary)

    def show_summary(self, summary: Any) -> None:
        note = self.query_one("#metrics-note", Label)
        if summary is None:
            note.update("No trained models yet: press Train (or run mmauth train).")
            return
        note.update("Metrics on held-out data (models/training_summary.csv).")
        for record in summary.rows:
            values = dict(zip(summary.columns, record, strict=True))
            self.set_metrics(str(values["model"]), values)

    def set_metrics(self, model: str, metrics: dict[str, Any]) -> None:
        """Add or update a model's row of metrics."""
        table = self.query_one("#metrics", DataTable)
        cells = [metric_text(metrics.get(column)) for column in METRIC_COLUMNS]
        if model in table.rows:
            for column, cell in zip(METRIC_COLUMNS, cells, strict=True):
                table.update_cell(model, column, cell)
        else:
            table.add_row(model, *cells, key=model)

    def action_start(self) -> None:
        """Train the chosen models in a worker thread."""
        cancel = self.begin_run()
        if cancel is None:
            return
        which = self.query_one("#which", Select).value
        models = MODEL_NAMES if which == "all" else (str(which),)
        self.query_one("#stages", StageProgress).reset()
        self.query_one("#log", Log).write_line(f"training {', '.join(models)}")
        self.train(models, cancel)

    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def train(self, models: tuple[str, ...], cancel: threading.Event) -> None:
        from engine.models.training import train_models

        session = session_of(self)
        result = None
        try:
            with engine_errors(self.app):
                result = train_models(
                    session.workspace,
                    session.settings(),
                    which=models,
                    progress=self.report_progress,
                    cancel=cancel,
                )
                session.forget_models()
        finally:
            self.post_message(self.Finished(result))

    def on_run_screen_progressed(self, message: RunScreen.Progressed) -> None:
        event = message.event
        self.query_one("#stages", StageProgress).report(event)
        if event.message:
            self.query_one("#log", Log).write_line(f"[{event.stage}] {event.message}")
        if any(key in event.metrics for key in METRIC_COLUMNS):
            self.set_metrics(event.stage.removeprefix("train."), event.metrics)

    def on_run_screen_finished(self, message: RunScreen.Finished) -> None:
        self.end_run()
        log = self.query_one("#log", Log)
        if message.result is None:
            log.write_line("training stopped")
            return
        log.write_line("training finished")
        self.notify("Models trained and saved.", title="Training finished")
        self.load_summary()
        self.show_confusion_choices(message.result)

    def show_confusion_choices(self, result: Any) -> None:
        self.confusion = dict(getattr(result, "confusion_matrices", {}) or {})
        select = self.query_one("#confusion-model", Select)
        select.set_options([(name, name) for name in self.confusion])
        if self.confusion:
            select.value = next(iter(self.confusion))

    @on(Select.Changed, "#confusion-model")
    def show_confusion(self, event: Select.Changed) -> None:
        from tui.widgets.confusion import confusion_table

        if event.select.is_blank() or event.value not in self.confusion:
            return
        labels, matrix = self.confusion[event.value]
        self.query_one("#confusion", Static).update(confusion_table(labels, matrix))
