"""The enrolment check: files closer to another member or phrase than to their own are named,
with what they do and what to do; clean enrolments are not."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.models.enrolment_check import (
    MAX_NOTES,
    Misfit,
    enrolment_notes,
    face_misfits,
    misfits,
    voice_misfits,
)
from tests.conftest import require_shared


def _clusters(rng: np.random.Generator, centres: np.ndarray, per_group: int) -> np.ndarray:
    return np.repeat(centres, per_group, axis=0) + rng.normal(
        0, 0.05, (len(centres) * per_group, 8)
    )


def test_a_sample_of_another_group_is_named_with_its_figures() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8))
    rows = _clusters(rng, centres, 3)
    rows[1] = centres[2] + rng.normal(0, 0.05, 8)  # ana's second photo shows eve
    members = ["ana"] * 3 + ["ben"] * 3 + ["eve"] * 3
    sources = [f"{m}/{i}.png" for i, m in enumerate(members)]
    found = face_misfits(rows, members, sources)
    assert [(m.source, m.member, m.closer_to) for m in found] == [("ana/1.png", "ana", "eve")]
    assert found[0].other > found[0].own and found[0].gap == found[0].other - found[0].own


def test_blocks_of_photos_find_what_one_block_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gallery is checked a block of rows at a time: the blocks' seams change nothing."""
    from engine.models import enrolment_check

    rng = np.random.default_rng(2)
    centres = np.eye(8)[:4]
    rows = _clusters(rng, centres, 3)
    rows[4] = centres[0] + rng.normal(0, 0.05, 8)  # ben's second photo shows ana
    rows[10] = centres[2] + rng.normal(0, 0.05, 8)  # dan's second photo shows eve
    members = np.repeat(["ana", "ben", "eve", "dan"], 3).tolist()
    sources = [f"{m}/{i}.png" for i, m in enumerate(members)]
    whole = face_misfits(rows, members, sources)
    assert [m.source for m in whole] == ["ben/4.png", "dan/10.png"]
    monkeypatch.setattr(enrolment_check, "BLOCK_ROWS", 5)
    assert face_misfits(rows, members, sources) == whole


def test_clean_groups_and_lone_samples_are_not_named() -> None:
    rng = np.random.default_rng(1)
    rows = _clusters(rng, rng.normal(size=(3, 8)), 3)
    members = ["ana"] * 3 + ["ben"] * 3 + ["eve"] * 3
    assert face_misfits(rows, members, [str(i) for i in range(9)]) == []
    # A member with one photo has nothing of their own to compare it with.
    lone = np.vstack([rows[:6], rows[0]])
    assert face_misfits(lone, ["ana"] * 3 + ["ben"] * 3 + ["cid"], list("abcdefg")) == []
    # One group only: no other group to be closer to.
    assert misfits("face", np.ones((3, 3)), ["ana"] * 3, ["x", "y", "z"], 0.0) == []


def test_the_margin_decides_how_much_closer_counts() -> None:
    # Sample 1 is 0.05 closer to group b (0.85) than to the other sample of a (0.80).
    similarity = np.array(
        [
            [1.0, 0.80, 0.85, 0.85],
            [0.80, 1.0, 0.5, 0.5],
            [0.85, 0.5, 1.0, 0.9],
            [0.85, 0.5, 0.9, 1.0],
        ]
    )
    groups, sources = ["a", "a", "b", "b"], ["1", "2", "3", "4"]
    assert [m.source for m in misfits("face", similarity, groups, sources, 0.0)] == ["1"]
    assert misfits("face", similarity, groups, sources, 0.1) == []


