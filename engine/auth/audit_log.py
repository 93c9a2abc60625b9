"""The audit log's operations on mmauth.db: appending to the hash chain, checking it against
this installation's outside record, acknowledging what a check found, and operator events.

Attempts, lockouts and events form one hash chain whose head is also recorded outside the
workspace (engine.auth.chain): a deleted, truncated or edited log is found, and a grant is
never written to a log that does not match that record. The store (engine.auth.store) appends
attempts and lockouts through an AuditLog; operators' actions are appended here.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from engine.auth.chain import (
    ChainHead,
    ChainStatus,
    OutsideRecord,
    append,
    database_head,
    hash_at,
    head_problems,
    verify_entries,
)
from engine.auth.database import CHAINED_TABLES, EVENT_COLUMNS, Database, StoreError
from engine.auth.words import AuditEvent, Integrity

TAMPERED_RUNS = "written_while_tampered"
"""Outside-record key: runs [before seq, before hash, last seq, last hash] of entries written to a
log that did not match the record."""


class AuditTamperedError(StoreError):
    """The audit log does not match this installation's record of it: deleted, truncated or
    edited. Authentication stays stopped until an operator acknowledges it."""

    title = "Audit log tampered"


@dataclasses.dataclass(frozen=True)
class EventRecord:
    """An operator's action, written to the chain like an attempt."""

    at: float
    kind: str
    """An AuditEvent."""
    member: str | None
    actor: str
    """The operating-system user who ran it."""
    detail: str
    id: int | None = None


@dataclasses.dataclass(frozen=True)
class LogMark:
    """What ``mmauth history`` shows at a place of the chain, between the attempts: entries
    deleted from it, its end not being the one this installation recorded, or an operator's
    acknowledgement of what a check found there."""

    after: int
    """The chain's place it follows (0: before every entry)."""
    kind: Integrity
    text: str
    at: float | None = None
    """When it happened, where known (acknowledgements)."""
    actor: str | None = None
    """Who acknowledged (acknowledgements)."""


