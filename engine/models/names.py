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