def test_a_take_of_the_other_phrase_is_named_by_its_words() -> None:
    rng = np.random.default_rng(2)
    words = {"yes": rng.normal(size=(12, 4)), "confirm": rng.normal(size=(15, 4))}
    voices = {"ana": rng.normal(size=6), "ben": rng.normal(size=6), "eve": rng.normal(size=6)}
    members, phrases, sequences, vectors = [], [], [], []
    for member, voice in voices.items():
        for phrase in ("yes", "confirm"):
            for _ in range(3):
                members.append(member)
                phrases.append(phrase)
                sequences.append(words[phrase] + rng.normal(0, 0.1, words[phrase].shape))
                vectors.append(voice + rng.normal(0, 0.05, 6))
    sources = [f"{m}/{p}_{i}.wav" for i, (m, p) in enumerate(zip(members, phrases, strict=True))]
    assert voice_misfits(np.array(vectors), members, phrases, sequences, sources) == []
    sequences[1] = words["confirm"] + rng.normal(0, 0.1, words["confirm"].shape)
    found = voice_misfits(np.array(vectors), members, phrases, sequences, sources)
    assert [(m.kind, m.source, m.member, m.group, m.closer_to) for m in found] == [
        ("phrase", sources[1], "ana", "yes", "confirm")
    ]


def test_notes_say_what_the_file_does_and_what_to_do() -> None:
    found = [
        Misfit("face", f"data/raw/faces/ana/{i}.png", "ana", "ana", "ben", 0.90, 0.95)
        for i in range(MAX_NOTES + 2)
    ]
    notes = enrolment_notes("face", found)
    assert len(notes) == MAX_NOTES + 1
    assert notes[0].startswith("face: data/raw/faces/ana/0.png, enrolled as ana, looks more like")
    assert "ben's enrolment photos (mean cosine 0.950)" in notes[0] and "(0.900)" in notes[0]
    assert "mmauth features and mmauth train" in notes[0]
    assert notes[-1].startswith("face: 2 more enrolment file(s)") and "Enrolment check" in notes[-1]
    assert enrolment_notes("voice", []) == []


