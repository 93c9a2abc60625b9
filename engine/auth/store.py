"""The audit store (mmauth.db): members, enrolment samples, every authentication attempt,
lockouts and operator events.

SQLite in WAL mode, so readers never block the one writer; every write is one short
``BEGIN IMMEDIATE`` transaction with a busy timeout, so attempts logged at the same time from many
threads or processes queue up instead of failing or getting lost. Every statement is
parameterised. Each operation opens its own connection: a store object can be shared by threads
and sent to processes (it holds only the path).

Attempts, lockouts and events form one hash chain whose head is also recorded outside the
workspace (engine.auth.chain): a deleted, truncated or edited log is found, and a grant is
never written to a log that does not match that record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from engine.auth.chain import (
    ChainHead,
    ChainStatus,
    OutsideRecord,
    append,
    database_head,
    entry_hash,
    hash_at,
    head_problems,
    verify_entries,
)
from engine.auth.words import AuditEvent, Decision, Origin, Reason
from engine.core.errors import MmauthError

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    name TEXT PRIMARY KEY,
    customer_id TEXT,
    enrolled_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY,
    member TEXT NOT NULL,
    modality TEXT NOT NULL CHECK (modality IN ('face', 'voice')),
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    fingerprint BLOB,
    added_at REAL NOT NULL,
    UNIQUE (modality, path)
);
CREATE INDEX IF NOT EXISTS samples_member ON samples (member, modality);
CREATE INDEX IF NOT EXISTS samples_sha256 ON samples (sha256);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    origin TEXT NOT NULL,
    face_path TEXT,
    voice_path TEXT,
    face_sha256 TEXT,
    voice_sha256 TEXT,
    claimed_member TEXT,
    identified_member TEXT,
    decision TEXT NOT NULL CHECK (decision IN ('GRANTED', 'DENIED')),
    reason TEXT NOT NULL,
    category TEXT,
    face_score REAL,
    face_threshold REAL,
    voice_score REAL,
    voice_threshold REAL,
    steps TEXT NOT NULL,
    seconds REAL NOT NULL,
    message TEXT NOT NULL,
    seq INTEGER, prev_hash TEXT, row_hash TEXT
);
CREATE INDEX IF NOT EXISTS attempts_member_at ON attempts (identified_member, at);
CREATE INDEX IF NOT EXISTS attempts_at ON attempts (at);
CREATE TABLE IF NOT EXISTS lockouts (
    id INTEGER PRIMARY KEY,
    member TEXT NOT NULL,
    locked_at REAL NOT NULL,
    until REAL NOT NULL,
    failures INTEGER NOT NULL,
    attempt_id INTEGER,
    seq INTEGER, prev_hash TEXT, row_hash TEXT
);
CREATE INDEX IF NOT EXISTS lockouts_member ON lockouts (member, until);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    member TEXT,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL,
    seq INTEGER, prev_hash TEXT, row_hash TEXT
);
"""
# After the migration from schema 1, whose tables lack the chain's columns.
_CHAIN_INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS attempts_seq ON attempts (seq);
CREATE UNIQUE INDEX IF NOT EXISTS lockouts_seq ON lockouts (seq);
CREATE UNIQUE INDEX IF NOT EXISTS events_seq ON events (seq);
CREATE INDEX IF NOT EXISTS events_member ON events (kind, member);
"""


class StoreError(MmauthError):
    """The audit database cannot be opened, read or written."""

    title = "Audit store error"


class AuditTamperedError(StoreError):
    """The audit log does not match this installation's record of it: deleted, truncated or
    edited. Authentication stays stopped until an operator acknowledges it."""

    title = "Audit log tampered"


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


@dataclasses.dataclass(frozen=True)
class MemberRecord:
    name: str
    customer_id: str | None
    enrolled_at: float
    updated_at: float


_ATTEMPT_COLUMNS = (
    "at",
    "origin",
    "face_path",
    "voice_path",
    "face_sha256",
    "voice_sha256",
    "claimed_member",
    "identified_member",
    "decision",
    "reason",
    "category",
    "face_score",
    "face_threshold",
    "voice_score",
    "voice_threshold",
    "steps",
    "seconds",
    "message",
)


_LOCKOUT_COLUMNS = ("member", "locked_at", "until", "failures", "attempt_id")
_EVENT_COLUMNS = ("at", "kind", "member", "actor", "detail")
CHAINED_TABLES = {
    "attempts": _ATTEMPT_COLUMNS,
    "lockouts": _LOCKOUT_COLUMNS,
    "events": _EVENT_COLUMNS,
}


class AuditStore:
    """mmauth.db: safe to share between threads and to use from many processes at once.

    The database must sit in an existing folder (its workspace): the store never creates one.
    """

    def __init__(self, path: Path, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._local = threading.local()
        self.outside = OutsideRecord(self.path)
        self._verified: ChainHead | None = None
        self._initialise()

    def __getstate__(self) -> dict[str, Any]:
        # Connections stay with the process and thread that opened them.
        return {"path": self.path, "timeout_s": self.timeout_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.timeout_s = state["timeout_s"]
        self._local = threading.local()
        self.outside = OutsideRecord(self.path)
        self._verified = None

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened once: closing the last connection to a WAL
        database checkpoints it (an fsync, ~10 ms), so connections are kept, one per thread."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = sqlite3.connect(
                    self.path, timeout=self.timeout_s, isolation_level=None
                )
                connection.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
                # With WAL, NORMAL survives any crash of mmauth itself; only an OS crash or a
                # power cut can lose the last commits. FULL would fsync every attempt.
                connection.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as error:
                raise StoreError(f"cannot open the audit store {self.path}: {error}") from error
            self._local.connection = connection
        return connection

    def close(self) -> None:
        """Close this thread's connection (others close when their threads' objects go)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        try:
            yield connection
        except sqlite3.Error as error:
            raise StoreError(f"audit store {self.path}: {error}") from error

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front, so two writers never
        deadlock upgrading a read lock, they wait their turn (busy_timeout)."""
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _initialise(self) -> None:
        if not self.path.parent.is_dir():
            raise StoreError(
                f"cannot open the audit store {self.path}: the folder {self.path.parent} does "
                "not exist (a workspace is never created by reading it)"
            )
        with self._connect() as connection:
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: the file system does not support WAL ({mode})")
        with self._connect() as connection:
            # executescript manages its own transaction; IMMEDIATE serialises concurrent creators.
            connection.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        with self._write() as connection:
            row = connection.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
            if row is None:
                connection.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {row[0]}, newer than this mmauth "
                    f"understands ({SCHEMA_VERSION}); upgrade mmauth"
                )
            elif int(row[0]) < SCHEMA_VERSION:
                _chain_existing_rows(connection)
                connection.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                    (str(SCHEMA_VERSION),),
                )
            for statement in filter(str.strip, _CHAIN_INDEXES.split(";")):
                connection.execute(statement)

    def schema_version(self) -> int:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        return int(row[0])

    def journal_mode(self) -> str:
        with self._connect() as connection:
            return str(connection.execute("PRAGMA journal_mode").fetchone()[0])

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
        with self.outside.locked(exclusive=True):
            record = self.outside.read()
            with self._write() as connection:
                before = database_head(connection, tuple(CHAINED_TABLES))
                trusted = self._matches_record(record, before)
                if not trusted and attempt.decision == Decision.GRANTED:
                    raise AuditTamperedError(
                        f"{self.path.name} does not match this installation's record of it: "
                        "a grant is not written to a log that may have been tampered with; "
                        "run mmauth audit verify"
                    )
                attempt_id, head = self._append(
                    connection, "attempts", [values[c] for c in _ATTEMPT_COLUMNS]
                )
                lock = None
                if (
                    policy is not None
                    and attempt.origin == Origin.LIVE
                    and attempt.decision == Decision.DENIED
                    and attempt.identified_member is not None
                    and attempt.reason != Reason.LOCKED_OUT
                ):
                    lock, head = self._maybe_lock(connection, attempt, attempt_id, policy, head)
                first = _first_hash(connection, record)
            if trusted:
                self._write_record(record, head, attempt.at, added=lock, first=first)
        return attempt_id, lock

    def _append(
        self, connection: sqlite3.Connection, table: str, values: Sequence[Any]
    ) -> tuple[int, ChainHead]:
        return append(connection, table, CHAINED_TABLES[table], values, tuple(CHAINED_TABLES))

    def _matches_record(self, record: dict[str, Any] | None, head: ChainHead) -> bool:
        recorded = self.outside.head(record)
        return head == recorded if recorded is not None else head.seq == 0

    def _write_record(
        self,
        record: dict[str, Any] | None,
        head: ChainHead,
        now: float,
        *,
        added: Lockout | None = None,
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
            locks.append(dataclasses.asdict(added))
        self.outside.write(record, head, lockouts=locks, **changes)

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
        failures = int(
            connection.execute(
                "SELECT COUNT(*) FROM attempts WHERE identified_member = ? AND origin = ? "
                "AND decision = ? AND reason != ? AND at > ? AND at <= ? AND seq IS NOT NULL",
                (member, Origin.LIVE, Decision.DENIED, Reason.LOCKED_OUT, since, attempt.at),
            ).fetchone()[0]
        )
        if failures < policy.attempts or member is None:
            return None, head
        lock = Lockout(member, attempt.at, attempt.at + policy.duration_s, failures)
        _, head = self._append(
            connection,
            "lockouts",
            (lock.member, lock.locked_at, lock.until, lock.failures, attempt_id),
        )
        return lock, head

    def active_lockout(self, member: str, now: float) -> Lockout | None:
        """The lock on ``member`` in force at ``now``, if any (an unlock lifts earlier locks)."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT member, locked_at, until, failures FROM lockouts AS lock "
                "WHERE member = ? AND locked_at <= ? AND until > ? AND NOT EXISTS ("
                "SELECT 1 FROM events WHERE kind = ? AND events.member = lock.member "
                "AND events.seq > lock.seq) ORDER BY until DESC LIMIT 1",
                (member, now, now, AuditEvent.UNLOCKED),
            ).fetchone()
        return Lockout(*row) if row else None

    # The chain ------------------------------------------------------------------------------

    def check_chain(self, *, full: bool = False) -> ChainStatus:
        """Compare the log with this installation's record of it.

        The first check of a store object walks the whole chain, later ones only the entries
        written since (``full`` walks everything again). A log this installation has never
        seen (a new installation, a moved workspace, a schema-1 database) is adopted, and that
        is logged as an event.
        """
        with self.outside.locked(exclusive=True):
            status = self._check(full=full)
            if status.recorded is None and status.intact and status.entries > 0:
                with self._write() as connection:
                    _, head = self._append(
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
                    first = _first_hash(connection, None)
                self._write_record(None, head, time.time(), first=first)
                self._verified = head
        return status

    def _check(self, *, full: bool) -> ChainStatus:
        record = self.outside.read()
        accepted = frozenset(int(seq) for seq in (record or {}).get("accepted_breaks", []))
        known_unchained = {tuple(row) for row in (record or {}).get("accepted_unchained", [])}
        tables = tuple(CHAINED_TABLES)
        with self._connect() as connection:
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
        new_unchained = [row for row in unchained if row not in known_unchained]
        if not new_unchained:
            problems = [p for p in problems if "outside the chain" not in p]
        problems += head_problems(self.path.name, head, recorded, at_recorded, first)
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
            with self._write() as connection:
                _, head = self._append(
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
                        _, head = self._append(
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
            self._write_record(
                record,
                head,
                now,
                first=first,
                accepted_breaks=breaks,
                accepted_unchained=unchained,
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
            with self._write() as connection:
                if not self._matches_record(
                    record, database_head(connection, tuple(CHAINED_TABLES))
                ):
                    raise AuditTamperedError(
                        f"{self.path.name} does not match this installation's record of it: "
                        "run mmauth audit verify, then mmauth audit acknowledge"
                    )
                event_id, head = self._append(
                    connection, "events", (now, kind, member, _actor(), detail)
                )
                first = _first_hash(connection, record)
            lifted = member if kind == AuditEvent.UNLOCKED else None
            self._write_record(record, head, now, lifted=lifted, first=first)
        return event_id

    def events(self, limit: int | None = 20) -> list[EventRecord]:
        """Operator events, newest first."""
        query = f"SELECT {', '.join(_EVENT_COLUMNS)}, id FROM events ORDER BY seq DESC, id DESC"
        params: tuple[Any, ...] = ()
        if limit is not None:
            query += " LIMIT ?"
            params = (int(limit),)
        with self._connect() as connection:
            return [EventRecord(*row) for row in connection.execute(query, params)]

    def lockouts(self, member: str | None = None) -> list[Lockout]:
        query = "SELECT member, locked_at, until, failures FROM lockouts"
        params: tuple[Any, ...] = ()
        if member is not None:
            query += " WHERE member = ?"
            params = (member,)
        with self._connect() as connection:
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
        query = f"SELECT id, {', '.join(_ATTEMPT_COLUMNS)} FROM attempts"
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY at DESC, id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(int(limit))
        with self._connect() as connection:
            rows = connection.execute(query, params).fetchall()
        return [_attempt_from_row(row) for row in rows]

    def count_attempts(self, origin: str | None = None) -> int:
        query = "SELECT COUNT(*) FROM attempts"
        params: tuple[str, ...] = ()
        if origin is not None:
            query, params = query + " WHERE origin = ?", (origin,)
        with self._connect() as connection:
            return int(connection.execute(query, params).fetchone()[0])

    # Members and samples --------------------------------------------------------------------

    def upsert_member(self, name: str, customer_id: str | None, now: float) -> None:
        with self._write() as connection:
            connection.execute(
                "INSERT INTO members (name, customer_id, enrolled_at, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "customer_id = COALESCE(excluded.customer_id, members.customer_id), "
                "updated_at = excluded.updated_at",
                (name, customer_id, now, now),
            )

    def remove_member(self, name: str) -> int:
        """Forget a member and their samples (attempts stay: the audit log is append-only)."""
        with self._write() as connection:
            removed = connection.execute("DELETE FROM samples WHERE member = ?", (name,)).rowcount
            connection.execute("DELETE FROM members WHERE name = ?", (name,))
        return int(removed)

    def members(self) -> list[MemberRecord]:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT name, customer_id, enrolled_at, updated_at FROM members ORDER BY name"
            ).fetchall()
        return [MemberRecord(*row) for row in rows]

    def put_samples(self, samples: Sequence[SampleRecord], now: float) -> None:
        """Insert or refresh enrolment samples (keyed by modality and path)."""
        with self._write() as connection:
            connection.executemany(
                "INSERT INTO samples (member, modality, path, size, mtime_ns, sha256, "
                "fingerprint, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (modality, path) DO UPDATE SET member = excluded.member, "
                "size = excluded.size, mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256, "
                "fingerprint = excluded.fingerprint, added_at = excluded.added_at",
                [
                    (
                        s.member,
                        s.modality,
                        s.path,
                        s.size,
                        s.mtime_ns,
                        s.sha256,
                        s.fingerprint,
                        now,
                    )
                    for s in samples
                ],
            )

    def delete_samples(self, modality: str, paths: Sequence[str]) -> None:
        with self._write() as connection:
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
        query = "SELECT member, modality, path, size, mtime_ns, sha256, fingerprint FROM samples"
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with self._connect() as connection:
            rows = connection.execute(query + " ORDER BY modality, path", params).fetchall()
        return [SampleRecord(*row) for row in rows]


def _first_hash(connection: sqlite3.Connection, record: dict[str, Any] | None) -> str | None:
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


def _chain_existing_rows(connection: sqlite3.Connection) -> None:
    """Schema 1 -> 2: add the chain's columns and chain the rows already there, attempts and
    lockouts in the order they were written."""
    for table in ("attempts", "lockouts"):
        present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        for column in ("seq INTEGER", "prev_hash TEXT", "row_hash TEXT"):
            if column.split()[0] not in present:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    tables = tuple(CHAINED_TABLES)
    for table in ("attempts", "lockouts"):
        columns = CHAINED_TABLES[table]
        rows = connection.execute(
            f"SELECT id, {', '.join(columns)} FROM {table} WHERE seq IS NULL ORDER BY id"
        ).fetchall()
        for row in rows:
            head = database_head(connection, tables)
            digest = entry_hash(head.seq + 1, head.hash, table, row[1:])
            connection.execute(
                f"UPDATE {table} SET seq = ?, prev_hash = ?, row_hash = ? WHERE id = ?",
                (head.seq + 1, head.hash, digest, row[0]),
            )


def _scalar(connection: sqlite3.Connection, query: str, params: tuple[Any, ...]) -> float:
    value = connection.execute(query, params).fetchone()[0]
    return float("-inf") if value is None else float(value)


def _attempt_from_row(row: Sequence[Any]) -> AttemptRecord:
    values = dict(zip(("id", *_ATTEMPT_COLUMNS), row, strict=True))
    values["steps"] = tuple(json.loads(values["steps"]))
    return AttemptRecord(**values)


def open_store(workspace: Any) -> AuditStore:
    """The workspace's audit store (mmauth.db), created on first use."""
    return AuditStore(workspace.database)
