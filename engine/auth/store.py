"""The audit store (mmauth.db): members, enrolment samples, every authentication attempt and
lockouts.

Connections and the schema are engine.auth.database's; attempts and lockouts are entries of the
hash chain kept by engine.auth.audit_log, and a grant is never written to a log that does not
match this installation's record of it.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.auth.audit_log import AuditLog, AuditTamperedError, LogMark, first_hash
from engine.auth.chain import ChainHead, ChainStatus, database_head, entry_hash
from engine.auth.database import ATTEMPT_COLUMNS, CHAINED_TABLES, Database
from engine.auth.words import UNCOUNTED_DENIALS, AuditEvent, Decision, Integrity, Origin


@dataclasses.dataclass(frozen=True)
class LockoutPolicy:
    """When repeated denials lock a member (from settings.auth)."""

    attempts: int = 5
    """Consecutive denied attempts on one member that lock it."""
    window_s: float = 600.0
    """Only denials this recent count."""
    duration_s: float = 300.0
    """How long a lock lasts."""


@dataclasses.dataclass(frozen=True)
class AttemptRecord:
    """One authentication attempt as written to (and read back from) the audit store."""

    at: float
    """Unix time the attempt started."""
    decision: str
    """``GRANTED`` or ``DENIED``."""
    reason: str
    """Reason code (``ok`` when granted)."""
    message: str
    """What a person was told."""
    seconds: float
    """Latency of the whole attempt."""
    steps: tuple[dict[str, Any], ...] = ()
    """Per-step outcomes: name, status, score, threshold, seconds, message."""
    face_path: str | None = None
    voice_path: str | None = None
    face_sha256: str | None = None
    """SHA-256 of the presented photo's bytes (None when unreadable)."""
    voice_sha256: str | None = None
    claimed_member: str | None = None
    """The identity the voice was verified against (the face's answer in this flow)."""
    identified_member: str | None = None
    """The member the face model named, when it named one."""
    category: str | None = None
    """Recommended product category, shown only on GRANTED."""
    face_score: float | None = None
    face_threshold: float | None = None
    voice_score: float | None = None
    voice_threshold: float | None = None
    origin: str = Origin.LIVE
    """``live`` (a person) or ``simulation``; simulated attempts never count towards a lockout."""
    id: int | None = None
    """Row id, set when read back."""
    seq: int | None = None
    """Place in the audit log's chain, set when read back (None: a row added by hand)."""
    integrity: str | None = None
    """Set when read back: None when the row verifies, else an Integrity (edited, unchained):
    what it shows may not be what was decided."""


@dataclasses.dataclass(frozen=True)
class Lockout:
    """A member locked after repeated denials."""

    member: str
    locked_at: float
    until: float
    """Unix time the lock ends."""
    failures: int
    """Denied attempts that triggered it."""


@dataclasses.dataclass(frozen=True)
class SampleRecord:
    """One enrolment file known to the store."""

    member: str
    modality: str
    """``face`` or ``voice``."""
    path: str
    """Workspace-relative path."""
    size: int
    mtime_ns: int
    sha256: str
    fingerprint: bytes | None
    """Perceptual hash (photos) or audio fingerprint (recordings), see engine.auth.replay."""
    seal: str | None = None
    """This installation's MAC of the record (engine.auth.replay.sample_seal): the replay check
    trusts a stored hash and fingerprint only when it verifies."""


@dataclasses.dataclass(frozen=True)
class MemberRecord:
    name: str
    customer_id: str | None
    enrolled_at: float
    updated_at: float