@pytest.mark.slow
@pytest.mark.shared
def test_misfiled_real_files_are_named_by_training(tmp_path: Path) -> None:
    """Real people (Yale + FSDD) through the product's features and training: a clean
    enrolment gets no enrolment note; another member's photo and take, and a take of the other
    phrase, filed under a member, are each named, by training and by mmauth enroll."""
    from benchmarks.shared_workspace import SPEAKERS, arrange
    from engine.auth.enrol import enrol_member, list_members, remove_member
    from engine.core.settings import load_settings
    from engine.core.workspace import Workspace
    from engine.faces.extract import extract_face_features
    from engine.models.loading import load_model_bundle
    from engine.models.training import train_models
    from engine.voices.extract import extract_voice_features

    datasets = require_shared()
    recordings, yale = datasets / "fsdd" / "recordings", datasets / "yalefaces"

    def trained_notes(root: Path) -> tuple[dict[str, int], list[str]]:
        (root / "mmauth.toml").write_text(
            "[face_augment]\ncopies = 0\n[voice_augment]\ncopies = 0\n[models]\ncv_splits = 2\n"
        )
        workspace, settings = Workspace(root), load_settings(root)
        extract_face_features(workspace, settings)
        extract_voice_features(workspace, settings)
        result = train_models(workspace, settings, which=("face", "voice"))
        counts = {
            name: entry["metrics"]["enrolment_misfits"]
            for name, entry in result.manifest["models"].items()
        }
        return counts, [note for note in result.notes if "enrolled as" in note]

    def face_misfit_count(root: Path) -> int:
        manifest = load_model_bundle(Workspace(root), require=()).manifest
        return int(manifest["models"]["face"]["metrics"]["enrolment_misfits"])

    clean = arrange(tmp_path / "clean", members=3, strangers=0, probe_takes=(5,), datasets=datasets)
    assert trained_notes(clean.root) == ({"face": 0, "voice": 0}, [])

    # Enrolling adds dlib templates without retraining: the check runs there too. The
    # newcomer's third photo is person01's.
    newcomer = tmp_path / "newcomer"
    newcomer.mkdir()
    photos = {"subject04.normal": "a.gif", "subject04.happy": "b.gif", "subject01.sad": "c.gif"}
    for photo, copy in photos.items():
        shutil.copyfile(yale / photo, newcomer / copy)
    takes = [recordings / f"1_{SPEAKERS[3]}_{take}.wav" for take in range(4)]
    for index, take in enumerate(takes):
        shutil.copyfile(take, newcomer / f"one_{index}.wav")
    enrolled = enrol_member(
        Workspace(clean.root),
        load_settings(clean.root),
        "newcomer",
        faces=[newcomer / name for name in photos.values()],
        voices=[newcomer / f"one_{index}.wav" for index in range(len(takes))],
    )
    face_notes = [n for n in enrolled.notes if n.startswith("face:")]
    assert len(face_notes) == 1, enrolled.notes
    assert face_notes[0].startswith(
        "face: data/raw/faces/newcomer/c.gif, enrolled as newcomer, looks more like person01's"
    )
    # The model's count is the whole gallery's again, as training would write it.
    assert face_misfit_count(clean.root) == 1
    # The face table was refreshed with the templates: retraining keeps the newcomer.
    train_models(Workspace(clean.root), load_settings(clean.root), which=("face",))
    listed = {m.name: m for m in list_members(Workspace(clean.root))}
    assert listed["newcomer"].in_face_model and listed["newcomer"].in_voice_model
    # And removing refreshes it too: retraining does not bring the member back.
    remove_member(Workspace(clean.root), load_settings(clean.root), "newcomer")
    assert face_misfit_count(clean.root) == 0
    train_models(Workspace(clean.root), load_settings(clean.root), which=("face",))
    assert "newcomer" not in {m.name for m in list_members(Workspace(clean.root))}
    # A newcomer's only photo has no other photo of theirs to be compared with: the face
    # model's own decision names it when it already takes the photo for a member.
    shutil.copyfile(yale / "subject02.wink", newcomer / "only.gif")
    lone = enrol_member(
        Workspace(clean.root),
        load_settings(clean.root),
        "loner",
        faces=[newcomer / "only.gif"],
        voices=[newcomer / f"one_{index}.wav" for index in range(len(takes))],
    )
    lone_notes = [n for n in lone.notes if n.startswith("face:")]
    assert any(
        n.startswith(
            "face: data/raw/faces/loner/only.gif, enrolled as loner, is identified by the face "
            "model as person02"
        )
        for n in lone_notes
    ), lone.notes
    # The check over the gallery sees it from the other side: one of person02's photos now
    # looks more like the newcomer's than like person02's others.
    assert all(
        "is identified by the face model" in n or "looks more like loner's" in n for n in lone_notes
    ), lone_notes

    misfiled = arrange(
        tmp_path / "misfiled", members=3, strangers=0, probe_takes=(5,), datasets=datasets
    )
    raw = misfiled.root / "data" / "raw"
    swaps = {
        # person01 (subject01, george) gets person02's photo and take; person03 (lucas) a
        # take of "seven" filed as "one".
        raw / "faces" / "person01" / "subject01_happy.gif": yale / "subject02.sad",
        raw / "voices" / "person01" / "one_2.wav": recordings / f"1_{SPEAKERS[1]}_7.wav",
        raw / "voices" / "person03" / "one_3.wav": recordings / f"7_{SPEAKERS[2]}_8.wav",
    }
    for target, source in swaps.items():
        shutil.copyfile(source, target)
    counts, notes = trained_notes(misfiled.root)
    assert counts == {"face": 1, "voice": 2}, notes
    face_note, *voice_notes = notes
    assert face_note.startswith(
        "face: data/raw/faces/person01/subject01_happy.gif, enrolled as person01, looks more "
        "like person02's enrolment photos"
    )
    assert any(
        n.startswith(
            "voice: data/raw/voices/person01/one_2.wav, enrolled as person01, sounds "
            "more like person02's"
        )
        for n in voice_notes
    ), voice_notes
    assert any(
        n.startswith(
            "voice: data/raw/voices/person03/one_3.wav, enrolled as person03 saying one, "
            "is closer to person03's takes of seven"
        )
        for n in voice_notes
    ), voice_notes
