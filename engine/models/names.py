"""The names of the trained models, owned once (training, persistence, reports, front ends)."""

from __future__ import annotations

import enum


class ModelName(enum.StrEnum):
    """A trained model; the value is its file stem and its key in the manifest."""

    FACE = "face"
    VOICE = "voice"
    PRODUCT = "product"


MODEL_NAMES = tuple(ModelName)
"""Every model, in training order."""

SUMMARY_COLUMNS = (
    "model",
    "accuracy",
    "f1_score",
    "log_loss",
    "eer",
    "fmr",
    "fnmr",
    "threshold",
    "n_train",
    "n_test",
    "backend",
    "accuracy_std",
    "f1_score_std",
    "log_loss_std",
    "chosen",
    "beats_baseline",
    "created",
    "n_genuine",
    "n_impostor",
    "false_matches",
)
"""training_summary.csv's columns: engine.models.training writes them, the app shows some."""
