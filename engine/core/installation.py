"""What this installation keeps outside every workspace: its signing key and, per workspace,
the state an attacker who can write the workspace must not be able to rewrite.

The folder is ``$MMAUTH_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/mmauth``, else
``~/.config/mmauth``. It holds:

- ``signing.key``: 32 random bytes (hex), created on first use with mode 0600; the models'
  manifest is signed with it (engine.models.signing). ``$MMAUTH_KEY_FILE`` names another file,
  for CI or for a team that shares one key.
- ``workspaces/<id>/``: one folder per workspace, ``id`` derived from the workspace's resolved
  path, holding the last models manifest signed for it and the audit log's chain head and
  lockouts (engine.auth.chain). A workspace that moves is a new workspace to this installation.
- ``workspaces/retired/<id>-<UTC time>/``: the records of a workspace that was deleted, moved
  there when a new sample workspace is written into its emptied folder (``retire_records``).

Nothing here is read at import time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
from pathlib import Path
from typing import Any

from engine.core.errors import ConfigError

CONFIG_DIR_ENV = "MMAUTH_CONFIG_DIR"
KEY_FILE_ENV = "MMAUTH_KEY_FILE"
KEY_FILE_NAME = "signing.key"
KEY_BYTES = 32
# Others must not read the key (whoever reads it can sign models) and nobody but its owner may
# replace it; a group may read it, for a team that shares one key.
_UNSAFE_KEY_MODE = stat.S_IROTH | stat.S_IWOTH | stat.S_IWGRP


def config_dir() -> Path:
    """The installation's folder (not created here)."""
    chosen = os.environ.get(CONFIG_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "mmauth"


def key_file() -> Path:
    """Where the signing key lives: ``$MMAUTH_KEY_FILE``, else ``signing.key`` in config_dir()."""
    chosen = os.environ.get(KEY_FILE_ENV)
    return Path(chosen).expanduser() if chosen else config_dir() / KEY_FILE_NAME


def signing_key() -> bytes:
    """The installation's secret, created (mode 0600) on first use.

    Raises ConfigError when the file is unreadable, malformed, or others may read or replace it.
    """
    path = key_file()
    if not path.exists() and KEY_FILE_ENV not in os.environ:
        _create_key(path)
    try:
        info = path.stat()
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"cannot read the signing key {path}: {getattr(error, 'strerror', error)}; "
            f"{KEY_FILE_ENV} names the key file"
        ) from error
    if info.st_mode & _UNSAFE_KEY_MODE:
        raise ConfigError(
            f"the signing key {path} can be read or replaced by other users (mode "
            f"{stat.filemode(info.st_mode)}): run chmod 600 {path}"
        )
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ConfigError(
            f"{path} is not an mmauth signing key (expected {KEY_BYTES * 2} hex digits)"
        )
    return key


def _create_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # ~/.config itself stays as is
    text = secrets.token_hex(KEY_BYTES) + "\n"
    # Written whole under a private name, then linked into place: another process or thread
    # using the key at the same moment sees no key or the whole key, never a partial one.
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    try:
        _write_new(draft, text)
        os.link(draft, path)
    except FileExistsError:
        pass  # another process created it first: use theirs
    except OSError:
        # A file system without hard links (vfat, some network mounts): the name is taken
        # exclusively and written, as before; a reader may then meet a partial key once.
        with contextlib.suppress(FileExistsError):
            _write_new(path, text)
    finally:
        draft.unlink(missing_ok=True)


def _write_new(path: Path, text: str) -> None:
    """Create ``path`` (mode 0600; FileExistsError if it exists) holding ``text``, on disk."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def key_id(key: bytes) -> str:
    """A short public name for a key (16 hex digits), safe to write into manifests and logs."""
    return hmac.new(key, b"mmauth key id", hashlib.sha256).hexdigest()[:16]


def installation_mac(purpose: str, payload: bytes, key: bytes | None = None) -> str:
    """HMAC-SHA256 (hex) of ``payload`` under the installation's key, for records kept in the
    workspace that must prove this installation wrote them; ``purpose`` keeps the key's uses
    apart (a seal made for one kind of record never verifies as another)."""
    key = signing_key() if key is None else key
    return hmac.new(key, purpose.encode("ascii") + b"\0" + payload, hashlib.sha256).hexdigest()


_PATH_NOTE = "workspace.txt"


def _state_dir_of(workspace_root: Path) -> tuple[Path, str]:
    resolved = str(Path(workspace_root).resolve())
    folder = config_dir() / "workspaces" / hashlib.sha256(resolved.encode()).hexdigest()[:24]
    return folder, resolved


def workspace_state_dir(workspace_root: Path) -> Path:
    """This installation's folder for one workspace (created on demand, mode 0700)."""
    folder, resolved = _state_dir_of(workspace_root)
    for private in (config_dir(), folder.parent, folder):
        private.mkdir(parents=True, exist_ok=True, mode=0o700)
    path_note = folder / _PATH_NOTE
    if not path_note.exists():
        path_note.write_text(resolved + "\n", encoding="utf-8")
    return folder


def retire_records(workspace_root: Path) -> Path | None:
    """Move this installation's records of a workspace (its audit log's head and lockouts, its
    trusted models) to ``workspaces/retired/``, and return where they went (None when there
    were none).

    For a new workspace written into the emptied folder of a deleted one: the records describe
    the deleted workspace, so checked against the new one they would stop every login with
    "audit log deleted". They are moved, not deleted: a workspace an attacker emptied keeps its
    evidence, and the caller says where it is.
    """
    folder, _ = _state_dir_of(workspace_root)
    if not folder.is_dir():
        return None
    if not any(entry.suffix == ".json" for entry in folder.iterdir()):
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    retired = folder.parent / "retired" / f"{folder.name}-{stamp}"
    retired.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.replace(folder, retired)
    return retired


def read_state(path: Path) -> dict[str, Any] | None:
    """A JSON state file of workspace_state_dir(), None when absent; ConfigError when damaged."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(
            f"this installation's record {path} is unreadable ({error}); it guards the "
            "workspace's models and audit log, so nothing is trusted until it is repaired"
        ) from error
    if not isinstance(value, dict):
        raise ConfigError(f"this installation's record {path} is not a JSON object")
    return value


def write_state(path: Path, value: dict[str, Any]) -> None:
    """Replace a state file atomically (a reader sees the old or the new file, never a mix).

    Not fsynced, like the audit store's commits (synchronous=NORMAL): a crash of mmauth keeps
    it, a power cut may lose the last update, which then shows as a mismatch to acknowledge.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, path)
