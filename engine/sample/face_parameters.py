"""Who is in a sample face photo and how it was taken: one frozen identity per person (proportions,
colours, hair, glasses, facial hair, a warp of the features) drawn from a population, and per
photo a capture (expression, light, pose, scale, background, blur and sensor noise).

Lengths are in "face units" (1 = half the width of the head, y pointing down, origin at the
centre of the face); engine.sample.face_rendering turns an identity and a capture into pixels.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

IMAGE_SHAPE = (320, 384)
"""Height and width of every photo: a landscape webcam frame, so no detector mistakes it for a
tight face crop."""
EXPRESSIONS = ("neutral", "smiling", "surprised")
HAIR_STYLES = ("short", "long", "fringe", "receding")
FACIAL_HAIR = ("none", "stubble", "moustache", "beard")
_FACIAL_HAIR_SHARES = (0.6, 0.15, 0.1, 0.15)

Colour = tuple[float, float, float]

# Skin tones from light to dark (linear-ish RGB in 0..1), hair from black to blond/grey.
_SKIN_TONES = np.array(
    [
        [0.96, 0.80, 0.69],
        [0.91, 0.72, 0.58],
        [0.84, 0.63, 0.49],
        [0.74, 0.53, 0.38],
        [0.60, 0.41, 0.28],
        [0.45, 0.30, 0.20],
        [0.34, 0.22, 0.15],
    ],
    dtype=np.float32,
)
_HAIR_COLOURS = np.array(
    [
        [0.06, 0.05, 0.05],
        [0.16, 0.10, 0.07],
        [0.30, 0.19, 0.11],
        [0.50, 0.33, 0.18],
        [0.58, 0.45, 0.26],
        [0.42, 0.41, 0.40],
    ],
    dtype=np.float32,
)
_IRIS_COLOURS = np.array(
    [
        [0.20, 0.12, 0.06],
        [0.30, 0.19, 0.10],
        [0.24, 0.15, 0.08],
        [0.22, 0.32, 0.42],
        [0.25, 0.34, 0.22],
        [0.16, 0.15, 0.16],
    ],
    dtype=np.float32,
)


@dataclasses.dataclass(frozen=True)
class FaceIdentity:
    """What makes one person's face theirs: fixed across every photo of them."""

    skin: Colour
    """Base skin colour, RGB in 0..1."""
    head_width: float
    """Half-width of the head relative to the population mean (about 0.9..1.1)."""
    head_height: float
    """Half-height of the head in face units (about 1.25..1.45)."""
    jaw: float
    """How much the head narrows towards the chin (0 = oval, 0.35 = pointed)."""
    eye_spacing: float
    """Horizontal distance of each eye from the centre line, in face units."""
    eye_height: float
    """Vertical position of the eyes (negative = above the centre)."""
    eye_size: float
    """Half-width of an eye opening, in face units."""
    iris: Colour
    """Iris colour."""
    brow_height: float
    """Gap between eye and eyebrow, in face units."""
    brow_thickness: float
    """Thickness of the eyebrows, in face units."""
    brow_tilt: float
    """Slope of the eyebrows (positive = outer ends higher)."""
    nose_length: float
    """Vertical position of the nose tip, in face units."""
    nose_width: float
    """Half-width of the nostrils, in face units."""
    mouth_height: float
    """Vertical position of the mouth, in face units."""
    mouth_width: float
    """Half-width of the mouth, in face units."""
    lip_thickness: float
    """Thickness of each lip at the centre, in face units."""
    lip: Colour
    """Lip colour."""
    hair: Colour
    """Hair and eyebrow colour."""
    hair_style: str
    """One of HAIR_STYLES."""
    hairline: float
    """Vertical position of the hairline at the centre (more negative = higher forehead)."""
    glasses: bool
    """Wears glasses in every photo."""
    shirt: Colour
    """Colour of the clothes at the bottom of the frame."""
    facial_hair: str
    """One of FACIAL_HAIR."""
    warp: tuple[tuple[float, float, float, float, float], ...]
    """Smooth displacement of the inner features, as bumps (u, v, radius, shift u, shift v) in
    face units: what no single proportion says about a face's shape (bent brows, an uneven
    mouth line, a nose off the straight), fixed to the person like their bones."""


