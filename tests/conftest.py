"""Fixtures shared by every test layer: temporary workspaces and the real shared datasets."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.core.installation import CONFIG_DIR_ENV, KEY_FILE_ENV
from engine.core.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"


def require_shared(name: str = "") -> Path:
    """Path of ../shared/datasets[/name]; skip when absent, fail when MMAUTH_REQUIRE_SHARED=1."""
    path = SHARED_DATASETS / name if name else SHARED_DATASETS
    if not path.exists():
        message = f"real dataset {path} is absent"
        if os.environ.get("MMAUTH_REQUIRE_SHARED") == "1":
            pytest.fail(f"{message} and MMAUTH_REQUIRE_SHARED=1")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session", autouse=True)
def installation_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This installation's folder (signing key, outside records) in a temporary folder for the
    whole session: no test writes to the real home. Through XDG_CONFIG_HOME, which subprocess
    tests inherit and the MMAUTH_* clean-ups of other fixtures leave alone."""
    folder = tmp_path_factory.mktemp("config")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(folder))
        patch.delenv(CONFIG_DIR_ENV, raising=False)
        patch.delenv(KEY_FILE_ENV, raising=False)
        yield folder / "mmauth"


@pytest.fixture
def shared_datasets() -> Path:
    return require_shared()


@pytest.fixture
def shared_customers() -> Path:
    return require_shared("customers")


@pytest.fixture
def shared_yalefaces() -> Path:
    return require_shared("yalefaces")


@pytest.fixture
def shared_fsdd() -> Path:
    return require_shared("fsdd/recordings")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """An empty workspace in a temporary folder, with no MMAUTH_* settings leaking in."""
    for variable in list(os.environ):
        if variable.startswith("MMAUTH_") and variable != "MMAUTH_REQUIRE_SHARED":
            monkeypatch.delenv(variable)
    root = tmp_path / "workspace"
    root.mkdir()
    return Workspace(root=root)


def copy_tree(source: Path, target: Path) -> Path:
    """A copy of a workspace folder that may be in use (copy2: sizes and modification times
    kept, so the stored sample fingerprints stay valid). Its audit database is copied through
    SQLite's backup, a consistent snapshot: copied as files, its write-ahead log can vanish
    mid-copy (checkpointed when another test's last connection is collected) or be copied out
    of step with the database."""
    import shutil
    import sqlite3

    live = ("mmauth.db", "mmauth.db-wal", "mmauth.db-shm")
    ignore = shutil.ignore_patterns(*live)
    shutil.copytree(source, target, dirs_exist_ok=True, copy_function=shutil.copy2, ignore=ignore)
    if (source / live[0]).is_file():
        with (
            contextlib.closing(sqlite3.connect(source / live[0])) as database,
            contextlib.closing(sqlite3.connect(target / live[0])) as copy,
        ):
            database.backup(copy)
    return target


def copy_workspace(source: Path, target: Path) -> Workspace:
    """A copy of the workspace at ``source`` (modification times kept, so the stored sample
    fingerprints stay valid), its models recorded as this installation's for the copy, as
    ``mmauth models trust`` records them: a copy is a new workspace to the installation, which
    refuses models it has no record of making for it."""
    from engine.core.fileio import file_sha256
    from engine.models.signing import record_trusted_manifest

    copy = Workspace(root=copy_tree(source, target))
    if copy.manifest.is_file():
        record_trusted_manifest(copy, file_sha256(copy.manifest))
    return copy
