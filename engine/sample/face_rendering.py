"""Procedural face photos for the sample workspace: an identity drawn under one capture.

A face is drawn in face units (engine.sample.face_parameters) with soft-edged shapes, Lambertian
shading on an ellipsoid head, eye whites, irises, nostrils and lips, so that real face detectors
(the scikit-image LBP cascade and dlib's HOG detector) fire on it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from engine.core.errors import AcquisitionError
from engine.faces import detect as face_detect
from engine.sample.face_parameters import (
    IMAGE_SHAPE,
    Colour,
    FaceCapture,
    FaceIdentity,
    as_colour,
)


def render_face(
    identity: FaceIdentity, capture: FaceCapture, shape: tuple[int, int] = IMAGE_SHAPE
) -> np.ndarray:
    """An RGB uint8 photo (height x width x 3) of ``identity`` taken under ``capture``."""
    rng = np.random.default_rng(capture.noise_seed)
    u, v = _face_coordinates(capture, shape)
    image = _background(capture, shape, rng)
    canvas = _Canvas(image)
    face = identity
    expr = capture.expression
    width = face.head_width
    height = face.head_height
    edge = 1.6 / capture.scale  # about 1.6 pixels of soft edge, in face units

    # Behind the head: long hair, shirt and neck.
    if face.hair_style == "long":
        hair_back = _ellipse(u, v, 0, 0.15, width * 1.3, height * 1.25, edge * 2)
        hair_back *= _ramp(v - 1.55, edge * 4)
        canvas.paint(hair_back, _textured(face.hair, u, v, rng, strength=0.12))
    shirt = _ellipse(u, v, 0, 3.1, 2.6, 1.5, edge * 2)
    canvas.paint(
        shirt,
        np.array(face.shirt, dtype=np.float32)
        * (0.8 + 0.2 * _lambert(u, v - 3.1, 2.6, 1.5, capture))[..., None],
    )
    neck = _box(u, v, 0, height * 0.9 + 0.4, 0.45 * width, 0.55, edge * 2)
    neck_shade = 0.55 + 0.15 * np.clip(1 - np.abs(u) / (0.45 * width), 0, 1)
    canvas.paint(neck, np.array(face.skin, dtype=np.float32) * neck_shade[..., None])

    # Everything from here on lies within the head's bounding box: draw only there.
    box = _pixel_box(capture, shape, (-1.5 * width, 1.5 * width), (-1.5 * height, 1.2 * height))
    full = canvas
    canvas = _Canvas(full.image[box])
    u, v = u[box], v[box]

    # Ears, then the head with its shading.
    for side in (-1, 1):
        ear = _ellipse(u, v, side * width * 0.97 - capture.yaw * 0.3, 0.02, 0.13, 0.24, edge)
        canvas.paint(ear, np.array(face.skin, dtype=np.float32) * 0.78)
    head_u = u / (width * (1 - face.jaw * np.clip(v / height, 0, 1) ** 2))
    head_r = np.sqrt(head_u**2 + (v / height) ** 2)
    head = _ramp((head_r - 1) * width, edge)
    shade = _lambert_from_radius(head_u, v / height, capture)
    skin = np.array(face.skin, dtype=np.float32)
    skin_layer = skin * shade[..., None]
    # Cheeks flush and the forehead catches light: low-frequency colour variation on the skin.
    cheeks = _gauss(u, v, -0.5, 0.3, 0.18) + _gauss(u, v, 0.5, 0.3, 0.18)
    skin_layer = skin_layer * (1 - 0.08 * cheeks[..., None] * np.array([0, 0.6, 0.6], np.float32))
    canvas.paint(head, skin_layer)
    # Inner features turn with the head, and sit where this person's warp puts them.
    face_u, face_v = _warped(u - capture.yaw, v, face)

    # Eye sockets, nose side shadows and the shadow under the nose and lower lip.
    light_x = capture.light[0]
    shadows = np.zeros_like(u)
    for side in (-1, 1):
        shadows += 0.38 * _gauss(
            face_u, face_v, side * face.eye_spacing, face.eye_height - 0.03, 0.2, 0.12
        )
        nose_side = _gauss(
            face_u,
            face_v,
            side * face.nose_width * 0.7,
            (face.eye_height + face.nose_length) / 2,
            0.06,
            0.25,
        )
        shadows += (0.12 + 0.25 * max(0.0, -side * light_x * 2)) * nose_side
    shadows += 0.25 * _gauss(face_u, face_v, 0, face.nose_length + 0.08, 0.12, 0.035)
    shadows += 0.2 * _gauss(
        face_u, face_v, 0, face.mouth_height + face.lip_thickness * 2.4, 0.16, 0.045
    )
    canvas.shade(1 - head * np.clip(shadows, 0, 0.7))
    highlights = 0.12 * _gauss(face_u, face_v, light_x * 0.05, face.nose_length * 0.85, 0.05, 0.05)
    highlights += 0.06 * _gauss(face_u, face_v, 0, face.eye_height - 0.55, 0.35, 0.18)
    # The nose bridge between the eyes catches the light.
    highlights += 0.1 * _gauss(
        face_u, face_v, 0, (face.eye_height + face.nose_length) / 2 - 0.05, 0.05, 0.2
    )
    canvas.shade(1 + head * highlights)

    # Small parts are drawn in their own windows of the head box (most of the rendering cost).
    tip = face.nose_length
    _draw_nose(*_local(canvas, face_u, face_v, (-0.4, 0.4), (tip - 0.25, tip + 0.2)), face, edge)
    for side in (-1, 1):
        eye_u = (side * face.eye_spacing - 0.4, side * face.eye_spacing + 0.4)
        eye_v = (face.eye_height - face.brow_height - 0.25, face.eye_height + 0.2)
        window = _local(canvas, face_u, face_v, eye_u, eye_v)
        _draw_eye(*window, face, expr, side, edge)
        _draw_brow(*window, face, expr, side, edge, rng)
    if face.facial_hair != "none":
        _draw_facial_hair(canvas, face_u, face_v, head, face, edge, rng)
    mouth_v = (face.mouth_height - 0.3, face.mouth_height + 0.35)
    _draw_mouth(*_local(canvas, face_u, face_v, (-0.6, 0.6), mouth_v), face, expr, edge)
    _draw_hair(canvas, u, v, face, edge, rng)
    if face.glasses:
        glasses_u = (-face.eye_spacing - 0.45, face.eye_spacing + 0.45)
        glasses_v = (face.eye_height - 0.35, face.eye_height + 0.35)
        _draw_glasses(*_local(canvas, face_u, face_v, glasses_u, glasses_v), face, edge)

    # Auto-exposure, as a camera metering on the face does: dark skin is not left in the shadows.
    face_luma = float((canvas.image.mean(axis=2) * head).sum() / max(head.sum(), 1.0))
    gain = np.clip(capture.exposure / max(face_luma, 1e-3), 0.8, 1.7)
    image = full.image * (gain * np.array(capture.tint, dtype=np.float32))
    if capture.blur_sigma > 0:
        image = ndimage.gaussian_filter(image, sigma=(capture.blur_sigma, capture.blur_sigma, 0))
    image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(capture.noise_sigma)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def detectors_find_face(pixels: np.ndarray) -> bool:
    """Whether both backends' detectors find the face by themselves (no fallback): the sample's
    enrolment kiosk retakes a photo otherwise, so either backend can enrol every member."""
    if not cascade_finds_face(pixels):
        return False
    try:
        return face_detect.detect_face_dlib(pixels).method == "dlib"
    except AcquisitionError:
        return False


def cascade_finds_face(pixels: np.ndarray) -> bool:
    """Whether scikit-image's LBP frontal-face cascade finds a face, searched as the classic
    backend searches, without its fallbacks."""
    from skimage.color import rgb2gray

    return face_detect.cascade_box(rgb2gray(pixels)) is not None


class _Canvas:
    """A float RGB image that soft masks are composited onto."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image

    def paint(self, alpha: np.ndarray, colour: np.ndarray | Colour) -> None:
        """Blend ``colour`` (RGB, or an image) in with opacity ``alpha``, only where it is > 0."""
        covered = alpha > 0
        rows = np.flatnonzero(covered.any(axis=1))
        columns = np.flatnonzero(covered.any(axis=0))
        if rows.size == 0:
            return
        # Most parts cover a small patch: blending only their bounding box is far cheaper.
        box = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
        colour = np.asarray(colour, dtype=np.float32)
        if colour.ndim == 3:
            colour = colour[box]
        weight = alpha[box][..., None]
        patch = self.image[box]
        patch += (colour - patch) * weight

    def shade(self, factor: np.ndarray) -> None:
        self.image *= factor[..., None]


