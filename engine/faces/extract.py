"""Photos -> face feature rows: load, find and align the face, augment, extract features.

Two backends share every step but the detector and the features:
- ``classic``: scikit-image LBP cascade, optional levelling, CLAHE + Tan-Triggs, HOG + LBP
  histograms + HSV colour histogram on the aligned crop (the design card's own stack);
- ``dlib``: dlib's HOG detector, 5-point alignment (dlib's 150 x 150 chip) and its ResNet 128-d
  embedding (weights from the face-recognition-models package, never downloaded).

``extract_face_features`` runs on every enrolment and probe photo of a workspace through the
shared cached, parallel batch machinery (engine.core.batch) and writes data/image_features.csv plus
data/image_features_report.json; ``face_vector`` is the same code path for one probe.
Only enrolment photos are augmented; probes are used as they are.
"""

from __future__ import annotations

import dataclasses
import io
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.batch import ItemOutput, ItemResult
from engine.core.errors import InputError
from engine.core.feature_tables import (
    ENROL,
    PROBE,
    FeatureRunReport,
    collect_items,
    execution_plan,
    refuse_empty_run,
    run_by_role,
    run_report,
    write_feature_table,
)
from engine.core.fileio import atomic_write_bytes, atomic_write_json, file_sha256
from engine.core.metrics import rate
from engine.core.progress import ProgressCallback, no_progress
from engine.core.settings import FaceAugmentSettings, Settings
from engine.core.workspace import Workspace
from engine.faces import detect as face_detect
from engine.faces.augment import (
    ORIGINAL,
    Augmentation,
    augment_crop,
    augment_region,
    plan_augmentations as plan_face_augmentations,
)
from engine.faces.images import LoadedImage, read_image

PIPELINE_VERSION = 4
"""Part of every cache key: bump it when a change alters the features of an unchanged photo."""
FTA_MARK = "failure to acquire (FTA)"
"""Every AcquisitionError of the face pipeline starts with this, so reports can count FTAs."""
FEATURE_DECIMALS = 6
"""Features are rounded so the CSV is compact and identical on every machine and executor."""
EMOTIONS = {
    "neutral": "neutral",
    "normal": "neutral",
    "smiling": "smiling",
    "smile": "smiling",
    "happy": "smiling",
    "surprised": "surprised",
}
UNKNOWN_EMOTION = "unknown"
HOG_CELLS = 8
"""HOG cells per crop side: the cell size follows face.crop_size so the length never changes."""
HOG_ORIENTATIONS = 9
LBP_GRID = 8
LBP_POINTS = 8
LBP_RADIUS = 2
LBP_BINS = LBP_POINTS * (LBP_POINTS - 1) + 3
"""Non-rotation-invariant uniform patterns (Ahonen et al.'s u2 code, 59 bins for 8 points) at
radius 2: the best LBP variant on the Yale development protocol (docs/BENCHMARKS.md, "Faces:
designs compared on a development protocol")."""
COLOUR_BINS = 8
CLASSIC_CONTEXT = 1.25
"""The classic features' crop is this much wider than the detected face region: the head's
outline and hair carry identity that the inner face loses under side light (docs/BENCHMARKS.md,
"Faces: designs compared on a development protocol": wider crops against inner ones)."""


def emotion_from_name(file_name: str) -> str:
    """``neutral``, ``smiling`` or ``surprised`` when a word of the file name says so, else
    ``unknown`` (``subject01.happy`` -> smiling, ``ana_normal_2.jpg`` -> neutral)."""
    for word in re.split(r"[^a-z]+", file_name.lower()):
        if word in EMOTIONS:
            return EMOTIONS[word]
    return UNKNOWN_EMOTION


def face_crop(pixels: np.ndarray, region: face_detect.FaceRegion, *, size: int) -> np.ndarray:
    """The face region resampled to size x size x 3 floats in 0..1, anti-aliased.

    A face much larger than the crop is smoothed first (sigma from the shrink factor), as
    dlib's own chip extraction does with its pyramid, so downscaling does not alias.
    """
    from scipy import ndimage

    part, left, top = face_detect.region_around(
        pixels, region.center_x, region.center_y, region.side
    )
    part = part.astype(np.float64) / 255.0
    shrink = region.side / (size - 1)
    if shrink > 1.5:
        part = ndimage.gaussian_filter(part, sigma=((shrink - 1) / 2,) * 2 + (0,))
    crop = face_detect.warp_square(
        part, region.center_x - left, region.center_y - top, region.side, region.angle, size=size
    )
    return np.clip(crop, 0.0, 1.0)


