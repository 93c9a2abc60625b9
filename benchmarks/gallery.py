"""Identification cost against the size of the gallery: synthetic dlib-like templates.

    .venv/bin/python -m benchmarks.gallery [--members 100 1000 10000 100000] [--templates 15]
                                           [--probes 50] [--geometry dlib|orthogonal]

For each gallery size, a FaceIdentifier (dlib backend, at the product's default threshold)
holds ``--templates`` unit 128-d templates per member (the product's default enrolment: 3 photos
+ 4 augmented copies each = 15) around the member's centre, in the geometry of ``GEOMETRIES``;
``identify`` of ``--probes`` probe vectors (half new photos of members, half strangers) is timed
one call at a time, under one BLAS thread (as in the product: the whole attempt runs under
``single_threaded_blas``). Reported per size: the probes identified, median and p95 ms per
identify, the templates' memory, and the peak resident memory of the process so far. Only the
gallery is synthetic; the calibration is skipped (the population threshold is the dlib default).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import numpy as np

from engine.models._calibration import DLIB_IMPOSTOR_TAIL, population_threshold
from engine.models.face import FaceIdentifier

DIMENSIONS = 128
GEOMETRIES = {"dlib": (0.0345, 0.0163), "orthogonal": (1.0, 0.3)}
"""Spread (standard deviation per dimension) of the members' centres and of each member's
templates and probes around their centre. ``dlib``: faces in a cone around a common direction
(the members' offsets and the photo noise are added to a unit vector), set so that the median
cosines between different people and between photos of one person are those of the
mirror-averaged dlib embeddings of the Yale photos (docs/BENCHMARKS.md, "Identification against
large galleries"); ``orthogonal``: random centres, nearly orthogonal members (the first version
of this benchmark)."""


def synthetic_gallery(
    members: int, templates: int, probes: int, geometry: str, rng: np.random.Generator
) -> tuple[FaceIdentifier, np.ndarray]:
    """A dlib-backend FaceIdentifier holding ``templates`` rows per member, at the product's
    default threshold, and probe vectors: half of members (new photos), half of strangers."""
    member_spread, photo_spread = GEOMETRIES[geometry]
    common = np.zeros(DIMENSIONS) if geometry == "orthogonal" else np.eye(DIMENSIONS)[0]
    centres = common + rng.normal(scale=member_spread, size=(members, DIMENSIONS))
    rows = np.repeat(centres, templates, axis=0)
    rows += rng.normal(scale=photo_spread, size=rows.shape)
    names = np.array([f"member{index:06d}" for index in range(members)])
    identifier = FaceIdentifier(backend="dlib")
    identifier._fit_gallery(rows, np.repeat(names, templates), np.zeros(len(rows)))
    identifier.threshold_ = population_threshold(identifier.target_fmr, DLIB_IMPOSTOR_TAIL)
    identifier.n_features_in_ = DIMENSIONS
    strangers = common + rng.normal(scale=member_spread, size=(probes - probes // 2, DIMENSIONS))
    probe_centres = np.vstack([centres[rng.integers(0, members, probes // 2)], strangers])
    return identifier, probe_centres + rng.normal(scale=photo_spread, size=probe_centres.shape)


def measure(
    members: int, templates: int, probes: int, geometry: str, seed: int
) -> dict[str, float | str]:
    rng = np.random.default_rng(seed)
    identifier, vectors = synthetic_gallery(members, templates, probes, geometry, rng)
    identifier.identify(vectors[0])  # first-call costs (threadpoolctl's scan)
    times, identified = [], 0
    for vector in vectors:
        started = time.perf_counter()
        match = identifier.identify(vector)
        times.append(time.perf_counter() - started)
        identified += match.member is not None
    ordered = sorted(times)
    return {
        "geometry": geometry,
        "members": members,
        "templates": len(identifier.templates_),
        "identified": identified,
        "identify_ms_median": round(1000 * statistics.median(times), 3),
        "identify_ms_p95": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 3),
        "templates_mib": round(identifier.templates_.nbytes / 2**20, 1),
        "process_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    parser.add_argument("--templates", type=int, default=15, help="Templates per member.")
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--geometry", choices=sorted(GEOMETRIES), default="dlib")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    for members in arguments.members:
        result = measure(
            members, arguments.templates, arguments.probes, arguments.geometry, arguments.seed
        )
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
