"""How hard is the sample for recognition? Model-free scores on the product's own features.

    .venv/bin/python -m benchmarks.sample_difficulty [--seeds 0 1] [--members 8] [--strangers 8]
        [--backends classic dlib]  (--backends alone: voices only)

For each seed, writes a sample workspace and turns every photo and recording into the product's
feature vectors (engine.faces.extract.face_vector with the classic and the dlib backend,
engine.voices.extract.voice_sample), without augmentation and without any trained model. Each probe
gets one score per member: the best cosine similarity to that member's enrolment vectors
(voices: the speaker embeddings, as the voice model compares them). Prints the ROC AUC of genuine
(probe of that member) against impostor scores (other members' and strangers' probes), the
rank-1 identification rate of member probes, the same AUC for the look-alike strangers alone,
and the failures to acquire. A trained model should do at least as well; an AUC of 1.0 would mean
the sample teaches nothing.

For the dlib backend it also prints where the scores lie against the product's default face
threshold (the 1%-FPIR point of the impostor tail measured on real faces,
engine.models._calibration.DLIB_IMPOSTOR_TAIL): quantiles of genuine, impostor and look-alike
scores, the share at or above the threshold, and the cosines between different members'
enrolment photos (real different people rarely reach the threshold; issue 13, item 9).
For voices it prints the quantiles of the genuine, impostor and look-alike scores.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from engine.core.errors import MmauthError
from engine.core.metrics import rate
from engine.core.settings import FaceSettings, Settings
from engine.core.workspace import Workspace, member_folders
from engine.faces.extract import face_vector
from engine.models._calibration import DLIB_IMPOSTOR_TAIL, population_threshold
from engine.sample.workspace import SampleReport, write_sample_workspace
from engine.voices.extract import voice_sample


def _vectors(folder: Path, vector: Callable[[Path], np.ndarray]) -> tuple[dict, int]:
    """Feature vectors per label; the count of files that failed to acquire."""
    vectors, failures = {}, 0
    for label, paths in member_folders(folder).items():
        rows = []
        for path in paths:
            try:
                rows.append(vector(path))
            except MmauthError:
                failures += 1
        vectors[label] = np.array(rows)
    return vectors, failures


QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
DEFAULT_FACE_THRESHOLD = population_threshold(0.01, DLIB_IMPOSTOR_TAIL)


@dataclasses.dataclass
class _Scores:
    summary: str
    genuine: list[float]
    impostor: list[float]
    lookalike: list[float]


def _scores(enrol: dict, probes: dict, report: SampleReport) -> _Scores:
    def unit(rows: np.ndarray) -> np.ndarray:
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    templates = {member: unit(rows) for member, rows in enrol.items()}
    genuine, impostor, lookalike = [], [], []
    correct = trials = 0
    for label, rows in probes.items():
        if len(rows) == 0:
            continue
        for probe in unit(rows):
            scores = {member: float((t @ probe).max()) for member, t in templates.items()}
            for member, score in scores.items():
                if member == label:
                    genuine.append(score)
                else:
                    impostor.append(score)
                    if report.lookalikes.get(label) == member:
                        lookalike.append(score)
            if label in templates:
                trials += 1
                correct += max(scores, key=scores.get) == label

    def auc(negatives: list[float]) -> float:
        labels = [1] * len(genuine) + [0] * len(negatives)
        return roc_auc_score(labels, genuine + negatives)

    text = f"AUC {auc(impostor):.3f}, rank-1 {correct}/{trials}"
    if lookalike:
        text += f", AUC against look-alikes only {auc(lookalike):.3f}"
    return _Scores(text, genuine, impostor, lookalike)


def _quantiles(scores: list[float] | np.ndarray) -> str:
    return " ".join(f"{q:.3f}" for q in np.quantile(np.asarray(scores), QUANTILES))


def _distribution(name: str, scores: list[float] | np.ndarray) -> str:
    """Quantiles of ``scores`` and the share at or above the default dlib face threshold."""
    values = np.asarray(scores)
    quantiles = _quantiles(values)
    above = int((values >= DEFAULT_FACE_THRESHOLD).sum())
    return f"    {name:28} q5-q95 {quantiles}; >= threshold {rate(above, len(values))}"


def _dlib_distributions(enrol: dict, scores: _Scores) -> None:
    """Where the dlib scores lie against the default threshold (module docstring)."""
    units = {m: rows / np.linalg.norm(rows, axis=1, keepdims=True) for m, rows in enrol.items()}
    members = sorted(units)
    between = np.concatenate(
        [(units[a] @ units[b].T).ravel() for i, a in enumerate(members) for b in members[i + 1 :]]
    )
    print(f"    default threshold {DEFAULT_FACE_THRESHOLD:.4f}")
    print(_distribution("genuine probe, best", scores.genuine))
    print(_distribution("impostor probe, best", scores.impostor))
    if scores.lookalike:
        print(_distribution("look-alike probe, best", scores.lookalike))
    print(_distribution("members' enrolment, pairs", between))


def _face(path: Path, settings: Settings) -> np.ndarray:
    return face_vector(path, settings)


def _voice(path: Path) -> np.ndarray:
    return voice_sample(path, Settings()).vector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--strangers", type=int, default=8)
    parser.add_argument("--backends", nargs="*", default=["classic", "dlib"])
    args = parser.parse_args()
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as folder:
            space = Workspace(Path(folder) / "workspace")
            report = write_sample_workspace(
                space.root, members=args.members, strangers=args.strangers, seed=seed
            )
            print(
                f"seed {seed}: {args.members} members, {args.strangers} strangers "
                f"(look-alikes {report.lookalikes})"
            )
            for backend in args.backends:
                face = functools.partial(
                    _face, settings=dataclasses.replace(Settings(), face=FaceSettings(backend))
                )
                enrol, enrol_fta = _vectors(space.faces_dir, face)
                probes, probe_fta = _vectors(space.probe_faces_dir, face)
                scores = _scores(enrol, probes, report)
                print(
                    f"  face {backend:8} {scores.summary}; "
                    f"FTA enrolment {enrol_fta}, probes {probe_fta}"
                )
                if backend == "dlib":
                    _dlib_distributions(enrol, scores)
            enrol, enrol_fta = _vectors(space.voices_dir, _voice)
            probes, probe_fta = _vectors(space.probe_voices_dir, _voice)
            scores = _scores(enrol, probes, report)
            print(
                f"  voice          {scores.summary}; FTA enrolment {enrol_fta}, probes {probe_fta}"
            )
            print(f"    genuine probe, best q5-q95 {_quantiles(scores.genuine)}")
            print(f"    impostor probe, best       {_quantiles(scores.impostor)}")
            if scores.lookalike:
                print(f"    look-alike probe, best     {_quantiles(scores.lookalike)}")


if __name__ == "__main__":
    main()
