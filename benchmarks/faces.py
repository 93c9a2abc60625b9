"""Speed, failure to acquire and a feature-level sanity check of the face pipeline on Yale.

    .venv/bin/python -m benchmarks.faces [--dataset DIR] [--repeats 3] [--backends classic dlib]

For each backend, on every photo of ../shared/datasets/yalefaces (164 extension-less GIFs):
- latency: each photo through engine.faces.extract.process_face_file (load, detect, align, features;
  no augmentation) in this process with the models warm; the median ms per photo;
- FTA: photos where no face was found, with the Wilson 95% interval;
- throughput: the product's own extract_face_features on a temporary workspace holding every
  photo as a probe (no augmentation; a fresh cache every run) with jobs=1 and jobs=2 (loky),
  alternating which goes first in each repeat so both see the same machine load; the wall
  times, the speed-up (median of the per-repeat ratios), and the CPU seconds of the process and
  its workers, whose ratio to the wall time says how many cores the shared machine gave;
- feature check: from the table that run wrote, nearest-centroid identification accuracy and
  the EER against strangers, enrolling normal/happy/surprised and probing every other photo
  that is not byte-identical to an enrolment photo, 10 members and 5 strangers over 10 random
  splits. Cosine to the member's mean template: as extracted, after centring, and after PCA
  whitening fitted on the enrolment rows. This checks the features, not the product's face
  model (issue 6).
The load average is printed before and after: the machine is shared.

    .venv/bin/python -m benchmarks.faces --ablations

runs the feature check again with one design choice changed at a time (no Tan-Triggs, symmetry
levelling on, no mirror averaging), and measures the classic levelling's angle against the eye line
of dlib's 5 landmarks.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.core.errors import AcquisitionError
from engine.core.metrics import equal_error_rate, rate
from engine.core.settings import FaceAugmentSettings, FaceSettings, Settings
from engine.core.workspace import Workspace
from engine.faces.extract import extract_face_features, face_params, process_face_file

DEFAULT_DATASET = Path(__file__).resolve().parent.parent.parent / "shared/datasets/yalefaces"
ENROL_EXPRESSIONS = ("normal", "happy", "surprised")


def settings_for(backend: str, jobs: int) -> Settings:
    return dataclasses.replace(
        Settings(face=FaceSettings(backend=backend)),
        face_augment=FaceAugmentSettings(copies=0),
        jobs=jobs,
    )


def latency(photos: list[Path], backend: str) -> dict[str, object]:
    """Median ms per photo through the per-file function, and which photos failed to acquire."""
    params = face_params(settings_for(backend, 1), augment=False)
    process_face_file(photos[0], params)  # load the models before timing
    times, failed = [], []
    for photo in photos:
        started = time.perf_counter()
        try:
            process_face_file(photo, params)
        except AcquisitionError:
            failed.append(photo.name)
        times.append(time.perf_counter() - started)
    fta = rate(len(failed), len(photos))
    return {
        "median_ms": round(1000 * statistics.median(times), 1),
        "p90_ms": round(1000 * float(np.percentile(times, 90)), 1),
        "fta": str(fta),
        "fta_photos": failed,
    }


def arrange(root: Path, photos: list[Path]) -> Workspace:
    """A workspace with every photo as a probe of its subject (no enrolment, no augmentation)."""
    workspace = Workspace(root)
    workspace.faces_dir.mkdir(parents=True)
    for photo in photos:
        folder = workspace.probe_faces_dir / photo.name.split(".")[0]
        folder.mkdir(parents=True, exist_ok=True)
        os.symlink(photo, folder / photo.name)
    return workspace


def cpu_seconds() -> float:
    """CPU time used so far by this process and its live children (the loky workers)."""
    import psutil

    me = psutil.Process()
    processes = [me, *me.children(recursive=True)]
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def timed_run(workspace: Workspace, backend: str, jobs: int) -> tuple[float, float]:
    """Wall and CPU seconds of one extraction of every photo, from a cold cache."""
    shutil.rmtree(workspace.cache_dir, ignore_errors=True)
    cpu_before, started = cpu_seconds(), time.perf_counter()
    report = extract_face_features(workspace, settings_for(backend, jobs))
    wall = time.perf_counter() - started
    assert report.cached == 0
    return wall, cpu_seconds() - cpu_before


def throughput(workspace: Workspace, backend: str, repeats: int) -> dict[str, object]:
    """Wall time with 1 and 2 workers and the speed-up; the CPU used says how many cores the
    shared machine actually gave the run (CPU seconds over wall seconds)."""
    runs: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for repeat in range(repeats):
        for jobs in (1, 2) if repeat % 2 == 0 else (2, 1):
            runs[jobs].append(timed_run(workspace, backend, jobs))
    ratios = [one[0] / two[0] for one, two in zip(runs[1], runs[2], strict=True)]
    return {
        "jobs1_s": [round(wall, 2) for wall, _ in runs[1]],
        "jobs2_s": [round(wall, 2) for wall, _ in runs[2]],
        "speedup_2_over_1": round(statistics.median(ratios), 2),
        "cpu_s_jobs1": round(statistics.median(cpu for _, cpu in runs[1]), 2),
        "cpu_s_jobs2": round(statistics.median(cpu for _, cpu in runs[2]), 2),
        "cores_used_jobs2": round(statistics.median(cpu / wall for wall, cpu in runs[2]), 2),
    }


def feature_check(workspace: Workspace, photos: list[Path], splits: int = 10) -> dict[str, object]:
    """Nearest-centroid accuracy and stranger EER on the features the last run wrote."""
    import pandas as pd

    table = pd.read_csv(workspace.image_features)
    names = table.source.str.rsplit("/", n=1).str[-1]
    subjects = names.str.split(".").str[0].to_numpy()
    expressions = names.str.split(".").str[1].to_numpy()
    features = table.filter(like="feature_").to_numpy(float)
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in photos}
    hashes = np.array([digest[n] for n in names])
    enrolment = np.isin(expressions, ENROL_EXPRESSIONS)
    everyone = np.array(sorted(set(subjects)))
    results: dict[str, list[float]] = {}
    rng = np.random.default_rng(0)
    for _ in range(splits):
        chosen = rng.permutation(everyone)
        members, strangers = chosen[:10], chosen[10:15]
        enrol = enrolment & np.isin(subjects, members)
        probe = ~enrolment & ~np.isin(hashes, hashes[enrol])
        genuine_rows = probe & np.isin(subjects, members)
        stranger_rows = probe & np.isin(subjects, strangers)
        for method in ("cosine", "centred", "pca-whitened"):
            project = _projection(features[enrol], method)
            centroids = np.array(
                [_unit(project(features[enrol & (subjects == m)])).mean(0) for m in members]
            )
            centroids = _unit(centroids)
            genuine = _unit(project(features[genuine_rows])) @ centroids.T
            index = {member: i for i, member in enumerate(members)}
            truth = np.array([index[subject] for subject in subjects[genuine_rows]])
            accuracy = float(np.mean(genuine.argmax(1) == truth))
            own = genuine[np.arange(len(truth)), truth]
            impostor = (_unit(project(features[stranger_rows])) @ centroids.T).max(1)
            results.setdefault(f"{method}_accuracy", []).append(accuracy)
            results.setdefault(f"{method}_eer", []).append(equal_error_rate(own, impostor)[0])
    return {key: round(float(np.mean(values)), 3) for key, values in results.items()}


def _projection(enrolment: np.ndarray, method: str):  # noqa: ANN202
    if method == "cosine":
        return lambda rows: rows
    mean = enrolment.mean(0)
    if method == "centred":
        return lambda rows: rows - mean
    from sklearn.decomposition import PCA

    scale = enrolment.std(0) + 1e-6
    pca = PCA(n_components=min(25, len(enrolment) - 1), whiten=True, random_state=0)
    pca.fit((enrolment - mean) / scale)
    return lambda rows: pca.transform((rows - mean) / scale)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def ablations(root: Path, photos: list[Path]) -> dict[str, object]:
    """The feature check with one design choice changed at a time, and the levelling's error."""
    from unittest import mock

    variants = {
        "classic as shipped": ("classic", {}, False),
        "classic without Tan-Triggs": ("classic", {}, True),
        "classic with symmetry levelling": ("classic", {"align_eyes": True}, False),
        "dlib as shipped (mirror-averaged)": ("dlib", {}, False),
        "dlib without mirror averaging": ("dlib", {"mirror_average": False}, False),
    }
    figures: dict[str, object] = {}
    for name, (backend, face_changes, plain_grey) in variants.items():
        settings = settings_for(backend, 1)
        settings = dataclasses.replace(
            settings, face=dataclasses.replace(settings.face, **face_changes)
        )
        workspace = arrange(root / name.replace(" ", "-"), photos)
        skip_tan_triggs = mock.patch("engine.faces.extract.tan_triggs", lambda grey: grey)
        with skip_tan_triggs if plain_grey else contextlib.nullcontext():
            extract_face_features(workspace, settings)
        figures[name] = feature_check(workspace, photos)
        print(json.dumps({name: figures[name]}), flush=True)
    figures["levelling error vs dlib landmarks"] = levelling_error(photos)
    return figures


