"""Stats: what the workspace holds — members, photos, clips, customers — as tables and plots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.lazy import Lazy
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Label, Select, Static, TabbedContent, TabPane
from textual_plotext import PlotextPlot

from tui.errors import engine_errors
from tui.screens.base import EngineScreen
from tui.session import session_of
from tui.widgets.heatmap import Heatmap
from tui.widgets.screen_bar import ScreenBar


def fill_table(
    table: DataTable[Any], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Replace a DataTable's columns and rows."""
    table.clear(columns=True)
    table.add_columns(*columns)
    table.add_rows([tuple(str(v) for v in row) for row in rows])


class StatsScreen(EngineScreen):
    """The workspace at a glance; every absent input names the command that creates it."""

    BINDINGS = [Binding("ctrl+r", "refresh_stats", "Refresh")]

    def compose(self) -> ComposeResult:
        yield ScreenBar("stats")
        with TabbedContent(id="stats-tabs"):
            with TabPane("Overview", id="overview"), VerticalScroll(id="overview-body"):
                yield Static("", id="missing")
                yield Label("Members", classes="section")
                yield DataTable(id="members", cursor_type="row", zebra_stripes=True)
                yield Label("Probes", classes="section")
                yield DataTable(id="probes", cursor_type="row", zebra_stripes=True)
            with TabPane("Photos", id="photos-tab"), Lazy(VerticalScroll()):
                yield Static("", id="photos-note", classes="note")
                yield DataTable(id="photos", cursor_type="row", zebra_stripes=True)
            with TabPane("Clips", id="clips-tab"), Lazy(VerticalScroll()):
                yield Static("", id="clips-note", classes="note")
                yield DataTable(id="clips", cursor_type="row", zebra_stripes=True)
            with TabPane("Customers", id="customers-tab"), Lazy(VerticalScroll()):
                yield Static("", id="customers-note", classes="note")
                with Grid(id="customer-plots", classes="plots"):
                    yield PlotextPlot(id="age-plot")
                    yield PlotextPlot(id="purchase-plot")
                    yield PlotextPlot(id="category-plot")
                    yield PlotextPlot(id="scatter-plot")
                yield DataTable(id="categories", cursor_type="row")
            with TabPane("Features", id="features-tab"), Lazy(VerticalScroll()):
                yield Label("Correlation of customer features", classes="section")
                yield Heatmap(id="correlation")
                with Horizontal(classes="toolbar"):
                    yield Label("Audio feature ", classes="toolbar-label")
                    yield Select[str]([], id="audio-feature", allow_blank=True, prompt="feature")
                yield PlotextPlot(id="audio-box", classes="tall-plot")
        yield Footer()

    def on_screen_resume(self) -> None:
        # Every time the screen is shown, since other screens and commands change the workspace;
        # after the first paint: the worker's imports (pandas) would otherwise hold the GIL
        # while the screen waits to be drawn.
        self.call_after_refresh(self.action_refresh_stats)

    def action_refresh_stats(self) -> None:
        """Recount the workspace (after a command changed it)."""
        overview = self.query_one("#overview-body")
        overview.loading = True
        self.load_stats(overview)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def load_stats(self, overview: Widget) -> None:
        from engine.reports.stats import workspace_stats

        with engine_errors(self.app):
            stats = workspace_stats(session_of(self).workspace)
            self.app.call_from_thread(self.show_stats, stats)
            return
        self.app.call_from_thread(setattr, overview, "loading", False)

    def show_stats(self, stats: Any) -> None:
        self.query_one("#overview-body").loading = False
        self.stats = stats
        missing = "\n".join(f"[b $warning]![/] {item}" for item in stats.missing)
        self.query_one("#missing", Static).update(missing or "Every input is present.")
        fill_table(self.query_one("#members", DataTable), stats.members.columns, stats.members.rows)
        fill_table(self.query_one("#probes", DataTable), stats.probes.columns, stats.probes.rows)
        self.show_hidden_tabs()

    def show_hidden_tabs(self) -> None:
        """Fill the other tabs, whose widgets are mounted lazily after the first paint."""
        if not self.query("#audio-box"):
            self.call_after_refresh(self.show_hidden_tabs)
            return
        self._show_counts("photos", self.stats.photos, "run mmauth features")
        self._show_counts("clips", self.stats.clips, "")
        self._show_customers(self.stats.customers)
        self._show_audio_choices(self.stats.audio_features)

    def _show_counts(self, name: str, table: Any, missing_hint: str) -> None:
        data_table = self.query_one(f"#{name}", DataTable)
        note = self.query_one(f"#{name}-note", Static)
        if table is None:
            note.update(
                f"No feature table yet: {missing_hint} for counts per emotion/augmentation."
            )
            data_table.display = False
            return
        total = sum(row[-1] for row in table.rows)
        note.update(f"{total} rows of enrolment data (originals and augmented copies).")
        data_table.display = True
        fill_table(data_table, table.columns, table.rows)

    def _show_customers(self, customers: Any) -> None:
        note = self.query_one("#customers-note", Static)
        plots = self.query_one("#customer-plots")
        categories = self.query_one("#categories", DataTable)
        if customers is None:
            note.update("No merged customer table yet: run mmauth merge.")
            plots.display = categories.display = False
            return
        plots.display = categories.display = True
        note.update(
            f"{customers.customers} customers, {customers.numeric_columns} numeric features "
            "(data/merged_dataset.csv)."
        )
        fill_table(categories, customers.categories.columns, customers.categories.rows)
        draw_histogram(self.query_one("#age-plot", PlotextPlot), customers.ages, "Age")
        draw_histogram(
            self.query_one("#purchase-plot", PlotextPlot),
            customers.purchase_amounts,
            customers.purchase_column or "purchase amount",
        )
        draw_bars(
            self.query_one("#category-plot", PlotextPlot),
            [str(row[0]) for row in customers.categories.rows],
            [int(row[1]) for row in customers.categories.rows],
            "Preferred category",
        )
        scatter = self.query_one("#scatter-plot", PlotextPlot)
        scatter.plt.clear_figure()
        # A plot without data is left out rather than drawn as an empty frame.
        scatter.display = bool(customers.engagement_vs_purchase)
        if customers.engagement_vs_purchase:
            x, y = zip(*customers.engagement_vs_purchase, strict=True)
            scatter.plt.scatter(list(x), list(y), marker="dot")
            scatter.plt.xlabel(customers.engagement_column or "")
            scatter.plt.ylabel(customers.purchase_column or "")
        scatter.plt.title("Engagement vs purchase")
        scatter.refresh()
        heatmap = self.query_one("#correlation", Heatmap)
        if customers.correlation is None:
            heatmap.update("Fewer than two varying numeric features.")
        else:
            heatmap.show(customers.correlation.names, customers.correlation.matrix)

    def _show_audio_choices(self, audio_features: dict[str, Any]) -> None:
        select = self.query_one("#audio-feature", Select)
        select.set_options([(name, name) for name in audio_features])
        if audio_features:
            select.value = next(iter(audio_features))
        else:
            box = self.query_one("#audio-box", PlotextPlot)
            box.plt.clear_figure()
            box.plt.title("No audio features yet: run mmauth features")
            box.refresh()

    @on(Select.Changed, "#audio-feature")
    def draw_audio_box(self, event: Select.Changed) -> None:
        if event.select.is_blank() or not hasattr(self, "stats"):
            return
        per_member = self.stats.audio_features.get(event.value, {})
        box = self.query_one("#audio-box", PlotextPlot)
        box.plt.clear_figure()
        members = [m for m, values in per_member.items() if values]
        if members:
            # textual-plotext's stub of plotext's figure omits box(), which the figure has.
            box.plt.box(members, [list(per_member[m]) for m in members])  # type: ignore[attr-defined]
        box.plt.title(f"{event.value} per member (original enrolment clips)")
        box.refresh()


