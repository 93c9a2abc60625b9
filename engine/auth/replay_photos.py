"""Is a photo a copy of an enrolment photo: re-encoded, resized, cropped, mirrored or rotated?

A new take of the same person by a fixed camera differs from the enrolment photo somewhere (the
mouth, an eye, the lighting, glasses); a copy, once laid back onto the enrolment photo, differs
only by resampling and compression noise. So the probe is registered onto each enrolment photo
and the largest local difference that remains decides:

1. both photos become grey thumbnails, longest side ``SIDE`` pixels, centred on a square canvas;
2. rotation and scale come from phase correlation of the log-polar magnitude spectra
   (Fourier-Mellin: the magnitude spectrum ignores translation, and in log-polar coordinates a
   rotation or a scale is a shift), for the probe and for its mirror image;
3. translation comes from phase correlation of the rotated and scaled probe;
4. a few Gauss-Newton steps refine an affine warp with a gain and an offset (a crop resized to
   another aspect ratio is not a similarity, and brightness and contrast may have changed);
5. the copy residual is the largest mean absolute difference, in grey levels, over the
   ``BLOCK`` x ``BLOCK`` blocks that lie inside both photos.

Pixels clipped (saturated) in either photo are left out of the gain-and-offset fit and of the
residual: a brightened copy turns its highlights into flat white, which no gain reproduces, and
a white background already at full scale stays there whatever the gain (so it would pull the
fit towards a gain of 1).

The bound on the residual and the figures behind it: docs/BENCHMARKS.md, "Replay defence".
"""

from __future__ import annotations

import dataclasses
import struct

import numpy as np

