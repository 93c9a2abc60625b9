"""The audit log's hash chain, and its head kept outside the database.

Every row of ``attempts``, ``lockouts`` and ``events`` in mmauth.db holds its place in one
sequence (``seq``), the hash of the row before it (``prev_hash``) and its own (``row_hash``,
SHA-256 over its place, the previous hash and its content as read back from SQLite). Editing a
row breaks its hash; deleting one breaks the next row's link; the chain's last entry is also
recorded outside the workspace (engine.core.installation), with the lockouts in force, so
deleting, truncating or rewriting the whole database is found too. The hashes are not keyed:
anyone can verify a copy of the log; it is the outside record that an attacker writing the
workspace cannot reach.

A break an operator has looked at is acknowledged (``mmauth audit acknowledge``): the outside
record then lists the entries where the chain may break, and takes the current end as its head.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.core.installation import read_state, workspace_state_dir, write_state

GENESIS = "0" * 64
HEAD_FILE = "audit.json"
LOCK_FILE = "audit.lock"


@dataclasses.dataclass(frozen=True)
class ChainHead:
    """The last entry of a chain: its place and hash (place 0 and GENESIS when empty)."""

    seq: int = 0
    hash: str = GENESIS


@dataclasses.dataclass(frozen=True)
class ChainStatus:
    """What a check of the audit log found."""

    intact: bool
    entries: int
    """Entries the database's chain holds (its head's place)."""
    recorded: int | None
    """Entries this installation recorded last (None: it had never seen this log)."""
    problems: tuple[str, ...] = ()
    """What is wrong, one sentence each, naming the entries."""
    breaks: tuple[int, ...] = ()
    """Places where the chain inside the database breaks (edited or missing entries)."""
    unchained: tuple[tuple[str, int], ...] = ()
    """(table, row id) of rows outside the chain (added by hand)."""
    end: tuple[int, str] | None = None
    """When the log's end is not the one recorded outside it: the place after which it
    differs, and the problem (also in ``problems``)."""


@dataclasses.dataclass(frozen=True)
class _Entry:
    table: str
    row_id: int
    prev_hash: str | None
    row_hash: str | None
    content: tuple[Any, ...]


def entry_hash(seq: int, prev_hash: str, table: str, content: Sequence[Any]) -> str:
    """The hash of one entry: its place, the previous entry's hash, its table and content."""
    text = json.dumps(
        [seq, prev_hash, table, list(content)], separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def database_head(connection: sqlite3.Connection, tables: Sequence[str]) -> ChainHead:
    """The chain's last entry as the database holds it."""
    best = ChainHead()
    for table in tables:
        row = connection.execute(
            f"SELECT seq, row_hash FROM {table} WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row is not None and row[0] > best.seq:
            best = ChainHead(int(row[0]), str(row[1]))
    return best


def append(
    connection: sqlite3.Connection,
    table: str,
    columns: Sequence[str],
    values: Sequence[Any],
    tables: Sequence[str],
) -> tuple[int, ChainHead]:
    """Insert a row as the chain's next entry (inside the caller's write transaction).

    The hash covers the content as SQLite stores it (read back), so type conversions by column
    affinity cannot make a later check disagree. Returns the row id and the new head.
    """
    head = database_head(connection, tables)
    seq = head.seq + 1
    placeholders = ", ".join("?" for _ in (*columns, "seq", "prev_hash"))
    cursor = connection.execute(
        f"INSERT INTO {table} ({', '.join(columns)}, seq, prev_hash) VALUES ({placeholders})",
        [*values, seq, head.hash],
    )
    row_id = int(cursor.lastrowid or 0)
    stored = connection.execute(
        f"SELECT {', '.join(columns)} FROM {table} WHERE id = ?", (row_id,)
    ).fetchone()
    digest = entry_hash(seq, head.hash, table, stored)
    connection.execute(f"UPDATE {table} SET row_hash = ? WHERE id = ?", (digest, row_id))
    return row_id, ChainHead(seq, digest)


def chain_existing_rows(
    connection: sqlite3.Connection,
    chained: Mapping[str, Sequence[str]],
    tables: Sequence[str],
) -> None:
    """Migrate a log written before the chain (schema 1 -> 2): add the chain's columns to
    ``tables`` and chain the rows already there, table by table in the order they were written."""
    for table in tables:
        present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        for column in ("seq INTEGER", "prev_hash TEXT", "row_hash TEXT"):
            if column.split()[0] not in present:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    for table in tables:
        columns = chained[table]
        rows = connection.execute(
            f"SELECT id, {', '.join(columns)} FROM {table} WHERE seq IS NULL ORDER BY id"
        ).fetchall()
        for row in rows:
            head = database_head(connection, tuple(chained))
            digest = entry_hash(head.seq + 1, head.hash, table, row[1:])
            connection.execute(
                f"UPDATE {table} SET seq = ?, prev_hash = ?, row_hash = ? WHERE id = ?",
                (head.seq + 1, head.hash, digest, row[0]),
            )


def verify_entries(
    connection: sqlite3.Connection,
    chained: Mapping[str, Sequence[str]],
    *,
    after: ChainHead | None = None,
    accepted_breaks: frozenset[int] = frozenset(),
) -> tuple[ChainHead, list[str], list[int], list[tuple[str, int]]]:
    """Recompute the chain from the entry after ``after`` (from the start when None): its
    head, problems, breaks (places not in ``accepted_breaks``) and rows without a place."""
    after = after or ChainHead()
    entries: dict[int, _Entry] = {}
    unchained: list[tuple[str, int]] = []
    for table, columns in chained.items():
        query = (
            f"SELECT id, seq, prev_hash, row_hash, {', '.join(columns)} FROM {table} "
            "WHERE seq IS NULL OR seq > ?"
        )
        for row in connection.execute(query, (after.seq,)):
            if row[1] is None:
                unchained.append((table, int(row[0])))
                continue
            entries[int(row[1])] = _Entry(table, int(row[0]), row[2], row[3], tuple(row[4:]))
    problems: list[str] = []
    breaks: list[int] = []
    previous = after.hash
    last = max(entries, default=after.seq)
    for seq in range(after.seq + 1, last + 1):
        entry = entries.get(seq)
        if entry is None:
            if seq not in accepted_breaks:
                breaks.append(seq)
                problems.append(f"entry {seq} is missing (deleted)")
            continue
        where = f"entry {seq} ({_row_name(entry.table)} #{entry.row_id})"
        recomputed = entry_hash(seq, str(entry.prev_hash), entry.table, entry.content)
        if seq not in accepted_breaks:
            if entry.prev_hash != previous:
                breaks.append(seq)
                problems.append(f"{where} does not follow the entry before it (entries deleted)")
            elif recomputed != entry.row_hash:
                breaks.append(seq)
                problems.append(f"{where} was edited after it was written")
        previous = str(entry.row_hash)
    if unchained:
        names = ", ".join(f"{_row_name(t)} #{i}" for t, i in unchained[:5])
        problems.append(f"{len(unchained)} rows are outside the chain (added by hand): {names}")
    return ChainHead(last, previous), problems, breaks, unchained


def hash_at(connection: sqlite3.Connection, tables: Sequence[str], seq: int) -> str | None:
    """The stored hash of the entry at place ``seq`` (None when there is none)."""
    for table in tables:
        row = connection.execute(f"SELECT row_hash FROM {table} WHERE seq = ?", (seq,)).fetchone()
        if row is not None:
            return str(row[0])
    return None


def _row_name(table: str) -> str:
    return {"attempts": "attempt", "lockouts": "lockout", "events": "event"}.get(table, table)


class OutsideRecord:
    """This installation's record of one audit log: its head, lockouts and acknowledged breaks,
    in ``workspaces/<id>/audit.json`` of the config folder, guarded by a file lock."""

    def __init__(self, database: Path) -> None:
        self.database = Path(database)
        self._folder: Path | None = None

    @property
    def folder(self) -> Path:
        if self._folder is None:
            self._folder = workspace_state_dir(self.database.parent)
        return self._folder

    @property
    def path(self) -> Path:
        return self.folder / HEAD_FILE

    @contextlib.contextmanager
    def locked(self, exclusive: bool) -> Iterator[None]:
        """Hold the record's lock: exclusive to append, shared to compare with the database
        (so no writer moves the database's head between the two reads)."""
        with (self.folder / LOCK_FILE).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def read(self) -> dict[str, Any] | None:
        return read_state(self.path)

    def head(self, record: dict[str, Any] | None) -> ChainHead | None:
        if record is None:
            return None
        return ChainHead(int(record.get("seq", 0)), str(record.get("hash", GENESIS)))

    def write(self, record: dict[str, Any] | None, head: ChainHead, **changes: Any) -> None:
        updated = dict(record or {})
        updated.update(
            database=str(self.database.resolve()), seq=head.seq, hash=head.hash, **changes
        )
        write_state(self.path, updated)


def head_problems(
    name: str,
    database: ChainHead,
    recorded: ChainHead | None,
    stored_at_recorded: str | None,
    first: tuple[str | None, str | None] = (None, None),
) -> list[tuple[int, str]]:
    """How the database's head disagrees with the one recorded outside it (nothing when equal
    or never recorded), with the place in the chain after which it does. ``stored_at_recorded``:
    the database's hash at the recorded place; ``first``: the first entry's hash as recorded
    outside and as stored."""
    if recorded is None or database == recorded:
        return []
    recorded_first, stored_first = first
    if database.seq > 0 and recorded_first is not None and stored_first != recorded_first:
        return [
            (
                0,
                f"{name} was deleted or replaced: its first entry is not the one this "
                f"installation recorded (it had recorded {recorded.seq} entries)",
            )
        ]
    if database.seq == 0:
        return [
            (
                0,
                f"{name} was deleted or emptied: this installation had recorded "
                f"{recorded.seq} entries",
            )
        ]
    if database.seq < recorded.seq:
        return [
            (
                database.seq,
                f"{name} was truncated: it ends at entry {database.seq}, this installation had "
                f"recorded {recorded.seq} entries (the last ones were deleted)",
            )
        ]
    if database.seq > recorded.seq and stored_at_recorded == recorded.hash:
        return [
            (
                recorded.seq,
                f"{name} holds {database.seq - recorded.seq} entries after entry {recorded.seq} "
                "that this installation did not record (added by hand, or mmauth stopped "
                "between writing an attempt and recording it)",
            )
        ]
    return [
        (
            max(recorded.seq - 1, 0),
            f"{name} was rewritten: entry {recorded.seq} is not the one this installation recorded",
        )
    ]
