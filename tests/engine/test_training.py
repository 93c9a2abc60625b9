from __future__ import annotations

import json
import re
import threading

import numpy as np
import pandas as pd
import pytest

from engine.core.errors import CancelledError, InputError, MissingStageError, OutputError
from engine.core.progress import Progress
from engine.core.settings import Settings, load_settings
from engine.core.workspace import Workspace
from engine.models._calibration import VOICE_IMPOSTOR_TAIL, population_threshold
from engine.models.loading import load_model_bundle
from engine.models.training import SUMMARY_COLUMNS, calibration_note, train_models
from tests.engine.model_fixtures import (
    MEMBERS,
    write_audio_features,
    write_image_features,
    write_merged_dataset,
)

# Two repeats: with three folds alone, even a perfect model is not significantly better.
FAST = {"models.cv_splits": 3, "models.cv_repeats": 2}


def fast_settings(workspace: Workspace) -> Settings:
    return load_settings(workspace.root, FAST)


@pytest.fixture
def customers(workspace: Workspace) -> Workspace:
    write_merged_dataset(workspace)
    return workspace


def test_training_the_product_model_writes_models_summary_and_manifest(
    customers: Workspace,
) -> None:
    events: list[Progress] = []
    result = train_models(
        customers, fast_settings(customers), which=("product",), progress=events.append
    )
    assert result.trained == ("product",)
    assert (customers.models_dir / "product.skops").is_file()
    summary = pd.read_csv(customers.training_summary)
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    row = summary.iloc[0]
    assert row["model"] == "product" and row["beats_baseline"]
    assert 0.7 < row["accuracy"] <= 1 and row["f1_score_std"] >= 0
    assert row["n_train"] == 30 and row["n_test"] == 15
    assert np.isnan(row["eer"]) and np.isnan(row["threshold"])

    manifest = json.loads(customers.manifest.read_text())
    assert manifest["inputs"] == {
        "data/merged_dataset.csv": manifest["models"]["product"]["inputs"][
            "data/merged_dataset.csv"
        ]
    }
    assert manifest["metrics"]["product"]["chosen"] == row["chosen"]
    assert "beats the baselines" in result.product_verdict
    labels, matrix = result.confusion_matrices["product"]
    assert labels == ["Books", "Sports"] and np.sum(matrix) == 45 * 2

    stages = {e.stage for e in events}
    assert {"train.product", "train.save"} <= stages
    fold_events = [e for e in events if re.search(r"fold \d+/\d+$", e.message)]
    assert len(fold_events) == 5 * 6  # 3 models + 2 baselines, 3 folds x 2 repeats each
    assert all(0 < e.step <= e.total for e in fold_events)
    finished = next(e for e in events if e.message == "product model trained")
    assert {"accuracy", "f1_score", "log_loss", "seconds"} <= set(finished.metrics)

    bundle = load_model_bundle(customers, require=("product",))
    assert bundle.product.comparison_.best == row["chosen"]


def test_a_cancelled_run_leaves_the_previous_models_valid(customers: Workspace) -> None:
    train_models(customers, fast_settings(customers), which=("product",))
    before = {p.name: p.read_bytes() for p in customers.models_dir.iterdir()}
    write_merged_dataset(customers, seed=1)
    cancel = threading.Event()

    def cancel_after_two_folds(event: Progress) -> None:
        if event.message.endswith("fold 2/6"):
            cancel.set()

    with pytest.raises(CancelledError, match="cancelled"):
        train_models(
            customers,
            fast_settings(customers),
            which=("product",),
            progress=cancel_after_two_folds,
            cancel=cancel,
        )
    after = {p.name: p.read_bytes() for p in customers.models_dir.iterdir()}
    assert after == before
    load_model_bundle(customers, require=("product",))


