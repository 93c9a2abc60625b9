"""mmauth.db's schema and connections: the part of the audit store every table shares.

SQLite in WAL mode, so readers never block the one writer; every write is one short
``BEGIN IMMEDIATE`` transaction with a busy timeout, so attempts logged at the same time from many
threads or processes queue up instead of failing or getting lost. Every statement is
parameterised. Each thread opens its own connection: a database object can be shared by threads
and sent to processes (it holds only the path).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.auth.chain import chain_existing_rows
from engine.core.errors import MmauthError

SCHEMA_VERSION = 3

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
    seal TEXT,
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


ATTEMPT_COLUMNS = (
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
LOCKOUT_COLUMNS = ("member", "locked_at", "until", "failures", "attempt_id")
EVENT_COLUMNS = ("at", "kind", "member", "actor", "detail")
CHAINED_TABLES = {
    "attempts": ATTEMPT_COLUMNS,
    "lockouts": LOCKOUT_COLUMNS,
    "events": EVENT_COLUMNS,
}


class Database:
    """mmauth.db's connections, one per thread, and its schema, created or migrated on open.

    The database must sit in an existing folder (its workspace): it is never created here.
    """

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
    def connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, its SQLite errors raised as StoreError."""
        connection = self._connection()
        try:
            yield connection
        except sqlite3.Error as error:
            raise StoreError(f"audit store {self.path}: {error}") from error

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front, so two writers never
        deadlock upgrading a read lock, they wait their turn (busy_timeout)."""
        with self.connect() as connection:
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
        mode = self._switch_to_wal()
        if mode.lower() != "wal":
            raise StoreError(f"{self.path}: the file system does not support WAL ({mode})")
        with self.connect() as connection:
            # executescript manages its own transaction; IMMEDIATE serialises concurrent creators.
            connection.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        with self.transaction() as connection:
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
                if int(row[0]) < 2:
                    chain_existing_rows(connection, CHAINED_TABLES, ("attempts", "lockouts"))
                columns = {c[1] for c in connection.execute("PRAGMA table_info(samples)")}
                if "seal" not in columns:
                    # Unsealed rows are fingerprinted again from their files when next used.
                    connection.execute("ALTER TABLE samples ADD COLUMN seal TEXT")
                connection.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                    (str(SCHEMA_VERSION),),
                )
            for statement in filter(str.strip, _CHAIN_INDEXES.split(";")):
                connection.execute(statement)

    def _switch_to_wal(self) -> str:
        """Put the file in WAL mode and return the mode it is in. Switching a new file upgrades a
        read lock to a write lock, and SQLite fails such an upgrade at once instead of waiting
        (two upgraders would deadlock): processes or threads opening a new mmauth.db together
        take turns here, within the busy timeout."""
        deadline = time.monotonic() + self.timeout_s
        pause = 0.001
        while True:
            try:
                return str(self._connection().execute("PRAGMA journal_mode = WAL").fetchone()[0])
            except sqlite3.Error as error:
                busy = (error.sqlite_errorcode or 0) & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() + pause > deadline:
                    raise StoreError(f"audit store {self.path}: {error}") from error
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def schema_version(self) -> int:
        with self.connect() as connection:
            row = connection.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        return int(row[0])

    def journal_mode(self) -> str:
        with self.connect() as connection:
            return str(connection.execute("PRAGMA journal_mode").fetchone()[0])
