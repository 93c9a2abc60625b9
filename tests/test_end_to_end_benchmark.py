"""The end-to-end benchmark (benchmarks/end_to_end.py): its arrangement of chimeric people and
one tiny split through the product's stages on the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.end_to_end import (
    CAMPAIGN_ORDER,
    ENROL_TAKES,
    PARTS,
    arrange_split,
    draw_split,
    pooled,
    run_split,
)
from tests.conftest import require_shared


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in list(os.environ):
        if variable.startswith("MMAUTH_") and variable != "MMAUTH_REQUIRE_SHARED":
            monkeypatch.delenv(variable)


@pytest.mark.parametrize("part", sorted(PARTS))
def test_splits_are_seeded_and_stay_inside_their_part(part: str) -> None:
    subjects, digits = PARTS[part]
    splits = [draw_split(part, index, seed=0) for index in range(5)]
    assert splits[0] == draw_split(part, 0, seed=0) != draw_split(part, 0, seed=1)
    for split in splits:
        assert {p.subject for p in split.people} <= set(subjects)
        assert {*split.phrases, split.wrong_phrase} <= set(digits)
        assert split.wrong_phrase not in split.phrases
        assert len({p.speaker for p in split.people}) == 6
        assert [p.member for p in split.people] == [True] * 4 + [False] * 2
    assert len({s.people for s in splits}) > 1


def test_parts_do_not_share_people_or_phrases() -> None:
    (dev_subjects, dev_digits), (test_subjects, test_digits) = PARTS["dev"], PARTS["test"]
    assert not set(dev_subjects) & set(test_subjects)
    assert not set(dev_digits) & set(test_digits)


def test_arrangement_enrols_members_and_leaves_strangers_to_the_probes(tmp_path: Path) -> None:
    datasets = require_shared()
    split = draw_split("dev", 0, seed=0)
    takes = range(8)
    arrange_split(
        tmp_path,
        split,
        photos=datasets / "yalefaces",
        recordings=datasets / "fsdd" / "recordings",
        takes=takes,
    )
    raw = tmp_path / "data" / "raw"
    for person in split.people:
        enrolled_photos = sorted(p.stem for p in (raw / "faces" / person.name).glob("*"))
        enrolled_clips = list((raw / "voices" / person.name).glob("*.wav"))
        probe_clips = sorted(p.stem for p in (raw / "probes" / "voices" / person.name).glob("*"))
        if person.member:
            assert enrolled_photos == ["happy", "normal", "surprised"]
            assert len(enrolled_clips) == 2 * len(ENROL_TAKES)
            wrong = [c for c in probe_clips if c.startswith(f"digit{split.wrong_phrase}_")]
            assert len(wrong) == len(takes)
            assert len(probe_clips) == len(wrong) + 2 * (len(takes) - len(ENROL_TAKES))
        else:
            assert not enrolled_photos and not enrolled_clips
            assert len(probe_clips) == 2 * len(takes)
        assert (raw / "probes" / "faces" / person.name).is_dir()


@pytest.mark.slow
@pytest.mark.shared
def test_one_tiny_split_runs_through_the_product(tmp_path: Path) -> None:
    datasets = require_shared()
    split = draw_split("dev", 0, seed=0)
    fast = {"face_augment.copies": 0, "voice_augment.copies": 0, "models.cv_splits": 2}
    cache = tmp_path / "cache"
    cache.mkdir()
    result = run_split(
        tmp_path / "ws",
        split,
        fast,
        cache,
        photos=datasets / "yalefaces",
        recordings=datasets / "fsdd" / "recordings",
        takes=range(7),
    )
    assert {"genuine", "stranger_face", "cross_member", "wrong_phrase"} <= set(result["campaigns"])
    table = pooled([result])
    assert list(table) == [name for name in CAMPAIGN_ORDER if name in table]
    genuine = table["genuine"]["overall"]
    # Every member's probe photos and clips (2 phrases x takes 5 and 6) are used at least once.
    assert genuine.trials >= 4 * 2 * 2
    assert table["replay"]["overall"].count == table["replay"]["overall"].trials
    assert len(result["attempts"]) == sum(c["attempts"] for c in result["campaigns"].values())