def _local(
    canvas: _Canvas,
    u: np.ndarray,
    v: np.ndarray,
    u_range: tuple[float, float],
    v_range: tuple[float, float],
) -> tuple[_Canvas, np.ndarray, np.ndarray]:
    """A canvas and coordinates restricted to the pixels covering a face-coordinate rectangle;
    painting on it paints the parent (the image is a view)."""
    inside = (u >= u_range[0]) & (u <= u_range[1]) & (v >= v_range[0]) & (v <= v_range[1])
    rows = np.flatnonzero(inside.any(axis=1))
    columns = np.flatnonzero(inside.any(axis=0))
    if rows.size == 0:
        rows = columns = np.array([0])
    box = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
    return _Canvas(canvas.image[box]), u[box], v[box]


def _pixel_box(
    capture: FaceCapture,
    shape: tuple[int, int],
    u_range: tuple[float, float],
    v_range: tuple[float, float],
) -> tuple[slice, slice]:
    """Pixel rows and columns covering a rectangle of face coordinates, with a small margin."""
    angle = np.deg2rad(capture.roll_degrees)
    cos, sin = np.cos(angle), np.sin(angle)
    corners = np.array([(u, v) for u in u_range for v in v_range]) * capture.scale
    xs = capture.centre[0] + cos * corners[:, 0] - sin * corners[:, 1]
    ys = capture.centre[1] + sin * corners[:, 0] + cos * corners[:, 1]
    top, bottom = int(max(0, ys.min() - 3)), int(min(shape[0], ys.max() + 4))
    left, right = int(max(0, xs.min() - 3)), int(min(shape[1], xs.max() + 4))
    return slice(top, bottom), slice(left, right)


