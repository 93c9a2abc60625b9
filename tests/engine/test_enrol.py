"""Enrolment: name validation, refusing files and destinations that escape the workspace,
atomic copies, members.csv, the store, listing and removal."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from engine.auth.enrol import (
    enrol_member,
    enroll_member,
    list_members,
    remove_member,
)
from engine.auth.enrol_files import (
    ReplacementRefusedError,
    destination_name,
    validate_member_name,
)
from engine.auth.store import AuditStore
from engine.core.errors import AcquisitionError, EnrolmentError, MultipleFacesError
from engine.core.settings import Settings
from engine.core.workspace import Workspace
from engine.customers import read_members
from tests.engine.replay_fixtures import blob_image, syllables, write_audio, write_image

SETTINGS = Settings()


@pytest.mark.parametrize("name", ["alice", "Bob_2", "carol-smith", "d.e", "_x", "a" * 64])
def test_valid_names(name: str) -> None:
    assert validate_member_name(name) == name


@pytest.mark.parametrize(
    "name, why",
    [
        ("", "empty"),
        ("..", "'..'"),
        ("a..b", "'..'"),
        ("../evil", "separator"),
        ("a/b", "separator"),
        ("a\\b", "separator"),
        (".hidden", "starts with a dot"),
        ("-dash", "may only use"),
        ("space name", "may only use"),
        ("semi;colon", "may only use"),
        ("nul\x00byte", "may only use"),
        ("é", "may only use"),
        ("a" * 65, "at most 64"),
    ],
)
def test_invalid_names_are_refused(name: str, why: str) -> None:
    with pytest.raises(EnrolmentError, match=why):
        validate_member_name(name)


def test_destination_names_are_made_safe() -> None:
    assert destination_name(Path("/x/my photo (1).JPG")) == "my_photo__1_.JPG"
    assert destination_name(Path("/x/.hidden.wav")) == "hidden.wav"


def install_fake_pipelines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Extraction stand-ins: files named no_face*/silent* fail to acquire, the rest pass."""
    import engine.faces.extract
    import engine.voices.extract

    def face_vector(path: Path, settings: Settings) -> np.ndarray:
        if Path(path).name.startswith("no_face"):
            raise AcquisitionError("no face found in the photo", path=str(path))
        return np.ones(4)

    def voice_sample(path: Path, settings: Settings) -> SimpleNamespace:
        if Path(path).name.startswith("silent"):
            raise AcquisitionError("no speech: the recording is silent", path=str(path))
        return SimpleNamespace(
            vector=np.ones(3), mfcc_sequence=np.ones((5, 2)), phrase_hint="hello"
        )

    monkeypatch.setattr(engine.faces.extract, "face_vector", face_vector)
    monkeypatch.setattr(engine.voices.extract, "voice_sample", voice_sample)


def enrolment_inputs(folder: Path) -> Path:
    write_image(folder / "front.png", blob_image(1))
    write_image(folder / "side.png", blob_image(2))
    write_image(folder / "no_face.png", blob_image(3))
    write_audio(folder / "hello_0.wav", syllables(1))
    write_audio(folder / "hello_1.wav", syllables(2))
    write_audio(folder / "silent_0.wav", np.zeros(16_000, dtype=np.float32))
    return folder


