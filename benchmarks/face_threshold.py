"""Does the face threshold keep its promise on held-out people? (issue 13, item 6)

    .venv/bin/python -m benchmarks.face_threshold [--part dev|test] [--condition full|lowres]
        [--enrol-expressions normal happy surprised] [--members 4] [--threshold T ...]

The face factor of ``benchmarks.end_to_end`` alone, over every gallery instead of random
splits: the part's Yale subjects (``benchmarks.end_to_end.PARTS``) enrol their enrolment photos
(with the product's augmented copies), every other distinct photo is a probe, and every set of
``--members`` subjects is a gallery. A subject's probes are genuine attempts against each
gallery holding them (identified when their own score is the best and at or above the
threshold: FNIR counts the rest), and every photo of a subject outside the gallery is a stranger
attempt (FPIR counts those whose best score reaches the threshold). Features come from the
product's ``extract_face_features`` with default settings; scores and the threshold from the
product's ``FaceIdentifier`` with its defaults (``--threshold`` adds fixed thresholds to compare).
``--condition lowres`` shows the photos at 92x112 greyscale, as ``benchmarks.end_to_end`` does.

Also printed: each held-out subject's FPIR when the population tail
(``engine.models._calibration.population_threshold``) is refitted without that subject, the
genuine scores per Yale condition, and the lowest genuine and highest impostor scores.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.end_to_end import ENROL_EXPRESSIONS, PARTS, lowres_photos
from benchmarks.shared_workspace import DATASETS, file_sha256
from engine.core.metrics import Rate, rate

TAIL_QUANTILE = 0.9
"""The tail of ``DLIB_IMPOSTOR_TAIL`` starts at this quantile of the impostor scores (p0 0.1)."""


@dataclasses.dataclass(frozen=True)
class Scores:
    """Every probe photo scored against every enrolled subject."""

    subjects: list[str]
    """The enrolled subjects, the columns of ``matrix``."""
    matrix: np.ndarray
    """Best-template score of each probe (rows) against each subject (columns)."""
    owners: np.ndarray
    """The subject of each probe."""
    conditions: np.ndarray
    """Yale's condition of each probe (``leftlight``, ``glasses``...)."""
    genuine_allowed: np.ndarray
    """False for a subject's own enrolment photos and byte-identical copies of them."""
    threshold: float
    """The threshold FaceIdentifier calibrates with its default settings."""
    target_fmr: float
    """The FPIR that threshold aims at."""


def score_part(
    photos: Path, subjects: Sequence[int], enrol: Sequence[str], cache: Path, scratch: Path
) -> Scores:
    """Extract the part's photos (Yale's file names, in ``photos``) through the product and
    score them with its face model."""
    from engine.core.feature_tables import feature_matrix, read_feature_table
    from engine.core.settings import load_settings
    from engine.core.workspace import Workspace
    from engine.faces.extract import extract_face_features
    from engine.models.face import FaceIdentifier

    workspace = Workspace(scratch)
    workspace.processed_dir.mkdir(parents=True)
    workspace.cache_dir.symlink_to(cache, target_is_directory=True)
    digest_of: dict[tuple[str, str], str] = {}
    for subject in subjects:
        for photo in sorted(photos.glob(f"subject{subject:02d}.*")):
            name, condition = photo.name.split(".")[:2]
            digest_of[(name, condition)] = file_sha256(photo)
            folder = workspace.faces_dir if condition in enrol else workspace.probe_faces_dir
            suffix = ".png" if photo.suffix == ".png" else ".gif"  # Yale's files have none
            link = folder / name / f"{condition}{suffix}"
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(photo)
    settings = load_settings(scratch)
    extract_face_features(workspace, settings)
    table = read_feature_table(workspace, workspace.image_features, "feature_")
    enrolment = table[table["role"] == "enrol"]
    model = FaceIdentifier(
        backend=settings.face.backend,
        target_fmr=settings.models.target_fmr,
        threshold_rule=settings.models.face_threshold_rule,
        random_state=settings.seed,
    ).fit(
        feature_matrix(enrolment, "feature_"),
        enrolment["member"].to_numpy(),
        enrolment["source"].astype(str).to_numpy(),
        (enrolment["augmentation"] != "original").to_numpy(),
    )
    probes = table[table["augmentation"] == "original"]
    owners = probes["member"].astype(str).to_numpy()
    conditions = np.array([Path(str(s)).stem for s in probes["source"]])
    digests = np.array([digest_of[(o, c)] for o, c in zip(owners, conditions, strict=True)])
    enrolled = {
        (o, d) for o, d, r in zip(owners, digests, probes["role"], strict=True) if r == "enrol"
    }
    allowed = np.array([(o, d) not in enrolled for o, d in zip(owners, digests, strict=True)])
    return Scores(
        subjects=list(model.members_),
        matrix=model.decision_function(feature_matrix(probes, "feature_")),
        owners=owners,
        conditions=conditions,
        genuine_allowed=allowed,
        threshold=float(model.threshold_),
        target_fmr=float(model.target_fmr),
    )


def open_set_rates(scores: Scores, threshold: float, members: int) -> tuple[Rate, Rate]:
    """(FNIR, FPIR) at ``threshold`` pooled over every gallery of ``members`` subjects."""
    misses = genuine = false_positives = strangers = 0
    for gallery in itertools.combinations(range(len(scores.subjects)), members):
        names = [scores.subjects[g] for g in gallery]
        block = scores.matrix[:, gallery]
        best, best_member = block.max(axis=1), np.asarray(names)[block.argmax(axis=1)]
        inside = np.isin(scores.owners, names)
        attempts = inside & scores.genuine_allowed
        identified = (best_member == scores.owners) & (best >= threshold)
        misses += int(np.sum(attempts & ~identified))
        genuine += int(np.sum(attempts))
        false_positives += int(np.sum(~inside & (best >= threshold)))
        strangers += int(np.sum(~inside))
    return rate(misses, genuine), rate(false_positives, strangers)


