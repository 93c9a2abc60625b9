"""Loading any photo safely as an RGB uint8 array: bounded memory, one clear error per bad file.

Decisions a reader should know:
- Only the formats a face photo comes in are decoded (JPEG and its multi-picture MPO form, PNG,
  GIF, BMP, PGM/PPM, TIFF, WebP), recognised by content, so extension-less files (the Yale set)
  load and a format with a risky decoder (EPS runs Ghostscript) is never tried.
- The pixel count is checked from the header before anything is decoded. Over
  ``face.max_pixels`` a JPEG is decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself
  (``Image.draft``), so memory stays bounded; any other format is refused.
- Larger than ``face.max_side`` is downscaled (JPEG again through ``draft``, then Lanczos).
- An animated GIF (or multi-page TIFF) uses its first frame, and says so in ``notes``.
- EXIF orientation is applied; transparency is composited over white; greyscale, palette,
  CMYK, 16-bit and float images become 8-bit RGB (16-bit by its nominal range, float by its own).
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.core.errors import InputError

ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "PPM", "TIFF", "WEBP")
_DRAFTABLE_FORMATS = {"JPEG", "MPO"}
_SMALLEST_JPEG_SCALE = 8
_BACKGROUND = (255, 255, 255)
_EXIF_ORIENTATION = 0x0112
_RESAMPLABLE_MODES = {"L", "LA", "RGB", "RGBA", "I", "F"}


@dataclasses.dataclass(frozen=True)
class LoadedImage:
    """A decoded photo and what was done to it on the way in."""

    pixels: np.ndarray
    """Height x width x 3 array of uint8 RGB values."""
    format: str
    """Format recognised from the content (``JPEG``, ``GIF``, ...)."""
    original_size: tuple[int, int]
    """(width, height) stated by the file's header, before any downscaling or rotation."""
    scale: float
    """Longest side of ``pixels`` over the original longest side (1.0 when not downscaled)."""
    notes: tuple[str, ...] = ()
    """Things a person may want to know, e.g. ``animated GIF (12 frames): first frame used``."""


