"""History: the audit log of authentication attempts, filterable by member and decision."""

from __future__ import annotations

import datetime as dt
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Label, Select, Static

from engine.auth.words import Decision, Origin, score_pair
from engine.core.workspace import member_folders
from tui.errors import engine_errors
from tui.screens.base import EngineScreen
from tui.session import session_of
from tui.text import shown
from tui.widgets.screen_bar import ScreenBar

HISTORY_LIMIT = 500
DECISIONS = [("granted", Decision.GRANTED.value), ("denied", Decision.DENIED.value)]
COLUMNS = ("time (UTC)", "decision", "reason", "member", "face", "voice")
"""What fits 80 cells; the selected attempt's category, duration and files show below."""


def attempt_time(attempt: Any, pattern: str = "%Y-%m-%d %H:%M:%S") -> str:
    """When an attempt was made, in UTC."""
    return dt.datetime.fromtimestamp(attempt.at, tz=dt.UTC).strftime(pattern)


def attempt_row(attempt: Any) -> tuple[str, ...]:
    """One audit record as the cells of the history table; a mark of the audit log (entries
    deleted there, its end tampered with, an acknowledgement) as a row of its own, its text
    shown below when selected."""
    if not hasattr(attempt, "decision"):
        when = "" if attempt.at is None else attempt_time(attempt, "%m-%d %H:%M:%S")
        return (when, "audit log", str(attempt.kind), shown(attempt.actor or ""), "", "")
    decision = attempt.decision
    if attempt.integrity:
        # Flagged in the row itself: the cells may not be what was decided.
        decision = f"{decision} ({attempt.integrity.split(':')[0]})"
    return (
        attempt_time(attempt, "%m-%d %H:%M:%S"),
        decision,
        shown(attempt.reason),
        shown(attempt.identified_member or "-"),
        score_pair(attempt.face_score, attempt.face_threshold),
        score_pair(attempt.voice_score, attempt.voice_threshold),
    )


class HistoryScreen(EngineScreen):
    """Newest attempts first; select one to read its message and steps."""

    BINDINGS = [Binding("ctrl+r", "refresh_history", "Refresh")]

    def compose(self) -> ComposeResult:
        yield ScreenBar("history")
        with Vertical(id="history"):
            with Horizontal(classes="toolbar"):
                yield Label("Member", classes="toolbar-label")
                yield Select[str]([], prompt="any member", id="member-filter")
                yield Label("Decision", classes="toolbar-label")
                yield Select[str](DECISIONS, prompt="any decision", id="decision-filter")
            yield Label("", id="history-count")
            yield DataTable(id="attempts", cursor_type="row", zebra_stripes=True)
            yield Static("", id="attempt-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.attempts: list[Any] = []
        self.member_names: list[str] = []
        self.query_one("#attempts", DataTable).add_columns(*COLUMNS)

    def on_screen_resume(self) -> None:
        # The log grows while other screens run: reread it whenever the screen is shown.
        self.action_refresh_history()

    def action_refresh_history(self) -> None:
        """Read the audit log again with the current filters."""
        self.load_history(
            _chosen(self.query_one("#member-filter", Select)),
            _chosen(self.query_one("#decision-filter", Select)),
        )

    @on(Select.Changed)
    def filter_changed(self) -> None:
        self.action_refresh_history()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def load_history(self, member: str | None, decision: str | None) -> None:
        """Live attempts only: simulations are not attempts by people (mmauth simulate --audit
        records them for the CLI's reports)."""
        workspace = session_of(self).workspace
        folders = set(member_folders(workspace.faces_dir)) | set(
            member_folders(workspace.voices_dir)
        )
        if not workspace.database.is_file():
            self.app.call_from_thread(self.show_history, [], sorted(folders))
            return
        from engine.auth.store import open_store

        with engine_errors(self.app):
            store = open_store(workspace)
            attempts = store.history_with_marks(
                store.log.check_chain(),
                member=member,
                decision=decision,
                origin=Origin.LIVE,
                limit=HISTORY_LIMIT,
            )
            names = sorted(folders | {m.name for m in store.members()} | _identified(store))
            self.app.call_from_thread(self.show_history, attempts, names)

    def show_history(self, attempts: list[Any], member_names: list[str]) -> None:
        member_filter = self.query_one("#member-filter", Select)
        if member_names != self.member_names:
            self.member_names = member_names
            with member_filter.prevent(Select.Changed):
                current = member_filter.value
                member_filter.set_options([(name, name) for name in member_names])
                if current in member_names:
                    member_filter.value = current
        self.attempts = attempts
        table = self.query_one("#attempts", DataTable)
        table.clear()
        table.add_rows([attempt_row(a) for a in attempts])
        count = self.query_one("#history-count", Label)
        if not session_of(self).workspace.database.is_file():
            count.update(
                "No attempts yet: authenticate on the Auth screen (F4) or run mmauth authenticate."
            )
        else:
            shown_attempts = sum(hasattr(a, "decision") for a in attempts)
            count.update(f"{shown_attempts} attempts (newest first, at most {HISTORY_LIMIT})")
        self.query_one("#attempt-detail", Static).update("")

    @on(DataTable.RowHighlighted, "#attempts")
    def show_detail(self, event: DataTable.RowHighlighted) -> None:
        if not 0 <= event.cursor_row < len(self.attempts):
            return
        attempt = self.attempts[event.cursor_row]
        if not hasattr(attempt, "decision"):
            self.query_one("#attempt-detail", Static).update(
                f"audit log, after entry {attempt.after}: {shown(attempt.text)}"
            )
            return
        flagged = f"audit log: {attempt.integrity}\n" if attempt.integrity else ""
        steps = "  ".join(
            f"{step.get('name', '?')}: {step.get('status', '?')}" for step in attempt.steps
        )
        self.query_one("#attempt-detail", Static).update(
            f"{flagged}{attempt_time(attempt)} UTC, {attempt.seconds:.2f} s: {shown(attempt.message)}\n"
            f"category {shown(attempt.category or '-')}\n{shown(steps)}\n"
            f"face {shown(attempt.face_path or '-')}\nvoice {shown(attempt.voice_path or '-')}"
        )


def _chosen(select: Select[str]) -> str | None:
    return None if select.is_blank() else str(select.value)


def _identified(store: Any) -> set[str]:
    return {
        a.identified_member
        for a in store.history(origin=Origin.LIVE, limit=None)
        if a.identified_member
    }
