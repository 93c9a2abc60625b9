"""The two-factor decision measured end to end on real people (issue 13).

    .venv/bin/python -m benchmarks.end_to_end [--part dev|test] [--splits N]
        [--condition full|lowres] [--seed S] [--set KEY=VALUE ...] [--json FILE]

A person is chimeric: one Yale subject's face with one FSDD speaker's voice. Per split (seeded),
six subjects are drawn from the part's subjects and paired at random with FSDD's six speakers;
four people are members and two strangers; three of the part's digits are drawn, the first two
being everyone's approval phrases and the third the wrong phrase. The development part uses
Yale subjects 1-7 and digits 0-4, the test part subjects 8-15 and digits 5-9: designs are tuned
on the first and reported on the second.

Members enrol with the photos ``normal``, ``happy`` and ``surprised`` and with takes 0-4 of both
phrases (one enrolment session); their probes are every other photo (minus Yale's byte-identical
copies of an enrolment photo, which are replays, not new photos) and takes 5-49 of both phrases,
plus all 50 takes of the wrong phrase. Strangers present every photo and all 50 takes of both
phrases. Each split is a fresh workspace run through the product's own stages (face features,
voice features, training of the face and voice models, ``run_simulation``) with the settings a
user gets by default (``--set`` overrides them for experiments). Per-file features are cached
across splits by the batch machinery (content hash + parameters), so only the first split of a
part pays for extraction.

The ``lowres`` condition shows every photo as a 92x112 greyscale image (centre crop to that
aspect, then downscaled), as webcams and scanned ID photos look.

Printed per campaign, pooled over splits: the rate with its Wilson 95% interval, the face and
voice rates where the campaign measures them, and the denial reasons.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.shared_workspace import DATASETS, SPEAKERS, copy_file, file_sha256

PARTS = {
    "dev": (tuple(range(1, 8)), (0, 1, 2, 3, 4)),
    "test": (tuple(range(8, 16)), (5, 6, 7, 8, 9)),
}
ENROL_EXPRESSIONS = ("normal", "happy", "surprised")
ENROL_TAKES = tuple(range(5))
TAKES = tuple(range(50))
LOWRES_SIZE = (92, 112)
MEMBERS, STRANGERS = 4, 2
CAMPAIGN_ORDER = ("genuine", "stranger_face", "stranger_voice", "cross_member", "wrong_phrase")
CAMPAIGN_ORDER += ("replay", "bad_input")


@dataclasses.dataclass(frozen=True)
class Person:
    """A chimeric person: a Yale subject's face with an FSDD speaker's voice."""

    name: str
    subject: int
    speaker: str
    member: bool


@dataclasses.dataclass(frozen=True)
class Split:
    """One random arrangement of people, roles and phrases."""

    index: int
    people: tuple[Person, ...]
    phrases: tuple[int, int]
    """The two approval digits every member enrols."""
    wrong_phrase: int
    """A digit of the part nobody enrols."""


def draw_split(part: str, index: int, seed: int) -> Split:
    """The split's pairing of subjects with speakers, members and strangers, and phrases."""
    subjects, digits = PARTS[part]
    rng = random.Random(f"{seed}-{part}-{index}")
    chosen = rng.sample(subjects, MEMBERS + STRANGERS)
    speakers = rng.sample(SPEAKERS, MEMBERS + STRANGERS)
    first, second, wrong = rng.sample(digits, 3)
    people = tuple(
        Person(f"person{n + 1:02d}", subject, speaker, member=n < MEMBERS)
        for n, (subject, speaker) in enumerate(zip(chosen, speakers, strict=True))
    )
    return Split(index=index, people=people, phrases=(first, second), wrong_phrase=wrong)


