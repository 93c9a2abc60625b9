from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io

import engine.models.loading as loading
import engine.models.model_files as model_files
import engine.models.saving as saving
from engine.core import fileio
from engine.core.errors import MissingStageError, ModelIntegrityError, OutputError
from engine.core.fileio import file_sha256
from engine.core.settings import Settings
from engine.core.workspace import Workspace
from engine.models.loading import load_model_bundle
from engine.models.product import ProductRecommender
from engine.models.saving import ModelRecord, check_kept_models, save_models


class Payload:
    """A class no allow-list knows: skops must refuse to build it."""

    def __init__(self) -> None:
        self.command = "rm -rf /"


def small_recommender(seed: int) -> ProductRecommender:
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(rng.normal(size=(30, 2)), columns=["a", "b"])
    categories = np.where(features["a"] > 0, "Books", "Sports")
    return ProductRecommender(
        candidates=("logistic_regression",), cv_splits=3, cv_repeats=1, importance_repeats=1
    ).fit(features, categories)


@pytest.fixture(scope="module")
def recommenders() -> tuple[ProductRecommender, ProductRecommender]:
    return small_recommender(0), small_recommender(1)


def record(name: str, model: object) -> ModelRecord:
    return ModelRecord(
        name=name,
        model=model,
        metrics={"accuracy": 0.9, "eer": float("nan"), "scores": np.arange(2)},
        inputs={"data/merged_dataset.csv": "ab" * 32},
    )


@pytest.fixture
def saved(workspace: Workspace, recommenders, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    # Two product models stand in for two model files (the swap test needs two), so these
    # tests do not depend on the face pipeline.
    monkeypatch.setitem(
        model_files.EXPECTED_CLASSES, "face", "engine.models.product.ProductRecommender"
    )
    save_models(
        workspace,
        [record("product", recommenders[0]), record("face", recommenders[1])],
        Settings(),
    )
    return workspace


def test_round_trip_and_manifest_contents(saved: Workspace, recommenders) -> None:
    manifest = json.loads(saved.manifest.read_text())
    assert set(manifest) >= {
        "versions",
        "inputs",
        "parameters",
        "metrics",
        "created",
        "face_backend",
        "models",
    }
    assert manifest["versions"]["scikit-learn"] and manifest["versions"]["skops"]
    assert manifest["parameters"]["models"]["cv_splits"] == 5
    assert manifest["inputs"] == {"data/merged_dataset.csv": "ab" * 32}
    entry = manifest["models"]["product"]
    assert entry["sha256"] == file_sha256(saved.models_dir / "product.skops")
    assert entry["class"] == "engine.models.product.ProductRecommender"
    assert manifest["metrics"]["product"] == {"accuracy": 0.9, "eer": None, "scores": [0, 1]}

    bundle = load_model_bundle(saved, require=("product",))
    features = pd.DataFrame({"a": [1.0, -1.0], "b": [0.0, 0.0]})
    np.testing.assert_array_equal(
        bundle.product.predict(features), recommenders[0].predict(features)
    )
    assert bundle.voice is None and bundle.is_current(saved)
    assert bundle.version_mismatches == ()
    # A second load reuses the verified objects instead of deserialising again.
    assert load_model_bundle(saved, require=("product",)).product is bundle.product


def test_a_tampered_model_file_is_refused(saved: Workspace) -> None:
    path = saved.models_dir / "product.skops"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="product.skops does not match the manifest"):
        load_model_bundle(saved, require=())


def test_a_swapped_model_file_is_refused(saved: Workspace) -> None:
    shutil.copyfile(saved.models_dir / "product.skops", saved.models_dir / "face.skops")
    with pytest.raises(
        ModelIntegrityError, match="face.skops holds the product model, not the face model"
    ):
        load_model_bundle(saved, require=())


def test_an_unknown_model_file_is_refused(saved: Workspace) -> None:
    shutil.copyfile(saved.models_dir / "product.skops", saved.models_dir / "voice.skops")
    with pytest.raises(ModelIntegrityError, match="voice.skops is not listed in"):
        load_model_bundle(saved, require=())
    (saved.models_dir / "voice.skops").unlink()
    (saved.models_dir / "extra.pkl").write_bytes(b"\x80\x04.")
    with pytest.raises(ModelIntegrityError, match="extra.pkl is not listed"):
        load_model_bundle(saved, require=())


