"""Finding the face in a photo and where to cut it: classic (LBP cascade) and dlib (HOG + 5 points).

Both detectors return a FaceRegion: a square, possibly rotated, that engine.faces.extract warps into the
aligned crop. Detection always runs on the unmodified photo; augmentation then perturbs the
region's geometry, so an augmented copy can never lose its face to the detector.

Fallbacks, in order, when nothing is found in the photo as it is:
1. the same detector on a CLAHE-equalised copy: side-lit faces, whose shadowed half hides the
   gradients both detectors look for.
2. the photo padded by a quarter of its size on every side with its own edge pixels: a photo
   that is already a tight face crop (ORL/AT&T style) leaves the detectors no margin.
3. the tight-crop rule: no detection, but the photo is small (longest side at most 400 px),
   portrait-shaped like a face (height/width between 0.9 and 1.5) and not blank (grey-level
   standard deviation at least 0.05): the whole frame is taken as the face.
Anything else is a failure to acquire (AcquisitionError), never a crash.

A photo where the detector finds a second face of comparable size (``comparable_face_area`` in
engine.core.settings.FaceSettings) is refused with MultipleFacesError rather than decided on one
of the faces: which person presented it cannot be told.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import AcquisitionError, ConfigError, MultipleFacesError
from engine.core.settings import FaceSettings

Box = tuple[float, float, float]
"""(top, left, width) of a square, in pixels."""

DETECTION_MAX_SIDE = 480
"""Detection runs on a copy at most this long (bounded cost); the crop uses full resolution."""
CASCADE_SCALE_FACTOR = 1.25
CASCADE_MIN_FACE_FRACTION = 0.2
"""Smallest face searched for, as a fraction of the photo's shorter side."""
CLASSIC_MARGIN = 0.1
"""Margin added around the cascade's box on each side, as a fraction of its width."""
PAD_FRACTION = 0.25
TIGHT_CROP_MAX_SIDE = 400
TIGHT_CROP_ASPECT = (0.9, 1.5)
TIGHT_CROP_MIN_STD = 0.05
SYMMETRY_MAX_DEGREES = 15.0
SYMMETRY_STEP_DEGREES = 1.5
SYMMETRY_MIN_GAIN = 0.03
SYMMETRY_PATCH = 64
_SYMMETRY_ANGLES = np.radians(
    np.arange(-SYMMETRY_MAX_DEGREES, SYMMETRY_MAX_DEGREES + 1e-9, SYMMETRY_STEP_DEGREES)
)
FRONTAL_FACE_DETECTOR_FILE = Path(__file__).with_name("frontal_face_detector.svm")
"""dlib's HOG frontal face detector as ``dlib.get_frontal_face_detector().save()`` writes it."""
DLIB_CHIP_SIZE = 150
DLIB_CHIP_PADDING = 0.25
"""dlib's own alignment: 150 x 150 chip with 25% padding, what its ResNet was trained on."""


@dataclasses.dataclass(frozen=True)
class FaceRegion:
    """Where the face is: a square of the photo, rotated so the eyes are level."""

    center_x: float
    """Column of the square's centre, in photo pixels."""
    center_y: float
    """Row of the square's centre, in photo pixels."""
    side: float
    """Distance in photo pixels between the first and last pixel centres of the crop."""
    angle: float
    """Rotation in radians that makes the eyes level (0 when not aligned)."""
    method: str
    """How it was found: ``cascade``, ``cascade-equalised``, ``padded``, ``whole-frame``,
    ``dlib``."""
    aligned: bool
    """True when ``angle`` was estimated: mirror symmetry (classic) or 5 landmarks (dlib)."""


