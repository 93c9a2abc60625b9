"""The model files' format and identity: where each model's files live, the skops file checked
against an explicit allow-list of types before anything is built from it (pickles are never
used), the state file beside it (``models/{name}.state.npz``, engine.models.state_file, which
loads without importing skops), the library versions recorded with them, and the hash of the
code a model class runs (a model trained by other code is refused). engine.models.saving writes
them, engine.models.loading reads them back.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import platform
import zipfile
from pathlib import Path
from typing import Any

from engine.core.errors import ModelIntegrityError
from engine.core.fileio import file_sha256
from engine.core.workspace import Workspace
from engine.models.names import ModelName

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
