"""A workspace arranged from the shared real data (Yale faces + FSDD voices + the assignment's
customer tables), for end-to-end tests and the authentication benchmarks.

A person is one Yale subject's face paired with one FSDD speaker's voice. Members enrol with the
photos ``normal``, ``happy`` and ``surprised`` and with takes 0-4 of the digits one and seven
(the approval phrases); their probes are their other photos and takes 5-9 of those digits, plus
takes 5-7 of the digit three (a phrase they did not enrol). Strangers get probes only.

Yale holds byte-identical files under different names (``normal`` equals ``noglasses`` for nine
subjects, ``normal`` equals ``sad`` for one): such a probe *is* the enrolment file, a replay, so
it is left out of the probes and counted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
ENROL_EXPRESSIONS = ("normal", "happy", "surprised")
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
PHRASES = {1: "one", 7: "seven"}
WRONG_PHRASE = (3, "three")


@dataclasses.dataclass(frozen=True)
class ArrangedWorkspace:
    root: Path
    members: tuple[str, ...]
    strangers: tuple[str, ...]
    duplicate_probes_skipped: int
    """Probe photos left out because they are byte-identical to an enrolment photo."""


def arrange(
    root: Path,
    *,
    members: int = 4,
    strangers: int = 2,
    probe_takes: tuple[int, ...] = (5, 6, 7, 8, 9),
    wrong_phrase_takes: tuple[int, ...] = (5, 6, 7),
    datasets: Path = DATASETS,
) -> ArrangedWorkspace:
    """Copy the chosen subset of the shared data into a fresh workspace layout under ``root``."""
    if members + strangers > len(SPEAKERS):
        raise ValueError(f"FSDD has {len(SPEAKERS)} speakers: at most that many people")
    yale, fsdd = datasets / "yalefaces", datasets / "fsdd" / "recordings"
    raw = root / "data" / "raw"
    people = [f"person{index + 1:02d}" for index in range(members + strangers)]
    skipped = 0
    for index, person in enumerate(people):
        subject, speaker = f"subject{index + 1:02d}", SPEAKERS[index]
        member = index < members
        photos = sorted(yale.glob(f"{subject}.*"))
        enrol = [p for p in photos if p.suffix.lstrip(".") in ENROL_EXPRESSIONS]
        enrolled_hashes = {file_sha256(p) for p in enrol} if member else set()
        for photo in photos:
            enrolling = member and photo in enrol
            if not enrolling and file_sha256(photo) in enrolled_hashes:
                skipped += 1
                continue
            folder = raw / ("faces" if enrolling else "probes/faces") / person
            copy_file(photo, folder / f"{photo.name.replace('.', '_')}.gif")
        for digit, word in PHRASES.items():
            if member:
                for take in range(5):
                    copy_file(
                        fsdd / f"{digit}_{speaker}_{take}.wav",
                        raw / "voices" / person / f"{word}_{take}.wav",
                    )
            for take in probe_takes:
                copy_file(
                    fsdd / f"{digit}_{speaker}_{take}.wav",
                    raw / "probes" / "voices" / person / f"{word}_{take}.wav",
                )
        if member:
            digit, word = WRONG_PHRASE
            for take in wrong_phrase_takes:
                copy_file(
                    fsdd / f"{digit}_{speaker}_{take}.wav",
                    raw / "probes" / "voices" / person / f"{word}_{take}.wav",
                )
    customers = raw / "customers"
    shutil.copytree(datasets / "customers", customers)
    return ArrangedWorkspace(
        root=root,
        members=tuple(people[:members]),
        strangers=tuple(people[members:]),
        duplicate_probes_skipped=skipped,
    )


def link_customers(root: Path, members: tuple[str, ...]) -> None:
    """members.csv linking each member to a customer of the merged dataset (run merge first)."""
    import csv

    with (root / "data" / "merged_dataset.csv").open(newline="") as handle:
        customers = [row["customer_id"] for row in csv.DictReader(handle)]
    lines = ["member,customer_id"] + [f"{m},{c}" for m, c in zip(members, customers, strict=False)]
    (root / "data" / "raw" / "customers" / "members.csv").write_text("\n".join(lines) + "\n")


def copy_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