def impostor_pairs(scores: Scores, without: str | None = None) -> np.ndarray:
    """Scores of photos against other subjects (neither of them ``without``)."""
    others = np.asarray(scores.subjects) != without
    rows = scores.owners != without
    block = scores.matrix[np.ix_(rows, others)]
    return block[scores.owners[rows, None] != np.asarray(scores.subjects)[others][None, :]]


def exponential_tail(impostor: np.ndarray) -> tuple[float, float, float]:
    """(p0, t0, beta) of the population tail, fitted as ``DLIB_IMPOSTOR_TAIL`` was: t0 the
    ``TAIL_QUANTILE`` quantile, beta the mean excess over it."""
    t0 = float(np.quantile(impostor, TAIL_QUANTILE))
    return 1 - TAIL_QUANTILE, t0, float(np.mean(impostor[impostor >= t0] - t0))


def left_out_rates(scores: Scores, target: float, members: int) -> list[tuple[str, float, Rate]]:
    """Per subject: the tail's threshold refitted without them, and their photos' FPIR as a
    stranger against every gallery of the others at that threshold."""
    from engine.models._calibration import population_threshold

    rows = []
    for index, subject in enumerate(scores.subjects):
        threshold = population_threshold(target, exponential_tail(impostor_pairs(scores, subject)))
        own = scores.owners == subject
        others = [i for i in range(len(scores.subjects)) if i != index]
        accepted = trials = 0
        for gallery in itertools.combinations(others, members):
            accepted += int(np.sum(scores.matrix[np.ix_(own, gallery)].max(axis=1) >= threshold))
            trials += int(np.sum(own))
        rows.append((subject, threshold, rate(accepted, trials)))
    return rows


def _rate(measured: Rate) -> str:
    return (
        f"{measured.count}/{measured.trials} = {100 * measured.value:.2f}% "
        f"[{100 * measured.low:.2f}, {100 * measured.high:.2f}]"
    )


def report(scores: Scores, thresholds: Sequence[float], members: int) -> None:
    """Print the figures of the module docstring."""
    for threshold in thresholds:
        fnir, fpir = open_set_rates(scores, threshold, members)
        print(f"threshold {threshold:.4f}: FNIR {_rate(fnir)}  FPIR {_rate(fpir)}")
    columns = np.searchsorted(scores.subjects, scores.owners)
    genuine = np.where(
        scores.genuine_allowed, scores.matrix[np.arange(len(columns)), columns], math.nan
    )
    print("genuine scores per condition (min / mean / photos):")
    for condition in sorted(set(scores.conditions[scores.genuine_allowed])):
        values = genuine[scores.genuine_allowed & (scores.conditions == condition)]
        print(f"  {condition:12s} {values.min():.4f} / {values.mean():.4f} / {len(values)}")
    lowest = np.argsort(np.nan_to_num(genuine, nan=2.0))[:5]
    print(
        "lowest genuine:",
        ", ".join(f"{scores.owners[i]}.{scores.conditions[i]} {genuine[i]:.4f}" for i in lowest),
    )
    impostor = np.where(scores.owners[:, None] == np.asarray(scores.subjects), -2.0, scores.matrix)
    highest = np.argsort(impostor, axis=None)[::-1][:5]
    print(
        "highest impostor:",
        ", ".join(
            f"{scores.owners[r]}.{scores.conditions[r]} vs {scores.subjects[c]} {impostor[r, c]:.4f}"
            for r, c in zip(*np.unravel_index(highest, impostor.shape), strict=True)
        ),
    )
    print(f"population tail refitted without each subject (target {scores.target_fmr}):")
    pooled = [0, 0]
    for subject, threshold, measured in left_out_rates(scores, scores.target_fmr, members):
        print(f"  {subject}: threshold {threshold:.4f}, FPIR as a stranger {_rate(measured)}")
        pooled = [pooled[0] + measured.count, pooled[1] + measured.trials]
    print(f"  pooled FPIR of left-out subjects: {_rate(rate(*pooled))}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=sorted(PARTS), default="dev")
    parser.add_argument("--enrol-expressions", nargs="+", default=list(ENROL_EXPRESSIONS))
    parser.add_argument("--condition", choices=("full", "lowres"), default="full")
    parser.add_argument("--members", type=int, default=4, help="Subjects per gallery.")
    parser.add_argument("--threshold", type=float, nargs="*", default=[])
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "mmauth-end-to-end-cache" / "features",
        help="Feature cache (shared with benchmarks.end_to_end by default).",
    )
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    arguments = parser.parse_args(argv)
    arguments.cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    photos = arguments.datasets / "yalefaces"
    if arguments.condition == "lowres":
        photos = lowres_photos(photos, arguments.cache.parent / "lowres-photos")
    with tempfile.TemporaryDirectory() as scratch:
        scores = score_part(
            photos,
            PARTS[arguments.part][0],
            arguments.enrol_expressions,
            arguments.cache,
            Path(scratch) / "workspace",
        )
    print(
        f"part {arguments.part} ({arguments.condition}), enrolment {' '.join(arguments.enrol_expressions)}, "
        f"galleries of {arguments.members}; default threshold {scores.threshold:.4f}"
    )
    report(scores, [scores.threshold, *arguments.threshold], arguments.members)
    print(f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
