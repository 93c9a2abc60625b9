"""Models prove where they come from: a re-hashed model, models signed by another key or not
at all, models copied from another workspace and models put back after a removal are refused;
`mmauth models trust` accepts models on purpose and is audited."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import create_app
from engine.auth.store import open_store
from engine.auth.words import AuditEvent, Reason, Step, StepStatus
from engine.core.installation import KEY_FILE_ENV
from engine.core.workspace import Workspace
from tests.conftest import copy_tree, copy_workspace
from tests.security.helpers import attempt, genuine_pair

pytestmark = pytest.mark.slow
runner = CliRunner()


def rewrite_manifest(workspace: Workspace, change) -> None:
    manifest = json.loads(workspace.manifest.read_text())
    change(manifest)
    workspace.manifest.write_text(json.dumps(manifest, indent=2))


def assert_untrusted(workspace: Workspace, face: Path, voice: Path, *words: str) -> None:
    decision = attempt(workspace, face, voice)
    assert not decision.granted and decision.reason == Reason.MODELS_UNTRUSTED, decision.message
    assert decision.step(Step.MODELS).status == StepStatus.FAILED
    for word in words:
        assert word in decision.message


def test_genuine_attempt_is_granted_with_signed_models(trained: Workspace) -> None:
    face, voice = genuine_pair(trained)
    decision = attempt(trained, face, voice)
    assert decision.granted and decision.member == "alice"
    assert "signature" in json.loads(trained.manifest.read_text())


def test_rehashed_model_is_refused(trained: Workspace) -> None:
    face, voice = genuine_pair(trained)
    model = trained.models_dir / "face.skops"
    model.write_bytes(model.read_bytes() + b"\0")
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    rewrite_manifest(trained, lambda m: m["models"]["face"].update(sha256=digest))
    assert_untrusted(trained, face, voice, "edited after it was signed", "mmauth models trust")


def test_unsigned_models_are_refused(trained: Workspace) -> None:
    face, voice = genuine_pair(trained)
    rewrite_manifest(trained, lambda m: m.pop("signature"))
    assert_untrusted(trained, face, voice, "is not signed", "mmauth models trust")


def test_other_key_is_refused_until_trusted_on_purpose(
    trained: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    face, voice = genuine_pair(trained)
    key = tmp_path / "other.key"
    key.write_text(secrets.token_hex(32))
    os.chmod(key, 0o600)
    monkeypatch.setenv(KEY_FILE_ENV, str(key))
    assert_untrusted(trained, face, voice, "signed by another key", "mmauth models trust")
    result = runner.invoke(create_app(), ["models", "verify", "-w", str(trained.root)])
    assert result.exit_code == 1 and "another key" in result.stdout
    result = runner.invoke(create_app(), ["models", "trust", "--yes", "-w", str(trained.root)])
    assert result.exit_code == 0, result.output
    assert attempt(trained, face, voice).granted
    events = open_store(trained).log.events()
    assert any(
        e.kind == AuditEvent.MODELS_TRUSTED and "previously signed" in e.detail for e in events
    )


def assert_only_they_are_turned_away(
    workspace: Workspace, member: str, pair: tuple[Path, Path], other: str
) -> None:
    """A member the models know, with no enrolment folders, is turned away by name; the others
    still get in (a removal in progress must not stop every login), and `mmauth models verify`
    names the member."""
    decision = attempt(workspace, *pair)
    assert not decision.granted and decision.reason == Reason.ENROLMENT_CHANGED, decision.message
    assert decision.step(Step.REPLAY).status == StepStatus.FAILED
    assert f"{member} has no enrolment photos or recordings" in decision.message
    assert attempt(workspace, *genuine_pair(workspace, other)).granted
    verified = runner.invoke(create_app(), ["models", "verify", "-w", str(workspace.root)])
    assert verified.exit_code == 1 and f"{member}, who is not enrolled" in verified.stdout


def test_models_copied_from_another_workspace_are_refused(
    trained: Workspace, tmp_path: Path
) -> None:
    """Models that know chiara, in a workspace where chiara is not enrolled: she is refused,
    by name, though the signature is this installation's."""
    pair = genuine_pair(trained, "chiara")
    other = copy_workspace(trained.root, tmp_path / "other")
    shutil.rmtree(other.faces_dir / "chiara")
    shutil.rmtree(other.voices_dir / "chiara")
    assert_only_they_are_turned_away(other, "chiara", pair, "alice")
    listed = runner.invoke(create_app(), ["members", "--json", "-w", str(other.root)])
    chiara = next(m for m in json.loads(listed.stdout)["members"] if m["name"] == "chiara")
    assert chiara["faces"] == 0 and chiara["in_face_model"] is True