def test_a_file_with_an_untrusted_type_is_refused_even_with_a_matching_hash(
    saved: Workspace,
) -> None:
    with pytest.raises(ModelIntegrityError, match="outside the allow-list: .*Payload"):
        save_models(saved, [record("voice", Payload())], Settings())
    assert not (saved.models_dir / "voice.skops").exists()

    # An attacker who rewrites the manifest too still cannot get code built on load.
    data = skops.io.dumps(Payload())
    (saved.models_dir / "product.skops").write_bytes(data)
    manifest = json.loads(saved.manifest.read_text())
    manifest["models"]["product"]["sha256"] = hashlib.sha256(data).hexdigest()
    write_signed(saved, manifest)
    with pytest.raises(ModelIntegrityError, match="not on the allow-list: .*Payload"):
        load_model_bundle(saved, require=())


def test_a_model_of_the_wrong_class_is_refused(
    saved: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A consistent manifest for the wrong kind of model: caught by the class check.
    monkeypatch.setitem(model_files.EXPECTED_CLASSES, "face", "engine.models.face.FaceIdentifier")
    with pytest.raises(ModelIntegrityError, match="not the expected engine.models.face"):
        load_model_bundle(saved, require=())


def test_missing_models_name_the_command(workspace: Workspace) -> None:
    with pytest.raises(MissingStageError, match="run mmauth train first"):
        load_model_bundle(workspace)
    workspace.models_dir.mkdir()
    with pytest.raises(MissingStageError, match="manifest.json is missing"):
        load_model_bundle(workspace)


def test_a_model_never_trained_names_the_command(saved: Workspace) -> None:
    with pytest.raises(MissingStageError, match="no voice model has been trained.*--only voice"):
        load_model_bundle(saved, require=("product", "voice"))


def test_a_failed_write_leaves_every_previous_model_valid(
    saved: Workspace, recommenders, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {p.name: p.read_bytes() for p in saved.models_dir.iterdir()}
    real_write = fileio._write
    written: list[Path] = []

    def failing_second_file(handle, data, path: Path) -> None:
        written.append(path)
        if len(written) == 2:
            raise OutputError(path, "no space left on the disk")
        real_write(handle, data, path)

    monkeypatch.setattr(fileio, "_write", failing_second_file)
    with pytest.raises(OutputError, match="no space"):
        save_models(
            saved,
            [record("product", recommenders[1]), record("face", recommenders[0])],
            Settings(),
        )
    after = {p.name: p.read_bytes() for p in saved.models_dir.iterdir()}
    assert after == before  # no new file, no temporary left, manifest untouched
    load_model_bundle(saved, require=("product",))


def models_folder(workspace: Workspace) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in workspace.models_dir.iterdir() if p.is_file()}


def test_a_manifest_that_cannot_be_written_replaces_no_model(
    saved: Workspace, recommenders
) -> None:
    before = models_folder(saved)
    saved.manifest.rename(saved.models_dir / "kept")
    saved.manifest.mkdir()
    with pytest.raises(OutputError, match="manifest.json: it is a folder, not a file"):
        save_models(saved, [record("product", recommenders[1])], Settings(), lambda _: {})
    saved.manifest.rmdir()
    (saved.models_dir / "kept").rename(saved.manifest)
    assert models_folder(saved) == before
    load_model_bundle(saved, require=("product", "face"))


@pytest.mark.parametrize("failing", ["manifest.json", "trusted"])
def test_a_failure_after_the_models_were_replaced_puts_them_back(
    saved: Workspace, recommenders, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    before = models_folder(saved)
    real_replace = os.replace

    def refuse_manifest(source, target):
        if Path(target).name == "manifest.json":
            raise OSError(errno.EIO, "Input/output error")
        return real_replace(source, target)

    def refuse_record(workspace: Workspace, manifest_sha256: str) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", "/config/trusted_models.json")

    with monkeypatch.context() as patch:
        if failing == "manifest.json":
            patch.setattr(fileio.os, "replace", refuse_manifest)
        else:
            patch.setattr(saving, "record_trusted_manifest", refuse_record)
        with pytest.raises(OutputError, match=f"{failing}.*: (input/output|permission denied)"):
            save_models(saved, [record("product", recommenders[1])], Settings())
    assert models_folder(saved) == before
    assert load_model_bundle(saved, require=("product",)).manifest_sha256 == file_sha256(
        saved.manifest
    )


def test_retraining_one_model_keeps_the_others(saved: Workspace, recommenders) -> None:
    old = json.loads(saved.manifest.read_text())
    save_models(saved, [record("product", recommenders[1])], Settings(seed=7))
    new = json.loads(saved.manifest.read_text())
    assert new["models"]["face"] == old["models"]["face"]
    assert new["models"]["product"]["sha256"] != old["models"]["product"]["sha256"]
    assert new["parameters"]["seed"] == 7
    load_model_bundle(saved, require=("product",))

    # A kept model whose file no longer matches is not blessed again by the next save, nor
    # silently dropped from the manifest (the next load would refuse the unlisted file): the
    # save is refused, naming it, and nothing is written.
    (saved.models_dir / "face.skops").write_bytes(b"changed")
    before = models_folder(saved)
    with pytest.raises(ModelIntegrityError, match="would leave models/face.skops out"):
        check_kept_models(saved, ["product"])
    with pytest.raises(ModelIntegrityError, match="does not match the manifest"):
        save_models(saved, [record("product", recommenders[0])], Settings())
    assert models_folder(saved) == before
    save_models(
        saved, [record("product", recommenders[0]), record("face", recommenders[1])], Settings()
    )
    load_model_bundle(saved, require=())


def test_a_model_trained_by_other_code_is_refused(
    saved: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_model_bundle(saved, require=("product",)).product is not None
    monkeypatch.setattr(loading, "model_code_sha256", lambda class_path: "0" * 64)
    with pytest.raises(
        ModelIntegrityError, match="trained by another version of engine.models.product"
    ):
        load_model_bundle(saved, require=("product",))


def test_a_manifest_cannot_name_a_module_to_import(saved: Workspace) -> None:
    manifest = json.loads(saved.manifest.read_text())
    manifest["models"]["product"]["class"] = "antigravity.Fly"
    write_signed(saved, manifest)
    with pytest.raises(ModelIntegrityError, match="not a model class of mmauth"):
        load_model_bundle(saved, require=("product",))


@pytest.fixture
def saved_face(workspace: Workspace) -> Workspace:
    from engine.models.face import FaceIdentifier

    rng = np.random.default_rng(0)
    centres = {name: rng.normal(size=8) for name in ("ana", "ben", "eve")}
    rows = np.vstack([centre + rng.normal(0, 0.1, (4, 8)) for centre in centres.values()])
    model = FaceIdentifier(backend="dlib").fit(rows, np.repeat(list(centres), 4))
    save_models(workspace, [record("face", model)], Settings())
    for name in centres:  # the members a model can grant must be enrolled in the workspace
        (workspace.faces_dir / name).mkdir(parents=True)
        (workspace.faces_dir / name / "front.png").write_bytes(b"photo")
    return workspace


def write_signed(workspace: Workspace, manifest: dict) -> None:
    """A hand-edited manifest signed with this installation's key: the checks behind the
    signature still hold for whoever has the key."""
    from engine.models.signing import record_trusted_manifest, sign_manifest

    workspace.manifest.write_text(json.dumps(sign_manifest(manifest)))
    record_trusted_manifest(workspace, model_files.file_sha256(workspace.manifest))


def edited(monkeypatch: pytest.MonkeyPatch, module_name: str) -> None:
    """Make ``module_name``'s source look edited to the code hash."""
    import importlib

    edited_file = Path(str(importlib.import_module(module_name).__file__))
    real_sha256 = model_files.file_sha256

    def sha256(path: Path) -> str:
        return "0" * 64 if Path(path) == edited_file else real_sha256(path)

    monkeypatch.setattr(model_files, "file_sha256", sha256)


def test_editing_another_estimator_leaves_the_face_model_loadable(
    saved_face: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    edited(monkeypatch, "engine.models.product")
    assert load_model_bundle(saved_face, require=("face",)).face.members_ == ["ana", "ben", "eve"]


@pytest.mark.parametrize("module_name", ["engine.models.face", "engine.models._calibration"])
def test_editing_the_face_code_refuses_the_face_model(
    saved_face: Workspace, monkeypatch: pytest.MonkeyPatch, module_name: str
) -> None:
    edited(monkeypatch, module_name)
    with pytest.raises(ModelIntegrityError, match=r"face.skops was trained by .* --only face"):
        load_model_bundle(saved_face, require=("face",))


def test_a_model_of_a_class_mmauth_no_longer_has_asks_for_training(
    saved_face: Workspace,
) -> None:
    manifest = json.loads(saved_face.manifest.read_text())
    manifest["models"]["face"]["class"] = "engine.models.biometrics.FaceIdentifier"
    write_signed(saved_face, manifest)
    with pytest.raises(ModelIntegrityError, match=r"face.skops .* mmauth train --only face"):
        load_model_bundle(saved_face, require=("face",))


def test_the_code_hash_covers_the_engine_models_modules_each_estimator_imports() -> None:
    import ast
    import importlib

    for class_path, shared in model_files.SHARED_CODE_MODULES.items():
        module = importlib.import_module(class_path.rsplit(".", 1)[0])
        tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
        imported = {
            node.module
            for node in tree.body
            if isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("engine.models.")
        }
        assert imported == set(shared), class_path


def test_state_files_load_the_same_models_without_skops(
    saved: Workspace, recommenders, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = json.loads(saved.manifest.read_text())["models"]["product"]
    state = saved.models_dir / entry["state"]["file"]
    assert state.name == "product.state.npz" and file_sha256(state) == entry["state"]["sha256"]
    monkeypatch.setattr(loading, "_loaded_models", {})

    def no_skops(data: bytes, *, source: str) -> object:
        raise AssertionError(f"{source} was deserialised with skops")

    monkeypatch.setattr(loading, "deserialize_model", no_skops)
    bundle = load_model_bundle(saved, require=())
    rows = pd.DataFrame(np.random.default_rng(2).normal(size=(5, 2)), columns=["a", "b"])
    assert bundle.product is not recommenders[0]
    assert np.array_equal(bundle.product.predict(rows), recommenders[0].predict(rows))
    assert np.array_equal(bundle.product.predict_proba(rows), recommenders[0].predict_proba(rows))


def test_a_tampered_state_file_is_refused(saved: Workspace) -> None:
    path = saved.models_dir / "product.state.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="product.state.npz does not match the manifest"):
        load_model_bundle(saved, require=())


def test_the_state_format_builds_only_allowed_classes() -> None:
    from engine.models import state_file

    with pytest.raises(state_file.NotStorable, match="Payload"):
        state_file.dumps(Payload(), own_types=())
    own = {f"{Payload.__module__}.{Payload.__qualname__}"}
    data = state_file.dumps(Payload(), own_types=own)
    assert state_file.loads(data, own, source="p").command == "rm -rf /"
    with pytest.raises(ModelIntegrityError, match="Payload, which is not on the allow-list"):
        state_file.loads(data, own_types=(), source="p")


def test_models_replaced_while_a_login_loads_them_load_the_new_set(
    saved: Workspace, recommenders, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mmauth train (or enroll, remove, models trust) finishing while a login reads the models:
    the login read the old manifest, then meets the new files. That is no tampering: the set
    now in place is loaded (it was refused as 'changed after training, by tampering')."""
    listed_file = loading._listed_file
    replaced: list[bool] = []

    def train_finishes_meanwhile(workspace: Workspace, name: str, listed):
        if not replaced:
            replaced.append(True)
            save_models(
                workspace,
                [record("product", recommenders[1]), record("face", recommenders[0])],
                Settings(seed=7),
            )
        return listed_file(workspace, name, listed)

    monkeypatch.setattr(loading, "_listed_file", train_finishes_meanwhile)
    bundle = load_model_bundle(saved, require=("product",))
    assert replaced
    assert bundle.manifest_sha256 == file_sha256(saved.manifest)
    assert bundle.manifest["parameters"]["seed"] == 7


def test_a_file_tampered_with_while_the_manifest_stays_is_still_refused(
    saved: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed_file = loading._listed_file

    def tampered_meanwhile(workspace: Workspace, name: str, listed):
        (workspace.models_dir / "product.skops").write_bytes(b"changed")
        return listed_file(workspace, name, listed)

    monkeypatch.setattr(loading, "_listed_file", tampered_meanwhile)
    with pytest.raises(ModelIntegrityError, match="does not match the manifest"):
        load_model_bundle(saved, require=("product",))


def test_threads_load_the_models_one_at_a_time(
    saved: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loads in threads of one process (Authenticators of a program, the app's screens) never
    overlap: they share the deserialised models, and on CPython 3.11 np.load's header parsing
    (ast.literal_eval) fails at random in concurrent threads ("SystemError: AST constructor
    recursion depth mismatch", gh-106905), which denied a login internal_error."""
    import threading
    import time

    load_bundle = loading._load_bundle
    inside: list[int] = []
    overlapped: list[bool] = []

    def slow_load(*args, **kwargs):
        inside.append(1)
        overlapped.append(len(inside) > 1)
        time.sleep(0.2)  # long enough for the other thread to come in, were it let in
        try:
            return load_bundle(*args, **kwargs)
        finally:
            inside.pop()

    monkeypatch.setattr(loading, "_load_bundle", slow_load)
    bundles = []
    threads = [
        threading.Thread(
            target=lambda: bundles.append(load_model_bundle(saved, require=("product",)))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(bundles) == 2 and overlapped == [False, False]
    assert bundles[0].product is bundles[1].product
