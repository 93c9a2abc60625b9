"""The replay check's records in mmauth.db are sealed: editing them does not let a member's own
enrolment files through."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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


def test_loosened_replay_bounds_in_the_settings_are_refused_until_accepted(
    trained: Workspace, tmp_path: Path
) -> None:
    """Whoever can write mmauth.toml sets bounds that catch no copy: the login is refused,
    naming the settings, until an operator accepts them with mmauth models trust (written to
    the audit log); then the copy is judged by the accepted bounds."""
    from typer.testing import CliRunner

    from cli.main import create_app
    from engine.auth.store import open_store
    from engine.auth.words import AuditEvent

    alice = member_folders(trained.faces_dir)["alice"][0]
    copy = tmp_path / "copy.png"
    copy.write_bytes(alice.read_bytes() + b"\0")  # not byte-identical: the bounds decide
    voice = genuine_pair(trained)[1]
    assert attempt(trained, copy, voice).reason == Reason.REPLAY_SUSPECTED
    with (trained.root / "mmauth.toml").open("a") as settings:
        settings.write("\n[auth]\nreplay_photo_residual = 0.0\nreplay_audio_similarity = 1.0\n")
    decision = attempt(trained, copy, voice)
    assert decision.reason == Reason.DEFENCES_WEAKENED, decision.message
    assert "auth.replay_photo_residual = 0.0 (accepted 8.0" in decision.message
    trusted = CliRunner().invoke(create_app(), ["models", "trust", "-y", "-w", str(trained.root)])
    assert trusted.exit_code == 0, trusted.output
    assert attempt(trained, copy, voice).reason != Reason.DEFENCES_WEAKENED
    (event,) = [e for e in open_store(trained).log.events() if e.kind == AuditEvent.MODELS_TRUSTED]
    assert "loosened defences accepted: auth.replay_photo_residual = 0.0" in event.detail


def test_enrolment_files_hidden_or_replaced_after_training_stop_the_login(
    trained: Workspace, tmp_path: Path
) -> None:
    """alice's enrolment photo hidden (a dummy keeps her folder non-empty, so the models'
    members binding holds) would take it out of the replay check: the signed manifest lists
    the files the models learnt, so the login stops until they are back or the models are
    retrained. A file added since is fine."""
    import shutil

    face, voice = genuine_pair(trained)
    photo = member_folders(trained.faces_dir)["alice"][0]
    original = tmp_path / photo.name
    shutil.copyfile(photo, original)
    hidden = photo.with_name("." + photo.name)
    photo.rename(hidden)
    shutil.copyfile(face, photo.with_name("dummy.png"))
    decision = attempt(trained, original, voice)
    assert decision.reason == Reason.ENROLMENT_CHANGED, decision.message
    assert "1 of alice's enrolment files" in decision.message
    # Replaced in place (same name, other content): the same.
    photo.with_name("dummy.png").rename(photo)
    assert attempt(trained, original, voice).reason == Reason.ENROLMENT_CHANGED
    hidden.replace(photo)
    assert attempt(trained, original, voice).reason == Reason.REPLAY_SUSPECTED
    other = next(p for p in member_folders(trained.probe_faces_dir)["alice"] if p != face)
    shutil.copyfile(other, photo.with_name("added_by_hand.png"))
    assert attempt(trained, face, voice).granted