SIDE = 128
"""Longest side of a thumbnail, in pixels: enough for an eye or a mouth to span several blocks."""
BLOCK = 8
"""Side of the blocks whose mean difference is compared, in thumbnail pixels."""
MAX_ROTATION_DEGREES = 10.0
SCALE_RANGE = (0.7, 1.45)
"""Probe-to-enrolment scales searched: a crop to 70% of the frame, or a frame up to 1.45x wider."""
REFINEMENT_STEPS = 3
EARLY_EXIT_RESIDUAL = 40.0
"""A coarse registration this far from the enrolment photo is not refined: no copy on the
development data left the coarse step above about half of it (docs/BENCHMARKS.md)."""
SMOOTHING_SIGMA = 1.0
"""Gaussian blur (thumbnail pixels) before comparing: aligns the sharpness of a resized copy."""
CLIPPED_LEVELS = (5, 250)
"""Thumbnail grey levels at or beyond these (dark or bright) count as clipped."""
CLIPPED_REACH = 2
"""Pixels this close to a clipped one are left out too: the thumbnail's box averaging and the
smoothing spread a clipped area's flat value over its neighbours."""
_MIN_UNCLIPPED_BLOCK = 0.5
"""A block enters the residual only when at least this fraction of its pixels is unclipped."""
_MARGIN = 2.0
"""Pixels this close to a photo's edge are left out (interpolation there mixes in the canvas)."""
_MIN_OVERLAP = 0.3
"""A registration that keeps less than this fraction of the enrolment photo is no match."""
_FORMAT = b"mmT1"
_ANGLES = 180
_RADII = 192
_LOG_STEP = np.log(SIDE // 2) / _RADII


def _signed(index: np.ndarray, size: int) -> np.ndarray:
    """FFT bin indices as signed shifts (the upper half wraps to negative)."""
    return np.where(index > size / 2, index - size, index)


def _window() -> np.ndarray:
    return np.outer(np.hanning(SIDE), np.hanning(SIDE))


def _high_pass() -> np.ndarray:
    # Reddy and Chatterji's emphasis filter: the low frequencies that every photo shares would
    # otherwise dominate the log-polar correlation.
    cosine = np.cos(np.pi * np.fft.fftshift(np.fft.fftfreq(SIDE)))
    product = cosine[:, None] * cosine[None, :]
    return (1 - product) * (2 - product)


def _polar_coordinates() -> np.ndarray:
    theta = np.arange(_ANGLES) * np.pi / _ANGLES  # magnitude spectra repeat every 180 degrees
    radius = np.exp(np.arange(_RADII) * _LOG_STEP)
    rows = SIDE / 2 - radius[None, :] * np.sin(theta)[:, None]
    columns = SIDE / 2 + radius[None, :] * np.cos(theta)[:, None]
    return np.array([rows, columns])


_WINDOW = _window()
_HIGH_PASS = _high_pass()
_POLAR = _polar_coordinates()
_GRID = np.mgrid[0:SIDE, 0:SIDE].reshape(2, -1).astype(np.float64)
_CENTRE = np.full((2, 1), SIDE / 2)
_ROTATIONS = _signed(np.arange(_ANGLES), _ANGLES) * 180.0 / _ANGLES
_LOG_SCALES = _signed(np.arange(_RADII), _RADII) * _LOG_STEP
_ROTATION_SCALE_SEARCH = (np.abs(_ROTATIONS) <= MAX_ROTATION_DEGREES)[:, None] & (
    np.abs(_LOG_SCALES - np.log(SCALE_RANGE).mean()) <= np.ptp(np.log(SCALE_RANGE)) / 2
)[None, :]
_REFINEMENT_POINTS = (_GRID[0] % 2 == 0) & (_GRID[1] % 2 == 0)
_SHIFTS = np.abs(_signed(np.arange(SIDE), SIDE)) <= SIDE // 3
_TRANSLATION_SEARCH = _SHIFTS[:, None] & _SHIFTS[None, :]


# Thumbnails, as stored ----------------------------------------------------------------------


def photo_thumbnail(image: np.ndarray) -> np.ndarray:
    """Grey uint8 thumbnail of an image (H x W or H x W x C), longest side SIDE pixels."""
    from PIL import Image

    pixels = np.asarray(image, dtype=np.float64)
    if pixels.ndim == 3:
        pixels = pixels[..., :3].mean(axis=2)
    if pixels.ndim != 2 or min(pixels.shape) < 1:
        raise ValueError(f"expected an image array, got shape {np.shape(image)}")
    height, width = pixels.shape
    factor = SIDE / max(height, width)
    size = (max(BLOCK, round(width * factor)), max(BLOCK, round(height * factor)))
    # Box averaging when shrinking; when enlarging (a small copy) it would repeat pixels.
    resampling = Image.Resampling.BOX if factor <= 1 else Image.Resampling.BILINEAR
    small = Image.fromarray(pixels.astype(np.float32), mode="F").resize(size, resampling)
    return np.clip(np.rint(np.asarray(small)), 0, 255).astype(np.uint8)


def encode_thumbnail(thumbnail: np.ndarray) -> bytes:
    """A thumbnail as the replay store keeps it: format tag, height, width, pixels."""
    height, width = thumbnail.shape
    return _FORMAT + struct.pack("<HH", height, width) + thumbnail.astype(np.uint8).tobytes()


def decode_thumbnail(fingerprint: bytes) -> np.ndarray | None:
    """The thumbnail in a stored fingerprint; None for another format (an older store's pHash)."""
    if not fingerprint.startswith(_FORMAT) or len(fingerprint) < len(_FORMAT) + 4:
        return None
    height, width = struct.unpack_from("<HH", fingerprint, len(_FORMAT))
    pixels = np.frombuffer(fingerprint, dtype=np.uint8, offset=len(_FORMAT) + 4)
    if pixels.size != height * width:
        return None
    return pixels.reshape(height, width)


# Registration -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PhotoTemplate:
    """A thumbnail prepared for registration, computed once per photo."""

    smoothed: np.ndarray
    """The canvas (thumbnail minus its mean, centred on SIDE x SIDE zeros), blurred."""
    gradient_rows: np.ndarray
    gradient_columns: np.ndarray
    box: tuple[int, int, int, int]
    """(top, left, height, width) of the thumbnail on the canvas."""
    polar_spectrum: np.ndarray
    """FFT of the log-polar, high-passed magnitude spectrum of the windowed canvas."""
    canvas_spectrum: np.ndarray
    """FFT of the windowed canvas (for the translation)."""
    canvas: np.ndarray
    unclipped: np.ndarray
    """1.0 on the canvas where the thumbnail is neither clipped nor next to a clipped pixel."""


def photo_template(thumbnail: np.ndarray) -> PhotoTemplate:
    """Everything registration needs about one thumbnail."""
    from scipy import ndimage

    pixels = np.asarray(thumbnail, dtype=np.float64)
    height, width = pixels.shape
    top, left = (SIDE - height) // 2, (SIDE - width) // 2
    canvas = np.zeros((SIDE, SIDE))
    canvas[top : top + height, left : left + width] = pixels - pixels.mean()
    magnitude = np.abs(np.fft.fftshift(np.fft.fft2(canvas * _WINDOW))) * _HIGH_PASS
    polar = ndimage.map_coordinates(magnitude, _POLAR, order=1)
    smoothed = ndimage.gaussian_filter(canvas, SMOOTHING_SIGMA)
    low, high = CLIPPED_LEVELS
    clipped = ndimage.binary_dilation((pixels <= low) | (pixels >= high), iterations=CLIPPED_REACH)
    unclipped = np.zeros((SIDE, SIDE))
    unclipped[top : top + height, left : left + width] = ~clipped
    return PhotoTemplate(
        smoothed=smoothed,
        gradient_rows=ndimage.sobel(smoothed, 0) / 8,
        gradient_columns=ndimage.sobel(smoothed, 1) / 8,
        box=(top, left, height, width),
        polar_spectrum=np.fft.fft2(polar - polar.mean()),
        canvas_spectrum=np.fft.fft2(canvas * _WINDOW),
        canvas=canvas,
        unclipped=unclipped,
    )


def probe_templates(thumbnail: np.ndarray) -> tuple[PhotoTemplate, PhotoTemplate]:
    """The probe's template and its mirror image's: a mirrored copy is registered as such."""
    return photo_template(thumbnail), photo_template(thumbnail[:, ::-1])


def _phase_peak(first: np.ndarray, second: np.ndarray, search: np.ndarray):
    """(row shift, column shift, peak height) of the phase correlation of two spectra, the
    peak taken where ``search`` allows and refined to a fraction of a bin by a parabola."""
    cross = first * np.conj(second)
    correlation = np.real(np.fft.ifft2(cross / (np.abs(cross) + 1e-12)))
    row, column = np.unravel_index(
        np.argmax(np.where(search, correlation, -np.inf)), correlation.shape
    )
    rows, columns = correlation.shape

    def vertex(before: float, at: float, after: float) -> float:
        curvature = before - 2 * at + after
        return 0.0 if curvature >= 0 else 0.5 * (before - after) / curvature

    row_offset = vertex(
        correlation[(row - 1) % rows, column],
        correlation[row, column],
        correlation[(row + 1) % rows, column],
    )
    column_offset = vertex(
        correlation[row, (column - 1) % columns],
        correlation[row, column],
        correlation[row, (column + 1) % columns],
    )
    return (
        float(_signed(np.asarray(row), rows) + row_offset),
        float(_signed(np.asarray(column), columns) + column_offset),
        float(correlation[row, column]),
    )


def _inside(coordinates: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    top, left, height, width = box
    return (
        (coordinates[0] >= top + _MARGIN)
        & (coordinates[0] <= top + height - 1 - _MARGIN)
        & (coordinates[1] >= left + _MARGIN)
        & (coordinates[1] <= left + width - 1 - _MARGIN)
    )


def copy_residual(enrolled: PhotoTemplate, probe: tuple[PhotoTemplate, PhotoTemplate]) -> float:
    """Largest block difference (grey levels) left after registering the probe (or its mirror
    image) onto the enrolment photo: small for a copy, large where anything changed."""
    from scipy import ndimage

    # The probe and its mirror image each get a coarse registration; the one whose translation
    # peak is the clearer wins (the log-polar peak alone picks the wrong side on smooth photos).
    score, matrix, offset, source = max(
        (_coarse_registration(enrolled, side) + (side,) for side in probe),
        key=lambda found: found[0],
    )
    target = enrolled.smoothed.ravel()
    in_enrolment = _inside(_GRID, enrolled.box)
    enrolled_unclipped = enrolled.unclipped.ravel() > 0.5
    least_overlap = _MIN_OVERLAP * enrolled.box[2] * enrolled.box[3]
    valid, usable, warped = _warp(source, matrix, offset, in_enrolment, enrolled_unclipped)
    if valid.sum() < least_overlap or usable.sum() < BLOCK * BLOCK:
        return float("inf")
    if _block_residual(target, warped, valid, usable) > EARLY_EXIT_RESIDUAL:
        return float("inf")  # far from a copy even before refinement: a new take
    gain, bias = np.polyfit(target[usable], warped[usable], 1)
    for _ in range(REFINEMENT_STEPS):
        # Every other row and column is plenty for eight parameters, at a quarter of the cost.
        points = usable & _REFINEMENT_POINTS
        coordinates = matrix @ _GRID[:, points] + offset
        values = ndimage.map_coordinates(source.smoothed, coordinates, order=1)
        rows_gradient = ndimage.map_coordinates(source.gradient_rows, coordinates, order=1)
        columns_gradient = ndimage.map_coordinates(source.gradient_columns, coordinates, order=1)
        row, column, reference = _GRID[0, points], _GRID[1, points], target[points]
        jacobian = np.stack(
            [
                rows_gradient * row,
                rows_gradient * column,
                rows_gradient,
                columns_gradient * row,
                columns_gradient * column,
                columns_gradient,
                -reference,
                -np.ones(row.size),
            ],
            axis=1,
        )
        error = values - gain * reference - bias
        delta = np.linalg.lstsq(jacobian.T @ jacobian, -jacobian.T @ error, rcond=None)[0]
        matrix = matrix + delta[[0, 1, 3, 4]].reshape(2, 2)
        offset = offset + delta[[2, 5]].reshape(2, 1)
        gain, bias = gain + delta[6], bias + delta[7]
    valid, usable, warped = _warp(source, matrix, offset, in_enrolment, enrolled_unclipped)
    if valid.sum() < least_overlap or usable.sum() < BLOCK * BLOCK:
        return float("inf")
    return _block_residual(target, warped, valid, usable)


def _coarse_registration(
    enrolled: PhotoTemplate, probe: PhotoTemplate
) -> tuple[float, np.ndarray, np.ndarray]:
    """Rotation and scale (log-polar phase correlation), then translation (phase correlation):
    the translation peak's height, and the matrix and offset that map enrolment canvas
    coordinates to probe canvas coordinates."""
    from scipy import ndimage

    rotation_row, log_scale_column, _ = _phase_peak(
        enrolled.polar_spectrum, probe.polar_spectrum, _ROTATION_SCALE_SEARCH
    )
    angle = -np.radians(rotation_row * 180.0 / _ANGLES)
    scale = np.exp(log_scale_column * _LOG_STEP)
    matrix = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rotated = ndimage.map_coordinates(
        probe.canvas, matrix @ (_GRID - _CENTRE) + _CENTRE, order=1
    ).reshape(SIDE, SIDE)
    shift_rows, shift_columns, peak = _phase_peak(
        enrolled.canvas_spectrum, np.fft.fft2(rotated * _WINDOW), _TRANSLATION_SEARCH
    )
    offset = _CENTRE - matrix @ (_CENTRE + np.array([[shift_rows], [shift_columns]]))
    return peak, matrix, offset


def _warp(
    source: PhotoTemplate,
    matrix: np.ndarray,
    offset: np.ndarray,
    in_enrolment: np.ndarray,
    enrolled_unclipped: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which enrolment pixels the warped probe covers, which of those are unclipped in both
    photos, and the probe's smoothed values there."""
    from scipy import ndimage

    coordinates = matrix @ _GRID + offset
    valid = _inside(coordinates, source.box) & in_enrolment
    probe_unclipped = ndimage.map_coordinates(source.unclipped, coordinates, order=0) > 0.5
    usable = valid & enrolled_unclipped & probe_unclipped
    return valid, usable, ndimage.map_coordinates(source.smoothed, coordinates, order=1)


def _block_residual(
    target: np.ndarray, warped: np.ndarray, valid: np.ndarray, usable: np.ndarray
) -> float:
    """Largest mean absolute difference over the unclipped pixels of the blocks wholly inside
    both photos, after the best gain and offset."""
    gain, bias = np.polyfit(target[usable], warped[usable], 1)
    difference = np.where(usable, np.abs((warped - bias) / max(gain, 1e-3) - target), 0.0)
    blocks = SIDE // BLOCK
    shape = (blocks, BLOCK, blocks, BLOCK)
    counted = usable.reshape(shape).sum(axis=(1, 3))
    kept = valid.reshape(shape).all(axis=(1, 3)) & (counted >= _MIN_UNCLIPPED_BLOCK * BLOCK * BLOCK)
    if not kept.any():
        return float("inf")
    block_means = difference.reshape(shape).sum(axis=(1, 3)) / np.maximum(counted, 1)
    return float(block_means[kept].max())