def detect_face_classic(
    pixels: np.ndarray,
    *,
    align_eyes: bool = False,
    comparable_face_area: float = FaceSettings.comparable_face_area,
) -> FaceRegion:
    """The most confident face found by scikit-image's LBP frontal-face cascade, optionally
    levelled (``align_eyes``, see engine.core.settings.FaceSettings).

    ``pixels`` is height x width x 3 uint8. Raises AcquisitionError when no face is found and
    MultipleFacesError when a second face has at least ``comparable_face_area`` of the largest
    face's area.
    """
    from skimage import exposure

    grey = _grey(pixels)
    work, factor = _detection_copy(grey)

    def one_face(image: np.ndarray) -> Box | None:
        return single_face(cascade_boxes(image), comparable_face_area)

    method, box = _first_found(
        ("cascade", lambda: one_face(work)),
        ("cascade-equalised", lambda: one_face(exposure.equalize_adapthist(work))),
        ("padded", lambda: _padded(work, one_face)),
    )
    if box is None:
        method, box, factor = "whole-frame", _whole_frame(grey, "the LBP cascade"), 1.0
    top, left, width = (value / factor for value in box)
    # The cascade's box stops at the brows and chin; the margin keeps the face's outline.
    side = width if method == "whole-frame" else width * (1 + 2 * CLASSIC_MARGIN)
    center_x, center_y = left + (width - 1) / 2, top + (width - 1) / 2  # pixel-centre coordinates
    angle = _symmetry_angle(grey, center_x, center_y, width) if align_eyes else 0.0
    return FaceRegion(center_x, center_y, side, angle, method=method, aligned=align_eyes)


def detect_face_dlib(
    pixels: np.ndarray, *, comparable_face_area: float = FaceSettings.comparable_face_area
) -> FaceRegion:
    """The largest face found by dlib's HOG detector, aligned on its 5 landmarks as dlib does.

    Tries without upsampling first (fast), then upsampled once (faces under about 80 px), then
    the fallbacks of the module docstring. The landmarks are always read on the photo itself.
    Raises AcquisitionError when no face is found and MultipleFacesError when a second face has
    at least ``comparable_face_area`` of the largest face's area.
    """
    import dlib

    detector, predictor = _dlib_models()[:2]
    work, factor = _detection_copy(pixels)

    def one_face(image: np.ndarray) -> Box | None:
        return single_face(_dlib_boxes(detector, image), comparable_face_area)

    method, box = _first_found(
        ("dlib", lambda: one_face(work)),
        ("dlib-equalised", lambda: one_face(_equalised_rgb(work))),
        ("padded", lambda: _padded(work, one_face)),
    )
    if box is None:
        method, box, factor = "whole-frame", _whole_frame(_grey(pixels), "dlib's detector"), 1.0
    top, left, width = (value / factor for value in box)
    rectangle = dlib.rectangle(round(left), round(top), round(left + width), round(top + width))
    shape = predictor(np.ascontiguousarray(pixels), rectangle)
    details = dlib.get_face_chip_details(shape, size=DLIB_CHIP_SIZE, padding=DLIB_CHIP_PADDING)
    chip = details.rect
    return FaceRegion(
        center_x=(chip.left() + chip.right()) / 2,
        center_y=(chip.top() + chip.bottom()) / 2,
        side=chip.right() - chip.left(),
        angle=details.angle,
        method=method,
        aligned=True,
    )


def comparable_faces(widths: list[float], comparable_face_area: float) -> int:
    """How many of the faces (square boxes of these widths) have at least
    ``comparable_face_area`` of the largest one's area; 0 when there is no face."""
    if not widths:
        return 0
    largest_area = max(widths) ** 2
    return sum(width**2 >= comparable_face_area * largest_area for width in widths)


def single_face(boxes: list[Box], comparable_face_area: float) -> Box | None:
    """The first (most confident) of the detected boxes, None when there is none; raises
    MultipleFacesError when another box is a face of comparable size."""
    count = comparable_faces([width for _, _, width in boxes], comparable_face_area)
    if count > 1:
        raise MultipleFacesError(
            f"failure to acquire (FTA): {count} faces of comparable size in the photo (each at "
            f"least {comparable_face_area:.0%} of the largest one's area); present a photo of "
            "one person"
        )
    return boxes[0] if boxes else None


def _first_found(*attempts: tuple[str, Callable[[], Box | None]]) -> tuple[str, Box | None]:
    """The first attempt that finds a box, by name; the last name and None when none does."""
    name = ""
    for name, attempt in attempts:
        box = attempt()
        if box is not None:
            return name, box
    return name, None


def _whole_frame(grey: np.ndarray, detector: str) -> Box:
    """The tight-crop rule: the central square of a small, face-shaped, non-blank photo."""
    height, width = grey.shape
    low, high = TIGHT_CROP_ASPECT
    if not (
        max(height, width) <= TIGHT_CROP_MAX_SIDE
        and low <= height / width <= high
        and float(grey.std()) >= TIGHT_CROP_MIN_STD
    ):
        raise AcquisitionError(
            f"failure to acquire (FTA): no face found by {detector}, also after the fallbacks "
            "(equalised, upsampled, padded), and the photo is not a tight face crop"
        )
    side = min(height, width)
    return (height - side) / 2, (width - side) / 2, side


