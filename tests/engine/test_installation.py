"""The installation's signing key: created once, whole, however many use it at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine.core import installation


def _first_uses(threads: int) -> tuple[list[bytes], list[BaseException]]:
    """``signing_key()`` from several threads released at the same moment."""
    keys: list[bytes] = []
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def use() -> None:
        start.wait()
        try:
            keys.append(installation.signing_key())
        except BaseException as error:  # noqa: BLE001  (the test reports it)
            errors.append(error)

    running = [threading.Thread(target=use) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return keys, errors


def test_a_key_created_by_many_threads_at_once_is_one_whole_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent first logins each saw the file created but not yet written ("not an mmauth
    signing key"); now every one reads the same whole key, and no draft is left behind."""
    for round_ in range(20):
        folder = tmp_path / f"config{round_}"
        monkeypatch.setenv(installation.CONFIG_DIR_ENV, str(folder))
        keys, errors = _first_uses(8)
        assert not errors and len(set(keys)) == 1 and len(keys[0]) == installation.KEY_BYTES
        assert [p.name for p in folder.iterdir()] == [installation.KEY_FILE_NAME]
        assert (folder / installation.KEY_FILE_NAME).stat().st_mode & 0o777 == 0o600


def test_a_file_system_without_hard_links_still_gets_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    def no_links(_source: object, _target: object) -> None:
        raise OSError(errno.EPERM, "hard links are not supported here")

    monkeypatch.setenv(installation.CONFIG_DIR_ENV, str(tmp_path / "config"))
    monkeypatch.setattr(os, "link", no_links)
    key = installation.signing_key()
    assert len(key) == installation.KEY_BYTES and installation.signing_key() == key
    assert [p.name for p in (tmp_path / "config").iterdir()] == [installation.KEY_FILE_NAME]