def classic_features(crop: np.ndarray) -> np.ndarray:
    """HOG + spatial LBP histograms of the illumination-normalised grey crop + HSV histograms.

    ``crop`` is size x size x 3 in 0..1. The grey crop is CLAHE-equalised, then normalised
    with Tan & Triggs' chain against the side lighting of photos like Yale's (its effect is
    measured by ``python -m benchmarks.faces --ablations``). Returns a 1-d vector whose length
    depends only on the module constants (HOG cells scale with the crop); its layout is what
    ``classic_feature_spaces`` describes.
    """
    from skimage import color, exposure, feature

    grey = tan_triggs(exposure.equalize_adapthist(color.rgb2gray(crop)))
    size = grey.shape[0]
    cell = max(4, size // HOG_CELLS)
    hog = feature.hog(
        grey[: cell * HOG_CELLS, : cell * HOG_CELLS],
        orientations=HOG_ORIENTATIONS,
        pixels_per_cell=(cell, cell),
        cells_per_block=(2, 2),
        block_norm="L2-Hys",
        feature_vector=True,
    )
    return np.concatenate([hog, lbp_histograms(grey), colour_histograms(crop)])


def tan_triggs(
    grey: np.ndarray,
    *,
    gamma: float = 0.2,
    sigma_inner: float = 1.5,
    sigma_outer: float = 4.0,
    alpha: float = 0.1,
    tau: float = 10.0,
) -> np.ndarray:
    """Tan & Triggs (2010) illumination normalisation of a grey image in 0..1, back in 0..1.

    Gamma compression, a difference of gaussians (removes shading, keeps the edges that carry
    identity), then a two-stage robust contrast equalisation and tanh squashing of outliers.
    The sigmas (pixels) are wider than the paper's 1 and 2: on the Yale development protocol
    (enrolment with sleepy, sad, wink; docs/BENCHMARKS.md) the classic face model on 128-px crops
    measured rank-1 87.8% / EER 20.6% with 1.5 and 4, 86.0% / 25.5% with 1 and 2.
    """
    from scipy import ndimage

    image = np.power(grey + 1e-3, gamma)
    image = ndimage.gaussian_filter(image, sigma_inner) - ndimage.gaussian_filter(
        image, sigma_outer
    )
    image = image / np.mean(np.abs(image) ** alpha) ** (1 / alpha)
    image = image / np.mean(np.minimum(tau, np.abs(image)) ** alpha) ** (1 / alpha)
    image = tau * np.tanh(image / tau)
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def classic_feature_spaces(n_features: int) -> list[np.ndarray]:
    """Column indices of the parts of a classic feature vector the face model learns a space
    for each: the whole HOG (with the colour histograms), the whole LBP, and the left and right
    halves of each (overlapping by a HOG block column). A vector of another length (not made by
    ``classic_features``) is one part.

    Under side light one half of the face keeps its texture while the other is in shadow, and a
    member's score is the mean of the parts' similarities: on the Yale development protocol
    (docs/BENCHMARKS.md) the classic model measured rank-1 92.4% / EER 17.0% with these six
    parts against 88.0% / 19.6% with one space over the whole vector.
    """
    blocks = HOG_CELLS - 1
    hog = np.arange(blocks * blocks * 4 * HOG_ORIENTATIONS).reshape(blocks, blocks, -1)
    lbp = hog.size + np.arange(LBP_GRID * LBP_GRID * LBP_BINS).reshape(LBP_GRID, LBP_GRID, -1)
    colour = lbp.size + hog.size + np.arange(3 * COLOUR_BINS)
    if n_features != hog.size + lbp.size + colour.size:
        return [np.arange(n_features)]
    half_hog, half_lbp = (blocks + 1) // 2, LBP_GRID // 2
    return [
        np.concatenate([hog.ravel(), colour]),
        lbp.ravel(),
        hog[:, :half_hog].ravel(),
        hog[:, blocks - half_hog :].ravel(),
        lbp[:, :half_lbp].ravel(),
        lbp[:, half_lbp:].ravel(),
    ]


def lbp_histograms(grey: np.ndarray, *, grid: int = LBP_GRID) -> np.ndarray:
    """Uniform LBP histograms of a grid x grid tiling, each normalised and square-rooted.

    The square root (Hellinger map) makes Euclidean and cosine comparisons of histograms
    behave like the chi-square distance LBP face descriptors are usually compared with.
    """
    from skimage import feature

    codes = feature.local_binary_pattern(
        (grey * 255).astype(np.uint8), LBP_POINTS, LBP_RADIUS, method="nri_uniform"
    )
    bins = LBP_BINS
    histograms = []
    for rows in np.array_split(codes, grid, axis=0):
        for tile in np.array_split(rows, grid, axis=1):
            counts = np.bincount(tile.astype(np.int64).ravel(), minlength=bins)[:bins]
            histograms.append(np.sqrt(counts / max(1, counts.sum())))
    return np.concatenate(histograms)


def colour_histograms(crop: np.ndarray, *, bins: int = COLOUR_BINS) -> np.ndarray:
    """Normalised histograms of hue, saturation and value (3 x bins) of a crop in 0..1."""
    from skimage import color

    hsv = color.rgb2hsv(crop).reshape(-1, 3)
    return np.concatenate(
        [np.histogram(hsv[:, i], bins=bins, range=(0.0, 1.0))[0] / len(hsv) for i in range(3)]
    )


def dlib_embedding(chip: np.ndarray, *, mirror_average: bool = False) -> np.ndarray:
    """dlib's 128-d ResNet embedding of a 150 x 150 x 3 aligned chip in 0..1.

    With ``mirror_average`` the mean of the chip's and its mirror image's embeddings: what
    stays is what both halves of the face agree on, which separates strangers better.
    """
    model = face_detect.dlib_embedding_model()
    chips = [chip, chip[:, ::-1]] if mirror_average else [chip]
    embeddings = [
        np.asarray(model.compute_face_descriptor(np.ascontiguousarray(_to_uint8(c)))) for c in chips
    ]
    return np.mean(embeddings, axis=0)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(image * 255.0).astype(np.uint8)


def face_params(
    settings: Settings, *, augment: bool, save_dir: Path | None = None
) -> dict[str, Any]:
    """The JSON parameters of the per-file function (they are part of the cache key)."""
    face = settings.face
    params: dict[str, Any] = {
        "version": PIPELINE_VERSION,
        "backend": face.backend,
        "crop_size": face.crop_size,
        "align_eyes": face.align_eyes,
        "max_pixels": face.max_pixels,
        "max_side": face.max_side,
        "mirror_average": face.mirror_average,
        "comparable_face_area": face.comparable_face_area,
        "seed": settings.seed,
        "augment": dataclasses.asdict(settings.face_augment) if augment else None,
    }
    if augment and save_dir is not None:
        params["save_dir"] = str(save_dir)
    return params


def process_face_file(path: Path, params: dict[str, Any]) -> ItemOutput:
    """One photo -> one feature row per augmentation (the per-file function of the batch).

    Raises InputError for an unreadable photo and AcquisitionError when no face is found
    (MultipleFacesError, an AcquisitionError, when several faces of comparable size are).
    """
    image = read_image(path, max_pixels=params["max_pixels"], max_side=params["max_side"])
    return _image_rows(image, path, params)


def _image_rows(image: LoadedImage, path: Path, params: dict[str, Any]) -> ItemOutput:
    """The rows of a decoded photo; ``path`` names it for augmentation seeds and saved crops."""
    pixels = image.pixels
    dlib_backend = params["backend"] == "dlib"
    if dlib_backend:
        region = face_detect.detect_face_dlib(
            pixels, comparable_face_area=params["comparable_face_area"]
        )
        size = face_detect.DLIB_CHIP_SIZE
    else:
        region = face_detect.detect_face_classic(
            pixels,
            align_eyes=params["align_eyes"],
            comparable_face_area=params["comparable_face_area"],
        )
        region = dataclasses.replace(region, side=region.side * CLASSIC_CONTEXT)
        size = params["crop_size"]
    augmentations = [Augmentation(ORIGINAL)]
    if params["augment"] is not None:
        augmentations += plan_face_augmentations(
            FaceAugmentSettings(**params["augment"]),
            seed=params["seed"],
            content_sha256=file_sha256(path),
        )
    notes = list(image.notes)
    if region.method not in ("cascade", "dlib"):
        notes.append(f"face found by the {region.method} fallback")
    rows, records = [], []
    for augmentation in augmentations:
        crop = augment_crop(
            face_crop(pixels, augment_region(region, augmentation), size=size), augmentation
        )
        if dlib_backend:
            rows.append(dlib_embedding(crop, mirror_average=params["mirror_average"]))
        else:
            rows.append(classic_features(crop))
        records.append({"augmentation": augmentation.name, "notes": "; ".join(notes)})
        if "save_dir" in params:
            _save_crop(Path(params["save_dir"]), path, augmentation.name, crop)
    features = np.round(np.vstack(rows), FEATURE_DECIMALS)
    return ItemOutput(records=records, features=features)


def face_vector(path: Path, settings: Settings) -> np.ndarray:
    """Feature vector of one probe photo (no augmentation), exactly as the batch computes it.

    Raises InputError for an unreadable file, AcquisitionError when no face is found.
    """
    return image_face_vector(read_probe_photo(path, settings), settings)


def read_probe_photo(path: Path, settings: Settings) -> LoadedImage:
    """Decode a probe photo within the settings' bounds, as the batch does (InputError if not)."""
    return read_image(path, max_pixels=settings.face.max_pixels, max_side=settings.face.max_side)


def image_face_vector(image: LoadedImage, settings: Settings) -> np.ndarray:
    """``face_vector`` of an already decoded photo, so a caller that also needs the pixels
    (the replay check) decodes the file once; AcquisitionError when no face is found."""
    return _image_rows(image, Path(), face_params(settings, augment=False)).features[0]


def extract_face_features(
    workspace: Workspace,
    settings: Settings,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> FeatureRunReport:
    """Features of every enrolment and probe photo -> data/image_features.csv (+ run report).

    Enrolment photos get ``face_augment.copies`` augmented rows besides the original; probes
    only the original. A photo that fails (unreadable, no face, several faces) is listed in the report and
    data/image_features_report.json; the rest of the batch goes on. Cached per file content
    and parameters: a re-run only processes new or changed photos.
    """
    started = time.perf_counter()
    if not workspace.faces_dir.is_dir():
        raise InputError(
            f"no enrolment photos: {workspace.relative(workspace.faces_dir)} does not exist "
            "(put each member's photos in data/raw/faces/<member>/)"
        )
    items = collect_items(workspace, workspace.faces_dir, workspace.probe_faces_dir)
    if not items:
        raise InputError(
            f"no photos found under {workspace.relative(workspace.faces_dir)}/<member>/ "
            f"or {workspace.relative(workspace.probe_faces_dir)}/<label>/"
        )
    save_dir = workspace.augmented_dir if settings.face.save_augmented else None
    results = run_by_role(
        items,
        process_face_file,
        {
            ENROL: face_params(settings, augment=True, save_dir=save_dir),
            PROBE: face_params(settings, augment=False, save_dir=save_dir),
        },
        stage="faces",
        cache_dir=workspace.cache_dir,
        plan=execution_plan(settings),
        progress=progress,
        cancel=cancel,
    )
    results, notes = _finish_records(results)
    backend = settings.face.backend
    succeeded = sum(result.output is not None for result in results)
    rows = 0
    if succeeded:
        rows = write_feature_table(
            results,
            workspace.image_features,
            label_column="member",
            feature_prefix="feature_",
            constant_columns={"backend": backend},
        )
    report = run_report("faces", workspace.image_features, results, rows, backend, started)
    atomic_write_json(face_report_path(workspace), _report_json(workspace, report, notes))
    refuse_empty_run(report, "photos", workspace.relative(face_report_path(workspace)))
    return report


def face_report_path(workspace: Workspace) -> Path:
    """data/image_features_report.json: failures, FTA count and notes of the last run."""
    return workspace.data_dir / "image_features_report.json"


def is_failure_to_acquire(reason: str) -> bool:
    """True when a failure reason is an FTA (no face) rather than an unreadable file."""
    return FTA_MARK in reason


def _finish_records(results: list[ItemResult]) -> tuple[list[ItemResult], dict[str, str]]:
    """Records as table rows: the emotion from the file name added, the notes taken out.

    The cache is keyed by content, and Yale holds byte-identical photos under different names
    (``normal`` and ``noglasses``): what the name says is added here, never cached.
    """
    notes: dict[str, str] = {}
    finished = []
    for result in results:
        if result.output is None:
            finished.append(result)
            continue
        emotion = emotion_from_name(result.item.path.name)
        records = [{"emotion": emotion, **record} for record in result.output.records]
        note = records[0].pop("notes", "") if records else ""
        for record in records:
            record.pop("notes", None)
        if note:
            notes[result.item.source] = note
        output = dataclasses.replace(result.output, records=records)
        finished.append(dataclasses.replace(result, output=output))
    return finished, notes


def _report_json(
    workspace: Workspace, report: FeatureRunReport, notes: dict[str, str]
) -> dict[str, Any]:
    fta = sum(is_failure_to_acquire(f.reason) for f in report.failures)
    fta_rate = rate(fta, report.files)
    return {
        "stage": report.stage,
        "backend": report.backend,
        "output": workspace.relative(report.output),
        "files": report.files,
        "rows": report.rows,
        "cached": report.cached,
        "seconds": round(report.seconds, 3),
        "fta": fta,
        "fta_rate": dataclasses.asdict(fta_rate),
        "failed": len(report.failures),
        "failures": [
            {
                "source": f.source,
                "kind": "fta" if is_failure_to_acquire(f.reason) else "input",
                "reason": f.reason,
            }
            for f in report.failures
        ],
        "notes": [{"source": source, "note": note} for source, note in notes.items()],
    }


def _save_crop(save_dir: Path, path: Path, augmentation: str, crop: np.ndarray) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(_to_uint8(crop)).save(buffer, format="PNG")
    target = save_dir / path.parent.name / f"{path.name}__{augmentation}.png"
    atomic_write_bytes(target, buffer.getvalue())