@functools.cache
def _cascade() -> Any:
    from skimage import data, feature

    return feature.Cascade(data.lbp_frontal_face_cascade_filename())


@functools.cache
def _dlib_models() -> tuple[Any, Any, Any]:
    """Detector, 5-point predictor and ResNet, loaded once per process from the installed package."""
    import dlib

    models = _dlib_model_folder()
    return (
        # dlib.get_frontal_face_detector() decodes the detector from text built into dlib, ~15x
        # slower than reading this file, which is that detector saved (a test checks they match).
        dlib.fhog_object_detector(str(FRONTAL_FACE_DETECTOR_FILE)),
        dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat")),
        dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat")),
    )


def _dlib_model_folder() -> Path:
    """The face_recognition_models package's models/ folder, found without importing the
    package: its __init__ imports pkg_resources, a quarter of a second of a cold login."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the dlib face backend needs the face_recognition_models package: "
            "pip install face-recognition-models"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def dlib_embedding_model() -> Any:
    """dlib's ResNet face-recognition model (loaded once per process)."""
    return _dlib_models()[2]


def _grey(pixels: np.ndarray) -> np.ndarray:
    from skimage import color

    return color.rgb2gray(pixels)


def _equalised_rgb(pixels: np.ndarray) -> np.ndarray:
    """A CLAHE-equalised grey copy of the photo as height x width x 3 uint8 (dlib's input)."""
    from skimage import exposure

    grey = exposure.equalize_adapthist(_grey(pixels))
    return np.repeat((grey * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def _detection_copy(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The image shrunk so its longest side is at most DETECTION_MAX_SIDE, and the factor used."""
    longest = max(image.shape[:2])
    if longest <= DETECTION_MAX_SIDE:
        return image, 1.0
    from skimage import transform

    factor = DETECTION_MAX_SIDE / longest
    shape = (round(image.shape[0] * factor), round(image.shape[1] * factor))
    small = transform.resize(image, shape, anti_aliasing=True, preserve_range=True)
    return small.astype(image.dtype), factor


def cascade_box(grey: np.ndarray) -> Box | None:
    """(top, left, width) of the best cascade detection, or None."""
    boxes = cascade_boxes(grey)
    return boxes[0] if boxes else None


def cascade_boxes(grey: np.ndarray) -> list[Box]:
    """(top, left, width) of every face the cascade finds, the most confident first.

    The cascade reports every window that passes, so one face yields a cluster of overlapping
    windows: the cluster with the most windows is the most confident face (ties: the larger),
    and each cluster's median window is its box.
    """
    shorter = min(grey.shape)
    smallest = max(24, int(shorter * CASCADE_MIN_FACE_FRACTION))
    if shorter < smallest:
        return []
    windows = _cascade().detect_multi_scale(
        img=grey,
        scale_factor=CASCADE_SCALE_FACTOR,
        step_ratio=1,
        min_size=(smallest, smallest),
        max_size=(shorter, shorter),
    )
    if not windows:
        return []
    boxes = np.array([(w["r"], w["c"], w["width"]) for w in windows], dtype=float)
    clusters = sorted(
        _overlap_clusters(boxes),
        key=lambda members: (len(members), boxes[members, 2].mean()),
        reverse=True,
    )
    medians = (np.median(boxes[members], axis=0) for members in clusters)
    return [(float(top), float(left), float(width)) for top, left, width in medians]


def _overlap_clusters(boxes: np.ndarray) -> list[list[int]]:
    """Groups of square boxes (top, left, width) whose centres lie inside each other's box."""
    centres = boxes[:, :2] + boxes[:, 2:3] / 2
    clusters: list[list[int]] = []
    for index in range(len(boxes)):
        for members in clusters:
            anchor = members[0]
            distance = np.abs(centres[index] - centres[anchor]).max()
            if distance < min(boxes[index, 2], boxes[anchor, 2]) / 2:
                members.append(index)
                break
        else:
            clusters.append([index])
    return clusters


def _dlib_boxes(detector: Any, image: np.ndarray) -> list[Box]:
    """(top, left, width) of the faces dlib finds, the largest first: without upsampling, or
    upsampled once when that finds none."""
    image = np.ascontiguousarray(image)
    for upsample in (0, 1):
        faces = sorted(detector(image, upsample), key=lambda r: r.width() * r.height())
        if faces:
            return [
                (float(face.top()), float(face.left()), float((face.width() + face.height()) / 2))
                for face in reversed(faces)
            ]
    return []


def _padded(image: np.ndarray, find: Callable[[np.ndarray], Box | None]) -> Box | None:
    """Run ``find`` on the image padded with its edge pixels; the box in unpadded coordinates."""
    pad = int(round(max(image.shape[:2]) * PAD_FRACTION))
    widths = ((pad, pad), (pad, pad)) + (((0, 0),) if image.ndim == 3 else ())
    box = find(np.pad(image, widths, mode="edge"))
    if box is None:
        return None
    top, left, width = box
    return top - pad, left - pad, width


def _symmetry_angle(grey: np.ndarray, center_x: float, center_y: float, width: float) -> float:
    """Tilt in radians that makes the face most mirror-symmetric, i.e. its eyes level.

    The eye line of a frontal face is perpendicular to its axis of symmetry, so the rotation
    (within +-SYMMETRY_MAX_DEGREES) whose crop best correlates with its own mirror image levels
    the eyes. Finding the eyes as dark blobs was tried first and did worse than not rotating at
    all on the Yale photos: brows, glasses and side-lit shadows are dark too. (The error against
    dlib's landmarks is measured by ``python -m benchmarks.faces --ablations``.) A rotation is
    kept only when it beats the upright crop by SYMMETRY_MIN_GAIN in correlation.
    """
    from scipy import ndimage

    smoothed_region, offset_x, offset_y = region_around(grey, center_x, center_y, width)
    smoothed_region = ndimage.gaussian_filter(smoothed_region, sigma=max(1.0, width / 60))
    scores = []
    for angle in _SYMMETRY_ANGLES:
        patch = warp_square(
            smoothed_region,
            center_x - offset_x,
            center_y - offset_y,
            width * 0.9,
            angle,
            size=SYMMETRY_PATCH,
        )
        scores.append(_correlation(patch, patch[:, ::-1]))
    best = int(np.argmax(scores))
    upright = scores[len(_SYMMETRY_ANGLES) // 2]
    return float(_SYMMETRY_ANGLES[best]) if scores[best] - upright > SYMMETRY_MIN_GAIN else 0.0


def region_around(
    image: np.ndarray, center_x: float, center_y: float, width: float
) -> tuple[np.ndarray, int, int]:
    """The part of ``image`` within a face width of the centre, and its top-left offset."""
    height, image_width = image.shape[:2]
    left, top = max(0, int(center_x - width)), max(0, int(center_y - width))
    right, bottom = (
        min(image_width, int(center_x + width) + 1),
        min(height, int(center_y + width) + 1),
    )
    return image[top:bottom, left:right], left, top


def _correlation(first: np.ndarray, second: np.ndarray) -> float:
    a, b = first.ravel() - first.mean(), second.ravel() - second.mean()
    denominator = float(np.sqrt((a @ a) * (b @ b)))
    return float(a @ b) / denominator if denominator > 0 else 0.0


def square_transform(
    center_x: float, center_y: float, side: float, angle: float, size: int
) -> np.ndarray:
    """3x3 matrix mapping (column, row) of a size x size crop to photo coordinates.

    The crop's first and last pixel centres lie ``side`` photo pixels apart, its centre on
    (center_x, center_y), its rows along the direction ``angle``; this is the geometry of
    dlib.get_face_chip, so the ResNet sees chips exactly as it was trained on.
    """
    scale = side / (size - 1)
    half = (size - 1) / 2
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array(
        [
            [cos * scale, -sin * scale, center_x - half * scale * (cos - sin)],
            [sin * scale, cos * scale, center_y - half * scale * (sin + cos)],
            [0.0, 0.0, 1.0],
        ]
    )


def warp_square(
    image: np.ndarray, center_x: float, center_y: float, side: float, angle: float, *, size: int
) -> np.ndarray:
    """The rotated square of ``image`` resampled to size x size (bilinear, edges replicated)."""
    from skimage import transform

    matrix = square_transform(center_x, center_y, side, angle, size)
    return transform.warp(
        image,
        transform.AffineTransform(matrix=matrix),
        output_shape=(size, size),
        order=1,
        mode="edge",
    )
