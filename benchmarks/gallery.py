"""Identification cost against the size of the gallery: synthetic dlib-like templates.

    .venv/bin/python -m benchmarks.gallery [--members 100 1000 10000 100000] [--templates 15]
                                           [--probes 50]

For each gallery size, a FaceIdentifier (dlib backend) holds ``--templates`` unit 128-d
templates per member (the product's default enrolment: 3 photos + 4 augmented copies each = 15),
drawn around a random centre per member; ``identify`` of ``--probes`` probe vectors (half near a
member, half random) is timed one call at a time, under one BLAS thread (as in the product: the
whole attempt runs under ``single_threaded_blas``). Reported per size: median and p95 ms per
identify, the templates' memory, and the peak resident memory of the process so far. Only the
gallery is synthetic; the calibration is skipped (its threshold does not change the cost).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import numpy as np

from engine.models.face import FaceIdentifier

DIMENSIONS = 128


def synthetic_identifier(members: int, templates: int, rng: np.random.Generator) -> FaceIdentifier:
    """A dlib-backend FaceIdentifier whose gallery holds ``templates`` rows per member."""
    centres = rng.normal(size=(members, DIMENSIONS)).astype(np.float64)
    rows = np.repeat(centres, templates, axis=0)
    rows += rng.normal(scale=0.3, size=rows.shape)
    names = np.array([f"member{index:06d}" for index in range(members)])
    identifier = FaceIdentifier(backend="dlib")
    identifier._fit_gallery(rows, np.repeat(names, templates), np.zeros(len(rows)))
    identifier.threshold_ = 0.9
    identifier.n_features_in_ = DIMENSIONS
    return identifier


def measure(members: int, templates: int, probes: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    identifier = synthetic_identifier(members, templates, rng)
    near = identifier.templates_[rng.integers(0, len(identifier.templates_), probes // 2)]
    vectors = np.vstack([near, rng.normal(size=(probes - probes // 2, DIMENSIONS))])
    identifier.identify(vectors[0])  # first-call costs (threadpoolctl's scan)
    times = []
    for vector in vectors:
        started = time.perf_counter()
        identifier.identify(vector)
        times.append(time.perf_counter() - started)
    ordered = sorted(times)
    return {
        "members": members,
        "templates": len(identifier.templates_),
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
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    for members in arguments.members:
        result = measure(members, arguments.templates, arguments.probes, arguments.seed)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
