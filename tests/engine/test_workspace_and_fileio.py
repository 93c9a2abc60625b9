import errno
import os
import pickle
from pathlib import Path

import pytest

from engine.core import fileio
from engine.core.errors import OutputError
from engine.core.fileio import (
    _current_umask,
    atomic_write_bytes,
    atomic_write_files,
    atomic_write_json,
    atomic_write_text,
    check_writable,
    file_sha256,
    json_sha256,
)
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


def test_a_file_where_a_folder_must_be_is_named(tmp_path: Path) -> None:
    (tmp_path / "reports").write_text("not a folder")
    with pytest.raises(OutputError) as raised:
        atomic_write_text(tmp_path / "reports" / "sub" / "simulation.json", "{}")
    assert raised.value.in_the_way == tmp_path / "reports"
    assert raised.value.shown(lambda path: path.relative_to(tmp_path).as_posix()) == (
        "cannot write reports/sub/simulation.json: reports is a file, not a folder"
    )
    assert (tmp_path / "reports").read_text() == "not a folder"


def test_a_folder_where_the_file_goes_is_refused_before_writing(tmp_path: Path) -> None:
    (tmp_path / "out.json").mkdir()
    with pytest.raises(OutputError, match="out.json: it is a folder, not a file"):
        atomic_write_json(tmp_path / "out.json", {"a": 1})
    assert os.listdir(tmp_path) == ["out.json"] and not os.listdir(tmp_path / "out.json")


def test_check_writable_names_the_obstacle_and_leaves_nothing(tmp_path: Path) -> None:
    """The up-front check of long work's outputs refuses what the write would, and makes no
    file or folder either way."""
    check_writable(tmp_path / "out.json", tmp_path / "new" / "deeper" / "out.csv")
    assert os.listdir(tmp_path) == []
    (tmp_path / "reports").write_text("not a folder")
    with pytest.raises(OutputError) as raised:
        check_writable(tmp_path / "reports" / "sub" / "simulation.json")
    assert raised.value.in_the_way == tmp_path / "reports"
    (tmp_path / "out.json").mkdir()
    with pytest.raises(OutputError, match="out.json: it is a folder, not a file"):
        check_writable(tmp_path / "out.json")
    assert sorted(os.listdir(tmp_path)) == ["out.json", "reports"]


def test_check_writable_names_a_folder_that_takes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root every folder takes files, so the folder's answer is simulated.
    monkeypatch.setattr(fileio.os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(OutputError, match="new/out.json: permission denied"):
        check_writable(tmp_path / "new" / "out.json")
    assert os.listdir(tmp_path) == []


def test_a_folder_that_takes_no_file_gives_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(OutputError, match="out.txt: no space left on the disk"):
        atomic_write_bytes(tmp_path / "out.txt", b"abc")
    assert os.listdir(tmp_path) == []


def test_an_output_error_survives_a_process_boundary(tmp_path: Path) -> None:
    error = OutputError(tmp_path / "a" / "b.csv", in_the_way=tmp_path / "a")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.in_the_way, copy.message) == (error.path, error.in_the_way, str(error))


@pytest.fixture
def previous(tmp_path: Path) -> dict[str, bytes]:
    files = {"a.txt": b"old a", "c.txt": b"old c"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return files


def contents(folder: Path, hidden: bool = True) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in folder.iterdir()
        if hidden or not path.name.startswith(".")
    }


def test_several_files_are_replaced_and_removed_together(tmp_path: Path, previous) -> None:
    called = []
    atomic_write_files(
        {tmp_path / "a.txt": b"new a", tmp_path / "b.txt": b"new b"},
        remove=[tmp_path / "c.txt", tmp_path / "absent.txt"],
        then=lambda: called.append(contents(tmp_path, hidden=False)),
    )
    assert contents(tmp_path) == {"a.txt": b"new a", "b.txt": b"new b"}
    assert called == [{"a.txt": b"new a", "b.txt": b"new b"}]


def test_a_late_failure_puts_every_previous_file_back(
    tmp_path: Path, previous, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def refuse_b(source, target):
        if Path(target).name == "b.txt":
            raise OSError(errno.EIO, "Input/output error")
        return real_replace(source, target)

    monkeypatch.setattr(fileio.os, "replace", refuse_b)
    with pytest.raises(OutputError, match="b.txt: input/output error"):
        atomic_write_files({tmp_path / "a.txt": b"new a", tmp_path / "b.txt": b"new b"})
    monkeypatch.undo()
    assert contents(tmp_path) == previous  # a.txt back, no b.txt, no temporary left


def test_a_failing_last_step_undoes_replacements_and_removals(tmp_path: Path, previous) -> None:
    def record() -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "state.json"))

    with pytest.raises(OutputError, match="state.json: permission denied"):
        atomic_write_files(
            {tmp_path / "a.txt": b"new a", tmp_path / "b.txt": b"new b"},
            remove=[tmp_path / "c.txt"],
            then=record,
        )
    assert contents(tmp_path) == previous


def test_several_files_are_refused_before_any_is_replaced(tmp_path: Path, previous) -> None:
    (tmp_path / "b.txt").mkdir()
    with pytest.raises(OutputError, match="b.txt: it is a folder"):
        atomic_write_files({tmp_path / "a.txt": b"new a", tmp_path / "b.txt": b"new b"})
    (tmp_path / "b.txt").rmdir()
    assert contents(tmp_path) == previous
