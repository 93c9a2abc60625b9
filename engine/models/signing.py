"""Models that prove where they come from: the manifest is signed, and bound to its workspace.

The manifest (models/manifest.json) lists every model file with its SHA-256, so signing the
manifest as a whole covers every file it lists, whatever they are. The signature is an
HMAC-SHA256 of the manifest's canonical JSON under this installation's secret key
(engine.core.installation), kept outside the workspace: whoever can write the workspace but
not read the key cannot make a manifest this installation accepts.

Two more checks close what a valid signature leaves open:

- the installation records the last manifest it signed for each workspace, so an older set of
  models (from before ``mmauth remove alice``) or a set copied from another workspace signed
  with the same key is refused, and so are models in a workspace it has no record for (a copy
  of another workspace, or one that moved: ``mmauth models trust`` takes them in on purpose);
- the members a model can grant must be enrolled in this workspace (an enrolment folder):
  a model that knows anyone else is refused, naming them.

``mmauth models trust`` re-signs a manifest on purpose (engine.auth.operator logs it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any

from engine.core.errors import ModelIntegrityError
from engine.core.installation import (
    key_id,
    read_state,
    signing_key,
    workspace_state_dir,
    write_state,
)
from engine.core.workspace import Workspace, member_folders

SIGNATURE_FIELD = "signature"
ALGORITHM = "hmac-sha256"
_TRUSTED_MODELS_FILE = "models.json"
_TRUST_HINT = (
    "If you made these models on purpose, run mmauth models trust (it is recorded in the "
    "audit log); otherwise run mmauth train."
)


class UntrustedModelsError(ModelIntegrityError):
    """The models are intact but this installation did not make them for this workspace."""

    title = "Models not trusted"


@dataclasses.dataclass(frozen=True)
class SignatureCheck:
    """Who signed a manifest, and whether this installation accepts it."""

    trusted: bool
    signed_by: str | None
    """Key id of the signature (None when unsigned)."""
    this_key: str
    """Key id of this installation."""
    problem: str | None = None
    """Why it is refused, with what to do."""


def canonical_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the manifest without its signature, as canonical JSON."""
    unsigned = {name: value for name, value in manifest.items() if name != SIGNATURE_FIELD}
    return json.dumps(
        unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str
    ).encode("ascii")


def sign_manifest(manifest: Mapping[str, Any], key: bytes | None = None) -> dict[str, Any]:
    """A copy of ``manifest`` carrying this installation's signature."""
    key = signing_key() if key is None else key
    signed = {name: value for name, value in manifest.items() if name != SIGNATURE_FIELD}
    signed[SIGNATURE_FIELD] = {
        "algorithm": ALGORITHM,
        "key_id": key_id(key),
        "value": hmac.new(key, canonical_bytes(signed), hashlib.sha256).hexdigest(),
        "signed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return signed


def check_signature(
    manifest: Mapping[str, Any], where: str, key: bytes | None = None
) -> SignatureCheck:
    """Whether ``manifest`` is signed by this installation's key, and if not why."""
    key = signing_key() if key is None else key
    this_key = key_id(key)
    signature = manifest.get(SIGNATURE_FIELD)
    if not isinstance(signature, Mapping) or not signature.get("value"):
        problem = (
            f"{where} is not signed: it was written by hand or by a version of mmauth from "
            f"before models were signed, so nothing proves where it comes from. {_TRUST_HINT}"
        )
        return SignatureCheck(False, None, this_key, problem)
    signed_by = str(signature.get("key_id", ""))
    if signature.get("algorithm") != ALGORITHM or signed_by != this_key:
        problem = (
            f"{where} is signed by another key ({signed_by or 'unnamed'}; this installation's "
            f"is {this_key}): models made on another installation or copied from elsewhere "
            f"are refused. {_TRUST_HINT}"
        )
        return SignatureCheck(False, signed_by, this_key, problem)
    expected = hmac.new(key, canonical_bytes(manifest), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(signature["value"])):
        problem = (
            f"{where} does not match its signature: it was edited after it was signed (a "
            f"model file replaced and its SHA-256 rewritten?); refused. {_TRUST_HINT}"
        )
        return SignatureCheck(False, signed_by, this_key, problem)
    return SignatureCheck(True, signed_by, this_key)


def record_trusted_manifest(workspace: Workspace, manifest_sha256: str) -> None:
    """Remember the manifest this installation signed last for the workspace (rollback guard)."""
    write_state(
        workspace_state_dir(workspace.root) / _TRUSTED_MODELS_FILE,
        {
            "manifest_sha256": manifest_sha256,
            "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )


def check_trusted(workspace: Workspace, manifest: Mapping[str, Any], manifest_sha256: str) -> None:
    """Refuse a manifest this installation did not sign, or not last, for this workspace."""
    where = workspace.relative(workspace.manifest)
    check = check_signature(manifest, where)
    if not check.trusted:
        raise UntrustedModelsError(str(check.problem))
    record = read_state(workspace_state_dir(workspace.root) / _TRUSTED_MODELS_FILE)
    if record is None:
        # Without a record the signature only proves this installation made the models for
        # some workspace: another workspace's models, copied in, would grant its members here.
        raise UntrustedModelsError(
            f"{where} is signed by this installation, but it has no record of making models "
            "for this workspace: models copied from another workspace, or the workspace was "
            f"moved or copied since; refused. {_TRUST_HINT}"
        )
    if record.get("manifest_sha256") != manifest_sha256:
        raise UntrustedModelsError(
            f"{where} is not the one this installation last made for this workspace "
            f"({record.get('recorded_at', 'earlier')}): an older set of models (from before a "
            f"member was removed?) or models copied from another workspace; refused. {_TRUST_HINT}"
        )


def check_members_enrolled(workspace: Workspace, models: Iterable[tuple[str, Any]]) -> None:
    """Refuse a model that can grant a member this workspace does not enrol.

    A member is enrolled for a modality when ``data/raw/{faces,voices}/<name>/`` holds files.
    The other direction (an enrolled member the model does not know yet) is allowed: that
    member simply cannot be granted until mmauth train.
    """
    folders = {
        "face": (workspace.faces_dir, member_folders(workspace.faces_dir)),
        "voice": (workspace.voices_dir, member_folders(workspace.voices_dir)),
    }
    for name, model in models:
        if model is None or name not in folders:
            continue
        parent, enrolled = folders[name]
        strangers = sorted(
            str(member)
            for member in getattr(model, "members_", ())
            if not enrolled.get(str(member))
        )
        if strangers:
            where = ", ".join(f"{workspace.relative(parent)}/{m}/" for m in strangers[:3])
            more = f" and {len(strangers) - 3} more" if len(strangers) > 3 else ""
            raise UntrustedModelsError(
                f"models/{name}.skops can grant {', '.join(strangers[:3])}{more}, who "
                f"{'is' if len(strangers) == 1 else 'are'} not enrolled in this workspace "
                f"(no files in {where}): models from another workspace or from before a "
                "removal; refused. Run mmauth train to make models of this workspace's members."
            )
