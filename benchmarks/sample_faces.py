"""Do the face backends find the sample's drawn faces? Detection rates per backend.

    .venv/bin/python -m benchmarks.sample_faces [--seed 0] [--people 40]

Part 1, the sample workspace as `mmauth sample --seed SEED` writes it (4 members, 6 strangers):
every enrolment and probe photo through the product's two detectors, engine.faces.detect's
detect_face_classic (scikit-image LBP cascade, then its CLAHE and padding fallbacks) and
detect_face_dlib (dlib HOG detector + 5-point alignment); how each photo was found ("cascade" /
"dlib" = by the detector itself) or FTA.

Part 2, the renderer without the sample's enrolment check: PEOPLE random faces, each drawn at
five capture difficulties (0 = enrolment-like studio light, 1 = hardest probe: side light,
roll, scale, blur, noise), through the bare detectors: the LBP cascade as the classic backend
searches (scale 1.25, faces from a fifth of the frame) and dlib's HOG detector without
upsampling. Rates come with Wilson 95% intervals.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from engine.core.errors import AcquisitionError
from engine.core.metrics import rate
from engine.core.workspace import Workspace
from engine.faces import detect as face_detect
from engine.sample import face_parameters, face_rendering
from engine.sample.workspace import write_sample_workspace

DIFFICULTIES = (0.0, 0.25, 0.5, 0.75, 1.0)


def workspace_rates(seed: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        space = Workspace(Path(folder) / "workspace")
        write_sample_workspace(space.root, seed=seed)
        groups = {
            "enrolment": sorted(space.faces_dir.rglob("*.png")),
            "probes": sorted(space.probe_faces_dir.rglob("*.png")),
        }
        for backend, detect in (
            ("classic", face_detect.detect_face_classic),
            ("dlib", face_detect.detect_face_dlib),
        ):
            for group, paths in groups.items():
                methods: collections.Counter[str] = collections.Counter()
                started = time.perf_counter()
                for path in paths:
                    with Image.open(path) as image:
                        pixels = np.asarray(image.convert("RGB"))
                    try:
                        methods[detect(pixels).method] += 1
                    except AcquisitionError:
                        methods["FTA"] += 1
                per_photo = (time.perf_counter() - started) / len(paths) * 1000
                direct = methods["cascade"] + methods["dlib"]
                found = len(paths) - methods["FTA"]
                print(
                    f"{backend:8} {group:9} detector itself {rate(direct, len(paths))}; "
                    f"with fallbacks {rate(found, len(paths))}; {dict(methods)}; "
                    f"{per_photo:.0f} ms/photo"
                )


def renderer_rates(people: int, seed: int) -> None:
    import dlib

    detector = dlib.get_frontal_face_detector()
    rng = np.random.default_rng([seed, 99])
    cascade: dict[float, int] = collections.Counter()
    hog: dict[float, int] = collections.Counter()
    for _ in range(people):
        identity = face_parameters.random_identity(rng)
        for difficulty in DIFFICULTIES:
            expression = face_parameters.EXPRESSIONS[int(rng.integers(3))]
            capture = face_parameters.random_capture(rng, expression, difficulty=difficulty)
            pixels = face_rendering.render_face(identity, capture)
            cascade[difficulty] += face_rendering.cascade_finds_face(pixels)
            hog[difficulty] += len(detector(pixels, 0)) > 0
    print(f"{'difficulty':>10}  {'LBP cascade (classic)':<36} {'dlib HOG':<36}")
    for difficulty in DIFFICULTIES:
        print(
            f"{difficulty:>10.2f}  {rate(cascade[difficulty], people)!s:<36} "
            f"{rate(hog[difficulty], people)!s:<36}"
        )
    total = people * len(DIFFICULTIES)
    print(
        f"{'all':>10}  {rate(sum(cascade.values()), total)!s:<36} "
        f"{rate(sum(hog.values()), total)!s:<36}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--people", type=int, default=40)
    args = parser.parse_args()
    print(f"Part 1: sample workspace, seed {args.seed}")
    workspace_rates(args.seed)
    print(
        f"\nPart 2: {args.people} random faces x {len(DIFFICULTIES)} difficulties, bare detectors"
    )
    renderer_rates(args.people, args.seed)


if __name__ == "__main__":
    main()