@pytest.mark.parametrize(
    ("which", "message"),
    [
        (("product",), "needs data/merged_dataset.csv, which is missing: run mmauth merge"),
        (("face",), "needs data/image_features.csv, which is missing: run mmauth features"),
        (
            ("voice",),
            "needs data/audio_features.csv and data/processed/mfcc_sequences.npz, which are "
            "missing: run mmauth features first$",
        ),
        (
            ("face", "voice", "product"),
            "product model needs data/merged_dataset.csv, which is missing: run mmauth merge "
            "and mmauth features first \\(without customer tables, mmauth train --only face "
            "--only voice leaves the product out\\)",
        ),
    ],
)
def test_a_missing_stage_names_the_command(
    workspace: Workspace, which: tuple[str, ...], message: str
) -> None:
    with pytest.raises(MissingStageError, match=message):
        train_models(workspace, Settings(), which=which)
    assert not workspace.models_dir.exists()


def test_a_missing_merge_names_the_models_that_can_train_alone(workspace: Workspace) -> None:
    for path in (workspace.image_features, workspace.audio_features):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("member\n")
    with pytest.raises(MissingStageError) as raised:
        train_models(workspace, Settings(), which=("face", "product"))
    assert str(raised.value) == (
        "the product model needs data/merged_dataset.csv, which is missing: run mmauth merge "
        "first, or train the others alone: mmauth train --only face"
    )


def test_unknown_model_names_are_refused(customers: Workspace) -> None:
    with pytest.raises(InputError, match="cannot train iris"):
        train_models(customers, Settings(), which=("iris",))


def test_a_merged_table_without_the_target_is_refused(customers: Workspace) -> None:
    table = pd.read_csv(customers.merged_dataset).drop(columns=["preferred_category"])
    table.to_csv(customers.merged_dataset, index=False)
    with pytest.raises(InputError, match="column 'preferred_category'.*re-run mmauth merge"):
        train_models(customers, Settings(), which=("product",))


def test_training_the_face_model_takes_its_metrics_from_the_identifier(
    customers: Workspace,
) -> None:
    write_image_features(customers)
    events: list[Progress] = []
    result = train_models(
        customers, fast_settings(customers), which=("face",), progress=events.append
    )
    row = next(r for r in result.summary if r["model"] == "face")
    bundle = load_model_bundle(customers, require=("face",))
    evaluation = bundle.face.evaluation_
    for column in ("accuracy", "f1_score", "eer", "fmr", "fnmr", "n_train", "n_test"):
        assert row[column] == pytest.approx(evaluation[column], nan_ok=True), column
    assert row["threshold"] == pytest.approx(bundle.face.threshold_)
    assert row["backend"] == "classic" and result.manifest["face_backend"] == "classic"
    assert row["n_train"] == 24  # enrolment rows only: 4 members x 3 photos x 2 copies
    labels, matrix = result.confusion_matrices["face"]
    assert "ana" in labels and len(matrix) == len(labels)
    assert any(e.stage == "train.face" and 0 < e.step < e.total for e in events)
    probe = pd.read_csv(customers.image_features).query("role == 'probe' and member == 'bo'")
    vector = probe.filter(like="feature_").to_numpy()[0]
    assert bundle.face.identify(vector).best_member == "bo"


def test_the_face_threshold_rule_setting_reaches_the_identifier(customers: Workspace) -> None:
    write_image_features(customers)
    settings = load_settings(customers.root, {**FAST, "models.face_threshold_rule": "empirical"})
    train_models(customers, settings, which=("face",))
    assert load_model_bundle(customers, require=("face",)).face.threshold_rule == "empirical"


def test_training_a_subset_keeps_the_other_models(customers: Workspace) -> None:
    write_image_features(customers)
    settings = fast_settings(customers)
    train_models(customers, settings, which=("face", "product"))
    first = json.loads(customers.manifest.read_text())
    face_bytes = (customers.models_dir / "face.skops").read_bytes()
    write_merged_dataset(customers, seed=5)
    result = train_models(customers, settings, which=("product",))
    second = result.manifest
    assert second["models"]["face"] == first["models"]["face"]
    assert (customers.models_dir / "face.skops").read_bytes() == face_bytes
    assert second["models"]["product"]["sha256"] != first["models"]["product"]["sha256"]
    assert second["inputs"]["data/image_features.csv"] == first["inputs"]["data/image_features.csv"]
    assert second["inputs"]["data/merged_dataset.csv"] != first["inputs"]["data/merged_dataset.csv"]
    summary = pd.read_csv(customers.training_summary)
    assert list(summary["model"]) == ["face", "product"]
    bundle = load_model_bundle(customers, require=("face", "product"))
    assert bundle.voice is None