def levelling_error(photos: list[Path]) -> dict[str, object]:
    """How far the classic crop's rotation is from the eye line of dlib's 5 landmarks (degrees),
    with symmetry levelling and without any rotation."""
    from engine.faces.detect import detect_face_classic, detect_face_dlib
    from engine.faces.images import read_image

    levelled, upright = [], []
    for photo in photos:
        pixels = read_image(photo, max_pixels=50_000_000, max_side=1600).pixels
        try:
            classic = detect_face_classic(pixels, align_eyes=True)
            landmarks = detect_face_dlib(pixels)
        except AcquisitionError:
            continue
        levelled.append(abs(np.degrees(classic.angle - landmarks.angle)))
        upright.append(abs(np.degrees(landmarks.angle)))
    return {
        name: {
            "median": round(float(np.median(errors)), 2),
            "p90": round(float(np.percentile(errors, 90)), 2),
            "over_5_degrees": round(float(np.mean(np.array(errors) > 5)), 3),
            "photos": len(errors),
        }
        for name, errors in (("symmetry levelling", levelled), ("no rotation", upright))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["classic", "dlib"])
    parser.add_argument(
        "--ablations",
        action="store_true",
        help="instead: the feature check with each design choice changed, and the levelling error",
    )
    args = parser.parse_args()
    photos = sorted(p for p in args.dataset.iterdir() if p.is_file())
    output: dict[str, object] = {
        "dataset": str(args.dataset),
        "photos": len(photos),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_before": [round(v, 2) for v in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    with tempfile.TemporaryDirectory(prefix="mmauth-faces-") as folder:
        if args.ablations:
            output["ablations"] = ablations(Path(folder), photos)
        for backend in [] if args.ablations else args.backends:
            workspace = arrange(Path(folder) / backend, photos)
            figures = {"latency": latency(photos, backend)}
            figures["throughput"] = throughput(workspace, backend, args.repeats)
            figures["feature_check"] = feature_check(workspace, photos)
            output[backend] = figures
            print(json.dumps({backend: figures}), flush=True)
    output["load_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(output, indent=2))


if __name__ == "__main__":
    main()
