"""Saving and loading the trained models so that loading can never run code.

Models are skops files (``models/{face,voice,product}.skops``) whose types are checked against
an explicit allow-list before anything is built from them; pickles are never used. Beside each,
the same model as a state file (``models/{name}.state.npz``, engine.models.state_file), which
loads without importing skops; logins load it when the manifest lists one. Every model file's
SHA-256 is recorded in ``models/manifest.json`` with the library versions, the hashes of the
data it was trained on, the settings and its metrics. Loading reads each file once, checks that
its bytes match the manifest, and only then deserialises those same bytes: a tampered, swapped
or unknown model file is refused with ModelIntegrityError. The manifest itself is signed
by this installation and bound to the workspace (engine.models.signing): models this
installation did not make for this workspace are refused with UntrustedModelsError.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import importlib.util
import inspect
import json
import math
import platform
import threading
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.core.errors import MissingStageError, ModelIntegrityError
from engine.core.fileio import atomic_write_files, file_sha256, json_bytes, json_sha256
from engine.core.settings import Settings, settings_as_dict
from engine.core.workspace import Workspace, member_folders
from engine.models.names import MODEL_NAMES, ModelName
from engine.models.signing import (
    check_members_enrolled,
    check_trusted,
    record_trusted_manifest,
    sign_manifest,
)

MANIFEST_FORMAT = 1
MODEL_SUFFIX = ".skops"
STATE_SUFFIX = ".state.npz"
# Files in models/ with these suffixes are model files: one the manifest does not list is refused.
MODEL_FILE_SUFFIXES = (MODEL_SUFFIX, ".npz", ".joblib", ".pkl", ".pickle")
EXPECTED_CLASSES = {
    ModelName.FACE: "engine.models.face.FaceIdentifier",
    ModelName.VOICE: "engine.models.voice.VoiceVerifier",
    ModelName.PRODUCT: "engine.models.product.ProductRecommender",
}
# The modules a model class depends on besides its own: its code hash covers them too, and no
# other module, so that editing one estimator leaves the others' model files loadable.
SHARED_CODE_MODULES = {
    "engine.models.face.FaceIdentifier": (
        "engine.models._calibration",
        "engine.models._face_search",
        "engine.models._estimator",
    ),
    "engine.models.voice.VoiceVerifier": (
        "engine.models._calibration",
        "engine.models.dtw",
        "engine.models._estimator",
    ),
    "engine.models.product.ProductRecommender": (
        "engine.models._product_comparison",
        "engine.models._estimator",
    ),
}
# Types outside skops' default trust that our models legitimately hold: tree structures of
# scikit-learn's forests and boosting, and numpy dtypes.
ALLOWED_LIBRARY_TYPES = frozenset(
    {
        "numpy.dtype",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)
# Our own modules whose classes may appear inside a model file.
OWN_MODEL_MODULES = (
    "engine.models.face",
    "engine.models.voice",
    "engine.models.product",
    "engine.models._product_comparison",
    "engine.core.metrics",
)
VERSIONED_DISTRIBUTIONS = (
    "mmauth",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "skops",
    "joblib",
    "librosa",
    "scikit-image",
    "dlib-bin",
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


def model_path(workspace: Workspace, name: str) -> Path:
    return workspace.models_dir / f"{name}{MODEL_SUFFIX}"


def state_path(workspace: Workspace, name: str) -> Path:
    return workspace.models_dir / f"{name}{STATE_SUFFIX}"


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries the models depend on (None when not installed)."""
    from importlib import metadata

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for distribution in VERSIONED_DISTRIBUTIONS:
        try:
            versions[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[distribution] = None
    return versions


def allowed_types() -> frozenset[str]:
    """Every type a model file may hold beyond skops' defaults: a few library types and the
    classes defined in our own model modules."""
    own = set()
    for module_name in OWN_MODEL_MODULES:
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        own |= {
            f"{module_name}.{name}"
            for name, value in inspect.getmembers(module, inspect.isclass)
            if value.__module__ == module_name
        }
    return ALLOWED_LIBRARY_TYPES | own


def serialize_model(model: Any) -> bytes:
    """The skops bytes of a model; refuses a model that could not be loaded back under the
    allow-list (found at training time rather than at the next login)."""
    import skops.io

    data = skops.io.dumps(model, compression=zipfile.ZIP_DEFLATED)
    refused = sorted(set(skops.io.get_untrusted_types(data=data)) - allowed_types())
    if refused:
        raise ModelIntegrityError(
            f"{type(model).__name__} holds types outside the allow-list: {', '.join(refused)}"
        )
    return data


def deserialize_model(data: bytes, *, source: str) -> Any:
    """Build a model from skops bytes whose every type is on the allow-list; never runs code
    from the file."""
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(data=data)
    except (zipfile.BadZipFile, KeyError, ValueError, json.JSONDecodeError) as error:
        raise ModelIntegrityError(f"{source} is not a readable skops file: {error}") from error
    refused = sorted(set(untrusted) - allowed_types())
    if refused:
        raise ModelIntegrityError(
            f"{source} holds types that are not on the allow-list: {', '.join(refused)}; "
            "it is refused. Re-run mmauth train."
        )
    return skops.io.loads(data, trusted=untrusted)


def serialize_state(model: Any) -> bytes | None:
    """The state-file bytes of a model, None when it holds a type that format does not store."""
    from engine.models import state_file

    try:
        return state_file.dumps(model, allowed_types())
    except state_file.NotStorable:
        return None


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


def model_code_sha256(class_path: str) -> str:
    """SHA-256 of the source of the module defining a model class (``module.Class``) and of the
    shared modules it depends on (``SHARED_CODE_MODULES``).

    A model object is only meaningful to the code that made it: attributes appear and vanish as
    the class evolves, and such a model would load and then fail in use. Other estimators'
    modules are not covered: editing one does not invalidate this model.
    """
    import hashlib

    module_names = (class_path.rsplit(".", 1)[0], *SHARED_CODE_MODULES.get(class_path, ()))
    sources = []
    for module_name in module_names:
        module = importlib.import_module(module_name)
        sources.append(f"{module_name} {file_sha256(Path(str(module.__file__)))}\n")
    return hashlib.sha256("".join(sources).encode()).hexdigest()


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
