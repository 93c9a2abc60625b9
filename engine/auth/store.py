"""The audit store (mmauth.db): members, enrolment samples, every authentication attempt, lockouts.

SQLite in WAL mode, so readers never block the one writer; every write is one short
``BEGIN IMMEDIATE`` transaction with a busy timeout, so attempts logged at the same time from many
threads or processes queue up instead of failing or getting lost. Every statement is
parameterised. Each operation opens its own connection: a store object can be shared by threads
and sent to processes (it holds only the path).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from engine.auth.words import Decision, Origin, Reason
from engine.core.errors import MmauthError

SCHEMA_VERSION = 1

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
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_member_at ON attempts (identified_member, at);
CREATE INDEX IF NOT EXISTS attempts_at ON attempts (at);
CREATE TABLE IF NOT EXISTS lockouts (
    id INTEGER PRIMARY KEY,
    member TEXT NOT NULL,
    locked_at REAL NOT NULL,
    until REAL NOT NULL,
    failures INTEGER NOT NULL,
    attempt_id INTEGER
);
CREATE INDEX IF NOT EXISTS lockouts_member ON lockouts (member, until);
"""


class StoreError(MmauthError):
    """The audit database cannot be opened, read or written."""

    title = "Audit store error"


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


class AuditStore:
    """mmauth.db: safe to share between threads and to use from many processes at once."""

    def __init__(self, path: Path, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._initialise()

    def __getstate__(self) -> dict[str, Any]:
        # Connections stay with the process and thread that opened them.
        return {"path": self.path, "timeout_s": self.timeout_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self.timeout_s = state["timeout_s"]
        self._local = threading.local()

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
        """Append an attempt; with a policy, lock its member when this denial completes a run.

        Counting and locking happen in the same transaction as the insert, so concurrent
        attempts cannot both miss (or both create) the lock. Returns the row id and the new lock.
        """
        values = dataclasses.asdict(attempt)
        values["steps"] = json.dumps(list(attempt.steps), default=str)
        placeholders = ", ".join("?" for _ in _ATTEMPT_COLUMNS)
        with self._write() as connection:
            cursor = connection.execute(
                f"INSERT INTO attempts ({', '.join(_ATTEMPT_COLUMNS)}) VALUES ({placeholders})",
                [values[column] for column in _ATTEMPT_COLUMNS],
            )
            attempt_id = int(cursor.lastrowid)
            lock = None
            if (
                policy is not None
                and attempt.origin == Origin.LIVE
                and attempt.decision == Decision.DENIED
                and attempt.identified_member is not None
                and attempt.reason != Reason.LOCKED_OUT
            ):
                lock = self._maybe_lock(connection, attempt, attempt_id, policy)
        return attempt_id, lock

    def _maybe_lock(
        self,
        connection: sqlite3.Connection,
        attempt: AttemptRecord,
        attempt_id: int,
        policy: LockoutPolicy,
    ) -> Lockout | None:
        member = attempt.identified_member
        # A run of denials starts after the last grant, the last lock, and the window's start.
        since = max(
            attempt.at - policy.window_s,
            _scalar(
                connection,
                "SELECT MAX(at) FROM attempts WHERE identified_member = ? AND origin = ? "
                "AND decision = ?",
                (member, Origin.LIVE, Decision.GRANTED),
            ),
            _scalar(connection, "SELECT MAX(locked_at) FROM lockouts WHERE member = ?", (member,)),
        )
        failures = int(
            connection.execute(
                "SELECT COUNT(*) FROM attempts WHERE identified_member = ? AND origin = ? "
                "AND decision = ? AND reason != ? AND at > ? AND at <= ?",
                (member, Origin.LIVE, Decision.DENIED, Reason.LOCKED_OUT, since, attempt.at),
            ).fetchone()[0]
        )
        if failures < policy.attempts:
            return None
        lock = Lockout(member, attempt.at, attempt.at + policy.duration_s, failures)
        connection.execute(
            "INSERT INTO lockouts (member, locked_at, until, failures, attempt_id) "
            "VALUES (?, ?, ?, ?, ?)",
            (lock.member, lock.locked_at, lock.until, lock.failures, attempt_id),
        )
        return lock

    def active_lockout(self, member: str, now: float) -> Lockout | None:
        """The lock on ``member`` in force at ``now``, if any."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT member, locked_at, until, failures FROM lockouts "
                "WHERE member = ? AND locked_at <= ? AND until > ? ORDER BY until DESC LIMIT 1",
                (member, now, now),
            ).fetchone()
        return Lockout(*row) if row else None

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
        query, params = "SELECT COUNT(*) FROM attempts", ()
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
