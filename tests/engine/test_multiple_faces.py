"""Issue 13 item 8: a photo with several faces of comparable size is refused (multiple_faces),
one with a much smaller second face (a poster, a photo on the wall) is decided on the big one."""

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.auth.outcomes import Denied, acquire
from engine.auth.words import Reason, Step
from engine.core.errors import AcquisitionError, ConfigError, MultipleFacesError
from engine.core.settings import FaceAugmentSettings, FaceSettings, Settings, load_settings
from engine.core.workspace import Workspace
from engine.faces.detect import (
    comparable_faces,
    detect_face_classic,
    detect_face_dlib,
    single_face,
)
from engine.faces.extract import extract_face_features, is_failure_to_acquire

DETECTORS = [detect_face_classic, detect_face_dlib]


def yale_photo(yale: Path, name: str) -> Image.Image:
    """A Yale photo (a GIF without extension) as RGB."""
    return Image.open(yale / name).convert("RGB")


def side_by_side(left: Image.Image, right: Image.Image) -> np.ndarray:
    """Two photos next to each other on a white canvas as tall as the taller one."""
    canvas = Image.new("RGB", (left.width + right.width, max(left.height, right.height)), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    return np.asarray(canvas)


@pytest.fixture
def two_faces(shared_yalefaces: Path) -> np.ndarray:
    return side_by_side(
        yale_photo(shared_yalefaces, "subject01.normal"),
        yale_photo(shared_yalefaces, "subject02.normal"),
    )


@pytest.fixture
def big_and_small_face(shared_yalefaces: Path) -> np.ndarray:
    """subject01 at full size beside subject02 shrunk to half its width and height (a quarter
    of the area), like a photo pinned on the wall behind the person."""
    small = yale_photo(shared_yalefaces, "subject02.normal")
    small = small.resize((small.width // 2, small.height // 2), Image.Resampling.LANCZOS)
    return side_by_side(yale_photo(shared_yalefaces, "subject01.normal"), small)


@pytest.mark.parametrize(
    ("widths", "expected"),
    [
        ([], 0),
        ([100.0], 1),
        ([100.0, 100.0], 2),
        ([100.0, 71.0], 2),  # just over half the area
        ([100.0, 70.0], 1),  # just under half the area
        ([100.0, 50.0, 90.0], 2),
        ([40.0, 100.0], 1),  # order does not matter
    ],
)
def test_comparable_faces_counts_faces_of_at_least_the_area_ratio(
    widths: list[float], expected: int
) -> None:
    assert comparable_faces(widths, 0.5) == expected


def test_single_face_returns_the_first_box_or_refuses_comparable_ones() -> None:
    assert single_face([], 0.5) is None
    assert single_face([(0.0, 0.0, 100.0), (0.0, 200.0, 40.0)], 0.5) == (0.0, 0.0, 100.0)
    with pytest.raises(MultipleFacesError, match=r"failure to acquire \(FTA\): 2 faces"):
        single_face([(0.0, 0.0, 100.0), (0.0, 200.0, 90.0)], 0.5)
    # Above 1 no second face is ever comparable: the check is off.
    assert single_face([(0.0, 0.0, 100.0), (0.0, 200.0, 100.0)], 1.01) == (0.0, 0.0, 100.0)


def test_multiple_faces_is_an_acquisition_error() -> None:
    assert issubclass(MultipleFacesError, AcquisitionError)
    assert FaceSettings().comparable_face_area == 0.5


def test_a_non_positive_area_ratio_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="face.comparable_face_area"):
        load_settings(tmp_path, {"face.comparable_face_area": 0}, environ={})


@pytest.mark.parametrize("detect", DETECTORS)
def test_two_yale_faces_side_by_side_are_refused(detect: object, two_faces: np.ndarray) -> None:
    with pytest.raises(MultipleFacesError, match="2 faces of comparable size"):
        detect(two_faces)  # type: ignore[operator]


@pytest.mark.parametrize("detect", DETECTORS)
def test_a_small_second_face_is_accepted_and_the_big_one_used(
    detect: object, big_and_small_face: np.ndarray, shared_yalefaces: Path
) -> None:
    region = detect(big_and_small_face)  # type: ignore[operator]
    big_width = yale_photo(shared_yalefaces, "subject01.normal").width
    assert region.center_x < big_width


def test_the_flow_denies_multiple_faces_with_its_own_reason() -> None:
    def several_faces(media: object) -> np.ndarray:
        raise MultipleFacesError("failure to acquire (FTA): 2 faces of comparable size")

    with pytest.raises(Denied) as denied:
        acquire(Step.FACE, several_faces, None, Reason.NO_FACE, time.perf_counter())  # type: ignore[arg-type]
    assert denied.value.reason is Reason.MULTIPLE_FACES
    assert denied.value.message.startswith(Reason.MULTIPLE_FACES.meaning)


def test_feature_extraction_lists_a_two_face_photo_as_a_failure_to_acquire(
    workspace: Workspace, shared_yalefaces: Path, two_faces: np.ndarray
) -> None:
    member = workspace.faces_dir / "ana"
    member.mkdir(parents=True)
    Image.fromarray(two_faces).save(member / "ana_and_bob.png")
    (member / "ana.gif").write_bytes((shared_yalefaces / "subject01.normal").read_bytes())
    settings = dataclasses.replace(Settings(), face_augment=FaceAugmentSettings(copies=0))

    report = extract_face_features(workspace, settings)

    assert len(report.failures) == 1
    failure = report.failures[0]
    assert failure.source.endswith("ana_and_bob.png")
    assert "2 faces of comparable size" in failure.reason
    assert is_failure_to_acquire(failure.reason)
