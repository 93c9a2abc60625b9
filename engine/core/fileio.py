"""Atomic writes and content hashes: an output is either whole and in place, or not there."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from engine.core.errors import OutputError

_HASH_CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it is fsynced and renamed into place.

    OutputError (naming ``path``) when it cannot be: the file is then left as it was. An error
    of the body is raised as it is (it may be a reading error).
    """
    path = Path(path)
    handle_fd, temp_name = _temporary_beside(path)
    try:
        with os.fdopen(handle_fd, mode, **kwargs) as handle:
            yield handle
            _settle(handle, path)
        _replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def atomic_write_files(
    files: Mapping[Path, bytes],
    *,
    remove: Iterable[Path] = (),
    then: Callable[[], None] | None = None,
) -> None:
    """Replace ``files`` (in their order), delete ``remove`` and call ``then``, all or nothing.

    Each file is written whole to a temporary twin before the first one is replaced; should a
    replacement, a removal or ``then`` fail, the files already replaced or removed get their
    previous content back. OutputError names the file that could not be written. A crash
    part-way can still leave a mix (the previous files stay beside them, hidden).
    """
    remove = [Path(path) for path in remove]
    for path in remove:
        if path.is_dir():
            raise OutputError(path, "it is a folder, not a file")
    staged: dict[Path, str] = {}
    try:
        for path, data in files.items():
            staged[Path(path)] = _staged_copy(Path(path), data)
    except BaseException:
        _discard(staged.values())
        raise
    done: list[tuple[Path, str | None]] = []  # replaced or removed, with its previous file
    try:
        for path, temp_name in staged.items():
            previous = _keep_previous(path, f"{temp_name}.previous")
            try:
                _replace(temp_name, path)
            except BaseException:
                _discard([] if previous is None else [previous])  # the file is as it was
                raise
            done.append((path, previous))
        for path in remove:
            if os.path.lexists(path):
                previous = _keep_previous(path, _unused_name(path, ".removed"))
                try:
                    _unlink(path)
                except BaseException:
                    _discard([] if previous is None else [previous])
                    raise
                done.append((path, previous))
        if then is not None:
            try:
                then()
            except OSError as error:
                if error.filename is None:
                    raise
                raise _cannot_write(Path(error.filename), error) from error
    except BaseException:
        for path, previous in reversed(done):
            with contextlib.suppress(OSError):
                if previous is None:
                    path.unlink(missing_ok=True)
                else:
                    os.replace(previous, path)
        _discard(staged.values())
        raise
    _discard(previous for _, previous in done if previous is not None)


def _temporary_beside(path: Path) -> tuple[int, str]:
    """An open temporary file in ``path``'s folder (made if missing), ordinary permissions."""
    if path.is_dir():
        raise OutputError(path, "it is a folder, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle_fd, temp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
    except OSError as error:
        raise _cannot_write(path, error) from error
    try:
        # mkstemp creates 0600 files; outputs get the permissions a plain open() would give.
        os.chmod(temp_name, 0o666 & ~_current_umask())
    except OSError as error:
        os.close(handle_fd)
        os.unlink(temp_name)
        raise _cannot_write(path, error) from error
    return handle_fd, temp_name


def check_writable(*paths: Path) -> None:
    """OutputError now, naming the path and why, when an output of long work could not be
    written at its end (a file where its folder must be, a folder in its place, no permission).
    Nothing is left behind: where the folder exists a temporary file is made in it and
    removed; where it does not, the nearest folder that exists must allow making it."""
    for path in paths:
        if path.parent.is_dir():
            handle_fd, temp_name = _temporary_beside(path)
            os.close(handle_fd)
            os.unlink(temp_name)
            continue
        existing = next(folder for folder in path.parents if os.path.lexists(folder))
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise _cannot_write(path, PermissionError(errno.EACCES, "permission denied"))


def _staged_copy(path: Path, data: bytes) -> str:
    """A temporary twin of ``path`` holding ``data``, on disk (fsynced); its name."""
    handle_fd, temp_name = _temporary_beside(path)
    try:
        with os.fdopen(handle_fd, "wb") as handle:
            _write(handle, data, path)
            _settle(handle, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    return temp_name


def _keep_previous(path: Path, previous: str) -> str | None:
    """A second name for ``path``'s current file (``previous``), or None when there is none."""
    if not os.path.lexists(path):
        return None
    try:
        os.link(path, previous, follow_symlinks=False)
    except OSError:
        # File systems without hard links: a copy does too.
        try:
            shutil.copy2(path, previous, follow_symlinks=False)
        except OSError as error:
            raise _cannot_write(path, error) from error
    return previous


def _unused_name(path: Path, suffix: str) -> str:
    try:
        handle_fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as error:
        raise _cannot_write(path, error) from error
    os.close(handle_fd)
    os.unlink(name)
    return name


def _discard(names: Iterable[str]) -> None:
    for name in names:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _write(handle: IO[Any], data: Any, path: Path) -> None:
    try:
        handle.write(data)
    except OSError as error:
        raise _cannot_write(path, error) from error


def _settle(handle: IO[Any], path: Path) -> None:
    try:
        handle.flush()
        os.fsync(handle.fileno())
    except OSError as error:
        raise _cannot_write(path, error) from error


def _replace(temp_name: str, path: Path) -> None:
    try:
        os.replace(temp_name, path)
    except OSError as error:
        raise _cannot_write(path, error) from error


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError as error:
        raise _cannot_write(path, error) from error


def _cannot_write(path: Path, error: OSError) -> OutputError:
    """The OutputError for an OSError met writing ``path``, with a reason a person can act on."""
    for folder in reversed(path.parents):
        if os.path.lexists(folder) and not folder.is_dir():
            return OutputError(path, in_the_way=folder)
    if path.is_dir():
        return OutputError(path, "it is a folder, not a file")
    if isinstance(error, PermissionError):
        return OutputError(path, "permission denied")
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(path, "no space left on the disk")
    reason = error.strerror or str(error) or type(error).__name__
    return OutputError(path, reason[:1].lower() + reason[1:])


@functools.cache
def _current_umask() -> int:
    # The umask can only be read by setting it; do it once per process, not per write, so
    # threads writing at the same time never see the temporary value.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def json_bytes(value: Any) -> bytes:
    """``value`` as atomic_write_json writes it."""
    return (json.dumps(value, indent=2, sort_keys=False, default=str) + "\n").encode("utf-8")


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        _write(handle, text, Path(path))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        _write(handle, data, Path(path))


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_bytes(path, json_bytes(value))


def atomic_write_csv(path: Path, frame: Any) -> None:
    """Write a pandas DataFrame as CSV (no index) atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        try:
            frame.to_csv(handle, index=False, lineterminator="\n")
        except OSError as error:
            raise _cannot_write(Path(path), error) from error


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (bounded memory)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def json_sha256(value: Any) -> str:
    """Hex SHA-256 of a value's canonical JSON: a stable key for parameters."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
