import dataclasses
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engine.core.batch import BatchItem, run_batch
from engine.core.errors import AcquisitionError, CancelledError, InputError
from engine.core.progress import Progress
from engine.core.settings import FaceAugmentSettings, FaceSettings, Settings
from engine.core.workspace import Workspace
from engine.faces.augment import plan_augmentations
from engine.faces.detect import detect_face_classic, detect_face_dlib
from engine.faces.extract import (
    classic_feature_spaces,
    emotion_from_name,
    extract_face_features,
    face_params,
    face_report_path,
    face_vector,
    process_face_file,
)
from engine.faces.images import read_image

CLASSIC_LENGTH = 1764 + 3776 + 24  # HOG 7x7 blocks x 2x2 cells x 9, LBP 8x8 tiles x 59, HSV 3x8


def settings_for(backend: str = "classic", **top_level: object) -> Settings:
    return dataclasses.replace(
        Settings(face=FaceSettings(backend=backend)),
        face_augment=FaceAugmentSettings(copies=2),
        **top_level,
    )


def pixels_of(path: Path) -> np.ndarray:
    return read_image(path, max_pixels=50_000_000, max_side=1600).pixels


@pytest.fixture
def yale(shared_yalefaces: Path, tmp_path: Path) -> dict[str, Path]:
    """A few real Yale photos copied to a temporary folder, by ``subjectNN.condition`` name."""
    names = ["subject01.normal", "subject01.happy", "subject01.wink", "subject02.normal"]
    folder = tmp_path / "yale"
    folder.mkdir()
    for name in names:
        shutil.copy(shared_yalefaces / name, folder / name)
    return {name: folder / name for name in names}


@pytest.fixture
def face_workspace(workspace: Workspace, yale: dict[str, Path]) -> Workspace:
    """Two members with two photos each (one corrupt-free) and one probe."""
    layout = {
        workspace.faces_dir / "ana": ["subject01.normal", "subject01.happy"],
        workspace.faces_dir / "ben": ["subject02.normal"],
        workspace.probe_faces_dir / "ana": ["subject01.wink"],
    }
    for folder, names in layout.items():
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy(yale[name], folder / name)
    return workspace


def blank(tmp_path: Path, size: tuple[int, int] = (320, 243)) -> Path:
    path = tmp_path / "blank.png"
    Image.new("RGB", size, (128, 128, 128)).save(path)
    return path


@pytest.mark.parametrize(
    ("name", "emotion"),
    [
        ("subject01.happy", "smiling"),
        ("ana_normal_2.jpg", "neutral"),
        ("Neutral.PNG", "neutral"),
        ("smile-01.webp", "smiling"),
        ("subject03.surprised", "surprised"),
        ("subject03.sleepy", "unknown"),
        ("IMG_0042.jpg", "unknown"),
    ],
)
def test_emotion_comes_from_the_file_name(name: str, emotion: str) -> None:
    assert emotion_from_name(name) == emotion


@pytest.mark.parametrize("detect", [detect_face_classic, detect_face_dlib])
def test_face_is_found_in_real_yale_photos(detect: object, yale: dict[str, Path]) -> None:
    for name in ("subject01.normal", "subject02.normal"):
        region = detect(pixels_of(yale[name]))  # type: ignore[operator]
        # Yale photos are 320x243 with the face roughly central and 130-200 px wide.
        assert 100 < region.side < 230 and 100 < region.center_x < 220
        assert 60 < region.center_y < 180 and abs(np.degrees(region.angle)) < 15


@pytest.mark.parametrize("backend", ["classic", "dlib"])
def test_photo_without_a_face_is_a_failure_to_acquire(backend: str, tmp_path: Path) -> None:
    with pytest.raises(AcquisitionError, match=r"failure to acquire \(FTA\): no face found"):
        face_vector(blank(tmp_path), settings_for(backend))
    small_blank = blank(tmp_path, (92, 112))  # tight-crop shaped, but nothing in it
    with pytest.raises(AcquisitionError, match="not a tight face crop"):
        face_vector(small_blank, settings_for(backend))


def test_unreadable_photo_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff not really")
    with pytest.raises(InputError, match="photo.jpg"):
        face_vector(path, settings_for())


@pytest.mark.parametrize(
    ("backend", "half_width", "method"),
    [
        ("classic", 0.55, "cascade"),
        ("classic", 0.3, "padded"),
        ("classic", 0.2, "whole-frame"),
        ("dlib", 0.55, "dlib"),
        ("dlib", 0.24, "padded"),
        ("dlib", 0.2, "whole-frame"),
    ],
)
def test_tight_face_crops_are_accepted_through_the_fallbacks(
    backend: str, half_width: float, method: str, yale: dict[str, Path], tmp_path: Path
) -> None:
    pixels = pixels_of(yale["subject01.normal"])
    region = detect_face_dlib(pixels)
    half = region.side * half_width
    top, left = int(region.center_y - half * 1.15), int(region.center_x - half)
    tight = pixels[top : int(top + 2.3 * half), left : int(left + 2 * half)]  # ORL-like framing
    detect = detect_face_dlib if backend == "dlib" else detect_face_classic
    assert detect(tight).method == method
    path = tmp_path / "tight.png"
    Image.fromarray(tight).save(path)
    assert np.isfinite(face_vector(path, settings_for(backend))).all()