@dataclasses.dataclass(frozen=True)
class FaceCapture:
    """How one photo was taken: expression, light, pose and camera."""

    expression: str
    """One of EXPRESSIONS."""
    light: tuple[float, float, float]
    """Unit vector towards the main light (x right, y down, z towards the camera)."""
    light_strength: float
    """Diffuse light intensity (ambient fills the rest)."""
    ambient: float
    """Ambient light intensity."""
    tint: Colour
    """Colour cast of the light, multiplied into the image."""
    roll_degrees: float
    """In-plane head rotation."""
    yaw: float
    """Head turn, as a shift of the inner features in face units (about -0.12..0.12)."""
    scale: float
    """Head half-width in pixels."""
    centre: tuple[float, float]
    """Centre of the face in pixels (x, y)."""
    background: tuple[Colour, Colour]
    """Colours at the top and bottom of the background gradient."""
    exposure: float
    """Mean brightness the camera's auto-exposure aims for on the face (0..1)."""
    blur_sigma: float
    """Gaussian defocus in pixels."""
    noise_sigma: float
    """Sensor noise standard deviation (0..1 scale)."""
    noise_seed: int
    """Seed of the background texture and sensor noise of this photo."""


WARP_BUMPS = 8
"""Bumps of FaceIdentity.warp (each with its mirror image)."""
WARP_SHIFT = 0.07
"""Largest shift of a warp bump, in face units: larger shifts made dlib's detector miss more
hard probes (docs/BENCHMARKS.md, section "Sample workspace and demo")."""
_SHAPE_RANGES = {
    "head_width": (0.8, 1.2),
    "head_height": (1.2, 1.42),
    "jaw": (0.0, 0.45),
    "eye_spacing": (0.35, 0.5),
    "eye_height": (-0.14, 0.06),
    "eye_size": (0.14, 0.24),
    "brow_height": (0.11, 0.26),
    "brow_thickness": (0.05, 0.13),
    "brow_tilt": (-0.3, 0.3),
    "nose_length": (0.28, 0.54),
    "nose_width": (0.1, 0.21),
    "mouth_height": (0.62, 0.86),
    "mouth_width": (0.2, 0.4),
    "lip_thickness": (0.045, 0.11),
    "hairline": (-0.85, -0.55),
}
"""Population range of each proportion of FaceIdentity, in face units. Wide on purpose: dlib's
embedding, trained to ignore light, expression and accessories, put narrower drawn populations
at real same-person similarities between different people (issue 13, item 9)."""
_MIN_GAPS = (0.26, 0.18)
"""Smallest vertical gaps eyes-to-nose tip and nose tip-to-mouth, in face units."""


def random_identity(rng: np.random.Generator) -> FaceIdentity:
    """A person's face drawn from the population every member and stranger comes from."""
    skin_position = rng.uniform(0, len(_SKIN_TONES) - 1)
    low = int(np.floor(skin_position))
    high = min(low + 1, len(_SKIN_TONES) - 1)
    weight = skin_position - low
    skin = (1 - weight) * _SKIN_TONES[low] + weight * _SKIN_TONES[high]
    skin = np.clip(skin * rng.uniform(0.95, 1.05, 3), 0, 1)
    hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] * rng.uniform(0.85, 1.15)
    shape = _proportioned(
        {name: float(rng.uniform(*bounds)) for name, bounds in _SHAPE_RANGES.items()}
    )
    return FaceIdentity(
        skin=as_colour(skin),
        iris=as_colour(_IRIS_COLOURS[rng.integers(len(_IRIS_COLOURS))]),
        lip=as_colour(
            np.clip(skin * np.array([0.95, 0.6, 0.6]) + rng.uniform(-0.04, 0.04, 3), 0, 1)
        ),
        hair=as_colour(np.clip(hair, 0, 1)),
        hair_style=str(HAIR_STYLES[rng.integers(len(HAIR_STYLES))]),
        glasses=bool(rng.random() < 0.2),
        shirt=as_colour(0.6 * rng.uniform(0.1, 0.7) + 0.4 * rng.uniform(0.05, 0.8, 3)),
        facial_hair=str(rng.choice(FACIAL_HAIR, p=_FACIAL_HAIR_SHARES)),
        warp=tuple(
            (
                float(rng.uniform(-0.7, 0.7)),
                float(rng.uniform(-0.8, 0.9)),
                float(rng.uniform(0.15, 0.4)),
                float(rng.uniform(-WARP_SHIFT, WARP_SHIFT)),
                float(rng.uniform(-WARP_SHIFT, WARP_SHIFT)),
            )
            for _ in range(WARP_BUMPS)
        ),
        **shape,
    )