def draw_histogram(plot: PlotextPlot, values: Sequence[float], label: str) -> None:
    """A histogram of a column with whole-number counts; hidden when the table has no such
    column (an empty frame says nothing)."""
    plot.plt.clear_figure()
    plot.display = bool(values)
    if values:
        bins = 15
        plot.plt.hist(list(values), bins=bins)
        plot.plt.xlabel(label)
        plot.plt.title(f"{label} (customers per bin)")
        integer_ticks(plot, max_count(values, bins))
    plot.refresh()


def max_count(values: Sequence[float], bins: int) -> int:
    """The tallest bar of a histogram of ``values`` in ``bins`` equal bins."""
    low, high = min(values), max(values)
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / width))] += 1
    return max(counts)


def integer_ticks(plot: PlotextPlot, highest: int, steps: int = 4) -> None:
    """Whole-number ticks on a count axis (plotext would label 2.5 customers)."""
    step = max(1, -(-highest // steps))
    plot.plt.yticks(list(range(0, highest + step, step)))


def draw_bars(plot: PlotextPlot, labels: Sequence[str], counts: Sequence[int], title: str) -> None:
    """Vertical bars of counts per label, hidden when there is nothing to count."""
    plot.plt.clear_figure()
    plot.display = bool(labels)
    if labels:
        plot.plt.bar(list(labels), list(counts))
        integer_ticks(plot, max(counts))
    plot.plt.title(title)
    plot.refresh()
