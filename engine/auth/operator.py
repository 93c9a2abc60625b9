"""What an operator does about trust, each action written to the audit log: trusting models on
purpose, lifting a lockout, checking and acknowledging the audit log."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from engine.auth.chain import ChainStatus
from engine.auth.store import Lockout, open_store
from engine.auth.words import AuditEvent
from engine.core.defences import accepted_defences, record_defences, weakened
from engine.core.errors import MmauthError, ModelIntegrityError, UnknownMemberError
from engine.core.fileio import atomic_write_bytes, file_sha256
from engine.core.settings import AuthSettings
from engine.core.workspace import Workspace, member_folders


@dataclasses.dataclass(frozen=True)
class ModelsTrust:
    """Whether this installation accepts a workspace's models, and why not."""

    trusted: bool
    signed_by: str | None
    """Key id of the manifest's signature (None when unsigned)."""
    this_key: str
    """Key id of this installation."""
    models: tuple[str, ...]
    """The models the manifest lists."""
    problem: str | None = None
    """Why they are refused, with what to do."""


def models_trust(workspace: Workspace) -> ModelsTrust:
    """Check the models as authentication would (signature, files, members) without raising
    for a refusal; MissingStageError when there are none."""
    from engine.models.loading import load_model_bundle, read_manifest
    from engine.models.signing import check_signature

    manifest = read_manifest(workspace)
    signature = check_signature(manifest, workspace.relative(workspace.manifest))
    problem = None
    try:
        load_model_bundle(workspace, require=())
    except ModelIntegrityError as error:
        problem = error.message
    return ModelsTrust(
        trusted=problem is None,
        signed_by=signature.signed_by,
        this_key=signature.this_key,
        models=tuple(manifest["models"]),
        problem=problem,
    )


def trust_models(workspace: Workspace, auth: AuthSettings) -> ModelsTrust:
    """Sign the workspace's models with this installation's key, and accept ``auth`` as its
    login defences (engine.core.defences), on an operator's word.

    Only intact models are signed: every file must match the manifest, and every member a
    model can grant must be enrolled here. The previous signer, and any defence the settings
    loosen, are written to the audit log.
    """
    from engine.models.loading import load_model_bundle, read_manifest
    from engine.models.signing import (
        check_signature,
        record_trusted_manifest,
        sign_manifest,
    )

    store = open_store(workspace)
    chain = store.log.check_chain()
    if not chain.intact:
        raise MmauthError(
            f"the audit log is not intact ({'; '.join(chain.problems)}): run mmauth audit "
            "acknowledge before trusting models, so that the trust is recorded",
            title="Audit log tampered",
        )
    manifest = read_manifest(workspace)
    before = check_signature(manifest, workspace.relative(workspace.manifest))
    _refuse_changed_files(workspace, manifest)
    previous = workspace.manifest.read_bytes()
    signed = sign_manifest(manifest)
    atomic_write_bytes(workspace.manifest, (json.dumps(signed, indent=2) + "\n").encode())
    record_trusted_manifest(workspace, file_sha256(workspace.manifest))
    try:
        load_model_bundle(workspace, require=())
    except MmauthError:
        atomic_write_bytes(workspace.manifest, previous)
        raise
    loosened = weakened(auth, accepted_defences(workspace))
    store.log.record_event(
        AuditEvent.MODELS_TRUSTED,
        f"models {', '.join(manifest['models'])} of {workspace.relative(workspace.manifest)} "
        f"signed with key {before.this_key}; previously "
        + (f"signed with key {before.signed_by}" if before.signed_by else "unsigned")
        + (f"; loosened defences accepted: {'; '.join(loosened)}" if loosened else ""),
    )
    # Only once the log holds the event: looser defences never take effect unrecorded.
    record_defences(workspace, auth)
    return ModelsTrust(True, before.signed_by, before.this_key, tuple(manifest["models"]))


def _refuse_changed_files(workspace: Workspace, manifest: dict[str, Any]) -> None:
    for name, entry in manifest["models"].items():
        path = workspace.models_dir / str(entry.get("file", ""))
        if path.parent != workspace.models_dir or not path.is_file():
            raise ModelIntegrityError(
                f"{workspace.relative(path)}, listed for the {name} model, is missing: "
                "nothing is trusted. Run mmauth train."
            )
        if file_sha256(path) != entry.get("sha256"):
            raise ModelIntegrityError(
                f"{workspace.relative(path)} does not match its SHA-256 in the manifest: a "
                "changed model file is never trusted. Run mmauth train."
            )


def unlock_member(workspace: Workspace, name: str, now: float | None = None) -> Lockout:
    """Lift a member's lockout before it expires; the unlock is written to the audit log."""
    now = time.time() if now is None else now
    store = open_store(workspace)
    lock = store.active_lockout(name, now)
    if lock is None:
        known = name in member_folders(workspace.faces_dir) or name in member_folders(
            workspace.voices_dir
        )
        if not known:
            raise UnknownMemberError(
                f"there is no member named {name!r} in this workspace: mmauth members lists them"
            )
        raise MmauthError(f"{name} is not locked: nothing to unlock", title="Not locked")
    store.log.record_event(
        AuditEvent.UNLOCKED,
        f"lock of {lock.failures} failed attempts lifted {lock.until - now:.0f} s early",
        member=name,
        now=now,
    )
    return lock


def verify_audit(workspace: Workspace) -> ChainStatus:
    """Walk the whole audit log's chain and compare it with this installation's record."""
    return open_store(workspace).log.check_chain(full=True)


def acknowledge_audit(workspace: Workspace, now: float | None = None) -> ChainStatus:
    """Accept the audit log as it is (logged, with what was wrong); authentication resumes."""
    return open_store(workspace).log.acknowledge(time.time() if now is None else now)