def read_image(path: Path, *, max_pixels: int, max_side: int) -> LoadedImage:
    """Decode the image at ``path`` into RGB uint8, refusing anything unsafe or unreadable.

    Raises InputError naming the file and the reason: missing, unreadable, empty, not an image,
    truncated, or too many pixels to decode within bounded memory.
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise InputError("no such file", path=path.name) from None
    except IsADirectoryError:
        raise InputError("is a folder, not an image file", path=path.name) from None
    except PermissionError:
        raise InputError("cannot read the file: permission denied", path=path.name) from None
    except OSError as error:
        raise InputError(f"cannot read the file: {error.strerror}", path=path.name) from None
    with handle:
        return _decode(handle, path, max_pixels=max_pixels, max_side=max_side)


def _decode(handle: BinaryIO, path: Path, *, max_pixels: int, max_side: int) -> LoadedImage:
    if os.fstat(handle.fileno()).st_size == 0:
        raise InputError("the file is empty (0 bytes)", path=path.name)
    image = _open(handle, path, max_pixels)
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InputError(f"the header states an empty image ({width}x{height})", path=path.name)
    notes: list[str] = []
    frames = getattr(image, "n_frames", 1) if getattr(image, "is_animated", False) else 1
    if frames > 1:
        notes.append(f"animated {image.format} ({frames} frames): first frame used")
    target = _draft_target(image.format, width, height, max_pixels=max_pixels, max_side=max_side)
    if target is None:
        raise InputError(
            f"{width}x{height} is {width * height / 1e6:.1f} megapixels, over the limit "
            f"face.max_pixels = {max_pixels:,}; only JPEG can be decoded at reduced size, so "
            f"shrink this {image.format} image first",
            path=path.name,
        )
    try:
        if target != (width, height):
            image.draft(image.mode, target)
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise InputError(
            f"the {image.format} data cannot be decoded (truncated or corrupt): {error}",
            path=path.name,
        ) from None
    except Image.DecompressionBombError as error:
        raise InputError(f"refused as a decompression bomb: {error}", path=path.name) from None
    image_format = image.format or ""
    image = _shrink(_apply_orientation(image, notes), max_side)
    return LoadedImage(
        pixels=_to_rgb(image),
        format=image_format,
        original_size=(width, height),
        scale=max(image.size) / max(width, height),
        notes=tuple(notes),
    )


def _open(handle: BinaryIO, path: Path, max_pixels: int) -> Image.Image:
    # The module-wide Pillow limit only warns between 1x and 2x MAX_IMAGE_PIXELS; our own
    # max_pixels check below is the one that decides, so the warning would be noise.
    Image.init()  # registers every plugin, so the allow-list can name the ones not preloaded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(handle, formats=ALLOWED_FORMATS)
        except Image.DecompressionBombError:
            # Pillow's own hard limit (twice Image.MAX_IMAGE_PIXELS) stops it before our check.
            raise InputError(
                f"the header states more than {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} "
                f"megapixels, far over the limit face.max_pixels = {max_pixels:,}: refused "
                "before decoding (a decompression bomb, or a photo to shrink first)",
                path=path.name,
            ) from None
        except UnidentifiedImageError:
            suffix = path.suffix.lower()
            claimed = f" despite its {suffix} extension" if suffix else ""
            raise InputError(
                f"not an image{claimed}: the content is none of "
                "JPEG, PNG, GIF, BMP, PGM/PPM, TIFF or WebP (or its header is truncated)",
                path=path.name,
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise InputError(f"the image header cannot be read: {error}", path=path.name) from None


def _draft_target(
    image_format: str | None, width: int, height: int, *, max_pixels: int, max_side: int
) -> tuple[int, int] | None:
    """The size to ask the decoder for; None when the image cannot be decoded within limits."""
    draftable = image_format in _DRAFTABLE_FORMATS
    factor = min(1.0, max_side / max(width, height))
    if width * height > max_pixels:
        smallest = math.ceil(width / _SMALLEST_JPEG_SCALE) * math.ceil(
            height / _SMALLEST_JPEG_SCALE
        )
        if not draftable or smallest > max_pixels:
            return None
        # draft() may stop at up to twice the asked size per side, hence the 2.
        factor = min(factor, math.sqrt(max_pixels / (width * height)) / 2)
    if not draftable or factor >= 1.0:
        return (width, height)
    # draft() picks the strongest 1/2^k reduction that keeps both sides at least this size.
    return (max(1, math.ceil(width * factor)), max(1, math.ceil(height * factor)))


def _apply_orientation(image: Image.Image, notes: list[str]) -> Image.Image:
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
        if orientation in range(2, 9):
            ImageOps.exif_transpose(image, in_place=True)
            notes.append(f"EXIF orientation {orientation} applied")
    except (OSError, SyntaxError, ValueError, TypeError, KeyError) as error:
        # A damaged EXIF block must not cost an otherwise good photo.
        notes.append(f"EXIF orientation unreadable ({error}): used as stored")
    return image


def _to_rgb(image: Image.Image) -> np.ndarray:
    """8-bit RGB pixels from any Pillow mode."""
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return np.repeat(_wide_to_uint8(np.asarray(image))[:, :, None], 3, axis=2)
    if mode == "P":
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, _BACKGROUND)
        background.paste(image, mask=image.getchannel("A"))
        image = background
    elif image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8).copy()


def _wide_to_uint8(values: np.ndarray) -> np.ndarray:
    """16-bit integers by their nominal range; float and out-of-range values by their own."""
    floating = np.issubdtype(values.dtype, np.floating)
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if floating and low >= 0.0 and high <= 1.0:
        low, high = 0.0, 1.0
    elif not floating and low >= 0.0 and high <= 65535.0:
        low, high = 0.0, 65535.0
    span = high - low if high > low else 1.0
    return np.clip(np.round((values - low) / span * 255.0), 0, 255).astype(np.uint8)


def _shrink(image: Image.Image, max_side: int) -> Image.Image:
    """Downscale to ``max_side`` in the image's own mode, before the (larger) RGB copy exists."""
    width, height = image.size
    if max(width, height) <= max_side:
        return image
    if image.mode.startswith("I;16"):
        image = image.convert("I")
    elif image.mode not in _RESAMPLABLE_MODES:
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    factor = max_side / max(width, height)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _has_alpha(image: Image.Image) -> bool:
    return "A" in image.mode or "transparency" in image.info