def arrange_split(
    root: Path, split: Split, *, photos: Path, recordings: Path, takes: Sequence[int] = TAKES
) -> int:
    """Write the split's workspace under ``root``; returns the probe photos left out because they
    are byte-identical to one of their member's enrolment photos. ``takes``: the FSDD takes
    used (all 50 by default; tests use fewer)."""
    raw = root / "data" / "raw"
    skipped = 0
    for person in split.people:
        subject_photos = sorted(photos.glob(f"subject{person.subject:02d}.*"))
        enrol = [p for p in subject_photos if _expression(p) in ENROL_EXPRESSIONS]
        enrolled = {file_sha256(p) for p in enrol} if person.member else set()
        for photo in subject_photos:
            enrolling = person.member and photo in enrol
            if not enrolling and file_sha256(photo) in enrolled:
                skipped += 1
                continue
            folder = raw / ("faces" if enrolling else "probes/faces") / person.name
            suffix = ".png" if photo.suffix == ".png" else ".gif"  # Yale's files have none
            copy_file(photo, folder / f"{_expression(photo)}{suffix}")
        words = [*split.phrases, split.wrong_phrase] if person.member else [*split.phrases]
        for digit in words:
            for take in takes:
                enrolling = person.member and digit in split.phrases and take in ENROL_TAKES
                folder = raw / ("voices" if enrolling else "probes/voices") / person.name
                copy_file(
                    recordings / f"{digit}_{person.speaker}_{take}.wav",
                    folder / f"digit{digit}_{take}.wav",
                )
    return skipped


def _expression(photo: Path) -> str:
    """``subject01.normal`` or ``subject01.normal.png`` -> ``normal``."""
    return photo.name.split(".")[1]


def lowres_photos(source: Path, target: Path) -> Path:
    """Every Yale photo as a 92x112 greyscale PNG under ``target`` (made once, then reused)."""
    from PIL import Image

    target.mkdir(parents=True, exist_ok=True)
    width, height = LOWRES_SIZE
    for photo in sorted(source.glob("subject*")):
        out = target / f"{photo.name}.png"
        if out.is_file():
            continue
        with Image.open(photo) as image:
            grey = image.convert("L")
        # Centre crop to the target's aspect ratio, so the face is not stretched.
        crop_width = min(grey.width, round(grey.height * width / height))
        crop_height = min(grey.height, round(crop_width * height / width))
        left, top = (grey.width - crop_width) // 2, (grey.height - crop_height) // 2
        grey = grey.crop((left, top, left + crop_width, top + crop_height))
        grey.resize(LOWRES_SIZE, Image.Resampling.LANCZOS).save(out)
    return target


def run_split(
    root: Path, split: Split, overrides: Mapping[str, Any], cache: Path, **sources: Any
) -> dict[str, Any]:
    """Arrange the split (``sources``: arrange_split's keyword arguments), then features ->
    train (face, voice) -> simulate, as a user runs them."""
    from engine.auth.simulate import run_simulation
    from engine.core.settings import load_settings
    from engine.core.workspace import Workspace
    from engine.faces.extract import extract_face_features
    from engine.models.training import train_models
    from engine.voices.extract import extract_voice_features

    skipped = arrange_split(root, split, **sources)
    workspace = Workspace(root)
    workspace.processed_dir.mkdir(parents=True, exist_ok=True)
    workspace.cache_dir.symlink_to(cache, target_is_directory=True)
    settings = load_settings(root, overrides)
    started = time.perf_counter()
    extract_face_features(workspace, settings)
    extract_voice_features(workspace, settings)
    features_s = time.perf_counter() - started
    training = train_models(workspace, settings, which=("face", "voice"))
    simulation = run_simulation(workspace, settings)
    return {
        "split": split.index,
        "people": [dataclasses.asdict(p) for p in split.people],
        "phrases": list(split.phrases),
        "wrong_phrase": split.wrong_phrase,
        "duplicate_probes_skipped": skipped,
        "seconds": {
            "features": round(features_s, 1),
            "train": round(training.seconds, 1),
            "simulate": round(simulation.seconds, 1),
        },
        "training": {row["model"]: _plain(row) for row in training.summary},
        # What mmauth train tells the user about these (clean) enrolments.
        "notes": list(training.notes),
        "enrolment_misfits": sum(
            entry["metrics"].get("enrolment_misfits", 0)
            for entry in training.manifest["models"].values()
        ),
        "campaigns": {
            c.name: {
                "attempts": c.attempts,
                "correct": c.overall.count,
                "face": [c.face.count, c.face.trials],
                "voice": [c.voice.count, c.voice.trials],
                "denied_by_reason": c.denied_by_reason,
                "wrong_member_grants": c.wrong_member_grants,
            }
            for c in simulation.campaigns
        },
        # Per attempt, for offline analysis: campaign, reason, member, face and voice scores.
        "attempts": [
            [a.campaign, a.reason, a.member, a.face_score, a.voice_score]
            for a in simulation.attempts
        ],
    }


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if isinstance(v, str | int | float) or v is None}


