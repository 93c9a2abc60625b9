"""Identification's pruned search over enrolment-photo cones finds exactly the member and score
of scoring every template, on random and on dlib-shaped (Yale-like) galleries, through
enrolment, removal, near-ties and the state file; the backends it cannot bound score everything.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.faces.extract import (
    COLOUR_BINS,
    HOG_CELLS,
    HOG_ORIENTATIONS,
    LBP_BINS,
    LBP_GRID,
    classic_feature_spaces,
)
from engine.models import face, state_file
from engine.models.face import FaceBackendName, FaceIdentifier, ScoreNormalisation

DIMENSIONS = 128
CLASSIC_DIMENSIONS = (
    (HOG_CELLS - 1) ** 2 * 4 * HOG_ORIENTATIONS + LBP_GRID**2 * LBP_BINS + 3 * COLOUR_BINS
)
GEOMETRIES = {
    # (around a common direction?, member spread, photo spread, augmented-copy spread) per
    # dimension; "yale-like" is benchmarks.gallery's dlib geometry.
    "random": (False, 1.0, 0.3, 0.05),
    "yale-like": (True, 0.0345, 0.0163, 0.0122),
}


@pytest.fixture
def always_pruned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pruned search even on the small galleries of these tests."""
    monkeypatch.setattr(face, "PRUNED_SEARCH_MIN_PHOTOS", 0)


def common_direction(geometry: str, dimensions: int = DIMENSIONS) -> np.ndarray:
    return np.eye(dimensions)[0] if GEOMETRIES[geometry][0] else np.zeros(dimensions)


