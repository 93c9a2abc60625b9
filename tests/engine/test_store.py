"""The audit store: schema, WAL, no lost rows under concurrency, lockouts, history queries."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from engine.auth.database import SCHEMA_VERSION, StoreError
from engine.auth.store import AttemptRecord, AuditStore, LockoutPolicy, SampleRecord
from engine.auth.words import Decision, Origin


def attempt(
    at: float, decision: str = Decision.DENIED, member: str | None = "alice", **extra
) -> AttemptRecord:
    return AttemptRecord(
        at=at,
        decision=decision,
        reason="ok" if decision == Decision.GRANTED else extra.pop("reason", "voice_mismatch"),
        message="test",
        seconds=0.01,
        identified_member=member,
        steps=({"name": "face", "status": "passed", "score": 0.9},),
        **extra,
    )


@pytest.fixture
def store(tmp_path: Path) -> AuditStore:
    return AuditStore(tmp_path / "mmauth.db")


def test_new_store_is_wal_with_schema_version(store: AuditStore) -> None:
    assert store.journal_mode() == "wal"
    assert store.schema_version() == SCHEMA_VERSION
    # Opening again is harmless and keeps the rows.
    store.record_attempt(attempt(1.0))
    assert AuditStore(store.path).count_attempts() == 1


def test_a_new_store_waits_while_another_connection_writes_it(tmp_path: Path) -> None:
    """Opening a new mmauth.db while another connection is writing it (two first logins at
    once) waits its turn instead of failing with "database is locked": SQLite refuses the
    switch to WAL at once here rather than calling the busy handler."""
    path = tmp_path / "mmauth.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE other_writer (x)")
    release = threading.Timer(0.3, other.execute, ("COMMIT",))
    release.start()
    try:
        store = AuditStore(path)
    finally:
        release.join()
        other.close()
    assert store.journal_mode() == "wal"
    assert store.schema_version() == SCHEMA_VERSION


def test_a_store_held_past_its_timeout_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "mmauth.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE other_writer (x)")
    with pytest.raises(StoreError, match="mmauth.db: database is locked"):
        AuditStore(path, timeout_s=0.2)
    other.execute("ROLLBACK")
    other.close()


def test_newer_schema_is_refused(store: AuditStore) -> None:
    with sqlite3.connect(store.path) as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99"):
        AuditStore(store.path)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "mmauth.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="mmauth.db"):
        AuditStore(path)


def test_attempt_round_trips_with_steps(store: AuditStore) -> None:
    row_id, lock = store.record_attempt(
        attempt(5.0, face_sha256="ab" * 32, face_score=0.8, face_threshold=0.6, category="Books")
    )
    assert lock is None
    (read,) = store.history()
    assert read.id == row_id
    assert read.face_sha256 == "ab" * 32
    assert read.face_score == pytest.approx(0.8)
    assert read.steps[0]["name"] == "face"


def test_eight_threads_lose_no_row(store: AuditStore) -> None:
    def worker(index: int) -> None:
        for number in range(100):
            store.record_attempt(attempt(index * 1000 + number, member=f"m{index}"))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count_attempts() == 800
    assert len(store.history(member="m3", limit=None)) == 100


def _process_worker(path: str, index: int) -> None:
    shared = AuditStore(Path(path))
    for number in range(50):
        shared.record_attempt(attempt(index * 1000 + number, member=f"p{index}"))


def test_four_processes_lose_no_row(store: AuditStore) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_process_worker, args=(str(store.path), i)) for i in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert store.count_attempts() == 200


def test_history_filters_and_orders_newest_first(store: AuditStore) -> None:
    store.record_attempt(attempt(1.0, Decision.GRANTED, "alice"))
    store.record_attempt(attempt(2.0, Decision.DENIED, "bob"))
    store.record_attempt(attempt(3.0, Decision.DENIED, "alice"))
    store.record_attempt(attempt(4.0, Decision.DENIED, "alice", origin=Origin.SIMULATION))
    assert [a.at for a in store.history(member="alice")] == [3.0, 1.0]
    assert [a.at for a in store.history(decision=Decision.DENIED)] == [3.0, 2.0]
    assert [a.at for a in store.history(limit=1)] == [3.0]
    assert len(store.history(origin=None)) == 4
    assert [a.origin for a in store.history(origin=Origin.SIMULATION)] == [Origin.SIMULATION]


POLICY = LockoutPolicy(attempts=5, window_s=600.0, duration_s=300.0)


def test_fifth_denial_in_the_window_locks_the_member(store: AuditStore) -> None:
    locks = [store.record_attempt(attempt(100.0 + i), POLICY)[1] for i in range(5)]
    assert locks[:4] == [None] * 4
    assert locks[4] is not None and locks[4].until == pytest.approx(104.0 + 300.0)
    assert store.active_lockout("alice", 105.0) is not None
    assert store.active_lockout("alice", 405.0) is None
    assert store.active_lockout("bob", 105.0) is None


def test_grant_resets_the_count(store: AuditStore) -> None:
    for i in range(4):
        store.record_attempt(attempt(100.0 + i), POLICY)
    store.record_attempt(attempt(104.0, Decision.GRANTED), POLICY)
    locks = [store.record_attempt(attempt(105.0 + i), POLICY)[1] for i in range(4)]
    assert locks == [None] * 4


def test_denials_outside_the_window_do_not_count(store: AuditStore) -> None:
    for i in range(4):
        store.record_attempt(attempt(100.0 + i), POLICY)
    assert store.record_attempt(attempt(100.0 + 601.0), POLICY)[1] is None


@pytest.mark.parametrize(
    "extra",
    [
        {"origin": Origin.SIMULATION},
        {"member": None},
        {"reason": "locked_out"},
        {"reason": "enrolment_changed"},
        {"reason": "internal_error"},
    ],
    ids=["simulated", "no-identity", "already-locked", "enrolment-changed", "system-fault"],
)
def test_attempts_that_do_not_count_towards_a_lock(store: AuditStore, extra: dict) -> None:
    member = extra.pop("member", "alice")
    for i in range(6):
        _, lock = store.record_attempt(attempt(100.0 + i, member=member, **extra), POLICY)
        assert lock is None


def test_after_a_lock_expires_counting_starts_again(store: AuditStore) -> None:
    for i in range(5):
        store.record_attempt(attempt(100.0 + i), POLICY)
    # One more denial after the lock ended must not lock again by itself.
    assert store.record_attempt(attempt(500.0), POLICY)[1] is None
    assert store.lockouts("alice")[0].failures == 5
    assert Origin.LIVE == "live"


def test_samples_and_members(store: AuditStore) -> None:
    sample = SampleRecord("alice", "face", "data/raw/faces/alice/a.png", 10, 1, "ff" * 32, b"x")
    store.upsert_member("alice", "C1", now=1.0)
    store.upsert_member("alice", None, now=2.0)
    store.put_samples([sample], now=1.0)
    store.put_samples([sample], now=2.0)  # refresh, no duplicate
    assert store.samples("alice") == [sample]
    (member,) = store.members()
    assert (member.customer_id, member.enrolled_at, member.updated_at) == ("C1", 1.0, 2.0)
    assert store.remove_member("alice") == 1
    assert store.samples() == [] and store.members() == []


def test_queries_are_parameterised(store: AuditStore) -> None:
    hostile = "x'); DROP TABLE attempts; --"
    store.record_attempt(attempt(1.0, member=hostile))
    assert store.history(member=hostile)[0].identified_member == hostile
    assert store.count_attempts() == 1
