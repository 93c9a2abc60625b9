"""Simulation: the campaigns of `mmauth simulate` with progress, the rates table and a DET plot."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Footer, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from tui.errors import engine_errors
from tui.screens.base import RunScreen
from tui.session import session_of
from tui.widgets.screen_bar import ScreenBar
from tui.widgets.stage_progress import StageProgress


class SimulationScreen(RunScreen):
    """Run every probe against the enrolled members and show the measured rates."""

    def compose(self) -> ComposeResult:
        yield ScreenBar("simulation")
        with Vertical(id="simulation"):
            with Horizontal(classes="toolbar"):
                yield Button("Run", compact=True, id="start", variant="primary")
                yield Button("Cancel", compact=True, id="cancel", variant="error", disabled=True)
            yield Static("", id="simulation-note")
            yield StageProgress(id="simulation-stages")
            with TabbedContent(id="simulation-tabs"):
                with TabPane("Rates", id="rates-tab"):
                    yield DataTable(id="rates", cursor_type="row", zebra_stripes=True)
                    yield Static("", id="campaign-detail")
                with TabPane("DET", id="det-tab"):
                    yield PlotextPlot(id="det")
        yield Footer()

    def on_mount(self) -> None:
        self.campaigns: list[Any] = []
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
        if cancel is not None:
            self.simulate(cancel)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def simulate(self, cancel: threading.Event) -> None:
        from engine.auth.simulate import run_simulation

        session = session_of(self)
        self.run_engine(
            lambda: run_simulation(
                session.workspace,
                session.settings(),
                progress=self.report_progress,
                cancel=cancel,
            )
        )

    def on_run_screen_progressed(self, message: RunScreen.Progressed) -> None:
        self.query_one("#simulation-stages", StageProgress).report(message.event)

    def on_run_screen_finished(self, message: RunScreen.Finished) -> None:
        self.end_run(message.ending)
        if message.result is not None:
            self.show_result(message.result)

    def show_result(self, report: Any, *, saved: bool = False) -> None:
        """The headline rates, one row per campaign, and the DET curves of both modalities;
        ``saved``: the report was read back from its file rather than just measured."""
        from engine.core.metrics import format_rate

        if saved and self.cancel_event is not None:
            return  # a new run started while the old report was being read
        where = session_of(self).workspace.relative(report.json_path)
        heading = f"Last simulation ({where}, {_saved_at(report.json_path)})\n" if saved else ""
        self.query_one("#simulation-note", Static).update(
            f"{heading}authorised success {format_rate(report.authorised_success)}\n"
            f"unauthorised block {format_rate(report.unauthorised_block)}\n"
            f"replay block       {format_rate(report.replay_block)}\n"
            f"bad input denied   {format_rate(report.bad_input_denied)}"
        )
        self.campaigns = list(report.campaigns)
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

    @on(DataTable.RowHighlighted, "#rates")
    def show_campaign(self, event: DataTable.RowHighlighted) -> None:
        """The highlighted campaign in full: what it tries, every rate, why attempts were denied."""
        if 0 <= event.cursor_row < len(self.campaigns):
            self.query_one("#campaign-detail", Static).update(
                campaign_detail(self.campaigns[event.cursor_row])
            )

    def draw_det(self, report: Any) -> None:
        from engine.core.metrics import det_curve
        from engine.reports.stats import simulation_scores

        plot = self.query_one("#det", PlotextPlot)
        plot.plt.clear_figure()
        for modality, (genuine, impostor) in simulation_scores(report.attempts).items():
            fmr, fnmr, _ = det_curve(genuine, impostor)
            plot.plt.plot(
                [det_percent(v) for v in fmr],
                [det_percent(v) for v in fnmr],
                label=modality,
                marker="braille",
            )
        # Log axes as in ISO/IEC 19795-1 DET plots: on linear ones the curve hugs two edges.
        plot.plt.xscale("log")
        plot.plt.yscale("log")
        plot.plt.xlabel(f"FMR % (log; 0 shown at {DET_FLOOR_PERCENT})")
        plot.plt.ylabel("FNMR %")
        plot.plt.title("DET of the simulated attempts")
        plot.refresh()


def _saved_at(path: Path) -> str:
    try:
        modified = dt.datetime.fromtimestamp(path.stat().st_mtime).astimezone()
    except OSError:
        return "time unknown"
    return modified.strftime("%Y-%m-%d %H:%M")


DET_FLOOR_PERCENT = 0.1
"""Where an error rate of zero is drawn on the DET plot's log axes."""


def det_percent(rate: float) -> float:
    """An error rate as a percentage for a log axis (zero drawn at DET_FLOOR_PERCENT)."""
    return max(100 * rate, DET_FLOOR_PERCENT)


RATE_COLUMNS = ("campaign", "attempts", "granted", "system rate [95% CI]", "wrong grants")
"""The columns that fit 80 cells; the highlighted campaign's other figures show below."""


def campaign_row(campaign: Any) -> tuple[str, ...]:
    """One campaign as the cells of the rates table."""
    from engine.core.metrics import format_rate

    return (
        campaign.name,
        str(campaign.attempts),
        str(campaign.granted),
        format_rate(campaign.overall, counts=False),
        str(campaign.wrong_member_grants),
    )


def campaign_detail(campaign: Any) -> str:
    """Everything else about a campaign, one line each."""
    from engine.core.metrics import format_rate

    reasons = ", ".join(
        f"{reason} {count}" for reason, count in sorted(campaign.denied_by_reason.items())
    )
    return (
        f"{campaign.name} ({campaign.kind}): {campaign.description}\n"
        f"{campaign.rate_name}: {format_rate(campaign.overall)}\n"
        f"face {format_rate(campaign.face)}   voice {format_rate(campaign.voice)}\n"
        f"denied by reason: {reasons or '-'}"
    )
