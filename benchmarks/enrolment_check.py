"""Enrolment check on real people: false notes on clean enrolments, and misfiled files caught.

``python -m benchmarks.enrolment_check --part dev|test`` runs engine.models.enrolment_check, the
check ``mmauth train`` runs, over every member set of the end-to-end benchmark's part (Yale
subjects 1-7 / 8-15 with the enrolment photos ``normal``, ``happy`` and ``surprised``; four of
FSDD's six speakers with takes 0-4 of two of the part's digits). Each set is checked clean, then
with one file misfiled per member:

- face: one enrolment photo replaced by one of another member's other photos;
- face, stranger: one enrolment photo replaced by a photo of a subject outside the set (the
  check compares members with members, so it is not expected to catch these; shown for what it
  is);
- voice: one take replaced by another member's take (takes 5-9) of the same phrase;
- phrase: one take replaced by the same member's take (takes 5-9) of the other phrase.

Printed: how many clean samples were named (false notes) and in how many sets, the largest
clean gap (how much closer a clean sample came to another group than to its own: the margin
must stay above it), and the share of misfiled files named, with Wilson 95% intervals. The
margins were chosen on the development part; the test part is reported.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.end_to_end import ENROL_EXPRESSIONS, ENROL_TAKES, PARTS
from benchmarks.shared_workspace import DATASETS, SPEAKERS

SWAP_TAKES = tuple(range(5, 10))
MEMBERS = 4


def face_vectors(subjects: Sequence[int]) -> dict[tuple[int, str], np.ndarray]:
    """The product's face vector (default settings: dlib) of every photo of ``subjects``,
    keyed by (subject, expression)."""
    from engine.core.settings import Settings
    from engine.faces.extract import face_vector

    settings = Settings()
    return {
        (subject, photo.name.split(".", 1)[1]): face_vector(photo, settings)
        for subject in subjects
        for photo in sorted((DATASETS / "yalefaces").glob(f"subject{subject:02d}.*"))
    }


def voice_samples(digits: Sequence[int]) -> dict[tuple[str, int, int], Any]:
    """The product's voice sample (speaker embedding, MFCC sequence) of takes 0-9 of every
    speaker saying ``digits``, keyed by (speaker, digit, take)."""
    from engine.core.settings import Settings
    from engine.voices.extract import voice_sample

    settings = Settings()
    recordings = DATASETS / "fsdd" / "recordings"
    return {
        (speaker, digit, take): voice_sample(recordings / f"{digit}_{speaker}_{take}.wav", settings)
        for speaker in SPEAKERS
        for digit in digits
        for take in (*ENROL_TAKES, *SWAP_TAKES)
    }


class Tally:
    """Counts of one check over the member sets."""

    def __init__(self) -> None:
        self.named = self.samples = self.sets_named = self.sets = 0
        self.caught: dict[str, list[int]] = {}
        self.largest_gap = -np.inf

    def clean(self, found: Sequence[Any], all_gaps: Sequence[float], n_samples: int) -> None:
        self.named += len(found)
        self.samples += n_samples
        self.sets += 1
        self.sets_named += bool(found)
        self.largest_gap = max([self.largest_gap, *all_gaps])

    def swap(self, what: str, found: Sequence[Any], source: str) -> None:
        counts = self.caught.setdefault(what, [0, 0])
        counts[0] += any(m.source == source for m in found)
        counts[1] += 1


def face_part(subjects: Sequence[int], rng: np.random.Generator) -> Tally:
    from engine.models.enrolment_check import face_misfits

    vectors = face_vectors(subjects)
    tally = Tally()
    for members in itertools.combinations(subjects, MEMBERS):
        keys = [(s, e) for s in members for e in ENROL_EXPRESSIONS]
        labels = [f"s{s}" for s, _ in keys]
        sources = [f"s{s}.{e}" for s, e in keys]
        clean = np.array([vectors[k] for k in keys])
        every = face_misfits(clean, labels, sources, margin=-np.inf)
        tally.clean(face_misfits(clean, labels, sources), [m.gap for m in every], len(keys))
        outsiders = [s for s in subjects if s not in members]
        for subject in members:
            row = keys.index((subject, str(rng.choice(ENROL_EXPRESSIONS))))
            other = int(rng.choice([s for s in members if s != subject]))
            for what, donor in (("face", other), ("face, stranger", int(rng.choice(outsiders)))):
                photos = [k for k in vectors if k[0] == donor and k[1] not in ENROL_EXPRESSIONS]
                swapped = clean.copy()
                swapped[row] = vectors[photos[int(rng.integers(len(photos)))]]
                tally.swap(what, face_misfits(swapped, labels, sources), sources[row])
    return tally


def voice_part(digits: Sequence[int], rng: np.random.Generator) -> dict[str, Tally]:
    samples = voice_samples(digits)
    tallies = {"voice": Tally(), "phrase": Tally()}
    for members in itertools.combinations(SPEAKERS, MEMBERS):
        for phrases in itertools.combinations(digits, 2):
            keys = [(s, d, t) for s in members for d in phrases for t in ENROL_TAKES]
            every = _voice_check(samples, keys, -np.inf)
            clean = _voice_check(samples, keys)
            for kind, tally in tallies.items():
                found = [m for m in clean if m.kind == kind]
                tally.clean(found, [m.gap for m in every if m.kind == kind], len(keys))
            for member in members:
                digit = int(rng.choice(phrases))
                row = keys.index((member, digit, int(rng.choice(ENROL_TAKES))))
                other_member = str(rng.choice([s for s in members if s != member]))
                other_digit = next(d for d in phrases if d != digit)
                take = int(rng.choice(SWAP_TAKES))
                for kind, donor in (
                    ("voice", (other_member, digit, take)),
                    ("phrase", (member, other_digit, take)),
                ):
                    swapped = [*keys[:row], donor, *keys[row + 1 :]]
                    found = [
                        m for m in _voice_check(samples, swapped, labels=keys) if m.kind == kind
                    ]
                    tallies[kind].swap(kind, found, _source(keys[row]))
    return tallies


def _voice_check(
    samples: dict[tuple[str, int, int], Any],
    keys: Sequence[tuple[str, int, int]],
    margin: float | None = None,
    labels: Sequence[tuple[str, int, int]] | None = None,
) -> list[Any]:
    """voice_misfits of the takes ``keys``, filed as ``labels`` (default: what they are) under
    ``margin`` for both checks (default: the product's margins)."""
    from engine.models.enrolment_check import voice_misfits

    filed = labels or keys
    chosen = [samples[k] for k in keys]
    return voice_misfits(
        np.array([c.vector for c in chosen]),
        [s for s, _, _ in filed],
        [str(d) for _, d, _ in filed],
        [c.mfcc_sequence for c in chosen],
        [_source(k) for k in filed],
        **({} if margin is None else {"speaker_margin": margin, "phrase_margin": margin}),
    )


def _source(key: tuple[str, int, int]) -> str:
    speaker, digit, take = key
    return f"{speaker}/{digit}_{take}"


def report(name: str, tally: Tally) -> None:
    from engine.core.metrics import rate

    print(
        f"{name:<6} clean samples named: {rate(tally.named, tally.samples)}, in "
        f"{tally.sets_named}/{tally.sets} sets; "
        f"largest clean gap {tally.largest_gap:+.3f}"
    )
    for what, (caught, trials) in tally.caught.items():
        print(f"{'':<6} misfiled ({what}) named: {rate(caught, trials)}")


def time_gallery(photos: int, rng: np.random.Generator, repeats: int = 3) -> str:
    """Median wall time and peak traced memory of the face check on a synthetic gallery of
    ``photos`` 128-d embeddings, three per member: every photo against every other, as
    ``mmauth train`` checks them and ``mmauth enroll``/``remove`` (dlib) check them again."""
    import statistics
    import time
    import tracemalloc

    from engine.models.enrolment_check import face_misfits

    members = np.repeat([f"m{i}" for i in range(photos // 3)], 3)
    centres = rng.normal(size=(len(members) // 3, 128))
    features = np.repeat(centres, 3, axis=0) + rng.normal(0, 0.3, (len(members), 128))
    sources = [f"{m}/{i}.png" for i, m in enumerate(members)]
    seconds = []
    for _ in range(repeats):
        tracemalloc.start()
        started = time.perf_counter()
        face_misfits(features, members, sources)
        seconds.append(time.perf_counter() - started)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return (
        f"gallery of {len(members)} photos: {statistics.median(seconds):.3f} s, "
        f"peak {peak / 2**20:.0f} MiB"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=sorted(PARTS), default="dev")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--gallery",
        type=int,
        nargs="*",
        metavar="PHOTOS",
        help="time the face check on synthetic galleries of these sizes instead",
    )
    arguments = parser.parse_args(argv)
    if arguments.gallery:
        rng = np.random.default_rng(arguments.seed)
        for photos in arguments.gallery:
            print(time_gallery(photos, rng))
        return
    from engine.models import enrolment_check as check

    subjects, digits = PARTS[arguments.part]
    rng = np.random.default_rng(arguments.seed)
    print(
        f"part {arguments.part}; margins: face {check.FACE_MARGIN}, voice "
        f"{check.SPEAKER_MARGIN}, phrase {check.PHRASE_MARGIN}"
    )
    report("face", face_part(subjects, rng))
    for name, tally in voice_part(digits, rng).items():
        report(name, tally)


if __name__ == "__main__":
    main()