def test_training_the_voice_model_records_the_mfcc_archive(customers: Workspace) -> None:
    write_audio_features(customers)
    result = train_models(customers, fast_settings(customers), which=("voice",))
    inputs = result.manifest["models"]["voice"]["inputs"]
    assert set(inputs) == {"data/audio_features.csv", "data/processed/mfcc_sequences.npz"}
    row = next(r for r in result.summary if r["model"] == "voice")
    assert 0 <= row["eer"] <= 0.5 and row["threshold"] is not None
    bundle = load_model_bundle(customers, require=("voice",))
    assert bundle.voice.threshold_ == pytest.approx(row["threshold"])


def test_the_voice_threshold_rule_setting_reaches_the_verifier(customers: Workspace) -> None:
    write_audio_features(customers)
    train_models(customers, fast_settings(customers), which=("voice",))
    default = load_model_bundle(customers, require=("voice",)).voice
    assert default.threshold_rule == "auto"
    assert default.threshold_ == population_threshold(0.01, VOICE_IMPOSTOR_TAIL)
    settings = load_settings(
        customers.root, {**FAST, "models.voice_threshold_rule": "gaussian_tail"}
    )
    train_models(customers, settings, which=("voice",))
    own_tail = load_model_bundle(customers, require=("voice",)).voice
    assert own_tail.threshold_rule == "gaussian_tail"
    assert own_tail.threshold_ != default.threshold_


def test_a_voice_table_without_speaker_embeddings_asks_for_new_features(
    customers: Workspace,
) -> None:
    write_audio_features(customers, dimensions=12)
    with pytest.raises(MissingStageError, match="older version.*run mmauth features again"):
        train_models(customers, Settings(), which=("voice",))


def test_a_feature_table_with_one_member_is_refused(customers: Workspace) -> None:
    write_image_features(customers, members=("ana",))
    with pytest.raises(MissingStageError, match="enrolment rows for 1 member.*at least 2"):
        train_models(customers, Settings(), which=("face",))


def test_a_voice_table_with_two_members_is_refused_with_the_reason(customers: Workspace) -> None:
    write_audio_features(customers, members=MEMBERS[:2])
    with pytest.raises(
        MissingStageError, match="for 2 member.*at least 3 are needed for the voice"
    ):
        train_models(customers, Settings(), which=("voice",))