class AuditLog:
    """The hash-chained log of one database, and this installation's record of it.

    Keeps the last head it verified, so later checks walk only the entries written since.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self.outside = OutsideRecord(database.path)
        self._verified: ChainHead | None = None

    def append(
        self, connection: sqlite3.Connection, table: str, values: Sequence[Any]
    ) -> tuple[int, ChainHead]:
        """Insert a row of ``table`` as the chain's next entry (in the caller's transaction)."""
        return append(connection, table, CHAINED_TABLES[table], values, tuple(CHAINED_TABLES))

    def matches_record(self, record: dict[str, Any] | None, head: ChainHead) -> bool:
        """Whether the database's head is the one this installation recorded (or, never
        recorded, the log is empty)."""
        recorded = self.outside.head(record)
        return head == recorded if recorded is not None else head.seq == 0

    def advance_record(
        self,
        record: dict[str, Any] | None,
        head: ChainHead,
        now: float,
        *,
        added: dict[str, Any] | None = None,
        lifted: str | None = None,
        first: str | None = None,
        **changes: Any,
    ) -> None:
        """Advance the outside record to ``head``, keeping its copy of the lockouts in force
        (and the first entry's hash, which tells a replaced log from a truncated one)."""
        if first is not None:
            changes["first"] = first
        locks = [
            lock
            for lock in (record or {}).get("lockouts", [])
            if lock.get("until", 0) > now and lock.get("member") != lifted
        ]
        if added is not None:
            locks.append(added)
        self.outside.write(record, head, lockouts=locks, **changes)

    def note_written_while_tampered(
        self, record: dict[str, Any], before: ChainHead, head: ChainHead
    ) -> None:
        """Keep apart, in the outside record, the entries written after ``before`` to a log
        that did not match it (denials are evidence, so they are written anyway).

        The recorded head stays where this installation last trusted the log. Without this
        note, those entries would take the places of the deleted ones (or follow a replaced
        log's end) and the next check would diagnose them instead of what was done to the log:
        a truncation would read as a rewrite. Consecutive writes extend one run; a run that
        does not continue the last one means the log changed again in between.
        """
        runs = [list(run) for run in record.get(TAMPERED_RUNS, [])]
        if runs and ChainHead(int(runs[-1][2]), str(runs[-1][3])) == before:
            runs[-1][2:] = [head.seq, head.hash]
        else:
            runs.append([before.seq, before.hash, head.seq, head.hash])
        recorded = self.outside.head(record) or ChainHead()
        self.outside.write(record, recorded, **{TAMPERED_RUNS: runs})

    def check_chain(self, *, full: bool = False) -> ChainStatus:
        """Compare the log with this installation's record of it.

        The first check of a log object walks the whole chain, later ones only the entries
        written since (``full`` walks everything again). A log this installation has never
        seen (a new installation, a moved workspace, a schema-1 database) is adopted, and that
        is logged as an event.
        """
        with self.outside.locked(exclusive=True):
            status = self._check(full=full)
            if status.recorded is None and status.intact and status.entries > 0:
                with self.database.transaction() as connection:
                    _, head = self.append(
                        connection,
                        "events",
                        (
                            time.time(),
                            AuditEvent.ADOPTED,
                            None,
                            _actor(),
                            f"{status.entries} entries first seen by this installation",
                        ),
                    )
                    first = first_hash(connection, None)
                self.advance_record(None, head, time.time(), first=first)
                self._verified = head
        return status

    def _check(self, *, full: bool) -> ChainStatus:
        record = self.outside.read()
        accepted = frozenset(int(seq) for seq in (record or {}).get("accepted_breaks", []))
        known_unchained = {tuple(row) for row in (record or {}).get("accepted_unchained", [])}
        tables = tuple(CHAINED_TABLES)
        with self.database.connect() as connection:
            head = database_head(connection, tables)
            start = self._verified
            if full or start is None or head.seq < start.seq:
                start = None
            walked, problems, breaks, unchained = verify_entries(
                connection, CHAINED_TABLES, after=start, accepted_breaks=accepted
            )
            recorded = self.outside.head(record)
            at_recorded = hash_at(connection, tables, recorded.seq) if recorded else None
            first = ((record or {}).get("first"), hash_at(connection, tables, 1))
            found, lost = _before_own_runs(connection, head, (record or {}).get(TAMPERED_RUNS, []))
        new_unchained = [row for row in unchained if row not in known_unchained]
        if not new_unchained:
            problems = [p for p in problems if "outside the chain" not in p]
        ends = head_problems(self.database.path.name, found, recorded, at_recorded, first)
        problems += [problem for _, problem in ends]
        problems += [
            f"the {last - start} entries this installation wrote while it was tampered "
            f"(entries {start + 1}-{last}) were deleted or changed too"
            if last - start > 1
            else f"entry {last}, written by this installation while it was tampered, was "
            "deleted or changed too"
            for start, last in lost
        ]
        intact = not problems
        if intact:
            self._verified = walked
        return ChainStatus(
            intact=intact,
            entries=head.seq,
            recorded=None if recorded is None else recorded.seq,
            problems=tuple(problems),
            breaks=tuple(breaks),
            unchained=tuple(new_unchained),
            end=ends[0] if ends else None,
        )

    def acknowledge(self, now: float, actor: str | None = None) -> ChainStatus:
        """Accept the log as it is now, after an operator has looked at what the check found.

        The acknowledgement is an event of the chain (naming the problems); lockouts the
        outside record holds that the log lost are written back. Returns what was
        acknowledged (intact: there was nothing to acknowledge).
        """
        with self.outside.locked(exclusive=True):
            status = self._check(full=True)
            if status.intact:
                return status
            record = self.outside.read() or {}
            breaks = sorted(
                {int(s) for s in record.get("accepted_breaks", []) if int(s) <= status.entries}
                | set(status.breaks)
            )
            unchained = [list(row) for row in record.get("accepted_unchained", [])]
            unchained += [list(row) for row in status.unchained]
            with self.database.transaction() as connection:
                _, head = self.append(
                    connection,
                    "events",
                    (
                        now,
                        AuditEvent.ACKNOWLEDGED,
                        None,
                        actor or _actor(),
                        "; ".join(status.problems),
                    ),
                )
                for lock in record.get("lockouts", []):
                    if lock.get("until", 0) > now and not self._locked_in(connection, lock, now):
                        _, head = self.append(
                            connection,
                            "lockouts",
                            (
                                lock["member"],
                                lock["locked_at"],
                                lock["until"],
                                lock["failures"],
                                None,
                            ),
                        )
                first = hash_at(connection, tuple(CHAINED_TABLES), 1)
            # The denials written while it was tampered are part of what is accepted.
            cleared: dict[str, Any] = {TAMPERED_RUNS: []}
            self.advance_record(
                record,
                head,
                now,
                first=first,
                accepted_breaks=breaks,
                accepted_unchained=unchained,
                **cleared,
            )
            self._verified = None
        return status

    @staticmethod
    def _locked_in(connection: sqlite3.Connection, lock: dict[str, Any], now: float) -> bool:
        row = connection.execute(
            "SELECT 1 FROM lockouts WHERE member = ? AND until > ? LIMIT 1", (lock["member"], now)
        ).fetchone()
        return row is not None

    def record_event(
        self, kind: AuditEvent, detail: str, *, member: str | None = None, now: float | None = None
    ) -> int:
        """Append an operator's action to an intact log (AuditTamperedError otherwise)."""
        now = time.time() if now is None else now
        with self.outside.locked(exclusive=True):
            record = self.outside.read()
            with self.database.transaction() as connection:
                if not self.matches_record(
                    record, database_head(connection, tuple(CHAINED_TABLES))
                ):
                    raise AuditTamperedError(
                        f"{self.database.path.name} does not match this installation's record of it: "
                        "run mmauth audit verify, then mmauth audit acknowledge"
                    )
                event_id, head = self.append(
                    connection, "events", (now, kind, member, _actor(), detail)
                )
                first = first_hash(connection, record)
            lifted = member if kind == AuditEvent.UNLOCKED else None
            self.advance_record(record, head, now, lifted=lifted, first=first)
        return event_id

    def marks(self, status: ChainStatus) -> list[LogMark]:
        """Where the chain shows what was done to the log, for history: runs of missing
        entries, the end a check (``status``) found different from the outside record, and
        acknowledgements. Missing entries stay marked after they are acknowledged, and so does
        a truncated or deleted log through its acknowledgement event: an accepted break is still
        a break in the record people read."""
        with self.database.connect() as connection:
            places: set[int] = set()
            for table in CHAINED_TABLES:
                places.update(
                    int(row[0])
                    for row in connection.execute(f"SELECT seq FROM {table} WHERE seq IS NOT NULL")
                )
            acknowledged = connection.execute(
                "SELECT seq, at, actor, detail FROM events WHERE kind = ? AND seq IS NOT NULL",
                (AuditEvent.ACKNOWLEDGED,),
            ).fetchall()
        marks: list[LogMark] = []
        missing = sorted(set(range(1, max(places, default=0) + 1)) - places)
        for first, last in _runs(missing):
            text = (
                f"entry {first} of the audit log is missing (deleted)"
                if first == last
                else f"entries {first}-{last} of the audit log are missing (deleted)"
            )
            marks.append(LogMark(first - 1, Integrity.DELETED, text))
        if not status.intact and status.end is not None:
            marks.append(LogMark(status.end[0], Integrity.TAMPERED, status.end[1]))
        for seq, at, actor, detail in acknowledged:
            text = f"acknowledged by {actor}: {detail}"
            marks.append(LogMark(int(seq) - 1, Integrity.ACKNOWLEDGED, text, float(at), str(actor)))
        return sorted(marks, key=lambda mark: mark.after, reverse=True)

    def events(self, limit: int | None = 20) -> list[EventRecord]:
        """Operator events, newest first."""
        query = f"SELECT {', '.join(EVENT_COLUMNS)}, id FROM events ORDER BY seq DESC, id DESC"
        params: tuple[Any, ...] = ()
        if limit is not None:
            query += " LIMIT ?"
            params = (int(limit),)
        with self.database.connect() as connection:
            return [EventRecord(*row) for row in connection.execute(query, params)]


def _before_own_runs(
    connection: sqlite3.Connection, head: ChainHead, runs: Sequence[Sequence[Any]]
) -> tuple[ChainHead, list[tuple[int, int]]]:
    """The database's head as it was before the runs this installation wrote to it while it
    was tampered (so the check diagnoses what was done to the log, not those denials), and the
    runs (first place - 1, last place) no longer in the log."""
    lost: list[tuple[int, int]] = []
    for start_seq, start_hash, end_seq, end_hash in reversed(runs):
        end = ChainHead(int(end_seq), str(end_hash))
        if head == end:
            head = ChainHead(int(start_seq), str(start_hash))
        elif hash_at(connection, tuple(CHAINED_TABLES), end.seq) != end.hash:
            lost.append((int(start_seq), end.seq))
    return head, lost[::-1]


def _runs(places: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted places grouped into runs of consecutive ones (first, last)."""
    runs: list[tuple[int, int]] = []
    for place in places:
        if runs and runs[-1][1] == place - 1:
            runs[-1] = (runs[-1][0], place)
        else:
            runs.append((place, place))
    return runs


def first_hash(connection: sqlite3.Connection, record: dict[str, Any] | None) -> str | None:
    """The first entry's hash, when the outside record does not hold it yet."""
    if record is not None and record.get("first"):
        return None
    return hash_at(connection, tuple(CHAINED_TABLES), 1)


def _actor() -> str:
    """The operating-system user acting, for operator events."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