def _face_coordinates(
    capture: FaceCapture, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    dx = xs - capture.centre[0]
    dy = ys - capture.centre[1]
    angle = np.deg2rad(capture.roll_degrees)
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    u = (cos * dx + sin * dy) / capture.scale
    v = (-sin * dx + cos * dy) / capture.scale
    return u, v


def _warped(u: np.ndarray, v: np.ndarray, face: FaceIdentity) -> tuple[np.ndarray, np.ndarray]:
    """Face coordinates moved by the identity's smooth warp (FaceIdentity.warp): each bump
    shifts the features around it, bending eyes, brows, nose and mouth as bone structure does.
    Every bump has its mirror image, so the face stays symmetric: a lopsided face is harder for
    detectors to find, and dlib's embedding is taken mirror-averaged anyway."""
    du = np.zeros_like(u)
    dv = np.zeros_like(v)
    for bump_u, bump_v, radius, shift_u, shift_v in face.warp:
        for side in (-1, 1):
            weight = _gauss(u, v, side * bump_u, bump_v, radius)
            du += side * shift_u * weight
            dv += shift_v * weight
    return u + du, v + dv


def _background(
    capture: FaceCapture, shape: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    top, bottom = (np.array(c, dtype=np.float32) for c in capture.background)
    height, width = shape
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3)).copy()
    coarse = Image.fromarray(rng.normal(0, 1, (5, 6)).astype(np.float32), mode="F")
    blotches = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC))
    return np.clip(image * (1 + 0.12 * blotches[..., None]), 0, 1)