def gallery(
    geometry: str,
    rng: np.random.Generator,
    names: list[str],
    photos: int = 3,
    copies: int = 4,
    dimensions: int = DIMENSIONS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows, members and sources of ``names`` (each photo and its augmented copies share a
    source), and each member's centre."""
    _, member_spread, photo_spread, copy_spread = GEOMETRIES[geometry]
    common = common_direction(geometry, dimensions)
    centres = common + rng.normal(0, member_spread, (len(names), dimensions))
    originals = np.repeat(centres, photos, axis=0)
    originals += rng.normal(0, photo_spread, originals.shape)
    rows = np.repeat(originals, 1 + copies, axis=0)
    rows += rng.normal(0, copy_spread, rows.shape)
    members = np.repeat(names, photos * (1 + copies))
    sources = np.array([f"{m}/{i // (1 + copies)}" for i, m in enumerate(members)])
    return rows, members, sources, centres


def assert_identifies_as_exhaustive(model: FaceIdentifier, probes: np.ndarray) -> int:
    """Every probe's best member and score equal those of ``decision_function`` (any of the
    members within single precision's resolution of the best on a tie); the ties seen."""
    ties = 0
    for probe in probes:
        scores = model.decision_function(probe[None, :])[0]
        match = model.identify(probe)
        best = float(scores.max())
        tied = {m for m, s in zip(model.members_, scores, strict=True) if best - s < 1e-5}
        ties += len(tied) > 1
        assert match.best_member in tied
        assert match.score == pytest.approx(best, abs=1e-5)
        assert (match.member is not None) == (match.score >= model.threshold_)
    return ties


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_pruned_identify_equals_scoring_every_template(geometry: str, always_pruned: None) -> None:
    rng = np.random.default_rng(3)
    X, y, groups, centres = gallery(geometry, rng, [f"m{i:02d}" for i in range(6)])
    model = FaceIdentifier(backend="dlib", threshold_rule="gaussian_tail").fit(X, y, groups)
    late, late_y, late_groups, late_centres = gallery(
        geometry, rng, [f"late{i:02d}" for i in range(40)]
    )
    for name in np.unique(late_y):
        own = late_y == name
        model.enrol(str(name), late[own], late_groups[own])
    model.remove("m03").remove("late07")
    # A near-twin of an enrolled photo: two members' templates a rounding error apart.
    model.enrol("twin", model.templates_[:5] + rng.normal(0, 1e-7, (5, DIMENSIONS)), ["a"] * 5)
    assert model._prunable()
    assert len(model.photo_starts_) == 3 * (6 + 40 - 2) + 1
    kept = np.array([n not in ("m03", "late07") for n in [*np.unique(y), *np.unique(late_y)]])
    known = np.vstack([centres, late_centres])[kept]
    _, member_spread, photo_spread, _ = GEOMETRIES[geometry]
    common = common_direction(geometry)
    probes = np.vstack(
        [
            known + rng.normal(0, photo_spread, known.shape),  # new photos of members
            common + rng.normal(0, member_spread, (30, DIMENSIONS)),  # strangers
            model.templates_[rng.choice(len(model.templates_), 10)],  # inside a photo's cone
            model.templates_[:5] + rng.normal(0, 1e-3 * photo_spread, (5, DIMENSIONS)),
        ]
    )
    assert assert_identifies_as_exhaustive(model, probes) > 0
    for threshold in (0.0, 0.99):
        model.threshold_ = threshold
        assert_identifies_as_exhaustive(model, probes[:: len(probes) // 10])


def test_the_state_file_keeps_the_photo_cones(always_pruned: None) -> None:
    rng = np.random.default_rng(4)
    X, y, groups, centres = gallery("yale-like", rng, [f"m{i}" for i in range(4)])
    model = FaceIdentifier(backend="dlib").fit(X, y, groups)
    own = {"engine.models.face.FaceIdentifier"}
    loaded = state_file.loads(state_file.dumps(model, own), own, source="face")
    for name in ("template_photos_", "photo_starts_", "photo_directions_", "photo_cones_"):
        assert np.array_equal(getattr(loaded, name), getattr(model, name)), name
    assert loaded.photo_directions_.dtype == np.float32
    probes = centres + rng.normal(0, 0.0163, centres.shape)
    assert [loaded.identify(p) for p in probes] == [model.identify(p) for p in probes]


@pytest.mark.parametrize(("backend", "normalisation"), [("classic", "none"), ("dlib", "cohort")])
def test_scores_no_cone_bounds_scores_every_template(
    backend: FaceBackendName, normalisation: ScoreNormalisation, always_pruned: None
) -> None:
    # Classic: a member's score sums each part's best template, no single template's cosine;
    # cohort: it depends on other members' scores. Neither is bounded by one photo's cone.
    dimensions = CLASSIC_DIMENSIONS if backend == "classic" else DIMENSIONS
    rng = np.random.default_rng(5)
    X, y, groups, centres = gallery(
        "random", rng, [f"m{i}" for i in range(5)], copies=2, dimensions=dimensions
    )
    model = FaceIdentifier(
        backend=backend, score_normalisation=normalisation, threshold_rule="gaussian_tail"
    ).fit(X, y, groups)
    assert not model._prunable()
    if backend == "classic":
        assert len(model.part_bounds_) == len(classic_feature_spaces(CLASSIC_DIMENSIONS)) + 1 > 2
    probes = np.vstack([centres, rng.normal(0, 1.0, (10, dimensions))])
    assert_identifies_as_exhaustive(model, probes + rng.normal(0, 0.3, probes.shape))


def test_photos_without_augmented_copies_score_every_template(always_pruned: None) -> None:
    # One template per photo: the photos' directions are as many bytes as the templates.
    rng = np.random.default_rng(6)
    X, y, groups, centres = gallery("yale-like", rng, [f"m{i}" for i in range(4)], copies=0)
    model = FaceIdentifier(backend="dlib").fit(X, y, groups)
    assert not model._prunable()
    # 12 photos of one template and one of 14: 26 templates in 13 photos, 2 per photo.
    model.enrol("late", X[0] + rng.normal(0, 0.01, (14, DIMENSIONS)), ["a"] * 14)
    assert model._prunable()
    assert_identifies_as_exhaustive(model, centres + rng.normal(0, 0.0163, centres.shape))


def test_small_galleries_build_no_cones_until_enrolment_makes_them_large(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The cones serve only the pruned search; below its gallery size they are not built.
    rng = np.random.default_rng(7)
    X, y, groups, centres = gallery("yale-like", rng, [f"m{i}" for i in range(4)])
    monkeypatch.setattr(face, "PRUNED_SEARCH_MIN_PHOTOS", 14)
    model = FaceIdentifier(backend="dlib").fit(X, y, groups)
    assert model.photo_directions_ is None and model.photo_cones_ is None
    own = {"engine.models.face.FaceIdentifier"}
    loaded = state_file.loads(state_file.dumps(model, own), own, source="face")
    assert loaded.photo_cones_ is None
    model.enrol("late", X[:10] + rng.normal(0, 0.01, (10, DIMENSIONS)), ["a"] * 5 + ["b"] * 5)
    cones = model._search_cones()
    assert cones is not None
    assert cones[0].shape == (14, DIMENSIONS) and cones[1].shape == (14, 2)
    model.remove("late")
    assert model.photo_cones_ is None
    assert_identifies_as_exhaustive(model, centres + rng.normal(0, 0.0163, centres.shape))


def test_a_large_gallery_without_cones_scores_every_template(always_pruned: None) -> None:
    # A model saved when its gallery was under the size rule (no cones) and loaded under
    # another rule still answers exactly.
    rng = np.random.default_rng(8)
    X, y, groups, centres = gallery("yale-like", rng, [f"m{i}" for i in range(4)])
    model = FaceIdentifier(backend="dlib").fit(X, y, groups)
    model.photo_directions_ = model.photo_cones_ = None
    assert model._prunable()
    assert_identifies_as_exhaustive(model, centres + rng.normal(0, 0.0163, centres.shape))