def test_models_in_a_workspace_the_installation_has_no_record_of_are_refused(
    trained: Workspace, tmp_path: Path
) -> None:
    """Every member of the models is enrolled in the copy, and the signature is this
    installation's: without a record of making models for this workspace they are still
    refused, since another workspace's models (where mallory was enrolled as alice) would grant
    its members here. `mmauth models trust` takes them in on purpose."""
    face, voice = genuine_pair(trained)
    other = Workspace(tmp_path / "other")
    copy_tree(trained.root, other.root)
    assert_untrusted(other, face, voice, "no record of making models for this workspace")
    assert (
        runner.invoke(create_app(), ["models", "trust", "-y", "-w", str(other.root)]).exit_code == 0
    )
    assert attempt(other, face, voice).granted


def test_models_of_another_workspace_replacing_its_own_are_refused(
    trained: Workspace, tmp_path: Path
) -> None:
    face, voice = genuine_pair(trained)
    other = Workspace(tmp_path / "other")
    copy_tree(trained.root, other.root)
    # The other workspace's models become its own (signed again, recorded for it) ...
    assert runner.invoke(
        create_app(), ["models", "trust", "-y", "-w", str(other.root)]
    ).exit_code in (0,)
    rewrite_manifest(other, lambda m: m.pop("signature"))
    assert (
        runner.invoke(create_app(), ["models", "trust", "-y", "-w", str(other.root)]).exit_code == 0
    )
    assert attempt(other, face, voice).granted
    # ... and a manifest signed with the same key for the first workspace is not.
    shutil.rmtree(other.models_dir)
    shutil.copytree(trained.models_dir, other.models_dir, copy_function=shutil.copy2)
    assert_untrusted(other, face, voice, "not the one this installation last made")


def test_models_put_back_after_a_removal_are_refused(trained: Workspace) -> None:
    """alice's enrolment folders are gone (what mmauth remove does to the files; the sample's
    three voices are the fewest a voice model trains on, so it cannot be retrained here) and
    the models that know her are put back: refused, naming her."""
    pair = genuine_pair(trained)
    shutil.rmtree(trained.faces_dir / "alice")
    shutil.rmtree(trained.voices_dir / "alice")
    assert_only_they_are_turned_away(trained, "alice", pair, "bruno")


def test_older_models_put_back_are_refused(trained: Workspace, tmp_path: Path) -> None:
    """Newer models were made for this workspace; the older set, validly signed, is refused."""
    face, voice = genuine_pair(trained)
    saved = tmp_path / "models-before"
    shutil.copytree(trained.models_dir, saved, copy_function=shutil.copy2)
    rewrite_manifest(trained, lambda m: m.pop("signature"))
    assert (
        runner.invoke(create_app(), ["models", "trust", "-y", "-w", str(trained.root)]).exit_code
        == 0
    )
    assert attempt(trained, face, voice).granted
    shutil.rmtree(trained.models_dir)
    shutil.copytree(saved, trained.models_dir, copy_function=shutil.copy2)
    assert_untrusted(trained, face, voice, "not the one this installation last made")


def test_a_member_without_recordings_is_told_so_and_never_locked_out(trained: Workspace) -> None:
    """A member with photos but no recordings (added by hand, or their recordings taken away):
    each login is denied naming what is missing and how to add it, not as an internal error,
    and these denials, the workspace's fault rather than the person's, never lock them out."""
    pair = genuine_pair(trained)
    shutil.rmtree(trained.voices_dir / "alice")
    for _ in range(6):
        decision = attempt(trained, *pair)
        assert decision.reason == Reason.ENROLMENT_CHANGED and decision.lockout is None
        assert "alice has no enrolment recordings" in decision.message
        assert "mmauth enroll alice --voices FILES" in decision.message
    assert open_store(trained).active_lockout("alice", time.time()) is None


def test_training_one_model_in_a_moved_workspace_keeps_the_others_or_refuses(
    trained: Workspace, tmp_path: Path
) -> None:
    """In a copy the installation has no record of, `mmauth train --only face` would drop the
    voice and product models from the new manifest and leave their files behind, unlisted (the
    next login refused them, advising to remove a good model): it is refused before training,
    saying what to do, and after `mmauth models trust` it keeps them."""
    other = Workspace(tmp_path / "moved")
    copy_tree(trained.root, other.root)
    before = {p.name: p.read_bytes() for p in other.models_dir.iterdir() if p.is_file()}
    arguments = ["train", "--only", "face", "-w", str(other.root)]
    refused = runner.invoke(create_app(), arguments)
    assert refused.exit_code != 0
    assert "models/voice.skops" in refused.output and "mmauth models trust" in refused.output
    assert {p.name: p.read_bytes() for p in other.models_dir.iterdir() if p.is_file()} == before
    assert (
        runner.invoke(create_app(), ["models", "trust", "-y", "-w", str(other.root)]).exit_code == 0
    )
    assert runner.invoke(create_app(), arguments).exit_code == 0
    assert set(json.loads(other.manifest.read_text())["models"]) == {"face", "voice", "product"}
    assert attempt(other, *genuine_pair(other)).granted