def _ramp(distance: np.ndarray, edge: float) -> np.ndarray:
    """Soft inside-mask from a signed distance (negative inside), about ``edge`` wide."""
    return np.clip(0.5 - distance / edge, 0, 1).astype(np.float32)


def _ellipse(u, v, cu, cv, a, b, edge) -> np.ndarray:
    r = np.sqrt(((u - cu) / a) ** 2 + ((v - cv) / b) ** 2)
    return _ramp((r - 1) * min(a, b), edge)


def _box(u, v, cu, cv, half_width, half_height, edge) -> np.ndarray:
    distance = np.maximum(np.abs(u - cu) - half_width, np.abs(v - cv) - half_height)
    return _ramp(distance, edge)


def _gauss(u, v, cu, cv, su, sv=None) -> np.ndarray:
    sv = su if sv is None else sv
    return np.exp(-0.5 * (((u - cu) / su) ** 2 + ((v - cv) / sv) ** 2)).astype(np.float32)


def _lambert_from_radius(nu: np.ndarray, nv: np.ndarray, capture: FaceCapture) -> np.ndarray:
    nz = np.sqrt(np.clip(1 - nu**2 - nv**2, 0, 1))
    lx, ly, lz = capture.light
    # Wrapped Lambert: skin scatters light past the terminator, so side light is not a hard cut.
    diffuse = np.clip((nu * lx + nv * ly + nz * lz + 0.35) / 1.35, 0, 1)
    return (capture.ambient + capture.light_strength * diffuse).astype(np.float32)


def _lambert(du, dv, a, b, capture: FaceCapture) -> np.ndarray:
    return _lambert_from_radius(np.clip(du / a, -1, 1), np.clip(dv / b, -1, 1), capture)


