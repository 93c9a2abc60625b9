"""The replay check's records in mmauth.db are sealed: editing them does not let a member's own
enrolment files through."""

from __future__ import annotations

import sqlite3

from engine.auth.outcomes import Reason
from engine.core.workspace import Workspace, member_folders
from tests.security.helpers import attempt, genuine_pair


def test_fingerprints_swapped_in_the_store_do_not_let_an_enrolment_file_through(
    trained: Workspace,
) -> None:
    """bruno's hash and fingerprint copied onto alice's records (path, size and time kept, so
    nothing makes the files be read again): alice's own enrolment photo and recording are still
    refused as replays."""
    attempt(trained, *genuine_pair(trained))  # the store now holds every enrolment record
    connection = sqlite3.connect(trained.database)
    with connection:
        for modality in ("face", "voice"):
            sha256, fingerprint = connection.execute(
                "SELECT sha256, fingerprint FROM samples WHERE member = 'bruno' AND modality = ?",
                (modality,),
            ).fetchone()
            connection.execute(
                "UPDATE samples SET sha256 = ?, fingerprint = ? "
                "WHERE member = 'alice' AND modality = ?",
                (sha256, fingerprint, modality),
            )
    connection.close()
    face = member_folders(trained.faces_dir)["alice"][0]
    voice = member_folders(trained.voices_dir)["alice"][0]
    decision = attempt(trained, face, voice)
    assert not decision.granted and decision.reason == Reason.REPLAY_SUSPECTED, decision.message
