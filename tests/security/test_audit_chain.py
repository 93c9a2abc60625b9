"""The audit log shows tampering: a deleted, truncated, edited or rewritten mmauth.db stops
authentication until an operator acknowledges it; lockouts survive; operators' actions are
logged."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from engine.auth.chain import HEAD_FILE, entry_hash
from engine.auth.database import SCHEMA_VERSION
from engine.auth.operator import acknowledge_audit, unlock_member, verify_audit
from engine.auth.store import AuditStore, open_store
from engine.auth.words import AuditEvent, Decision, Reason, Step, StepStatus
from engine.core.errors import MmauthError, UnknownMemberError
from engine.core.workspace import Workspace
from engine.sample.workspace import write_sample_workspace
from tests.engine.test_auth import Clock, make, probe_folder

ALICE = ("alice-1.png", "alice-hello.wav")
ALICE_WRONG_VOICE = ("alice-1.png", "bob-open_sesame.wav")


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return probe_folder(tmp_path_factory.mktemp("probes"))


def attempt(space: Workspace, probes: Path, files: tuple[str, str] = ALICE, clock=None):
    authenticator = make(space, clock, store=AuditStore(space.database))
    return authenticator.authenticate(probes / files[0], probes / files[1])


def sql(space: Workspace, statement: str, *params) -> None:
    connection = sqlite3.connect(space.database)
    with connection:
        connection.execute(statement, params)
    connection.close()


def logged_twice(space: Workspace, probes: Path) -> None:
    assert attempt(space, probes).granted
    assert not attempt(space, probes, ALICE_WRONG_VOICE).granted
    assert verify_audit(space).intact


def assert_stopped(space: Workspace, probes: Path, words: str) -> None:
    decision = attempt(space, probes)
    assert not decision.granted
    assert decision.reason == Reason.AUDIT_TAMPERED
    lockout = decision.step(Step.LOCKOUT)
    assert lockout.status == StepStatus.FAILED
    assert words in decision.message and "mmauth audit acknowledge" in decision.message
    assert not verify_audit(space).intact


def test_intact_log_grants_and_verifies(space: Workspace, probes: Path) -> None:
    logged_twice(space, probes)
    status = verify_audit(space)
    assert status.entries == 2 and status.recorded == 2


def test_deleted_log_stops_authentication(space: Workspace, probes: Path) -> None:
    logged_twice(space, probes)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{space.database}{suffix}").unlink(missing_ok=True)
    assert_stopped(space, probes, "deleted")
    # Still stopped on the next start: the denial written to the new file changes nothing.
    assert_stopped(space, probes, "was deleted or emptied")


def test_a_sample_written_into_the_emptied_folder_retires_the_old_records(
    space: Workspace, probes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.sample.workspace as sample_module

    monkeypatch.setattr(sample_module, "CUSTOMERS", 40)
    logged_twice(space, probes)
    shutil.rmtree(space.root)
    report = write_sample_workspace(space.root, members=1, strangers=0)
    # The new workspace is not taken for the old one with its log deleted...
    assert verify_audit(space).intact
    # ...and the old workspace's evidence is kept, and named.
    retired = report.previous_records
    assert retired is not None and retired.parent.name == "retired"
    assert json.loads((retired / HEAD_FILE).read_text())["seq"] == 2
    assert str(retired) in (report.previous_records_note() or "")


def test_a_sample_forced_over_a_workspace_keeps_its_records(
    space: Workspace, probes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.sample.workspace as sample_module

    monkeypatch.setattr(sample_module, "CUSTOMERS", 40)
    logged_twice(space, probes)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{space.database}{suffix}").unlink(missing_ok=True)
    # Not an empty folder: its log was deleted, and writing a sample over it changes nothing.
    report = write_sample_workspace(space.root, members=1, strangers=0)
    assert report.previous_records is None and report.previous_records_note() is None
    assert not verify_audit(space).intact


def test_truncated_log_stops_authentication(space: Workspace, probes: Path) -> None:
    logged_twice(space, probes)
    sql(space, "DELETE FROM attempts WHERE id = (SELECT MAX(id) FROM attempts)")
    assert_stopped(space, probes, "truncated")


def test_edited_row_stops_authentication(space: Workspace, probes: Path) -> None:
    logged_twice(space, probes)
    sql(space, "UPDATE attempts SET decision = 'GRANTED', reason = 'ok' WHERE id = 2")
    assert_stopped(space, probes, "entry 2 (attempt #2) was edited")


def test_deleted_middle_row_stops_authentication(space: Workspace, probes: Path) -> None:
    logged_twice(space, probes)
    assert attempt(space, probes).granted
    sql(space, "DELETE FROM attempts WHERE id = 2")
    assert_stopped(space, probes, "entry 2 is missing")


def test_rewritten_chain_is_found_by_the_outside_record(space: Workspace, probes: Path) -> None:
    """Editing a row and recomputing every hash after it keeps the chain consistent inside the
    database; the head recorded outside it still tells."""
    logged_twice(space, probes)
    connection = sqlite3.connect(space.database)
    with connection:
        connection.execute("UPDATE attempts SET decision = 'GRANTED', reason = 'ok' WHERE id = 2")
        columns = "at, origin, face_path, voice_path, face_sha256, voice_sha256, claimed_member, "
        columns += "identified_member, decision, reason, category, face_score, face_threshold, "
        columns += "voice_score, voice_threshold, steps, seconds, message"
        for row_id, seq, _ in connection.execute(
            "SELECT id, seq, prev_hash FROM attempts ORDER BY seq"
        ).fetchall():
            content = connection.execute(
                f"SELECT {columns} FROM attempts WHERE id = ?", (row_id,)
            ).fetchone()
            previous = (
                connection.execute(
                    "SELECT row_hash FROM attempts WHERE seq = ?", (seq - 1,)
                ).fetchone()
                if seq > 1
                else ("0" * 64,)
            )[0]
            digest = entry_hash(seq, previous, "attempts", content)
            connection.execute(
                "UPDATE attempts SET prev_hash = ?, row_hash = ? WHERE id = ?",
                (previous, digest, row_id),
            )
    connection.close()
    assert_stopped(space, probes, "rewritten")


def test_acknowledge_resumes_and_is_logged(space: Workspace, probes: Path) -> None:
    logged_twice(space, probes)
    sql(space, "UPDATE attempts SET message = 'nothing to see' WHERE id = 1")
    assert not attempt(space, probes).granted
    acknowledged = acknowledge_audit(space)
    assert not acknowledged.intact and "edited" in acknowledged.problems[0]
    assert verify_audit(space).intact
    assert attempt(space, probes).granted
    events = open_store(space).log.events()
    assert events[-1].kind == AuditEvent.ACKNOWLEDGED and "edited" in events[-1].detail
    assert acknowledge_audit(space).intact  # nothing left to acknowledge


def test_lockout_survives_deleting_the_log(space: Workspace, probes: Path) -> None:
    """A locked-out member who deletes mmauth.db is still denied, and still locked after an
    operator acknowledges the deletion: the lock is restored from the outside record."""
    clock = Clock()
    for _ in range(5):
        clock.now += 1
        attempt(space, probes, ALICE_WRONG_VOICE, clock)
    clock.now += 1
    assert attempt(space, probes, ALICE, clock).reason == Reason.LOCKED_OUT
    for suffix in ("", "-wal", "-shm"):
        Path(f"{space.database}{suffix}").unlink(missing_ok=True)
    clock.now += 1
    decision = attempt(space, probes, ALICE, clock)
    assert not decision.granted and decision.reason == Reason.AUDIT_TAMPERED
    open_store(space).log.acknowledge(clock.now)
    clock.now += 1
    assert attempt(space, probes, ALICE, clock).reason == Reason.LOCKED_OUT


def test_unlock_lifts_a_lock_and_is_logged(space: Workspace, probes: Path) -> None:
    clock = Clock()
    for _ in range(5):
        clock.now += 1
        attempt(space, probes, ALICE_WRONG_VOICE, clock)
    clock.now += 1
    assert attempt(space, probes, ALICE, clock).reason == Reason.LOCKED_OUT
    lock = unlock_member(space, "alice", now=clock.now)
    assert lock.member == "alice" and lock.failures == 5
    clock.now += 1
    assert attempt(space, probes, ALICE, clock).granted
    event = open_store(space).log.events()[0]
    assert event.kind == AuditEvent.UNLOCKED and event.member == "alice" and event.actor
    with pytest.raises(MmauthError, match="alice is not locked"):
        unlock_member(space, "alice", now=clock.now)
    with pytest.raises(UnknownMemberError, match="no member named 'nobody'"):
        unlock_member(space, "nobody", now=clock.now)


def test_a_grant_is_never_written_to_a_tampered_log(space: Workspace) -> None:
    from engine.auth.audit_log import AuditTamperedError
    from engine.auth.store import AttemptRecord

    store = open_store(space)
    row = AttemptRecord(at=1.0, decision=Decision.GRANTED, reason=Reason.OK, message="", seconds=0)
    store.record_attempt(row)
    sql(space, "DELETE FROM attempts")
    with pytest.raises(AuditTamperedError, match="does not match"):
        open_store(space).record_attempt(row)
    denied = AttemptRecord(
        at=2.0, decision=Decision.DENIED, reason=Reason.BAD_INPUT, message="x", seconds=0
    )
    open_store(space).record_attempt(denied)  # denials are evidence: always written
    assert open_store(space).count_attempts() == 1


def test_concurrent_logins_keep_one_intact_chain(workspace: Workspace, probes: Path) -> None:
    """8 concurrent attempts: 8 rows, one unbroken chain, the outside record at its end."""
    from tests.engine.test_auth import enrolled_workspace

    space = enrolled_workspace(workspace)
    results = []

    def one() -> None:
        results.append(attempt(space, probes))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and all(r.granted for r in results), [r.message for r in results]
    assert open_store(space).count_attempts() == 8
    status = verify_audit(space)
    assert status.intact and status.entries == 8 == status.recorded


def test_log_from_before_the_chain_is_adopted_and_logged(workspace: Workspace) -> None:
    """A schema-1 mmauth.db (no chain) gets its rows chained, and the first check adopts it."""
    connection = sqlite3.connect(workspace.database)
    connection.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE attempts (id INTEGER PRIMARY KEY, at REAL NOT NULL, origin TEXT NOT NULL,"
        " face_path TEXT, voice_path TEXT, face_sha256 TEXT, voice_sha256 TEXT,"
        " claimed_member TEXT, identified_member TEXT, decision TEXT NOT NULL,"
        " reason TEXT NOT NULL, category TEXT, face_score REAL, face_threshold REAL,"
        " voice_score REAL, voice_threshold REAL, steps TEXT NOT NULL, seconds REAL NOT NULL,"
        " message TEXT NOT NULL);"
        "CREATE TABLE lockouts (id INTEGER PRIMARY KEY, member TEXT NOT NULL,"
        " locked_at REAL NOT NULL, until REAL NOT NULL, failures INTEGER NOT NULL,"
        " attempt_id INTEGER);"
        "INSERT INTO attempts (at, origin, decision, reason, steps, seconds, message)"
        " VALUES (1, 'live', 'DENIED', 'bad_input', '[]', 0.1, 'old attempt');"
    )
    connection.close()
    store = open_store(workspace)
    assert store.schema_version() == SCHEMA_VERSION
    assert {
        c[1] for c in sqlite3.connect(workspace.database).execute("PRAGMA table_info(samples)")
    } >= {"seal"}
    status = store.log.check_chain()
    assert status.intact and status.entries == 1
    assert store.log.events()[0].kind == AuditEvent.ADOPTED
    assert verify_audit(workspace).intact


def test_denials_written_to_a_truncated_log_keep_the_diagnosis(
    space: Workspace, probes: Path
) -> None:
    """The denials written while the log is tampered take the deleted entries' places; the
    check must still say what was done to the log, however many follow."""
    logged_twice(space, probes)
    sql(space, "DELETE FROM attempts WHERE id = (SELECT MAX(id) FROM attempts)")
    found = verify_audit(space).problems
    assert "truncated: it ends at entry 1" in found[0]
    for _ in range(2):
        assert_stopped(space, probes, "was truncated")
        assert verify_audit(space).problems == found
    # The installation's head is not moved onto a log it does not trust.
    assert verify_audit(space).recorded == 2


def test_denials_written_to_a_deleted_log_keep_the_diagnosis(
    space: Workspace, probes: Path
) -> None:
    logged_twice(space, probes)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{space.database}{suffix}").unlink(missing_ok=True)
    found = verify_audit(space).problems
    assert "deleted or emptied" in found[0]
    assert_stopped(space, probes, "was deleted or emptied")
    assert verify_audit(space).problems == found


def test_denials_written_after_an_edit_add_no_finding(space: Workspace, probes: Path) -> None:
    logged_twice(space, probes)
    sql(space, "UPDATE attempts SET decision = 'GRANTED', reason = 'ok' WHERE id = 2")
    found = verify_audit(space).problems
    assert_stopped(space, probes, "entry 2 (attempt #2) was edited")
    assert verify_audit(space).problems == found


def test_deleting_the_denials_written_while_tampered_is_found(
    space: Workspace, probes: Path
) -> None:
    logged_twice(space, probes)
    sql(space, "DELETE FROM attempts WHERE id = 2")
    assert_stopped(space, probes, "was truncated")
    assert_stopped(space, probes, "was truncated")
    sql(space, "DELETE FROM attempts WHERE id > 1")
    problems = verify_audit(space).problems
    assert "truncated: it ends at entry 1" in problems[0]
    assert "the 2 entries this installation wrote while it was tampered" in problems[1]


def test_acknowledging_takes_the_denials_written_while_tampered(
    space: Workspace, probes: Path
) -> None:
    logged_twice(space, probes)
    sql(space, "DELETE FROM attempts WHERE id = 2")
    assert_stopped(space, probes, "was truncated")
    assert_stopped(space, probes, "was truncated")
    acknowledged = acknowledge_audit(space)
    assert "truncated" in acknowledged.problems[0]
    status = verify_audit(space)
    assert status.intact and status.recorded == status.entries == 4
    assert attempt(space, probes).granted
    assert verify_audit(space).intact


def test_history_flags_an_edited_row_after_it_is_acknowledged(
    space: Workspace, probes: Path
) -> None:
    from engine.auth.words import Integrity

    logged_twice(space, probes)
    sql(space, "UPDATE attempts SET decision = 'GRANTED', reason = 'ok' WHERE id = 2")
    acknowledge_audit(space)
    assert verify_audit(space).intact
    rows = {a.id: a for a in open_store(space).history()}
    assert rows[2].decision == Decision.GRANTED and rows[2].integrity == Integrity.EDITED
    assert rows[1].integrity is None
    sql(
        space,
        "INSERT INTO attempts (at, origin, decision, reason, steps, seconds, message) "
        "VALUES (9e9, 'live', 'GRANTED', 'ok', '[]', 0, 'hand')",
    )
    assert open_store(space).history()[0].integrity == Integrity.UNCHAINED


def _listed(rows: list[Any]) -> list[Any]:
    """A history listing as attempt ids and the kinds of its marks, in order."""
    from engine.auth.store import AttemptRecord

    return [r.id if isinstance(r, AttemptRecord) else r.kind for r in rows]


def test_history_marks_deleted_entries_where_they_were(space: Workspace, probes: Path) -> None:
    from engine.auth.words import Integrity

    logged_twice(space, probes)
    assert attempt(space, probes).granted
    sql(space, "DELETE FROM attempts WHERE id = 2")
    store = open_store(space)
    rows = store.history_with_marks(store.log.check_chain())
    assert _listed(rows) == [
        3,
        Integrity.DELETED,
        1,
    ]
    assert "entry 2 of the audit log is missing" in rows[1].text
    # Still there once acknowledged (with the acknowledgement above it): a gap stays a gap.
    acknowledge_audit(space)
    store = open_store(space)
    rows = store.history_with_marks(store.log.check_chain())
    assert _listed(rows) == [
        Integrity.ACKNOWLEDGED,
        3,
        Integrity.DELETED,
        1,
    ]
    # A listing cut by its limit shows no marks older than its last attempt.
    cut = store.history_with_marks(store.log.check_chain(), limit=1)
    assert _listed(cut) == [
        Integrity.ACKNOWLEDGED,
        3,
    ]


def test_history_marks_a_truncated_log_at_its_end(space: Workspace, probes: Path) -> None:
    from engine.auth.words import Integrity

    logged_twice(space, probes)
    sql(space, "DELETE FROM attempts WHERE id = 2")
    assert_stopped(space, probes, "was truncated")
    store = open_store(space)
    rows = store.history_with_marks(store.log.check_chain())
    # The denial written since (SQLite gave it the deleted row's id) sits above where the
    # deleted entries were.
    assert _listed(rows) == [
        2,
        Integrity.TAMPERED,
        1,
    ]
    assert "was truncated: it ends at entry 1" in rows[1].text
    acknowledge_audit(space)
    store = open_store(space)
    rows = store.history_with_marks(store.log.check_chain())
    assert _listed(rows) == [
        Integrity.ACKNOWLEDGED,
        2,
        1,
    ]
    assert "was truncated" in rows[0].text
