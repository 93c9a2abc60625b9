"""Training: train every model or one, watch each stage live, read the metrics as they land."""

from __future__ import annotations

import math
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
    Label,
    Log,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from engine.core.text import printable
from engine.models.names import MODEL_NAMES
from tui.errors import engine_errors
from tui.screens.base import RunScreen
from tui.session import session_of
from tui.text import shown
from tui.widgets.screen_bar import ScreenBar
from tui.widgets.stage_progress import StageProgress

METRIC_COLUMNS = ("accuracy", "f1_score", "log_loss", "eer", "fmr", "fnmr", "threshold")


def metric_text(value: Any) -> str:
    """A metric as shown in the table: 4 decimals for numbers, ``-`` when absent or not
    defined for the model (the product model has no EER, a fold may have no log loss)."""
    if value is None or value == "":
        return "-"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "-" if math.isnan(number) else f"{number:.4f}"


class TrainingScreen(RunScreen):
    """Start or cancel training; progress bars per stage, a log, metrics, confusion matrices."""

    BINDINGS = [Binding("ctrl+r", "start", "Train"), Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        yield ScreenBar("training")
        with Vertical(id="training"):
            with Horizontal(classes="toolbar"):
                yield Label("Models", classes="toolbar-label")
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
                    yield Static("", id="confusion")
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
        """The saved metrics and confusion matrices (or what to do before training)."""
        from engine.reports.stats import saved_confusion_matrices, training_summary

        workspace = session_of(self).workspace
        with engine_errors(self.app):
            summary = training_summary(workspace)
            inputs = (workspace.merged_dataset, workspace.image_features, workspace.audio_features)
            missing = [workspace.relative(path) for path in inputs if not path.is_file()]
            self.app.call_from_thread(self.show_summary, summary, missing)
            self.app.call_from_thread(
                self.show_confusion_choices, saved_confusion_matrices(workspace)
            )

    def show_summary(self, summary: Any, missing_inputs: list[str]) -> None:
        note = self.query_one("#metrics-note", Label)
        if summary is None and missing_inputs:
            note.update(
                f"Nothing to train on yet: {', '.join(missing_inputs)} missing. Run mmauth merge "
                "and mmauth features first (or ctrl+p, Sample workspace, on an empty folder)."
            )
            return
        if summary is None:
            note.update("No trained models yet: press Train (ctrl+r).")
            return
        note.update("Saved models: metrics on held-out data (models/training_summary.csv).")
        for record in summary.rows:
            values = dict(zip(summary.columns, record, strict=True))
            self.set_metrics(str(values["model"]), values)

    def set_metrics(self, model: str, metrics: dict[str, Any]) -> None:
        """Add or update a model's row of metrics."""
        table = self.query_one("#metrics", DataTable)
        from engine.core.metrics import format_rate, held_out_rates

        rates = held_out_rates(metrics)
        cells = [
            format_rate(rates[column]) if column in rates else metric_text(metrics.get(column))
            for column in METRIC_COLUMNS
        ]
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
        self.query_one("#log", Log).write_line(f"training {', '.join(models)}")
        self.query_one("#metrics-note", Label).update(
            "This run: metrics as each model finishes (saved to models/training_summary.csv "
            "at the end)."
        )
        self.train(models, cancel)

    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def train(self, models: tuple[str, ...], cancel: threading.Event) -> None:
        from engine.models.training import train_models

        session = session_of(self)

        def train() -> Any:
            try:
                return train_models(
                    session.workspace,
                    session.settings(),
                    which=models,
                    progress=self.report_progress,
                    cancel=cancel,
                )
            finally:
                # A cancelled run may still have saved the models finished before it.
                session.forget_models()

        self.run_engine(train)

    def on_run_screen_progressed(self, message: RunScreen.Progressed) -> None:
        event = message.event
        self.query_one("#stages", StageProgress).report(event)
        if event.message:
            self.query_one("#log", Log).write_line(f"[{event.stage}] {event.message}")
        if any(key in event.metrics for key in METRIC_COLUMNS):
            self.set_metrics(event.stage.removeprefix("train."), event.metrics)

    def on_run_screen_finished(self, message: RunScreen.Finished) -> None:
        self.end_run(message.ending)
        log = self.query_one("#log", Log)
        log.write_line(f"training {message.ending}")
        if message.result is not None:
            self.notify("Models trained and saved.", title="Training finished")
            for note in message.result.notes:
                log.write_line(f"note: {printable(note)}")
                self.notify(shown(note), title="Training note", severity="warning", timeout=20)
        # What is saved now, whether the run finished or not.
        self.load_summary()

    def show_confusion_choices(self, matrices: dict[str, Any]) -> None:
        self.confusion = matrices
        select = self.query_one("#confusion-model", Select)
        current = select.value
        select.set_options([(name, name) for name in self.confusion])
        if current in self.confusion:
            select.value = current
        elif self.confusion:
            select.value = next(iter(self.confusion))
        else:
            self.query_one("#confusion", Static).update(
                "No saved model has a confusion matrix yet: train first (ctrl+r)."
            )

    @on(Select.Changed, "#confusion-model")
    def show_confusion(self, event: Select.Changed) -> None:
        from tui.widgets.confusion import confusion_table

        if event.select.is_blank() or event.value not in self.confusion:
            return
        labels, matrix = self.confusion[event.value]
        self.query_one("#confusion", Static).update(confusion_table(labels, matrix))
