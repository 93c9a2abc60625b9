"""Saving trained models: every model serialised (engine.models.model_files) and checked before
anything is written; the files replaced all or nothing, the manifest last, recording each
file's SHA-256 with the library versions, the data the model was trained on, the enrolment
files it learnt, the settings and its metrics; the manifest signed and recorded as this
installation's (engine.models.signing).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.core.errors import ModelIntegrityError
from engine.core.fileio import atomic_write_files, file_sha256, json_bytes, json_sha256
from engine.core.settings import Settings, settings_as_dict
from engine.core.workspace import Workspace, member_folders
from engine.models.loading import read_manifest
from engine.models.model_files import (
    EXPECTED_CLASSES,
    MANIFEST_FORMAT,
    library_versions,
    model_code_sha256,
    model_path,
    serialize_model,
    serialize_state,
    state_path,
)
from engine.models.names import MODEL_NAMES, ModelName
from engine.models.signing import (
    check_trusted,
    record_trusted_manifest,
    sign_manifest,
)


@dataclasses.dataclass(frozen=True)
class ModelRecord:
    """A fitted model ready to be saved, with what it was trained on and how well it did."""

    name: str
    """``face``, ``voice`` or ``product``."""
    model: Any
    """The fitted estimator."""
    metrics: dict[str, Any]
    """Held-out metrics (accuracy, f1_score, log_loss, eer, fmr, fnmr, threshold, n_train, ...)."""
    inputs: dict[str, str]
    """Workspace-relative input file -> SHA-256 of the data it was trained on."""
    backend: str = ""
    """Feature backend (face: classic or dlib), empty when not applicable."""


def save_models(
    workspace: Workspace,
    records: Sequence[ModelRecord],
    settings: Settings,
    derived_files: Callable[[dict[str, Any]], Mapping[Path, bytes]] | None = None,
) -> dict[str, Any]:
    """Write the models and then the manifest, keeping the entries of models not retrained.

    Every model is serialised (and checked against the allow-list) before anything is written.
    The files are replaced all or nothing, the manifest last (engine.core.fileio's
    atomic_write_files): should any of them, or recording the new manifest as this
    installation's, fail, the previous models stay in place, signed and loadable, and
    OutputError names what could not be written. ``derived_files`` maps the new manifest to
    other files written in the same batch (the training summary). Returns the new manifest.
    Model objects are only read.
    """
    import hashlib

    payloads = {record.name: serialize_model(record.model) for record in records}
    states = {record.name: serialize_state(record.model) for record in records}
    kept = _verified_entries(workspace, skip={record.name for record in records})
    manifest = sign_manifest(build_manifest(workspace, records, payloads, kept, settings, states))
    files = {model_path(workspace, name): data for name, data in payloads.items()}
    for name, state in states.items():
        if state is not None:
            files[state_path(workspace, name)] = state
    if derived_files is not None:
        files.update(derived_files(manifest))
    manifest_bytes = json_bytes(manifest)
    # Last: until it is in place, the previous manifest still describes the previous files.
    files[workspace.manifest] = manifest_bytes
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    atomic_write_files(
        files,
        # An earlier model's state file, no longer listed, would be refused.
        remove=[state_path(workspace, name) for name, state in states.items() if state is None],
        then=lambda: record_trusted_manifest(workspace, manifest_sha),
    )
    return manifest


_LEARNT_FOLDERS: dict[str, str] = {ModelName.FACE: "faces_dir", ModelName.VOICE: "voices_dir"}
"""The enrolment folder each biometric model learns from (a Workspace attribute)."""
LEARNT_DIGITS = 16
"""Hex digits of a file's SHA-256 kept per enrolment file in the manifest: 64 bits, which no
one can match by crafting another file, at a quarter of the size."""


def learnt_files(folder: Path) -> dict[str, list[str]]:
    """Per member, the (shortened) SHA-256 of each enrolment file a model is fitted on: the
    signed manifest binds the model to them, so that the replay check can tell when one was
    removed, replaced or hidden since (engine.auth.flow)."""
    return {
        member: sorted(file_sha256(path)[:LEARNT_DIGITS] for path in files)
        for member, files in member_folders(folder).items()
    }


def build_manifest(
    workspace: Workspace,
    records: Sequence[ModelRecord],
    payloads: Mapping[str, bytes],
    kept: Mapping[str, Any],
    settings: Settings,
    states: Mapping[str, bytes | None] | None = None,
) -> dict[str, Any]:
    """The manifest describing freshly saved models plus entries kept from the previous one
    (``states``: the models' state-file bytes, None for a model without one)."""
    import hashlib

    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    parameters = settings_as_dict(settings)
    entries = dict(kept)
    for record in records:
        entries[record.name] = {
            "file": model_path(workspace, record.name).name,
            "sha256": hashlib.sha256(payloads[record.name]).hexdigest(),
            "bytes": len(payloads[record.name]),
            "class": f"{type(record.model).__module__}.{type(record.model).__qualname__}",
            "code_sha256": model_code_sha256(
                f"{type(record.model).__module__}.{type(record.model).__qualname__}"
            ),
            "created": now,
            "backend": record.backend,
            "inputs": dict(record.inputs),
            "parameters_sha256": json_sha256(parameters),
            "metrics": _plain(record.metrics),
        }
        learnt = _LEARNT_FOLDERS.get(record.name)
        if learnt is not None:
            entries[record.name]["enrolment"] = learnt_files(getattr(workspace, learnt))
        state = (states or {}).get(record.name)
        if state is not None:
            entries[record.name]["state"] = {
                "file": state_path(workspace, record.name).name,
                "sha256": hashlib.sha256(state).hexdigest(),
                "bytes": len(state),
                "skops_sha256": entries[record.name]["sha256"],
            }
    ordered = {name: entries[name] for name in MODEL_NAMES if name in entries}
    inputs: dict[str, str] = {}
    for entry in ordered.values():
        inputs.update(entry.get("inputs", {}))
    return {
        "format": MANIFEST_FORMAT,
        "created": now,
        "versions": library_versions(),
        "face_backend": ordered.get(ModelName.FACE, {}).get("backend", ""),
        "parameters": parameters,
        "inputs": inputs,
        "metrics": {name: entry["metrics"] for name, entry in ordered.items()},
        "models": ordered,
    }


def _verified_entries(workspace: Workspace, skip: set[str]) -> dict[str, Any]:
    """Manifest entries of models not being retrained whose files still match, from a manifest
    this installation trusts; anything else is not blessed again by the new signature.

    ModelIntegrityError when a model not being retrained has a file that would so be left
    out: the next login would refuse the file as unlisted, and its only advice, removing it,
    would throw away a good model (see check_kept_models)."""
    problem = None
    entries: dict[str, Any] = {}
    if workspace.manifest.is_file():
        try:
            manifest = read_manifest(workspace)
            check_trusted(workspace, manifest, file_sha256(workspace.manifest))
            entries = manifest["models"]
        except ModelIntegrityError as error:  # tampered, unsigned, or signed for something else
            problem = error.message
    kept = {
        name: entry
        for name, entry in entries.items()
        if name not in skip
        and name in EXPECTED_CLASSES
        and (workspace.models_dir / str(entry.get("file", ""))).is_file()
        and file_sha256(workspace.models_dir / str(entry["file"])) == entry.get("sha256")
    }
    left_out = [
        name
        for name in EXPECTED_CLASSES
        if workspace.manifest.is_file()
        and name not in skip
        and name not in kept
        and model_path(workspace, name).is_file()
    ]
    if left_out:
        files = ", ".join(workspace.relative(model_path(workspace, n)) for n in left_out)
        why = problem or "its file does not match the manifest"
        raise ModelIntegrityError(
            f"saving only the {' and '.join(sorted(skip))} model would leave {files} out of "
            f"the new manifest ({why}); nothing was written. Train every model (mmauth train "
            "without --only), or, "
            "when the existing models are yours (a workspace that moved), mmauth models trust "
            "first"
        )
    return kept


def check_kept_models(workspace: Workspace, retrained: Sequence[str]) -> None:
    """ModelIntegrityError now, before long work, when saving only ``retrained`` could not
    keep the other models (see _verified_entries)."""
    _verified_entries(workspace, skip=set(retrained))


def _plain(value: Any) -> Any:
    """JSON-safe copy of metric values (numpy scalars and arrays; NaN and infinities as null)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
