import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.core.errors import InputError
from engine.faces.images import read_image
from tests.conftest import REPO_ROOT

LIMITS = {"max_pixels": 50_000_000, "max_side": 1600}


def gradient(width: int = 40, height: int = 30) -> np.ndarray:
    """An RGB test card: red grows left to right, green top to bottom, blue constant."""
    red = np.tile(np.linspace(0, 255, width), (height, 1))
    green = np.tile(np.linspace(0, 255, height)[:, None], (1, width))
    blue = np.full((height, width), 90.0)
    return np.stack([red, green, blue], axis=2).astype(np.uint8)


@pytest.mark.parametrize(
    ("suffix", "pil_format", "mode", "tolerance"),
    [
        (".jpg", "JPEG", "RGB", 12),
        (".jpeg", "JPEG", "RGB", 12),
        (".png", "PNG", "RGB", 0),
        (".gif", "GIF", "P", 40),
        (".bmp", "BMP", "RGB", 0),
        (".ppm", "PPM", "RGB", 0),
        (".pgm", "PPM", "L", 0),
        (".tif", "TIFF", "RGB", 0),
        (".webp", "WEBP", "RGB", 14),
        ("", "GIF", "P", 40),
    ],
)
def test_every_format_loads_as_rgb_uint8(
    tmp_path: Path, suffix: str, pil_format: str, mode: str, tolerance: int
) -> None:
    card = gradient()
    source = Image.fromarray(card)
    if mode == "L":
        source = source.convert("L")
        card = np.repeat(np.asarray(source)[:, :, None], 3, axis=2)
    elif mode == "P":
        source = source.quantize(64)
    path = tmp_path / f"photo{suffix}"
    source.save(path, format=pil_format)
    loaded = read_image(path, **LIMITS)
    assert loaded.pixels.dtype == np.uint8 and loaded.pixels.shape == (30, 40, 3)
    assert loaded.format == pil_format
    assert np.abs(loaded.pixels.astype(int) - card.astype(int)).mean() <= tolerance


