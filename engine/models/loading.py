"""Loading the trained models so that loading can never run code: the manifest
(``models/manifest.json``) is read once and its signature checked (engine.models.signing:
models this installation did not make for this workspace are refused with
UntrustedModelsError); each model file is read once, its bytes checked against the SHA-256 the
manifest records, and only those same bytes are deserialised (engine.models.model_files). A
tampered, swapped or unknown model file is refused with ModelIntegrityError.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from engine.core.errors import MissingStageError, ModelIntegrityError
from engine.core.fileio import file_sha256
from engine.core.workspace import Workspace
from engine.models.model_files import (
    EXPECTED_CLASSES,
    MODEL_FILE_SUFFIXES,
    MODEL_SUFFIX,
    allowed_types,
    deserialize_model,
    library_versions,
    model_code_sha256,
)
from engine.models.names import MODEL_NAMES, ModelName
from engine.models.signing import (
    check_members_enrolled,
    check_trusted,
)


@dataclasses.dataclass(frozen=True)
class ModelBundle:
    """The verified models of a workspace, loaded once and reused (authentication, the app).

    A model that was never trained is None. The objects are shared with later loads of the same
    files: copy one before changing it.
    """

    face: Any
    """engine.models.face.FaceIdentifier, or None."""
    voice: Any
    """engine.models.voice.VoiceVerifier, or None."""
    product: Any
    """engine.models.product.ProductRecommender, or None."""
    manifest: dict[str, Any]
    """The parsed models/manifest.json."""
    manifest_sha256: str = ""
    """SHA-256 of the manifest file the bundle was loaded from."""
    version_mismatches: tuple[str, ...] = ()
    """Libraries whose installed version differs from the one the models were trained with."""

    def is_current(self, workspace: Workspace) -> bool:
        """True while models/manifest.json is the one this bundle was loaded from."""
        return (
            workspace.manifest.is_file() and file_sha256(workspace.manifest) == self.manifest_sha256
        )


def read_manifest(workspace: Workspace) -> dict[str, Any]:
    """The parsed manifest; MissingStageError before any training."""
    return _read_manifest(workspace)[0]


def _read_manifest(workspace: Workspace) -> tuple[dict[str, Any], str]:
    """The parsed manifest and the SHA-256 of the very bytes parsed (read once: a manifest
    replaced between two reads would pair one manifest with another's hash)."""
    import hashlib

    if not workspace.models_dir.is_dir():
        raise MissingStageError(
            f"{workspace.relative(workspace.models_dir)}/ is missing: run mmauth train first"
        )
    if not workspace.manifest.is_file():
        raise MissingStageError(
            f"{workspace.relative(workspace.manifest)} is missing, so no model file can be "
            "trusted: run mmauth train first"
        )
    try:
        data = workspace.manifest.read_bytes()
    except FileNotFoundError:  # removed since the check above: no models now
        raise MissingStageError(
            f"{workspace.relative(workspace.manifest)} is missing, so no model file can be "
            "trusted: run mmauth train first"
        ) from None
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelIntegrityError(
            f"{workspace.relative(workspace.manifest)} is not valid JSON ({error}); "
            "run mmauth train again"
        ) from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), dict):
        raise ModelIntegrityError(
            f"{workspace.relative(workspace.manifest)} has no 'models' table; run mmauth train again"
        )
    return manifest, hashlib.sha256(data).hexdigest()


_loaded_models: dict[tuple[str, str, bool], Any] = {}
"""Deserialised models by (model name, SHA-256 of the file's bytes, built for inference): a
verified file whose bytes were already loaded is not deserialised again."""


