import os
from pathlib import Path

import pytest

from engine.core.fileio import _current_umask, atomic_write_text, file_sha256, json_sha256
from engine.core.workspace import member_folders, resolve_workspace


def test_workspace_option_beats_environment_beats_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MMAUTH_WORKSPACE", raising=False)
    assert resolve_workspace().root == tmp_path.resolve()
    monkeypatch.setenv("MMAUTH_WORKSPACE", str(tmp_path / "env"))
    assert resolve_workspace().root == (tmp_path / "env").resolve()
    assert resolve_workspace(tmp_path / "flag").root == (tmp_path / "flag").resolve()


def test_layout_paths_follow_the_contract(tmp_path: Path) -> None:
    space = resolve_workspace(tmp_path)
    assert space.probe_faces_dir == tmp_path / "data/raw/probes/faces"
    assert space.members_file == tmp_path / "data/raw/customers/members.csv"
    assert space.relative(tmp_path / "data/raw/faces/ana/a.png") == "data/raw/faces/ana/a.png"
    assert space.relative(Path("/elsewhere/x.png")) == "/elsewhere/x.png"


def test_member_folders_skip_hidden_entries(tmp_path: Path) -> None:
    for name in ("ana/b.png", "ana/a.png", "ana/.DS_Store", ".trash/x.png", "bo/c.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    folders = member_folders(tmp_path)
    assert list(folders) == ["ana", "bo"]
    assert [p.name for p in folders["ana"]] == ["a.png", "b.png"]
    assert member_folders(tmp_path / "absent") == {}


def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")

    class Boom(Exception):
        pass

    def failing() -> str:
        raise Boom

    with pytest.raises(Boom):
        from engine.core.fileio import atomic_open

        with atomic_open(target) as handle:
            handle.write("half")
            failing()
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]  # no temporary file left behind


def test_hashes_are_stable(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"abc")
    assert file_sha256(tmp_path / "a").startswith("ba7816bf")
    assert json_sha256({"b": 1, "a": 2}) == json_sha256({"a": 2, "b": 1})


def test_atomic_outputs_get_ordinary_permissions(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "out.csv", "a,b\n")
    expected = 0o666 & ~_current_umask()
    assert (tmp_path / "out.csv").stat().st_mode & 0o777 == expected != 0o600