def test_yale_photo_without_extension_is_recognised_by_content(
    shared_yalefaces: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "subject01.happy"
    shutil.copy(shared_yalefaces / "subject01.happy", copy)
    loaded = read_image(copy, **LIMITS)
    assert loaded.format == "GIF" and loaded.pixels.shape == (243, 320, 3)
    assert np.array_equal(loaded.pixels[..., 0], loaded.pixels[..., 2])  # greyscale photo


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    card = np.zeros((20, 40, 3), np.uint8)
    card[:, :20] = (250, 0, 0)  # left half red, right half black, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(card).save(path, exif=exif, quality=95)
    loaded = read_image(path, **LIMITS)
    assert loaded.pixels.shape == (40, 20, 3)
    assert loaded.pixels[5, 10, 0] > 200 and loaded.pixels[35, 10, 0] < 50  # red now on top
    assert loaded.notes == ("EXIF orientation 6 applied",)


def test_sixteen_bit_greyscale_uses_its_nominal_range(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16).repeat(4, axis=0)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    loaded = read_image(path, **LIMITS)
    assert loaded.pixels[0, :, 0].tolist() == [0, 100, 255]


def test_float_image_is_scaled_by_its_own_range(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    Image.fromarray(np.array([[-2.0, 0.0, 2.0]], dtype=np.float32)).save(path)
    assert read_image(path, **LIMITS).pixels[0, :, 1].tolist() == [0, 128, 255]


def test_transparency_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[:, :5] = (10, 20, 30, 255)  # opaque left half, transparent right half
    path = tmp_path / "logo.png"
    Image.fromarray(rgba).save(path)
    pixels = read_image(path, **LIMITS).pixels
    assert pixels[0, 0].tolist() == [10, 20, 30] and pixels[0, 9].tolist() == [255, 255, 255]


def test_palette_with_transparent_index_becomes_rgb(tmp_path: Path) -> None:
    palette_image = Image.new("P", (8, 8), 1)
    palette_image.putpalette([0, 0, 0, 200, 10, 10] + [0] * (254 * 3))
    palette_image.paste(0, (0, 0, 4, 8))
    path = tmp_path / "palette.png"
    palette_image.save(path, transparency=0)
    pixels = read_image(path, **LIMITS).pixels
    assert pixels[0, 0].tolist() == [255, 255, 255] and pixels[0, 7].tolist() == [200, 10, 10]


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)  # pure red ink
    pixel = read_image(path, **LIMITS).pixels[8, 8].astype(int)
    assert pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


def test_animated_gif_uses_first_frame_and_says_so(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (12, 12), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "wave.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    loaded = read_image(path, **LIMITS)
    assert loaded.pixels[6, 6].tolist() == [255, 0, 0]
    assert loaded.notes == ("animated GIF (2 frames): first frame used",)


@pytest.mark.parametrize("mode", ["RGB", "P", "I;16", "RGBA"])
def test_large_image_is_downscaled_to_max_side(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "wide.png"
    card = Image.fromarray(gradient(800, 400))
    if mode == "I;16":
        card = Image.fromarray(np.asarray(card.convert("L")).astype(np.uint16) * 257)
    else:
        card = card.quantize(64) if mode == "P" else card.convert(mode)
    card.save(path)
    loaded = read_image(path, max_pixels=10_000_000, max_side=200)
    assert loaded.pixels.shape == (100, 200, 3) and loaded.scale == pytest.approx(0.25)
    assert loaded.original_size == (800, 400)
    assert int(loaded.pixels[50, 190, 0]) > int(loaded.pixels[50, 5, 0]) + 50  # red ramp kept


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.touch()
    with pytest.raises(InputError, match=r"empty\.jpg: the file is empty \(0 bytes\)"):
        read_image(path, **LIMITS)


@pytest.mark.parametrize("pil_format", ["JPEG", "PNG", "GIF"])
def test_truncated_image_is_refused(tmp_path: Path, pil_format: str) -> None:
    path = tmp_path / "cut"
    Image.fromarray(gradient(200, 150)).save(path, format=pil_format)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        read_image(path, **LIMITS)


def test_text_file_with_image_extension_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("these are my notes, not a photo\n")
    with pytest.raises(InputError, match=r"not an image despite its \.jpg extension"):
        read_image(path, **LIMITS)


def test_missing_file_and_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "gone.png", **LIMITS)
    with pytest.raises(InputError, match="is a folder"):
        read_image(tmp_path, **LIMITS)


def test_unreadable_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.png"
    Image.fromarray(gradient()).save(path)

    def denied(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(InputError, match="secret.png: cannot read the file: permission denied"):
        read_image(path, **LIMITS)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_file_without_read_permission_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "locked.png"
    Image.fromarray(gradient()).save(path)
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        read_image(path, **LIMITS)


def test_pillow_decompression_bomb_becomes_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bomb.png"
    Image.fromarray(gradient()).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(InputError, match="decompression bomb"):
        read_image(path, **LIMITS)


def solid_png(path: Path, width: int, height: int) -> None:
    """A valid greyscale PNG of any size, written row by row: a few hundred KB on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * width
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def huge_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("huge")
    solid_png(folder / "huge.png", 12000, 12000)
    Image.new("L", (12000, 12000), 128).save(folder / "huge.jpg", quality=50)
    return {"png": folder / "huge.png", "jpg": folder / "huge.jpg"}


MEASURE_PEAK = """
import json, sys
from engine.core.errors import InputError
from engine.faces.images import read_image

def status_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

before = status_kib("VmRSS")
try:
    shape = list(read_image(sys.argv[1], max_pixels=50_000_000, max_side=1600).pixels.shape)
    error = None
except InputError as caught:
    shape, error = None, caught.message
after = status_kib("VmHWM")
print(json.dumps({"growth_mib": (after - before) / 1024, "shape": shape, "error": error}))
"""


def peak_memory_of_loading(path: Path) -> dict[str, object]:
    """Load ``path`` in a fresh interpreter: its peak resident memory (VmHWM) over its resident
    memory just before loading (VmRSS), and the outcome."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("peak memory is read from /proc (Linux)")
    completed = subprocess.run(
        [sys.executable, "-c", MEASURE_PEAK, str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout)


def test_huge_png_is_refused_from_its_header(huge_images: dict[str, Path]) -> None:
    outcome = peak_memory_of_loading(huge_images["png"])
    assert outcome["shape"] is None
    assert "12000x12000 is 144.0 megapixels" in str(outcome["error"])
    assert "only JPEG can be decoded at reduced size" in str(outcome["error"])
    assert outcome["growth_mib"] < 20  # 144 MB of pixels were never allocated


def test_huge_jpeg_is_decoded_at_reduced_size_in_bounded_memory(
    huge_images: dict[str, Path],
) -> None:
    outcome = peak_memory_of_loading(huge_images["jpg"])
    assert outcome["error"] is None and outcome["shape"] == [1600, 1600, 3]
    # Measured 40 MiB; decoding it whole and converting to RGB peaks at about 1.3 GiB.
    assert outcome["growth_mib"] < 64