def pooled(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Counts of every campaign summed over the splits, with Wilson intervals."""
    from engine.core.metrics import rate

    table: dict[str, dict[str, Any]] = {}
    for name in CAMPAIGN_ORDER:
        rows = [r["campaigns"][name] for r in results if name in r["campaigns"]]
        if not rows:
            continue
        reasons: Counter[str] = Counter()
        for row in rows:
            reasons.update(row["denied_by_reason"])
        table[name] = {
            "overall": rate(sum(r["correct"] for r in rows), sum(r["attempts"] for r in rows)),
            "face": rate(sum(r["face"][0] for r in rows), sum(r["face"][1] for r in rows)),
            "voice": rate(sum(r["voice"][0] for r in rows), sum(r["voice"][1] for r in rows)),
            "denied_by_reason": dict(reasons.most_common()),
            "wrong_member_grants": sum(r["wrong_member_grants"] for r in rows),
        }
    return table


def print_table(table: Mapping[str, Mapping[str, Any]], heading: str) -> None:
    print(f"\n{heading}")
    print(f"{'campaign':<15} {'rate (success / block), Wilson 95%':<44} face / voice rate")
    for name, row in table.items():
        parts = [
            f"{label} {_short(row[label])}" for label in ("face", "voice") if row[label].trials
        ]
        print(f"{name:<15} {str(row['overall']):<44} {'; '.join(parts)}")
        reasons = ", ".join(f"{k} {v}" for k, v in row["denied_by_reason"].items())
        if reasons:
            print(f"{'':<15}   denied: {reasons}")
        if row["wrong_member_grants"]:
            print(f"{'':<15}   granted as another member: {row['wrong_member_grants']}")


def _short(measured: Any) -> str:
    return f"{measured.value:.1%} ({measured.count}/{measured.trials})"


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` settings overrides; values parsed as JSON when they can be (numbers,
    booleans), else kept as strings."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=sorted(PARTS), default="dev")
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--first-split", type=int, default=0)
    parser.add_argument("--condition", choices=("full", "lowres"), default="full")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "mmauth-end-to-end-cache",
        help="Feature cache shared by the splits (and by later runs).",
    )
    parser.add_argument("--json", type=Path, help="Write every split's counts to this file.")
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    arguments = parser.parse_args(argv)
    overrides = {"jobs": 2, **parse_overrides(arguments.overrides)}
    photos = arguments.datasets / "yalefaces"
    if arguments.condition == "lowres":
        photos = lowres_photos(photos, arguments.cache / "lowres-photos")
    sources = {"photos": photos, "recordings": arguments.datasets / "fsdd" / "recordings"}
    feature_cache = arguments.cache / "features"
    feature_cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = []
    for index in range(arguments.first_split, arguments.first_split + arguments.splits):
        split = draw_split(arguments.part, index, arguments.seed)
        with tempfile.TemporaryDirectory(prefix="mmauth-e2e-") as scratch:
            result = run_split(Path(scratch), split, overrides, feature_cache, **sources)
        results.append(result)
        genuine = result["campaigns"]["genuine"]
        print(
            f"split {index}: genuine {genuine['correct']}/{genuine['attempts']}, "
            f"{result['seconds']}",
            file=sys.stderr,
            flush=True,
        )
    minutes = (time.perf_counter() - started) / 60
    heading = (
        f"part {arguments.part}, condition {arguments.condition}, {len(results)} splits "
        f"(seed {arguments.seed}), overrides {overrides}, {minutes:.1f} min"
    )
    print_table(pooled(results), heading)
    notes = [note for r in results for note in r["notes"]]
    misfits = sum(r["enrolment_misfits"] for r in results)
    print(
        f"training notes: {len(notes)} over {len(results)} splits; enrolment files named by the "
        f"enrolment check: {misfits} (every file here is filed correctly)"
    )
    for note in notes:
        print(f"  {note}")
    if arguments.json:
        arguments.json.write_text(
            json.dumps({"heading": heading, "splits": results}, indent=1), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