class AuditStore(Database):
    """mmauth.db: safe to share between threads and to use from many processes at once.

    Attempts and lockouts are appended to the hash chain through ``log`` (engine.auth.audit_log),
    which also checks the chain and records operators' events.
    """

    def __init__(self, path: Path, *, timeout_s: float = 30.0) -> None:
        super().__init__(path, timeout_s=timeout_s)
        self.log = AuditLog(self)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.log = AuditLog(self)

    # Attempts -------------------------------------------------------------------------------

    def record_attempt(
        self, attempt: AttemptRecord, policy: LockoutPolicy | None = None
    ) -> tuple[int, Lockout | None]:
        """Append an attempt to the chain; with a policy, lock its member when this denial
        completes a run.

        Counting and locking happen in the same transaction as the insert, so concurrent
        attempts cannot both miss (or both create) the lock. A denial is written whatever the
        state of the log (it is evidence); a grant only to a log that matches this
        installation's record, else AuditTamperedError. Returns the row id and the new lock.
        """
        values = dataclasses.asdict(attempt)
        values["steps"] = json.dumps(list(attempt.steps), default=str)
        with self.log.outside.locked(exclusive=True):
            record = self.log.outside.read()
            with self.transaction() as connection:
                before = database_head(connection, tuple(CHAINED_TABLES))
                trusted = self.log.matches_record(record, before)
                if not trusted and attempt.decision == Decision.GRANTED:
                    raise AuditTamperedError(
                        f"{self.path.name} does not match this installation's record of it: "
                        "a grant is not written to a log that may have been tampered with; "
                        "run mmauth audit verify"
                    )
                attempt_id, head = self.log.append(
                    connection, "attempts", [values[c] for c in ATTEMPT_COLUMNS]
                )
                lock = None
                if (
                    policy is not None
                    and attempt.origin == Origin.LIVE
                    and attempt.decision == Decision.DENIED
                    and attempt.identified_member is not None
                    and attempt.reason not in UNCOUNTED_DENIALS
                ):
                    lock, head = self._maybe_lock(connection, attempt, attempt_id, policy, head)
                first = first_hash(connection, record)
            if trusted:
                added = None if lock is None else dataclasses.asdict(lock)
                self.log.advance_record(record, head, attempt.at, added=added, first=first)
            elif record is not None:
                self.log.note_written_while_tampered(record, before, head)
        return attempt_id, lock

    def _maybe_lock(
        self,
        connection: sqlite3.Connection,
        attempt: AttemptRecord,
        attempt_id: int,
        policy: LockoutPolicy,
        head: ChainHead,
    ) -> tuple[Lockout | None, ChainHead]:
        member = attempt.identified_member
        # A run of denials starts after the last grant, lock and unlock, and the window's start.
        since = max(
            attempt.at - policy.window_s,
            _scalar(
                connection,
                "SELECT MAX(at) FROM attempts WHERE identified_member = ? AND origin = ? "
                "AND decision = ? AND seq IS NOT NULL",
                (member, Origin.LIVE, Decision.GRANTED),
            ),
            _scalar(connection, "SELECT MAX(locked_at) FROM lockouts WHERE member = ?", (member,)),
            _scalar(
                connection,
                "SELECT MAX(at) FROM events WHERE kind = ? AND member = ?",
                (AuditEvent.UNLOCKED, member),
            ),
        )
        uncounted = sorted(UNCOUNTED_DENIALS)
        failures = int(
            connection.execute(
                "SELECT COUNT(*) FROM attempts WHERE identified_member = ? AND origin = ? "
                f"AND decision = ? AND reason NOT IN ({', '.join('?' * len(uncounted))}) "
                "AND at > ? AND at <= ? AND seq IS NOT NULL",
                (member, Origin.LIVE, Decision.DENIED, *uncounted, since, attempt.at),
            ).fetchone()[0]
        )
        if failures < policy.attempts or member is None:
            return None, head
        lock = Lockout(member, attempt.at, attempt.at + policy.duration_s, failures)
        _, head = self.log.append(
            connection,
            "lockouts",
            (lock.member, lock.locked_at, lock.until, lock.failures, attempt_id),
        )
        return lock, head

    def active_lockout(self, member: str, now: float) -> Lockout | None:
        """The lock on ``member`` in force at ``now``, if any (an unlock lifts earlier locks)."""
        with self.connect() as connection:
            row = connection.execute(
                "SELECT member, locked_at, until, failures FROM lockouts AS lock "
                "WHERE member = ? AND locked_at <= ? AND until > ? AND NOT EXISTS ("
                "SELECT 1 FROM events WHERE kind = ? AND events.member = lock.member "
                "AND events.seq > lock.seq) ORDER BY until DESC LIMIT 1",
                (member, now, now, AuditEvent.UNLOCKED),
            ).fetchone()
        return Lockout(*row) if row else None

    def lockouts(self, member: str | None = None) -> list[Lockout]:
        query = "SELECT member, locked_at, until, failures FROM lockouts"
        params: tuple[Any, ...] = ()
        if member is not None:
            query += " WHERE member = ?"
            params = (member,)
        with self.connect() as connection:
            return [Lockout(*row) for row in connection.execute(query + " ORDER BY id", params)]

    def history(
        self,
        *,
        member: str | None = None,
        decision: str | None = None,
        origin: str | None = Origin.LIVE,
        limit: int | None = 50,
    ) -> list[AttemptRecord]:
        """Attempts, newest first, filtered by identified member, decision and origin."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("identified_member", member),
            ("decision", decision),
            ("origin", origin),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        query = f"SELECT id, {', '.join(ATTEMPT_COLUMNS)}, seq, prev_hash, row_hash FROM attempts"
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY at DESC, id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(int(limit))
        with self.connect() as connection:
            rows = connection.execute(query, params).fetchall()
        return [_attempt_from_row(row) for row in rows]

    def history_with_marks(
        self, status: ChainStatus, **filters: Any
    ) -> list[AttemptRecord | LogMark]:
        """``history`` with the audit log's marks (deleted entries, a tampered end,
        acknowledgements) at their places: above the newest attempt written before them.
        Marks older than every attempt shown are kept only when the listing is complete."""
        attempts = self.history(**filters)
        limit = filters.get("limit", 50)
        complete = limit is None or len(attempts) < limit
        marks = self.log.marks(status)
        rows: list[AttemptRecord | LogMark] = []
        for attempt in attempts:
            while marks and attempt.seq is not None and marks[0].after >= attempt.seq:
                rows.append(marks.pop(0))
            rows.append(attempt)
        return rows + (marks if complete else [])

    def count_attempts(self, origin: str | None = None) -> int:
        query = "SELECT COUNT(*) FROM attempts"
        params: tuple[str, ...] = ()
        if origin is not None:
            query, params = query + " WHERE origin = ?", (origin,)
        with self.connect() as connection:
            return int(connection.execute(query, params).fetchone()[0])

    # Members and samples --------------------------------------------------------------------

    def upsert_member(self, name: str, customer_id: str | None, now: float) -> None:
        with self.transaction() as connection:
            connection.execute(
                "INSERT INTO members (name, customer_id, enrolled_at, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "customer_id = COALESCE(excluded.customer_id, members.customer_id), "
                "updated_at = excluded.updated_at",
                (name, customer_id, now, now),
            )

    def remove_member(self, name: str) -> int:
        """Forget a member and their samples (attempts stay: the audit log is append-only)."""
        with self.transaction() as connection:
            removed = connection.execute("DELETE FROM samples WHERE member = ?", (name,)).rowcount
            connection.execute("DELETE FROM members WHERE name = ?", (name,))
        return int(removed)

    def members(self) -> list[MemberRecord]:
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT name, customer_id, enrolled_at, updated_at FROM members ORDER BY name"
            ).fetchall()
        return [MemberRecord(*row) for row in rows]

    def put_samples(self, samples: Sequence[SampleRecord], now: float) -> None:
        """Insert or refresh enrolment samples (keyed by modality and path)."""
        with self.transaction() as connection:
            connection.executemany(
                "INSERT INTO samples (member, modality, path, size, mtime_ns, sha256, "
                "fingerprint, seal, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (modality, path) DO UPDATE SET member = excluded.member, "
                "size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256, "
                "fingerprint = excluded.fingerprint, seal = excluded.seal, "
                "added_at = excluded.added_at",
                [
                    (
                        s.member,
                        s.modality,
                        s.path,
                        s.size,
                        s.mtime_ns,
                        s.sha256,
                        s.fingerprint,
                        s.seal,
                        now,
                    )
                    for s in samples
                ],
            )

    def delete_samples(self, modality: str, paths: Sequence[str]) -> None:
        with self.transaction() as connection:
            connection.executemany(
                "DELETE FROM samples WHERE modality = ? AND path = ?",
                [(modality, path) for path in paths],
            )

    def samples(self, member: str | None = None, modality: str | None = None) -> list[SampleRecord]:
        clauses, params = [], []
        if member is not None:
            clauses.append("member = ?")
            params.append(member)
        if modality is not None:
            clauses.append("modality = ?")
            params.append(modality)
        query = (
            "SELECT member, modality, path, size, mtime_ns, sha256, fingerprint, seal FROM samples"
        )
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with self.connect() as connection:
            rows = connection.execute(query + " ORDER BY modality, path", params).fetchall()
        return [SampleRecord(*row) for row in rows]


def _scalar(connection: sqlite3.Connection, query: str, params: tuple[Any, ...]) -> float:
    value = connection.execute(query, params).fetchone()[0]
    return float("-inf") if value is None else float(value)


def _attempt_from_row(row: Sequence[Any]) -> AttemptRecord:
    values = dict(zip(("id", *ATTEMPT_COLUMNS), row[:-3], strict=True))
    seq, prev_hash, row_hash = row[-3:]
    values["steps"] = tuple(json.loads(values["steps"]))
    if seq is None:
        integrity: str | None = Integrity.UNCHAINED
    elif entry_hash(seq, str(prev_hash), "attempts", row[1:-3]) != row_hash:
        integrity = Integrity.EDITED
    else:
        integrity = None
    return AttemptRecord(**values, seq=seq, integrity=integrity)


def open_store(workspace: Any) -> AuditStore:
    """The workspace's audit store (mmauth.db), created on first use."""
    return AuditStore(workspace.database)
