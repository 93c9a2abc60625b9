"""Seeded augmentation of enrolment photos: more templates per member from each photo.

Geometry (rotation, flip, scale, translation) perturbs the face region found on the original
photo and the crop is resampled from the photo itself: the detector only ever sees the
unmodified photo, so an augmented copy never fails to acquire, and rotated copies have real
image content in their corners instead of padding. Photometry (greyscale, brightness,
contrast, blur, noise) is applied to the crop afterwards.

Every copy's random draws come from (settings.seed, the file's SHA-256, the copy's index), so
the same file always gets the same copies, whatever order or worker processes it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from engine.core.settings import FaceAugmentSettings
from engine.faces.detect import FaceRegion

OPERATIONS = ("rotate", "flip", "scale", "translate", "greyscale", "light", "blur", "noise")
"""Names used in the ``augmentation`` column, in the order they are applied and written."""
ORIGINAL = "original"
_MAX_DRAWS = 64
_PICK_PROBABILITY = 1 / 3
"""Each enabled operation joins a copy with this probability: two or three per copy on average."""


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """One augmented copy: which operations, with which magnitudes."""

    name: str
    """The operations joined by ``+`` (e.g. ``rotate+noise``), or ``original``."""
    rotation: float = 0.0
    """Extra rotation of the face in radians."""
    flip: bool = False
    """Mirror left-right."""
    zoom: float = 1.0
    """Face size multiplier (above 1 zooms in)."""
    shift: tuple[float, float] = (0.0, 0.0)
    """Translation of the face as a fraction of the crop side (x, y)."""
    greyscale: bool = False
    brightness: float = 0.0
    """Added to every channel, on a 0..1 scale."""
    contrast: float = 1.0
    """Multiplies deviations from the crop's mean."""
    blur_sigma: float = 0.0
    """Gaussian blur in crop pixels (0: none)."""
    noise_sigma: float = 0.0
    """Standard deviation of added gaussian noise on a 0..1 scale (0: none)."""
    noise_seed: int = 0
    """Seed of the noise field."""


def enabled_operations(settings: FaceAugmentSettings) -> tuple[str, ...]:
    """The operations whose settings are not zero/off."""
    enabled = {
        "rotate": settings.rotation_degrees > 0,
        "flip": settings.flip,
        "scale": settings.scale > 0,
        "translate": settings.translate > 0,
        "greyscale": settings.greyscale,
        "light": settings.brightness > 0 or settings.contrast > 0,
        "blur": settings.blur_sigma > 0,
        "noise": settings.noise_sigma > 0,
    }
    return tuple(name for name in OPERATIONS if enabled[name])


def plan_augmentations(
    settings: FaceAugmentSettings, *, seed: int, content_sha256: str
) -> list[Augmentation]:
    """``settings.copies`` distinct augmentations for one file, deterministic in its content.

    Each copy applies each enabled operation with probability one third (at least one), and no
    two copies of a file share the same set of operations, so (source, augmentation) names a
    row uniquely.
    """
    operations = enabled_operations(settings)
    if settings.copies == 0 or not operations:
        return []
    file_key = int(content_sha256[:16], 16)
    used: set[str] = set()
    copies = []
    for index in range(settings.copies):
        rng = np.random.default_rng([seed, file_key, index])
        chosen: tuple[str, ...] = ()
        for _ in range(_MAX_DRAWS):
            chosen = tuple(name for name in operations if rng.random() < _PICK_PROBABILITY)
            if chosen and "+".join(chosen) not in used:
                break
        if not chosen or "+".join(chosen) in used:
            break  # fewer distinct subsets than copies asked for
        used.add("+".join(chosen))
        copies.append(_draw(settings, chosen, rng))
    return copies


def _draw(
    settings: FaceAugmentSettings, chosen: Sequence[str], rng: np.random.Generator
) -> Augmentation:
    values: dict[str, object] = {"name": "+".join(chosen)}
    if "rotate" in chosen:
        values["rotation"] = math.radians(rng.uniform(-1, 1) * settings.rotation_degrees)
    values["flip"] = "flip" in chosen
    if "scale" in chosen:
        values["zoom"] = 1.0 + rng.uniform(-1, 1) * settings.scale
    if "translate" in chosen:
        values["shift"] = tuple(float(v) for v in rng.uniform(-1, 1, 2) * settings.translate)
    values["greyscale"] = "greyscale" in chosen
    if "light" in chosen:
        values["brightness"] = rng.uniform(-1, 1) * settings.brightness
        values["contrast"] = 1.0 + rng.uniform(-1, 1) * settings.contrast
    if "blur" in chosen:
        values["blur_sigma"] = rng.uniform(0.5, 1.0) * settings.blur_sigma
    if "noise" in chosen:
        values["noise_sigma"] = settings.noise_sigma
        values["noise_seed"] = int(rng.integers(2**31))
    return Augmentation(**values)  # type: ignore[arg-type]


def augment_region(region: FaceRegion, augmentation: Augmentation) -> FaceRegion:
    """The face region moved, turned and resized as the augmentation says (no flip: see crop)."""
    cos, sin = math.cos(region.angle), math.sin(region.angle)
    shift_x, shift_y = (value * region.side for value in augmentation.shift)
    return dataclasses.replace(
        region,
        center_x=region.center_x + cos * shift_x - sin * shift_y,
        center_y=region.center_y + sin * shift_x + cos * shift_y,
        side=region.side / augmentation.zoom,
        angle=region.angle + augmentation.rotation,
    )


def augment_crop(crop: np.ndarray, augmentation: Augmentation) -> np.ndarray:
    """Photometric changes (and the flip) of a height x width x 3 crop in 0..1; a new array."""
    from scipy import ndimage

    result = crop[:, ::-1] if augmentation.flip else crop.copy()
    if augmentation.greyscale:
        luminance = result @ np.array([0.2125, 0.7154, 0.0721])
        result = np.repeat(luminance[:, :, None], 3, axis=2)
    if augmentation.contrast != 1.0 or augmentation.brightness != 0.0:
        mean = result.mean()
        result = (result - mean) * augmentation.contrast + mean + augmentation.brightness
    if augmentation.blur_sigma > 0:
        result = ndimage.gaussian_filter(result, sigma=(augmentation.blur_sigma,) * 2 + (0,))
    if augmentation.noise_sigma > 0:
        noise_rng = np.random.default_rng(augmentation.noise_seed)
        result = result + noise_rng.normal(0.0, augmentation.noise_sigma, result.shape)
    return np.clip(result, 0.0, 1.0)