def load_model_bundle(
    workspace: Workspace,
    require: Sequence[str] = MODEL_NAMES,
    *,
    check_members: bool = True,
    for_inference: bool = False,
) -> ModelBundle:
    """Verify the manifest's signature and every model file against it, then load them.

    Raises MissingStageError when there are no models or a model in ``require`` was never
    trained, ModelIntegrityError when a file is unknown, missing, tampered with or swapped,
    UntrustedModelsError when this installation did not sign the manifest for this workspace
    or (``check_members``) a model knows a member the workspace does not enrol. Only a model
    update that is removing a member (its folders already moved aside) skips that last check.
    ``for_inference`` (logins): models read from state files hold numpy inference twins of
    their scikit-learn parts (engine.models._twins), which score without importing the library
    but cannot be refitted or saved again.
    """
    # One load at a time per process: threads loading together (Authenticators of a program,
    # the app's screens) would share _loaded_models unguarded, and np.load parses each state
    # file's array headers with ast.literal_eval, which on CPython 3.11 fails at random in
    # concurrent threads ("SystemError: AST constructor recursion depth mismatch",
    # gh-106905). Loads after the first reuse the deserialised models: waiting costs little.
    with _LOAD_LOCK:
        for tries_left in reversed(range(_LOAD_TRIES)):
            manifest, manifest_sha = _read_manifest(workspace)
            try:
                return _load_bundle(
                    workspace, manifest, manifest_sha, require, check_members, for_inference
                )
            except ModelIntegrityError:
                # mmauth train, enroll, remove or models trust replaced the models while this
                # load read them (the manifest first, each file after): a mix of two sets is no
                # sign of tampering, so the set now in place is loaded instead.
                if tries_left == 0 or not _manifest_replaced(workspace, manifest_sha):
                    raise
    raise AssertionError("the last try returns or raises")


_LOAD_LOCK = threading.Lock()


_LOAD_TRIES = 3
"""Loads of the models tried in a row while their manifest keeps being replaced under them."""


def _manifest_replaced(workspace: Workspace, manifest_sha: str) -> bool:
    """Whether models/manifest.json is no longer the file whose bytes hashed to ``manifest_sha``."""
    try:
        return file_sha256(workspace.manifest) != manifest_sha
    except OSError:
        return True


def _load_bundle(
    workspace: Workspace,
    manifest: dict[str, Any],
    manifest_sha: str,
    require: Sequence[str],
    check_members: bool,
    for_inference: bool,
) -> ModelBundle:
    """load_model_bundle for one manifest, read before (its bytes hashed to ``manifest_sha``)."""
    check_trusted(workspace, manifest, manifest_sha)
    entries: dict[str, Any] = manifest["models"]
    _refuse_unknown_files(workspace, entries)
    absent = [name for name in require if name not in entries]
    if absent:
        raise MissingStageError(
            f"no {' or '.join(absent)} model has been trained: run mmauth train"
            + (f" --only {absent[0]}" if len(absent) == 1 else "")
        )
    hashes = {name: entry.get("sha256") for name, entry in entries.items()}
    loaded: dict[str, Any] = {}
    for name, entry in entries.items():
        if name not in EXPECTED_CLASSES:
            raise ModelIntegrityError(
                f"{workspace.relative(workspace.manifest)} lists an unknown model {name!r}; "
                "run mmauth train again"
            )
        loaded[name] = _load_verified(workspace, name, entry, hashes, for_inference)
    if check_members:
        check_members_enrolled(workspace, loaded.items())
    return ModelBundle(
        face=loaded.get(ModelName.FACE),
        voice=loaded.get(ModelName.VOICE),
        product=loaded.get(ModelName.PRODUCT),
        manifest=manifest,
        manifest_sha256=manifest_sha,
        version_mismatches=_version_mismatches(manifest.get("versions", {})),
    )


def _refuse_unknown_files(workspace: Workspace, entries: Mapping[str, Any]) -> None:
    listed = {entry.get("file") for entry in entries.values()} | {
        entry["state"].get("file")
        for entry in entries.values()
        if isinstance(entry.get("state"), Mapping)
    }
    for path in sorted(workspace.models_dir.iterdir()):
        if path.name.startswith("."):
            continue  # temporary files of atomic writes
        if path.suffix.lower() in MODEL_FILE_SUFFIXES and path.name not in listed:
            raise ModelIntegrityError(
                f"{workspace.relative(path)} is not listed in "
                f"{workspace.relative(workspace.manifest)}: an unknown model file is never "
                "loaded. Remove it, or run mmauth train to create the models afresh."
            )