def test_classic_features_have_a_stable_length_and_are_finite(yale: dict[str, Path]) -> None:
    params = face_params(settings_for(), augment=True)
    outputs = [
        process_face_file(yale[name], params) for name in ("subject01.normal", "subject02.normal")
    ]
    for output in outputs:
        assert output.features.shape == (3, CLASSIC_LENGTH)
        assert np.isfinite(output.features).all()
        assert [r["augmentation"] for r in output.records][0] == "original"


def test_classic_feature_spaces_cover_the_vector_in_whole_and_in_halves() -> None:
    spaces = classic_feature_spaces(CLASSIC_LENGTH)
    hog_colour, lbp, hog_left, hog_right, lbp_left, lbp_right = (set(s.tolist()) for s in spaces)
    assert hog_colour | lbp == set(range(CLASSIC_LENGTH)) and not hog_colour & lbp
    assert len(hog_colour) == 1764 + 24 and len(lbp) == 3776
    # HOG halves: 4 of the 7 block columns each, sharing the middle one; LBP halves: 4 of 8 tiles.
    assert len(hog_left) == len(hog_right) == 7 * 4 * 36 and len(hog_left & hog_right) == 7 * 36
    assert hog_left | hog_right == set(range(1764))
    assert lbp_left | lbp_right == lbp and not lbp_left & lbp_right
    assert 1764 + 3 * 59 in lbp_left and 1764 + 4 * 59 in lbp_right  # tiles (0, 3) and (0, 4)
    assert [s.tolist() for s in classic_feature_spaces(24)] == [list(range(24))]


def test_dlib_embeddings_match_the_same_person(yale: dict[str, Path]) -> None:
    settings = settings_for("dlib")
    vectors = {name: face_vector(path, settings) for name, path in yale.items()}
    assert all(v.shape == (128,) for v in vectors.values())
    same = np.linalg.norm(vectors["subject01.normal"] - vectors["subject01.happy"])
    other = np.linalg.norm(vectors["subject01.normal"] - vectors["subject02.normal"])
    assert same < 0.6 < other  # dlib's own decision distance


def test_augmentation_is_deterministic_and_names_are_unique() -> None:
    settings = FaceAugmentSettings(copies=6)
    first = plan_augmentations(settings, seed=3, content_sha256="ab" * 32)
    assert first == plan_augmentations(settings, seed=3, content_sha256="ab" * 32)
    assert first != plan_augmentations(settings, seed=4, content_sha256="ab" * 32)
    assert first != plan_augmentations(settings, seed=3, content_sha256="cd" * 32)
    names = [a.name for a in first]
    assert len(names) == 6 and len(set(names)) == 6 and "original" not in names
    assert all(abs(np.degrees(a.rotation)) <= 15 for a in first)
    assert plan_augmentations(FaceAugmentSettings(copies=0), seed=3, content_sha256="ab" * 32) == []


def test_augmented_rows_do_not_depend_on_processing_order(yale: dict[str, Path]) -> None:
    items = [
        BatchItem(path=path, label="x", role="enrol", source=name)
        for name, path in list(yale.items())[:2]
    ]
    params = face_params(settings_for(), augment=True)
    forward = run_batch(items, process_face_file, params, stage="t")
    backward = run_batch(items[::-1], process_face_file, params, stage="t")[::-1]
    for one, two in zip(forward, backward, strict=True):
        assert one.output.records == two.output.records
        np.testing.assert_array_equal(one.output.features, two.output.features)


def test_extraction_writes_the_table_and_report_and_caches(face_workspace: Workspace) -> None:
    settings = settings_for()
    report = extract_face_features(face_workspace, settings)
    assert report.ok and report.files == 4 and report.cached == 0
    table = pd.read_csv(face_workspace.image_features)
    assert list(table.columns[:6]) == [
        "member",
        "emotion",
        "augmentation",
        "source",
        "role",
        "backend",
    ]
    assert table.shape == (3 * 3 + 1, 6 + CLASSIC_LENGTH)
    probe = table[table.role == "probe"]
    assert probe.augmentation.tolist() == ["original"] and probe.member.tolist() == ["ana"]
    assert set(table.emotion) == {"neutral", "smiling", "unknown"}
    np.testing.assert_allclose(
        probe.filter(like="feature_").to_numpy()[0],
        face_vector(face_workspace.probe_faces_dir / "ana" / "subject01.wink", settings),
    )
    run = json.loads(face_report_path(face_workspace).read_text())
    assert run["fta"] == 0 and run["failures"] == [] and run["rows"] == 10

    again = extract_face_features(face_workspace, settings)
    assert again.cached == 4  # nothing new was processed
    assert pd.read_csv(face_workspace.image_features).equals(table)


