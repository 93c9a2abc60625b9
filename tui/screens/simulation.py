"""Simulation: the campaigns of `mmauth simulate` with progress, the rates table and a DET plot."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Footer, Header, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from tui.errors import engine_errors
from tui.screens.base import RunScreen
from tui.session import session_of
from tui.widgets.stage_progress import StageProgress


class SimulationScreen(RunScreen):
    """Run every probe against the enrolled members and show the measured rates."""

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="simulation"):
            with Horizontal(classes="toolbar"):
                yield Button("Run", compact=True, id="start", variant="primary")
                yield Button("Cancel", compact=True, id="cancel", variant="error", disabled=True)
            yield Static("", id="simulation-note")
            yield StageProgress(id="simulation-stages")
            with TabbedContent(id="simulation-tabs"):
                with TabPane("Rates", id="rates-tab"):
                    yield DataTable(id="rates", cursor_type="row", zebra_stripes=True)
                with TabPane("DET", id="det-tab"):
                    yield PlotextPlot(id="det")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#simulation-note", Static).update(
            "Runs every probe in data/raw/probes against the enrolled members (needs trained "
            "models); the same campaigns as mmauth simulate."
        )
        self.load_last()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load_last(self) -> None:
        """Show the last saved simulation (reports/simulation.json) until a new run."""
        from engine.auth.simulate import load_report

        with engine_errors(self.app):
            report = load_report(session_of(self).workspace)
            if report is not None:
                self.app.call_from_thread(self.show_result, report, saved=True)

    def action_start(self) -> None:
        """Run the campaigns in a worker thread."""
        cancel = self.begin_run()
        if cancel is None:
            return
        self.query_one("#simulation-stages", StageProgress).reset()
        self.simulate(cancel)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def simulate(self, cancel: threading.Event) -> None:
        from engine.auth.simulate import run_simulation

        session = session_of(self)
        result = None
        try:
            with engine_errors(self.app):
                result = run_simulation(
                    session.workspace,
                    session.settings(),
                    progress=self.report_progress,
                    cancel=cancel,
                )
        finally:
            self.post_message(self.Finished(result))

    def on_run_screen_progressed(self, message: RunScreen.Progressed) -> None:
        self.query_one("#simulation-stages", StageProgress).report(message.event)

    def on_run_screen_finished(self, message: RunScreen.Finished) -> None:
        self.end_run()
        if message.result is not None:
            self.show_result(message.result)

    def show_result(self, report: Any, *, saved: bool = False) -> None:
        """The headline rates, one row per campaign, and the DET curves of both modalities;
        ``saved``: the report was read back from its file rather than just measured."""
        if saved and self.cancel_event is not None:
            return  # a new run started while the old report was being read
        where = session_of(self).workspace.relative(report.json_path)
        heading = f"Last simulation ({where}, {_saved_at(report.json_path)})\n" if saved else ""
        self.query_one("#simulation-note", Static).update(
            f"{heading}authorised success {report.authorised_success}\n"
            f"unauthorised block {report.unauthorised_block}\n"
            f"replay block {report.replay_block}   bad input denied {report.bad_input_denied}"
        )
        table = self.query_one("#rates", DataTable)
        table.clear(columns=True)
        table.add_columns(*RATE_COLUMNS)
        for campaign in report.campaigns:
            table.add_row(*campaign_row(campaign))
        self.draw_det(report)
        if not saved:
            self.notify(
                f"{len(report.attempts)} attempts in {report.seconds:.1f} s; saved to {where}",
                title="Simulation finished",
            )

    def draw_det(self, report: Any) -> None:
        from engine.core.metrics import det_curve
        from engine.reports.stats import simulation_scores

        plot = self.query_one("#det", PlotextPlot)
        plot.plt.clear_figure()
        for modality, (genuine, impostor) in simulation_scores(report.attempts).items():
            fmr, fnmr, _ = det_curve(genuine, impostor)
            plot.plt.plot(
                [100 * v for v in fmr], [100 * v for v in fnmr], label=modality, marker="braille"
            )
        plot.plt.xlabel("FMR %")
        plot.plt.ylabel("FNMR %")
        plot.plt.title("DET of the simulated attempts")
        plot.refresh()


def _saved_at(path: Path) -> str:
    try:
        modified = dt.datetime.fromtimestamp(path.stat().st_mtime).astimezone()
    except OSError:
        return "time unknown"
    return modified.strftime("%Y-%m-%d %H:%M")


RATE_COLUMNS = (
    "campaign",
    "kind",
    "attempts",
    "granted",
    "system rate",
    "face",
    "voice",
    "wrong grants",
    "denied by reason",
)


def campaign_row(campaign: Any) -> tuple[str, ...]:
    """One campaign as the cells of the rates table."""
    from engine.core.metrics import format_rate

    reasons = ", ".join(
        f"{reason} {count}" for reason, count in sorted(campaign.denied_by_reason.items())
    )
    return (
        campaign.name,
        campaign.kind,
        str(campaign.attempts),
        str(campaign.granted),
        format_rate(campaign.overall),
        format_rate(campaign.face),
        format_rate(campaign.voice),
        str(campaign.wrong_member_grants),
        reasons or "-",
    )