def test_a_failed_summary_write_leaves_the_previous_models_valid(
    customers: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.core import fileio

    train_models(customers, fast_settings(customers), which=("product",))
    before = {p.name: p.read_bytes() for p in customers.models_dir.iterdir()}
    real_write = fileio._write

    def disk_full_on_summary(handle, data, path):
        if path.name == "training_summary.csv":
            raise fileio._cannot_write(path, OSError(28, "No space left on device"))
        real_write(handle, data, path)

    monkeypatch.setattr(fileio, "_write", disk_full_on_summary)
    write_merged_dataset(customers, seed=3)
    with pytest.raises(OutputError, match="training_summary.csv: no space left on the disk"):
        train_models(customers, fast_settings(customers), which=("product",))
    assert {p.name: p.read_bytes() for p in customers.models_dir.iterdir()} == before
    load_model_bundle(customers, require=("product",))


def test_feature_tables_keep_names_that_look_like_numbers(workspace: Workspace) -> None:
    from engine.core.feature_tables import read_feature_table

    path = workspace.audio_features
    path.parent.mkdir(parents=True)
    path.write_text(
        "member,phrase,augmentation,augmentation_detail,source,role,audio_feature_0\n"
        "007,3,original,,a.wav,enrol,0.5\n"
    )
    row = read_feature_table(workspace, path, "audio_feature_").iloc[0]
    assert (row["member"], row["phrase"], row["augmentation_detail"]) == ("007", "3", "")
    assert row["audio_feature_0"] == 0.5
    path.unlink()
    with pytest.raises(MissingStageError, match="run mmauth features first"):
        read_feature_table(workspace, path, "audio_feature_")


def test_a_threshold_note_needs_clearly_more_false_matches_than_the_target() -> None:
    note = calibration_note("voice", {"false_matches": 12, "n_impostor": 192}, 0.01)
    assert note is not None and note.startswith("voice: ")
    assert "6.2% [" in note and "(12/192)" in note and "above the 1.0% target" in note
    assert 'models.voice_threshold_rule = "gaussian_tail"' in note
    assert "Voice threshold from a population" in note
    face = calibration_note("face", {"false_matches": 9, "n_impostor": 100}, 0.02)
    assert face is not None and "models.face_threshold_rule" in face
    # 4/192 is 2.1%, but its Wilson interval reaches down to 0.8%: not clearly above 1%.
    assert calibration_note("voice", {"false_matches": 4, "n_impostor": 192}, 0.01) is None
    assert calibration_note("voice", {"false_matches": 0, "n_impostor": 0}, 0.01) is None
    assert calibration_note("voice", {"fmr": 0.5}, 0.01) is None


def test_enrolment_folders_changed_since_the_feature_table_are_named(workspace: Workspace) -> None:
    """Training reads the table, not the folders: a file added or removed since mmauth features
    is named (files the features run could not use, in its report, are not)."""
    from engine.models.training import stale_table_note

    for name in ("ana/a.png", "ana/b.png", "ben/c.png"):
        (workspace.faces_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace.faces_dir / name).write_bytes(b"")
    report = workspace.data_dir / "image_features_report.json"
    report.write_text(json.dumps({"failures": [{"source": "data/raw/faces/ben/c.png"}]}))

    def note(*listed: str) -> str | None:
        table = pd.DataFrame({"source": [f"data/raw/faces/{name}" for name in listed]})
        where = workspace.image_features
        return stale_table_note(workspace, "face", table, where, workspace.faces_dir, report)

    assert note("ana/a.png", "ana/b.png") is None
    stale = note("ana/a.png", "ana/gone.png")
    assert stale is not None
    assert stale.startswith("face: data/raw/faces changed after data/image_features.csv")
    assert "1 file(s) added since (e.g. data/raw/faces/ana/b.png)" in stale
    assert "1 file(s) removed since (e.g. data/raw/faces/ana/gone.png)" in stale
    assert "run mmauth features, then mmauth train" in stale
    # Without a readable report, a file the table lacks counts as added.
    report.write_text("{not json")
    assert "2 file(s) added since" in str(note("ana/a.png"))


def test_members_with_one_photo_are_named_or_refused(customers: Workspace) -> None:
    from engine.core.errors import EnrolmentError

    write_image_features(customers, photos=1)
    with pytest.raises(EnrolmentError, match="ana, bo, cy, dee have one photo each"):
        train_models(customers, fast_settings(customers), which=("face",))
    assert not customers.models_dir.exists()
    table = pd.read_csv(customers.image_features)
    second = table[(table["member"] == "ana") & (table["role"] == "enrol")].assign(
        source="data/raw/faces/ana/1.png"
    )
    pd.concat([table, second]).to_csv(customers.image_features, index=False)
    result = train_models(customers, fast_settings(customers), which=("face",))
    assert any(
        note.startswith("face: bo, cy, dee have one photo each: the held-out figures hold no")
        for note in result.notes
    )


def test_outputs_that_cannot_be_written_are_refused_before_any_fit(
    customers: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest that could not be written at the end is said at once, not after the fits."""
    import engine.models.training as training

    def no_fit(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a model was fitted although its manifest cannot be written")

    monkeypatch.setattr(training, "train_product", no_fit)
    customers.manifest.mkdir(parents=True)
    with pytest.raises(OutputError, match="manifest.json: it is a folder, not a file"):
        train_models(customers, fast_settings(customers), which=("product",))