def test_failed_photos_are_reported_and_the_rest_goes_on(
    face_workspace: Workspace, tmp_path: Path
) -> None:
    shutil.copy(blank(tmp_path), face_workspace.faces_dir / "ben" / "wall.png")
    (face_workspace.faces_dir / "ben" / "broken.jpg").write_bytes(b"")
    report = extract_face_features(face_workspace, settings_for())
    assert not report.ok and report.rows == 10
    run = json.loads(face_report_path(face_workspace).read_text())
    kinds = {f["source"]: f["kind"] for f in run["failures"]}
    assert kinds == {"data/raw/faces/ben/broken.jpg": "input", "data/raw/faces/ben/wall.png": "fta"}
    assert run["fta"] == 1 and run["fta_rate"]["trials"] == 6


def test_saved_augmented_crops_are_written_for_enrolment_only(face_workspace: Workspace) -> None:
    settings = dataclasses.replace(
        settings_for(), face=FaceSettings(backend="classic", save_augmented=True, crop_size=64)
    )
    extract_face_features(face_workspace, settings)
    saved = sorted(p.name for p in face_workspace.augmented_dir.rglob("*.png"))
    assert len(saved) == 3 * 3 and "subject01.normal__original.png" in saved
    assert Image.open(face_workspace.augmented_dir / "ana" / saved[0]).size == (64, 64)


def test_dask_cluster_gives_the_same_table_as_local(face_workspace: Workspace) -> None:
    shutil.rmtree(face_workspace.probe_faces_dir)  # enrolment only: one cluster start, not two
    extract_face_features(face_workspace, settings_for())
    local = face_workspace.image_features.read_bytes()
    shutil.rmtree(face_workspace.cache_dir)
    # No scheduler address: engine.core.batch starts a LocalCluster of two worker processes.
    report = extract_face_features(face_workspace, settings_for(executor="dask", jobs=2))
    assert report.ok and report.cached == 0
    assert face_workspace.image_features.read_bytes() == local


def test_emotion_of_a_cached_identical_photo_comes_from_its_own_name(
    face_workspace: Workspace,
) -> None:
    settings = settings_for()
    extract_face_features(face_workspace, settings)
    ana = face_workspace.faces_dir / "ana"
    shutil.copy(ana / "subject01.happy", ana / "copy_surprised.gif")  # same bytes, other name
    report = extract_face_features(face_workspace, settings)
    assert report.cached == report.files == 5
    table = pd.read_csv(face_workspace.image_features)
    emotions = table.groupby("source").emotion.first()
    assert emotions["data/raw/faces/ana/copy_surprised.gif"] == "surprised"
    assert emotions["data/raw/faces/ana/subject01.happy"] == "smiling"


def test_animated_gif_uses_its_first_frame_and_the_report_says_so(
    face_workspace: Workspace, yale: dict[str, Path]
) -> None:
    face = Image.open(yale["subject02.normal"]).convert("RGB")
    animated = face_workspace.faces_dir / "ben" / "hello.gif"
    face.save(animated, save_all=True, append_images=[Image.new("RGB", face.size)], duration=50)
    report = extract_face_features(face_workspace, settings_for())
    assert report.ok
    run = json.loads(face_report_path(face_workspace).read_text())
    assert run["notes"] == [
        {
            "source": "data/raw/faces/ben/hello.gif",
            "note": "animated GIF (2 frames): first frame used",
        }
    ]


def test_cancelled_extraction_writes_nothing(face_workspace: Workspace) -> None:
    cancel = threading.Event()
    events: list[Progress] = []

    def cancel_after_first_photo(event: Progress) -> None:
        events.append(event)
        if event.step >= 1:
            cancel.set()

    with pytest.raises(CancelledError, match="faces was cancelled"):
        extract_face_features(
            face_workspace, settings_for(), progress=cancel_after_first_photo, cancel=cancel
        )
    assert not face_workspace.image_features.exists()
    assert not face_report_path(face_workspace).exists()
    assert {event.total for event in events} == {4} and events[0].stage == "faces"


def test_shipped_frontal_face_detector_is_dlibs_own(tmp_path: Path) -> None:
    # The detector is read from a file because building it is slow; the file must stay what
    # dlib builds, or the dlib backend would silently change.
    import dlib

    from engine.faces.detect import FRONTAL_FACE_DETECTOR_FILE

    dlib.get_frontal_face_detector().save(str(tmp_path / "built.svm"))
    assert (tmp_path / "built.svm").read_bytes() == FRONTAL_FACE_DETECTOR_FILE.read_bytes()
