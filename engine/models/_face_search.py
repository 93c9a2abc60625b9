"""Exact nearest-template search over enrolment-photo cones, for large face galleries.

A photo's templates (its original row and augmented copies) lie in a narrow cone around their
mean direction. The cone bounds every template's cosine to a probe, so whole photos can be
skipped without changing the answer of scoring every template (docs/BENCHMARKS.md,
"Identification against large galleries").
"""

from __future__ import annotations

import numpy as np

from engine.models._calibration import unit_rows

BOUND_MARGIN = 1e-4
"""Added to every cone bound so that float32 rounding (a 128-term dot product of unit vectors
errs by less than 1e-5) never prunes the photo holding the best template."""
CONE_BLOCK_ROWS = 65536
"""Templates per block when measuring the photo cones (``photo_cones``)."""


def photo_cones(
    templates: np.ndarray, starts: np.ndarray, photo_of: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per photo (templates from ``starts``, ``photo_of`` the photo of each template), the unit
    mean direction of its templates (float32, shape (n_photos, n_dimensions)) and the cosine and
    sine of the widest angle between it and one of them (shape (n_photos, 2))."""
    from scipy import sparse

    # A sparse sum: np.add.reduceat over many short row blocks dominated a dlib enrolment.
    membership = sparse.csr_matrix(
        (np.ones(len(templates), dtype=np.float32), (photo_of, np.arange(len(templates)))),
        shape=(len(starts), len(templates)),
    )
    directions = unit_rows(np.asarray(membership @ templates)).astype(np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", templates, templates)).clip(min=1e-30)
    # Block by block: each template's photo direction copied at once would double the
    # gallery's memory while indexing.
    blocks = [
        slice(start, start + CONE_BLOCK_ROWS) for start in range(0, len(templates), CONE_BLOCK_ROWS)
    ]
    dots = [np.einsum("ij,ij->i", templates[b], directions[photo_of[b]]) for b in blocks]
    cosines = np.concatenate(dots) / norms
    cos = np.clip(np.minimum.reduceat(cosines, starts).astype(np.float64), -1.0, 1.0)
    return directions, np.column_stack([cos, np.sqrt(1.0 - cos**2)])


def nearest_template(
    templates: np.ndarray,
    photo_starts: np.ndarray,
    directions: np.ndarray,
    cones: np.ndarray,
    probe: np.ndarray,
) -> tuple[int, float]:
    """The template with the highest cosine to the unit ``probe`` (the first one on ties, as an
    argmax over every template) and that cosine, scoring only the photos whose cone bound can
    reach the score of the photo whose direction is nearest the probe.

    Why exact: a unit template within angle theta of the photo's direction has a cosine to
    the probe of at most cos(max(0, alpha - theta)), alpha the probe's angle to the
    direction (tighter than direction . probe + radius). A photo whose bound is under a
    score already found cannot hold the best template."""
    similarity = np.clip(directions @ probe, -1.0, 1.0).astype(np.float64)
    cos, sin = cones[:, 0], cones[:, 1]
    reach = similarity * cos + np.sqrt(1.0 - similarity**2) * sin
    bound = np.where(similarity >= cos, 1.0, reach)  # 1 when the probe is inside the cone
    ends = np.append(photo_starts[1:], len(templates))
    nearest = int(np.argmax(similarity))
    floor = float(np.max(templates[photo_starts[nearest] : ends[nearest]] @ probe))
    candidates = np.flatnonzero(bound + BOUND_MARGIN >= floor)
    lengths = ends[candidates] - photo_starts[candidates]
    if lengths.sum() * 4 > len(templates):
        # From about a quarter of the gallery on, gathering scattered rows costs as much as
        # reading every template (docs/BENCHMARKS.md, "Identification against large galleries").
        scores = templates @ probe
        best = int(np.argmax(scores))
        return best, float(scores[best])
    rows = np.repeat(photo_starts[candidates] - np.cumsum(lengths) + lengths, lengths)
    rows += np.arange(len(rows))
    scores = templates[rows] @ probe
    best = int(np.argmax(scores))
    return int(rows[best]), float(scores[best])