@pytest.fixture
def fake_pipelines(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_pipelines(monkeypatch)


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    return enrolment_inputs(tmp_path / "inputs")


def test_enrol_copies_files_records_samples_and_links_customer(
    workspace: Workspace, inputs: Path, fake_pipelines: None
) -> None:
    result = enrol_member(
        workspace,
        SETTINGS,
        "alice",
        faces=[inputs / "front.png", inputs / "side.png"],
        voices=[inputs / "hello_0.wav", inputs / "hello_1.wav"],
        customer_id="A100",
    )
    assert result.faces == ("data/raw/faces/alice/front.png", "data/raw/faces/alice/side.png")
    assert result.voices == (
        "data/raw/voices/alice/hello_0.wav",
        "data/raw/voices/alice/hello_1.wav",
    )
    assert (workspace.faces_dir / "alice" / "front.png").read_bytes() == (
        inputs / "front.png"
    ).read_bytes()
    assert result.model_updates == (
        "no models yet: run mmauth features, then mmauth train, to include this member",
    )
    assert read_members(workspace) == {"alice": "A100"}
    samples = AuditStore(workspace.database).samples("alice")
    assert len(samples) == 4 and all(s.fingerprint for s in samples)
    (listed,) = list_members(workspace)
    assert (listed.name, listed.faces, listed.voices, listed.phrases) == ("alice", 2, 2, ("hello",))
    assert listed.customer_id == "A100" and listed.enrolled_at is not None
    assert listed.in_face_model is None
    assert not list((workspace.faces_dir / "alice").glob(".*.tmp"))


def test_enroll_spelling_is_the_same_function() -> None:
    assert enroll_member is enrol_member


def test_a_photo_with_several_faces_fails_enrolment_naming_the_file(
    workspace: Workspace, inputs: Path, fake_pipelines: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.faces.extract

    def face_vector(path: Path, settings: Settings) -> np.ndarray:
        # As the real detectors raise it: the error does not know the file.
        raise MultipleFacesError("failure to acquire (FTA): 2 faces of comparable size")

    monkeypatch.setattr(engine.faces.extract, "face_vector", face_vector)
    with pytest.raises(EnrolmentError, match="file front.png: .*2 faces of comparable size"):
        enrol_member(
            workspace,
            SETTINGS,
            "alice",
            faces=[inputs / "front.png"],
            voices=[inputs / "hello_0.wav"],
        )
    assert not workspace.faces_dir.exists()


def test_failure_to_enrol_changes_nothing(
    workspace: Workspace, inputs: Path, fake_pipelines: None
) -> None:
    with pytest.raises(EnrolmentError, match="no face found.*\n.*silent") as raised:
        enrol_member(
            workspace,
            SETTINGS,
            "alice",
            faces=[inputs / "front.png", inputs / "no_face.png"],
            voices=[inputs / "silent_0.wav"],
        )
    assert "nothing was changed" in str(raised.value)
    assert not workspace.faces_dir.exists() and not workspace.voices_dir.exists()
    assert not workspace.members_file.exists()


def test_a_name_differing_only_in_case_is_refused(
    workspace: Workspace, inputs: Path, fake_pipelines: None
) -> None:
    enrol_member(workspace, SETTINGS, "ana", [inputs / "front.png"], [inputs / "hello_0.wav"])
    with pytest.raises(EnrolmentError, match="'Ana' differs only in case from .* 'ana'"):
        enrol_member(workspace, SETTINGS, "Ana", [inputs / "side.png"], [inputs / "hello_1.wav"])
    assert sorted(p.name for p in workspace.faces_dir.iterdir()) == ["ana"]


def test_new_member_needs_both_modalities(workspace: Workspace, inputs: Path) -> None:
    with pytest.raises(EnrolmentError, match="at least one photo and one recording"):
        enrol_member(workspace, SETTINGS, "alice", faces=[inputs / "front.png"])


def test_symlink_out_of_the_workspace_is_refused(
    workspace: Workspace, inputs: Path, fake_pipelines: None, tmp_path: Path
) -> None:
    link = tmp_path / "link.png"
    link.symlink_to(inputs / "front.png")
    with pytest.raises(EnrolmentError, match="symbolic link.*outside the workspace"):
        enrol_member(workspace, SETTINGS, "alice", faces=[link], voices=[inputs / "hello_0.wav"])
    assert not workspace.faces_dir.exists()


def test_symlink_inside_the_workspace_is_accepted(
    workspace: Workspace, inputs: Path, fake_pipelines: None
) -> None:
    inside = workspace.root / "incoming" / "front.png"
    inside.parent.mkdir()
    inside.write_bytes((inputs / "front.png").read_bytes())
    link = workspace.root / "incoming" / "link.png"
    link.symlink_to(inside)
    result = enrol_member(
        workspace, SETTINGS, "alice", faces=[link], voices=[inputs / "hello_0.wav"]
    )
    copied = workspace.faces_dir / "alice" / "link.png"
    assert result.faces == ("data/raw/faces/alice/link.png",)
    assert not copied.is_symlink() and copied.read_bytes() == inside.read_bytes()


def test_destination_that_escapes_is_refused(
    workspace: Workspace, inputs: Path, fake_pipelines: None, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    workspace.faces_dir.parent.mkdir(parents=True)
    os.symlink(outside, workspace.faces_dir)
    with pytest.raises(EnrolmentError, match="leads outside the workspace"):
        enrol_member(
            workspace,
            SETTINGS,
            "alice",
            faces=[inputs / "front.png"],
            voices=[inputs / "hello_0.wav"],
        )
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    "problem, make",
    [
        ("no such file", lambda folder: folder / "missing.png"),
        ("not a regular file", lambda folder: folder),
        ("is empty", lambda folder: _empty(folder / "empty.png")),
    ],
)
def test_unusable_input_files_are_named(
    workspace: Workspace, inputs: Path, fake_pipelines: None, problem: str, make
) -> None:
    bad = make(inputs)
    with pytest.raises(EnrolmentError, match=problem):
        enrol_member(workspace, SETTINGS, "alice", faces=[bad], voices=[inputs / "hello_0.wav"])


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def test_duplicate_file_names_are_refused(
    workspace: Workspace, inputs: Path, fake_pipelines: None, tmp_path: Path
) -> None:
    other = tmp_path / "other" / "front.png"
    write_image(other, blob_image(9))
    with pytest.raises(EnrolmentError, match="same file name"):
        enrol_member(
            workspace,
            SETTINGS,
            "alice",
            faces=[inputs / "front.png", other],
            voices=[inputs / "hello_0.wav"],
        )


def test_unknown_customer_is_refused_when_customers_are_merged(
    workspace: Workspace, inputs: Path
) -> None:
    workspace.merged_dataset.parent.mkdir(parents=True)
    workspace.merged_dataset.write_text("customer_id,x,preferred_category\nA1,1,Books\n")
    with pytest.raises(EnrolmentError, match="customer 'A2' is not in"):
        enrol_member(workspace, SETTINGS, "alice", customer_id="A2")


def test_update_replaces_files_and_keeps_others(
    workspace: Workspace, inputs: Path, fake_pipelines: None
) -> None:
    enrol_member(
        workspace, SETTINGS, "alice", faces=[inputs / "front.png"], voices=[inputs / "hello_0.wav"]
    )
    replacement = inputs / "again" / "front.png"
    write_image(replacement, blob_image(7))
    result = enrol_member(
        workspace, SETTINGS, "alice", faces=[replacement, inputs / "side.png"], replace=True
    )
    assert result.replaced == 1
    assert (workspace.faces_dir / "alice" / "front.png").read_bytes() == replacement.read_bytes()
    assert (workspace.voices_dir / "alice" / "hello_0.wav").exists()


def test_replacing_a_file_needs_to_be_asked_for(
    workspace: Workspace, inputs: Path, fake_pipelines: None
) -> None:
    enrol_member(
        workspace, SETTINGS, "alice", faces=[inputs / "front.png"], voices=[inputs / "hello_0.wav"]
    )
    before = {p: p.read_bytes() for p in workspace.raw_dir.rglob("*") if p.is_file()}
    replacement = inputs / "again" / "front.png"
    write_image(replacement, blob_image(7))
    write_audio(inputs / "again" / "hello_0.wav", syllables(5))
    with pytest.raises(ReplacementRefusedError) as raised:
        enrol_member(
            workspace,
            SETTINGS,
            "alice",
            faces=[replacement, inputs / "side.png"],
            voices=[inputs / "again" / "hello_0.wav"],
        )
    assert raised.value.files == (
        "data/raw/faces/alice/front.png",
        "data/raw/voices/alice/hello_0.wav",
    )
    assert isinstance(raised.value, EnrolmentError)
    assert raised.value.lines[1:] == (
        "  data/raw/faces/alice/front.png",
        "  data/raw/voices/alice/hello_0.wav",
    )
    # Nothing changed: not the files, nor the new one that replaced nothing.
    after = {p: p.read_bytes() for p in workspace.raw_dir.rglob("*") if p.is_file()}
    assert after == before


def test_failed_model_update_restores_the_files(
    workspace: Workspace, inputs: Path, fake_pipelines: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.auth.enrol

    enrol_member(
        workspace, SETTINGS, "alice", faces=[inputs / "front.png"], voices=[inputs / "hello_0.wav"]
    )
    original = (workspace.faces_dir / "alice" / "front.png").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(engine.auth.enrol, "_update_models_after_enrol", broken)
    replacement = inputs / "again" / "front.png"
    write_image(replacement, blob_image(7))
    with pytest.raises(OSError, match="disk full"):
        enrol_member(
            workspace, SETTINGS, "alice", faces=[replacement, inputs / "side.png"], replace=True
        )
    assert (workspace.faces_dir / "alice" / "front.png").read_bytes() == original
    assert not (workspace.faces_dir / "alice" / "side.png").exists()


def test_remove_member(workspace: Workspace, inputs: Path, fake_pipelines: None) -> None:
    for name, face, voice in (
        ("alice", "front.png", "hello_0.wav"),
        ("bob", "side.png", "hello_1.wav"),
    ):
        enrol_member(
            workspace,
            SETTINGS,
            name,
            faces=[inputs / face],
            voices=[inputs / voice],
            customer_id="C1",
        )
    result = remove_member(workspace, SETTINGS, "alice")
    assert result.files_removed == 2 and result.customer_link_removed
    assert not (workspace.faces_dir / "alice").exists()
    assert read_members(workspace) == {"bob": "C1"}
    assert [m.name for m in list_members(workspace)] == ["bob"]
    assert AuditStore(workspace.database).samples("alice") == []
    assert not [p for p in workspace.root.iterdir() if p.name.startswith("mmauth-remove-")]
    with pytest.raises(EnrolmentError, match="no member named 'alice'"):
        remove_member(workspace, SETTINGS, "alice")
    with pytest.raises(EnrolmentError, match="'..'"):
        remove_member(workspace, SETTINGS, "..")


def _face_table(workspace: Workspace, rows: list[tuple[str, str, str]], width: int = 4) -> None:
    """data/image_features.csv with enrolment rows (member, source, augmentation); each
    member's rows near a direction of their own."""
    import pandas as pd

    table = pd.DataFrame(rows, columns=["member", "source", "augmentation"])
    member_index = table["member"].astype("category").cat.codes.to_numpy()
    noise = np.random.default_rng(0).normal(0, 0.01, (len(rows), width))
    vectors = np.eye(width)[member_index] + noise
    table["role"], table["backend"] = "enrol", "dlib"
    table[[f"feature_{i}" for i in range(width)]] = vectors
    workspace.image_features.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(workspace.image_features, index=False)


class _Gallery(SimpleNamespace):
    """Stands in for the dlib FaceIdentifier: records what enrol is given."""

    def enrol(self, name: str, X: np.ndarray, groups: np.ndarray, augmented: np.ndarray) -> object:
        self.enrolled = (name, X.shape, list(groups), list(augmented))
        return self


def test_new_face_templates_come_from_the_refreshed_table_with_their_flags(
    workspace: Workspace,
) -> None:
    """The dlib model takes the member's new rows of data/image_features.csv (the table training
    reads, so a later mmauth train keeps the member) with their augmented copies flagged, so
    that its held-out figures never score a copy as an attempt."""
    from engine.auth.enrol import _add_face_templates, _dlib_face_rows

    new = ["data/raw/faces/carol/a.png", "data/raw/faces/carol/b.png"]
    rows = [("bob", "data/raw/faces/bob/x.png", "original")]
    rows += [("carol", source, kind) for source in new for kind in ("original", "flip")]
    _face_table(workspace, rows)
    gallery = _Gallery(templates_=np.ones((2, 4)))
    table = _dlib_face_rows(workspace, gallery)
    model = _add_face_templates(table, gallery, "carol", new)
    assert model.enrolled == ("carol", (4, 4), [new[0], new[0], new[1], new[1]], [False, True] * 2)
    assert table.check("carol") == (0, [])

    with pytest.raises(EnrolmentError, match="c.png got no face features"):
        _add_face_templates(table, gallery, "carol", [*new, "data/raw/faces/carol/c.png"])
    # Features of another backend (another width) cannot be templates of the dlib model.
    with pytest.raises(EnrolmentError, match="not the dlib embeddings"):
        _dlib_face_rows(workspace, _Gallery(templates_=np.ones((2, 128))))


def test_the_face_check_names_what_concerns_the_member_and_counts_everything(
    workspace: Workspace,
) -> None:
    """After an in-place dlib update the check runs over the whole gallery: the count is the
    one training would write; the notes are on the member's misfiled photos, and another's
    photo that looks like the member, not on unrelated old misfits."""
    from engine.auth.enrol import _dlib_face_rows

    rows = [
        (m, f"data/raw/faces/{m}/{i}.png", "original")
        for m in ("ann", "bob", "cy", "di")
        for i in range(3)
    ]
    _face_table(workspace, rows)
    table = _dlib_face_rows(workspace, _Gallery(templates_=np.ones((2, 4))))
    # ann's photo 0 shows bob; cy's photo 0 shows di.
    for index, looks_like in ((0, 3), (6, 9)):
        table.features[index] = table.features[looks_like]
    count, concern = table.check("bob")
    assert count == 2
    assert [(m.source, m.member, m.closer_to) for m in concern] == [
        ("data/raw/faces/ann/0.png", "ann", "bob")
    ]
    assert [m.source for m in table.check("cy")[1]] == ["data/raw/faces/cy/0.png"]
    assert table.check("eve") == (2, [])