def resembling_identity(
    identity: FaceIdentity, rng: np.random.Generator, spread: float = 0.35
) -> FaceIdentity:
    """Another person who looks like ``identity`` (a sibling, a look-alike impostor): the same
    hair style, glasses, facial hair and warp, colours within a few percent, each proportion
    moved by about ``spread`` of its population range (chosen so that look-alikes score around
    the default face threshold: docs/BENCHMARKS.md, section "Sample workspace and demo")."""
    shape: dict[str, Any] = _proportioned(
        {
            name: float(
                np.clip(getattr(identity, name) + rng.normal(0, spread * (high - low)), low, high)
            )
            for name, (low, high) in _SHAPE_RANGES.items()
        }
    )

    def near(colour: Colour, amount: float) -> Colour:
        return as_colour(np.clip(np.array(colour) * rng.uniform(1 - amount, 1 + amount, 3), 0, 1))

    return dataclasses.replace(
        identity,
        skin=near(identity.skin, 0.06),
        lip=near(identity.lip, 0.06),
        hair=near(identity.hair, 0.1),
        shirt=as_colour(rng.uniform(0.1, 0.7, 3)),
        **shape,
    )


def _proportioned(shape: dict[str, float]) -> dict[str, float]:
    """``shape`` with the nose below the eyes and the mouth below the nose by at least
    _MIN_GAPS: proportions drawn independently over wide ranges can otherwise collide."""
    eyes_to_nose, nose_to_mouth = _MIN_GAPS
    nose = max(shape["nose_length"], shape["eye_height"] + eyes_to_nose)
    mouth = max(shape["mouth_height"], nose + nose_to_mouth)
    return {**shape, "nose_length": nose, "mouth_height": mouth}


def random_capture(
    rng: np.random.Generator,
    expression: str,
    *,
    difficulty: float = 0.0,
    shape: tuple[int, int] = IMAGE_SHAPE,
) -> FaceCapture:
    """Conditions of one photo; ``difficulty`` 0 is a studio enrolment, 1 a hard probe."""
    azimuth = rng.normal(0, 0.2 + 0.4 * difficulty)
    elevation = rng.uniform(-0.5, -0.15)
    light = np.array([np.sin(azimuth), elevation, np.cos(azimuth)])
    light /= np.linalg.norm(light)
    # Walls and backdrops: muted colours, a grey mixed with a little hue.
    background = 0.7 * rng.uniform(0.15, 0.65) + 0.3 * rng.uniform(0.1, 0.8, 3)
    return FaceCapture(
        expression=expression,
        light=(float(light[0]), float(light[1]), float(light[2])),
        light_strength=float(rng.uniform(0.55, 0.75) + 0.2 * difficulty * rng.uniform(-1, 1)),
        ambient=float(rng.uniform(0.35, 0.45) - 0.15 * difficulty * rng.random()),
        tint=as_colour(1 + rng.normal(0, 0.03 + 0.07 * difficulty, 3)),
        roll_degrees=float(rng.normal(0, 2 + 4 * difficulty)),
        yaw=float(rng.normal(0, 0.02 + 0.05 * difficulty)),
        scale=float(
            shape[0] * 0.25 * rng.uniform(1 - 0.05 - 0.1 * difficulty, 1 + 0.05 + 0.1 * difficulty)
        ),
        centre=(
            float(shape[1] / 2 + rng.normal(0, 3 + 10 * difficulty)),
            float(shape[0] * 0.47 + rng.normal(0, 3 + 8 * difficulty)),
        ),
        background=(
            as_colour(background),
            as_colour(np.clip(background * rng.uniform(0.5, 1.1, 3), 0, 1)),
        ),
        exposure=float(rng.uniform(0.45, 0.55) + 0.15 * difficulty * rng.uniform(-1, 1)),
        blur_sigma=float(rng.uniform(0.5, 0.9) + 1.2 * difficulty * rng.random()),
        noise_sigma=float(0.008 + 0.03 * difficulty * rng.random()),
        noise_seed=int(rng.integers(2**31)),
    )


def as_colour(values: np.ndarray) -> Colour:
    """Three numbers as a plain RGB tuple (frozen dataclasses hold tuples, not arrays)."""
    return (float(values[0]), float(values[1]), float(values[2]))
