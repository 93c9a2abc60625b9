"""Identification cost against the size of the gallery: synthetic dlib-like templates.

    .venv/bin/python -m benchmarks.gallery [--members 100 1000 10000 100000] [--photos 3]
                                           [--copies 4] [--probes 50] [--geometry dlib|orthogonal]

For each gallery size, a FaceIdentifier (dlib backend, at the product's default threshold)
holds, per member, ``--photos`` enrolment photos around the member's centre and ``--copies``
augmented near-copies of each (the product's default enrolment: 3 photos + 4 copies = 15 unit
128-d templates), in the geometry of ``GEOMETRIES``. ``--probes`` probe vectors (half new photos
of members, half strangers) are identified one call at a time, under one BLAS thread (as in the
product: the whole attempt runs under ``single_threaded_blas``), twice: by ``identify`` and by
scoring every template (``decision_function``, what ``identify`` did before photo cones).
Reported per size: the probes identified, how many best members the two differ on, median and
p95 ms of each (and the medians of members' and of strangers' probes apart), the memory of the
templates and of the photo cones, and the peak resident memory of the process so far. Only the
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
COPY_SPREAD = 0.0122
"""Per-dimension spread of an augmented copy around its photo: set so that the median cosine
between a photo and its copies is that of the dlib embeddings of the Yale enrolment photos and
their default augmented copies (docs/BENCHMARKS.md, "Identification against large galleries")."""
GEOMETRIES = {"dlib": (0.0345, 0.0163, COPY_SPREAD), "orthogonal": (1.0, 0.3, COPY_SPREAD)}
"""Spread (standard deviation per dimension) of the members' centres, of each member's photos
and probes around their centre, and of a photo's augmented copies around it. ``dlib``: faces in a cone around a common direction
(the members' offsets and the photo noise are added to a unit vector), set so that the median
cosines between different people and between photos of one person are those of the
mirror-averaged dlib embeddings of the Yale photos (docs/BENCHMARKS.md, "Identification against
large galleries"); ``orthogonal``: random centres, nearly orthogonal members (the first version
of this benchmark)."""


def synthetic_gallery(
    members: int, photos: int, copies: int, probes: int, geometry: str, rng: np.random.Generator
) -> tuple[FaceIdentifier, np.ndarray]:
    """A dlib-backend FaceIdentifier holding ``photos`` photos per member and ``copies``
    augmented copies of each, at the product's default threshold, and probe vectors: half of
    members (new photos), half of strangers."""
    member_spread, photo_spread, copy_spread = GEOMETRIES[geometry]
    common = np.zeros(DIMENSIONS) if geometry == "orthogonal" else np.eye(DIMENSIONS)[0]
    centres = common + rng.normal(scale=member_spread, size=(members, DIMENSIONS))
    originals = np.repeat(centres, photos, axis=0)
    originals += rng.normal(scale=photo_spread, size=originals.shape)
    rows = np.repeat(originals, 1 + copies, axis=0)
    rows += rng.normal(scale=copy_spread, size=rows.shape)
    rows[:: 1 + copies] = originals
    names = np.array([f"member{index:06d}" for index in range(members)])
    identifier = FaceIdentifier(backend="dlib")
    per_member = photos * (1 + copies)
    sources = np.repeat(np.arange(members * photos), 1 + copies)
    identifier._fit_gallery(rows, np.repeat(names, per_member), sources)
    identifier.threshold_ = population_threshold(identifier.target_fmr, DLIB_IMPOSTOR_TAIL)
    identifier.n_features_in_ = DIMENSIONS
    strangers = common + rng.normal(scale=member_spread, size=(probes - probes // 2, DIMENSIONS))
    probe_centres = np.vstack([centres[rng.integers(0, members, probes // 2)], strangers])
    return identifier, probe_centres + rng.normal(scale=photo_spread, size=probe_centres.shape)


def _exhaustive(identifier: FaceIdentifier, vector: np.ndarray) -> str:
    scores = identifier.decision_function(vector.reshape(1, -1))[0]
    return identifier.members_[int(np.argmax(scores))]


def _ms(name: str, times: list[float], members: int) -> dict[str, float]:
    """Median and p95 ms of every probe, and the medians of members' and strangers' probes (the
    first ``members`` probes are members')."""
    ordered = sorted(times)
    return {
        f"{name}_ms_median": round(1000 * statistics.median(times), 3),
        f"{name}_ms_p95": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 3),
        f"{name}_ms_median_members": round(1000 * statistics.median(times[:members]), 3),
        f"{name}_ms_median_strangers": round(1000 * statistics.median(times[members:]), 3),
    }


def measure(
    members: int, photos: int, copies: int, probes: int, geometry: str, seed: int
) -> dict[str, float | str]:
    rng = np.random.default_rng(seed)
    identifier, vectors = synthetic_gallery(members, photos, copies, probes, geometry, rng)
    identifier.identify(vectors[0])  # first-call costs (threadpoolctl's scan)
    times: dict[str, list[float]] = {"identify": [], "exhaustive": []}
    identified = differing = 0
    for index, vector in enumerate(vectors):
        # Alternating which goes first spreads the machine's load over both.
        for name in sorted(times, reverse=index % 2 == 1):
            started = time.perf_counter()
            if name == "identify":
                match = identifier.identify(vector)
            else:
                exhaustive = _exhaustive(identifier, vector)
            times[name].append(time.perf_counter() - started)
        identified += match.member is not None
        differing += match.best_member != exhaustive
    return {
        "geometry": geometry,
        "members": members,
        "templates": len(identifier.templates_),
        "identified": identified,
        "best_member_differs": differing,
        **_ms("exhaustive", times["exhaustive"], probes // 2),
        **_ms("identify", times["identify"], probes // 2),
        "templates_mib": round(identifier.templates_.nbytes / 2**20, 1),
        # None below the pruned search's gallery size: nothing is built then.
        "photo_cones_mib": round(
            sum(
                0 if part is None else part.nbytes
                for part in (identifier.photo_directions_, identifier.photo_cones_)
            )
            / 2**20,
            1,
        ),
        "process_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    parser.add_argument("--photos", type=int, default=3, help="Enrolment photos per member.")
    parser.add_argument("--copies", type=int, default=4, help="Augmented copies per photo.")
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--geometry", choices=sorted(GEOMETRIES), default="dlib")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    for members in arguments.members:
        result = measure(
            members,
            arguments.photos,
            arguments.copies,
            arguments.probes,
            arguments.geometry,
            arguments.seed,
        )
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