def _load_verified(
    workspace: Workspace,
    name: str,
    entry: Mapping[str, Any],
    hashes: Mapping[str, Any],
    for_inference: bool,
) -> Any:
    where, data, actual = _listed_file(workspace, name, entry)
    _refuse_other_code(name, entry, where)
    expected = entry.get("sha256")
    if actual != expected:
        swapped = [other for other, digest in hashes.items() if digest == actual and other != name]
        if swapped:
            raise ModelIntegrityError(
                f"{where} holds the {swapped[0]} model, not the {name} model (its SHA-256 is "
                f"that of {swapped[0]}{MODEL_SUFFIX} in the manifest): the files were swapped; "
                "refused. Run mmauth train to restore them."
            )
        raise ModelIntegrityError(
            f"{where} does not match the manifest (SHA-256 {actual[:12]}…, expected "
            f"{str(expected)[:12]}…): it changed after training, by tampering or an interrupted "
            "write; refused. Run mmauth train to restore it."
        )
    # The state file is the skops file's twin, used only while it was made from these very
    # bytes: when they disagree, the skops file (and its checks) rule.
    state = entry.get("state")
    if isinstance(state, Mapping) and state.get("skops_sha256") == actual:
        return _load_verified_state(workspace, name, state, for_inference)
    return _checked_model(
        (name, actual, False), where, lambda: deserialize_model(data, source=where)
    )


def _load_verified_state(
    workspace: Workspace, name: str, state: Mapping[str, Any], for_inference: bool
) -> Any:
    """The model from its state file, after checking the file's bytes against the manifest."""
    from engine.models import state_file
    from engine.models._twins import TWINS

    where, data, actual = _listed_file(workspace, name, state)
    if actual != state.get("sha256"):
        raise ModelIntegrityError(
            f"{where} does not match the manifest (SHA-256 {actual[:12]}…, expected "
            f"{str(state.get('sha256'))[:12]}…): it changed after training, by tampering or an "
            "interrupted write; refused. Run mmauth train to restore it."
        )
    twins = TWINS if for_inference else None
    return _checked_model(
        (name, actual, for_inference),
        where,
        lambda: state_file.loads(data, allowed_types(), source=where, twins=twins),
    )


def _listed_file(
    workspace: Workspace, name: str, listed: Mapping[str, Any]
) -> tuple[str, bytes, str]:
    """A file the manifest lists for the ``name`` model (``listed["file"]``, inside models/):
    where it is (workspace-relative), its bytes and their SHA-256, read once."""
    import hashlib

    path = workspace.models_dir / str(listed.get("file", ""))
    where = workspace.relative(path)
    missing = ModelIntegrityError(
        f"{where}, listed in the manifest for the {name} model, is missing; run mmauth train"
    )
    if path.parent != workspace.models_dir or not path.is_file():
        raise missing
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # removed since: by a model update (load_model_bundle tries again)
        raise missing from None
    return where, data, hashlib.sha256(data).hexdigest()


def _checked_model(key: tuple[str, str, bool], where: str, build: Callable[[], Any]) -> Any:
    """The model built from verified bytes (or reused from an earlier load of the same bytes,
    for inference or not: ``key``), refused unless it is of the class expected for its name."""
    name = key[0]
    model = _loaded_models.get(key)
    if model is None:
        model = build()
    found = f"{type(model).__module__}.{type(model).__qualname__}"
    expected = EXPECTED_CLASSES[ModelName(name)]
    if found != expected:
        raise ModelIntegrityError(f"{where} holds a {found}, not the expected {expected}; refused")
    # One model per kind stays cached: a retrained model replaces its predecessor.
    for stale in [k for k in _loaded_models if k[0] == name and k[1] != key[1]]:
        del _loaded_models[stale]
    _loaded_models[key] = model
    return model


def _refuse_other_code(name: str, entry: Mapping[str, Any], where: str) -> None:
    class_path = str(entry.get("class", ""))
    retrain = f"Run mmauth train --only {name} to retrain it."
    # Only our own model modules are imported: a manifest must not choose code to run.
    if class_path not in set(EXPECTED_CLASSES.values()):
        if class_path.startswith("engine."):
            raise ModelIntegrityError(
                f"{where} holds a {class_path}, a class this version of mmauth no longer has: "
                f"it was trained by another version; refused. {retrain}"
            )
        raise ModelIntegrityError(
            f"{where} is recorded as a {class_path!r}, not a model class of mmauth; refused"
        )
    if entry.get("code_sha256") != model_code_sha256(class_path):
        raise ModelIntegrityError(
            f"{where} was trained by another version of {class_path.rsplit('.', 1)[0]} than the "
            f"one installed; refused, since it could load and then fail in use. {retrain}"
        )


def _version_mismatches(recorded: Mapping[str, Any]) -> tuple[str, ...]:
    installed = library_versions()
    return tuple(
        f"{name} {recorded[name]} at training, {installed.get(name)} now"
        for name in ("python", "numpy", "scikit-learn", "skops")
        if name in recorded and recorded[name] != installed.get(name)
    )
