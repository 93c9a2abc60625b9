"""engine.reports.stats: counts and summaries of a workspace, and the commands named for missing inputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from engine.core.workspace import Workspace
from engine.reports.stats import customer_stats, phrase_of, training_summary, workspace_stats


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


@pytest.fixture
def filled(workspace: Workspace) -> Workspace:
    """Two members with photos and clips, one stranger probe, and a members.csv."""
    for name in ("ana", "ben"):
        touch(workspace.faces_dir / name / "neutral.png")
        touch(workspace.faces_dir / name / "smiling.jpg")
        touch(workspace.voices_dir / name / "yes_approve_1.wav")
        touch(workspace.voices_dir / name / "yes_approve_2.wav")
        touch(workspace.voices_dir / name / "confirm_transaction_1.wav")
    touch(workspace.faces_dir / "ana" / "notes.txt")
    # Photos named as in the Yale set, known by their content; a file that only looks like one is not.
    from PIL import Image

    for name in ("subject02", "subject02.normal"):
        Image.new("L", (4, 4)).save(workspace.faces_dir / "ben" / name, format="GIF")
    touch(workspace.faces_dir / "ben" / "subject02.happy")
    touch(workspace.probe_faces_dir / "ana" / "dim.png")
    touch(workspace.probe_faces_dir / "zoe" / "a.png")
    touch(workspace.probe_voices_dir / "zoe" / "yes_approve_1.wav")
    touch(workspace.members_file)
    workspace.members_file.write_text("member,customer_id\nana,A1\n", encoding="utf-8")
    return workspace


def test_counts_come_from_the_folders_before_any_stage_ran(filled: Workspace) -> None:
    stats = workspace_stats(filled)

    assert stats.members.rows == (("ana", "A1", 2, 3, 1, 0), ("ben", "-", 4, 3, 0, 0))
    assert stats.probes.rows == (("ana", "member", 1, 0), ("zoe", "stranger", 1, 1))
    assert stats.photos is None
    assert ("ana", "yes_approve", "original", 2) in stats.clips.rows
    assert ("ana", "confirm_transaction", "original", 1) in stats.clips.rows
    assert stats.customers is None
    assert [str(m) for m in stats.missing] == [
        "data/image_features.csv is missing: run mmauth features",
        "data/audio_features.csv is missing: run mmauth features",
        "data/merged_dataset.csv is missing: run mmauth merge",
    ]


def test_empty_workspace_names_the_commands_that_fill_it(workspace: Workspace) -> None:
    stats = workspace_stats(workspace)

    assert stats.members.rows == ()
    assert any("mmauth sample" in str(m) for m in stats.missing)


def test_feature_tables_give_counts_per_emotion_phrase_and_augmentation(filled: Workspace) -> None:
    pd.DataFrame(
        {
            "member": ["ana", "ana", "ana", "zoe"],
            "emotion": ["neutral", "neutral", "smiling", "unknown"],
            "augmentation": ["original", "flip", "original", "original"],
            "source": ["a", "a", "b", "c"],
            "role": ["enrol", "enrol", "enrol", "probe"],
            "feature_0": [0.1, 0.2, 0.3, 0.4],
        }
    ).to_csv(filled.image_features, index=False)
    pd.DataFrame(
        {
            "member": ["ana", "ana", "ben", "ben"],
            "phrase": ["yes_approve"] * 4,
            "augmentation": ["original", "noise", "original", "original"],
            "source": ["a", "a", "b", "c"],
            "role": ["enrol"] * 4,
            "audio_feature_0": [1.0, 2.0, 3.0, 5.0],
            "audio_feature_1": [0.0, 0.0, 1.0, 1.0],
        }
    ).to_csv(filled.audio_features, index=False)

    stats = workspace_stats(filled)

    assert stats.photos is not None
    assert stats.photos.rows == (
        ("ana", "neutral", "flip", 1),
        ("ana", "neutral", "original", 1),
        ("ana", "smiling", "original", 1),
    )
    assert stats.clips.rows == (
        ("ana", "yes_approve", "noise", 1),
        ("ana", "yes_approve", "original", 1),
        ("ben", "yes_approve", "original", 2),
    )
    # Box plots use the original enrolment clips only.
    assert stats.audio_features["audio_feature_0"] == {"ana": (1.0,), "ben": (3.0, 5.0)}


def test_customer_stats_find_the_plotted_columns_and_the_categories() -> None:
    table = pd.DataFrame(
        {
            "customer_id": ["A1", "A2", "A3", "A4"],
            "age": [20, 30, 40, None],
            "engagement_score_mean": [1.0, 2.0, 3.0, 4.0],
            "purchase_amount_sum": [10.0, 25.0, 20.0, 50.0],
            "purchase_amount_mean": [5.0, 12.5, 10.0, 25.0],
            "purchase_amount_max": [6.0, 13.0, 11.0, 30.0],
            "platform_facebook": [1, 0, 1, 0],
            "preferred_category": ["Books", "Sports", "Books", "Books"],
        }
    )

    summary = customer_stats(table)

    assert summary.customers == 4
    assert summary.categories.rows == (("Books", 3), ("Sports", 1))
    assert summary.ages == (20.0, 30.0, 40.0)
    assert summary.purchase_column == "purchase_amount_mean"
    assert summary.engagement_column == "engagement_score_mean"
    assert summary.engagement_vs_purchase[1] == (2.0, 12.5)
    assert summary.correlation is not None
    # One-hot flags and the min/max/sum restating a mean stay out of the heatmap.
    assert summary.correlation.names == ("age", "engagement_score_mean", "purchase_amount_mean")
    assert summary.correlation.matrix[0][0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("name", "phrase"),
    [("yes_approve_2.wav", "yes_approve"), ("confirm.wav", "confirm"), ("take_10.flac", "take")],
)
def test_phrase_is_the_stem_without_its_take_number(name: str, phrase: str) -> None:
    assert phrase_of(Path(name)) == phrase


def test_training_summary_reads_the_metrics_of_trained_models(workspace: Workspace) -> None:
    assert training_summary(workspace) is None
    workspace.models_dir.mkdir()
    workspace.training_summary.write_text(
        "model,accuracy,f1_score,log_loss,eer,fmr,fnmr,threshold,n_train,n_test,backend\n"
        "face,0.9,0.88,0.3,0.05,0.01,0.1,0.62,40,20,classic\n",
        encoding="utf-8",
    )

    summary = training_summary(workspace)

    assert summary is not None  # a summary from before the counts were kept: blank counts
    assert summary.rows == (
        ("face", "0.9", "0.88", "0.3", "0.05", "0.01", "0.1", "0.62", "classic", "", "", ""),
    )


def test_simulation_scores_split_mated_and_non_mated_attempts() -> None:
    from types import SimpleNamespace

    from engine.reports.stats import simulation_scores

    def attempt(campaign: str, face: float | None, voice: float | None) -> SimpleNamespace:
        return SimpleNamespace(campaign=campaign, face_score=face, voice_score=voice)

    attempts = [
        attempt("genuine", 0.9, 0.8),
        attempt("genuine", 0.7, None),  # stopped before the voice step
        attempt("stranger_face", 0.3, None),
        attempt("cross_member", 0.95, 0.2),
        attempt("wrong_phrase", 0.9, 0.4),
        attempt("replay", 0.99, 0.99),  # attacks are not impostor comparisons
    ]

    scores = simulation_scores(attempts)

    assert scores["face"] == ((0.9, 0.7), (0.3,))
    assert scores["voice"] == ((0.8,), (0.2, 0.4))
    assert simulation_scores([attempt("genuine", 0.9, 0.8)]) == {}