def _textured(colour: Colour, u, v, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Hair-like streaks: fine vertical strands modulating the colour."""
    phase = rng.uniform(0, 2 * np.pi)
    strands = np.sin(u * 55 + 2.5 * np.sin(v * 6 + phase)) * np.sin(u * 23 + phase)
    return np.array(colour, dtype=np.float32) * (1 + strength * strands)[..., None]


def _draw_eye(canvas: _Canvas, u, v, face: FaceIdentity, expr: str, side: int, edge: float) -> None:
    cu = side * face.eye_spacing
    cv = face.eye_height
    half_width = face.eye_size
    openness = {"neutral": 0.42, "smiling": 0.3, "surprised": 0.62}[expr]
    half_height = half_width * openness
    # Almond: the upper lid arches more than the lower one.
    du = (u - cu) / half_width
    arch = np.clip(1 - du**2, 0, 1)
    top = cv - half_height * 1.1 * arch
    bottom = cv + half_height * 0.75 * arch
    inside = np.maximum(top - v, v - bottom)
    white = _ramp(np.maximum(inside, (np.abs(du) - 1) * half_width * 0.3), edge) * (np.abs(du) < 1)
    canvas.paint(white, (0.78, 0.76, 0.73))
    iris_radius = half_width * 0.52
    iris = _ellipse(u, v, cu, cv - half_height * 0.1, iris_radius, iris_radius, edge) * white
    canvas.paint(iris, face.iris)
    pupil = _ellipse(u, v, cu, cv - half_height * 0.1, iris_radius * 0.45, iris_radius * 0.45, edge)
    canvas.paint(pupil * white, (0.03, 0.03, 0.03))
    glint = _ellipse(
        u,
        v,
        cu + iris_radius * 0.35,
        cv - half_height * 0.35,
        iris_radius * 0.18,
        iris_radius * 0.18,
        edge,
    )
    canvas.paint(glint * white, (1.0, 1.0, 1.0))
    # Upper lid with lashes: a dark band along the top of the opening.
    lid_band = np.abs(v - top + 0.01) - 0.028
    lid = _ramp(np.maximum(lid_band, (np.abs(du) - 1.08) * half_width * 0.3), edge) * (
        np.abs(du) < 1.15
    )
    canvas.paint(lid, (0.08, 0.06, 0.05))
    lower = _ramp(
        np.maximum(np.abs(v - bottom - 0.006) - 0.006, (np.abs(du) - 0.95) * half_width), edge
    )
    canvas.paint(0.35 * lower, (0.3, 0.2, 0.18))
    crease = _ramp(
        np.maximum(
            np.abs(v - (top - half_height * 0.5 - 0.02)) - 0.006, (np.abs(du) - 0.9) * half_width
        ),
        edge,
    )
    canvas.paint(0.3 * crease, np.array(face.skin, dtype=np.float32) * 0.55)


def _draw_brow(canvas, u, v, face: FaceIdentity, expr: str, side: int, edge: float, rng) -> None:
    raise_by = {"neutral": 0.0, "smiling": 0.01, "surprised": 0.08}[expr]
    cu = side * face.eye_spacing
    du = (u - cu) / (face.eye_size * 1.25)
    centre = face.eye_height - face.brow_height - raise_by
    line = centre - 0.05 * (1 - du**2) - side * face.brow_tilt * 0.1 * du
    thickness = face.brow_thickness * (1 - 0.4 * np.clip(du * side, 0, 1))
    brow = _ramp(
        np.maximum(np.abs(v - line) - thickness / 2, (np.abs(du) - 1) * face.eye_size), edge * 1.5
    )
    # Brows are darker than light hair and than the skin, as on real faces.
    colour = np.minimum(np.array(face.hair) * 0.7, np.array(face.skin) * 0.45)
    canvas.paint(0.92 * brow, _textured(as_colour(colour), u, v, rng, strength=0.2))


def _draw_nose(canvas: _Canvas, u, v, face: FaceIdentity, edge: float) -> None:
    tip = face.nose_length
    width = face.nose_width
    for side in (-1, 1):
        nostril = _ellipse(
            u, v, side * width * 0.45, tip + 0.04, width * 0.3, width * 0.16, edge * 1.5
        )
        canvas.paint(0.85 * nostril, np.array(face.skin, dtype=np.float32) * 0.25)
        wing = _ellipse(u, v, side * width * 0.8, tip, width * 0.3, width * 0.3, edge * 3)
        ring = wing - _ellipse(u, v, side * width * 0.8, tip, width * 0.22, width * 0.22, edge * 3)
        canvas.paint(
            0.25 * np.clip(ring, 0, 1) * (v > tip - 0.03),
            np.array(face.skin, dtype=np.float32) * 0.5,
        )


def _draw_mouth(canvas: _Canvas, u, v, face: FaceIdentity, expr: str, edge: float) -> None:
    width = face.mouth_width * {"neutral": 1.0, "smiling": 1.2, "surprised": 0.72}[expr]
    curve = {"neutral": 0.01, "smiling": 0.09, "surprised": 0.0}[expr]
    opening = {"neutral": 0.0, "smiling": 0.045, "surprised": 0.15}[expr]
    du = u / width
    across = np.clip(1 - du**2, 0, 1)
    middle = face.mouth_height + curve * across - curve * 0.5  # corners up when smiling
    thickness = face.lip_thickness * np.sqrt(across)
    gap = opening * np.sqrt(across) if expr != "surprised" else opening * across**0.7
    upper_top = middle - gap / 2 - thickness * 0.9
    lower_bottom = middle + gap / 2 + thickness * 1.1
    outside = (np.abs(du) - 1) * width
    lips = _ramp(np.maximum(np.maximum(upper_top - v, v - lower_bottom), outside), edge)
    lip_colour = np.array(face.lip, dtype=np.float32) * (1 - 0.15 * (v < middle))[..., None]
    canvas.paint(lips, lip_colour)
    if opening > 0:
        inner = _ramp(np.maximum(np.abs(v - middle) - gap / 2, outside + 0.02), edge)
        canvas.paint(inner, (0.12, 0.04, 0.05))
        if expr == "smiling":
            teeth = inner * _ramp(v - (middle + gap * 0.15), edge)
            canvas.paint(teeth, (0.9, 0.88, 0.82))
    line = _ramp(np.maximum(np.abs(v - middle) - 0.007 - gap / 2, outside), edge)
    canvas.paint(0.8 * line, (0.2, 0.08, 0.08))


def _draw_hair(canvas: _Canvas, u, v, face: FaceIdentity, edge: float, rng) -> None:
    width = face.head_width
    cap = _ellipse(u, v, 0, -0.12, width * 1.07, face.head_height * 1.02, edge * 2)
    hairline = face.hairline + 0.35 * (u / width) ** 2
    if face.hair_style == "fringe":
        hairline = face.hairline + 0.1 + 0.03 * np.sin(u * 18) + 0.25 * (u / width) ** 2
    elif face.hair_style == "receding":
        hairline = face.hairline - 0.1 - 0.3 * np.abs(u / width) ** 1.5
    mask = cap * _ramp(v - hairline, edge * 3)
    if face.hair_style in ("short", "receding", "fringe"):
        # Short hair stops above the ears.
        mask *= _ramp(v - (-0.05 - 0.5 * np.clip(1 - np.abs(u) / width, 0, 1)), edge * 3)
    else:
        sides = _ramp(width * 0.82 - np.abs(u), edge * 3) * _ellipse(
            u, v, 0, 0.25, width * 1.25, face.head_height * 1.2, edge * 2
        )
        mask = np.maximum(mask, sides * _ramp(v - 1.3, edge * 4))
    canvas.paint(0.97 * mask, _textured(face.hair, u, v, rng, strength=0.18))


def _draw_facial_hair(canvas: _Canvas, u, v, head, face: FaceIdentity, edge: float, rng) -> None:
    """Stubble, a moustache or a full beard in the hair's colour, under the mouth's lips."""
    colour = np.minimum(np.array(face.hair) * 0.8, np.array(face.skin) * 0.5)
    upper_lip = face.mouth_height - face.lip_thickness
    moustache = _ramp(
        np.maximum(
            np.abs(v - (upper_lip - 0.06)) - 0.05 - 0.03 * (1 - (u / face.mouth_width) ** 2),
            np.abs(u) - face.mouth_width * 1.15,
        ),
        edge * 2,
    )
    if face.facial_hair == "moustache":
        mask, opacity = moustache, 0.9
    else:
        jaw_line = np.abs(u) - face.head_width * 0.55
        below_cheeks = _ramp(face.nose_length + 0.12 - v, edge * 6)
        lower_face = np.maximum(below_cheeks * head, moustache)
        mask = lower_face * _ramp(
            jaw_line - 0.4 * np.clip(v - face.mouth_height, 0, None), edge * 8
        )
        mask = np.maximum(mask, moustache) * head
        opacity = 0.35 if face.facial_hair == "stubble" else 0.9
    canvas.paint(opacity * mask, _textured(as_colour(colour), u, v, rng, strength=0.3))


def _draw_glasses(canvas: _Canvas, u, v, face: FaceIdentity, edge: float) -> None:
    radius_u = face.eye_size * 1.45
    radius_v = face.eye_size * 1.05
    frame = np.zeros_like(u)
    for side in (-1, 1):
        cu = side * face.eye_spacing
        r = np.sqrt(((u - cu) / radius_u) ** 2 + ((v - face.eye_height) / radius_v) ** 2)
        frame = np.maximum(frame, _ramp(np.abs(r - 1) * radius_v - 0.011, edge))
    bridge_half = face.eye_spacing - radius_u
    bridge = _ramp(
        np.maximum(np.abs(u) - bridge_half - 0.01, np.abs(v - face.eye_height + 0.03) - 0.012), edge
    )
    canvas.paint(np.maximum(frame, bridge) * 0.95, (0.08, 0.08, 0.09))
