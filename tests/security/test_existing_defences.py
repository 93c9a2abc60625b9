"""What already held when tried as an attacker, kept holding: bad files of every kind,
decompression bombs, path tricks, concurrent logins all logged, a corrupt database failing
closed. On the real trained sample workspace."""

from __future__ import annotations

import os
import struct
import threading
import zlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import create_app
from engine.auth.flow import Authenticator
from engine.auth.operator import verify_audit
from engine.auth.store import open_store
from engine.auth.words import Reason, Step
from engine.core.settings import load_settings
from engine.core.workspace import Workspace
from tests.security.helpers import attempt, genuine_pair

pytestmark = pytest.mark.slow
runner = CliRunner()
DENIED_FOR_THE_FILE = {Reason.BAD_INPUT, Reason.NO_FACE, Reason.NO_SPEECH, Reason.UNKNOWN_FACE}


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header states ``width`` x ``height`` pixels, with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


def bad_photos(folder: Path, good: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "empty": b"",
        "random bytes": os.urandom(4096),
        "text": b"GRANTED alice\n" * 20,
        "truncated": good.read_bytes()[: len(good.read_bytes()) // 3],
        "bomb over Pillow's limit": png_header(20_000, 20_000),
        "bomb over max_pixels": png_header(8_000, 8_000),
    }
    paths = {}
    for label, data in files.items():
        path = folder / f"{label.replace(' ', '_')}.png"
        path.write_bytes(data)
        paths[label] = path
    paths["a folder"] = folder
    paths["missing"] = folder / "nope.png"
    link = folder / "dev_zero.png"
    link.symlink_to("/dev/zero")
    paths["link to /dev/zero"] = link
    return paths


def bad_recordings(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"empty": b"", "random bytes": os.urandom(8192), "text": b"yes approve\n" * 50}
    paths = {}
    for label, data in files.items():
        path = folder / f"{label.replace(' ', '_')}.wav"
        path.write_bytes(data)
        paths[label] = path
    return paths


def test_bad_files_are_denied_never_crash(trained: Workspace, tmp_path: Path) -> None:
    face, voice = genuine_pair(trained)
    settings = load_settings(trained.root)
    authenticator = Authenticator(trained, settings)
    for label, photo in bad_photos(tmp_path / "photos", face).items():
        decision = authenticator.authenticate(photo, voice)
        assert not decision.granted and decision.reason in DENIED_FOR_THE_FILE, (label, decision)
    for label, recording in bad_recordings(tmp_path / "clips").items():
        decision = authenticator.authenticate(face, recording)
        assert not decision.granted and decision.reason in DENIED_FOR_THE_FILE, (label, decision)
        # A bad recording is the voice step's (or the input step's) to report, not replay's.
        failed = [
            s.name for s in decision.steps if s.status == "failed" and s.name != Step.DECISION
        ]
        assert failed in ([Step.INPUT], [Step.VOICE]), (label, failed)


def test_bombs_are_refused_in_our_words(trained: Workspace, tmp_path: Path) -> None:
    face, voice = genuine_pair(trained)
    photos = bad_photos(tmp_path / "photos", face)
    for label in ("bomb over Pillow's limit", "bomb over max_pixels"):
        decision = attempt(trained, photos[label], voice)
        assert decision.reason == Reason.BAD_INPUT
        assert "face.max_pixels" in decision.message and "exceeds limit" not in decision.message
        assert photos[label].name in decision.message  # the refusal names its file


def test_path_names_are_only_names(trained: Workspace, tmp_path: Path) -> None:
    face, voice = genuine_pair(trained)
    odd = tmp_path / "--face=..;rm -rf ~" / "$(whoami) `id` ..\\x.png"
    odd.parent.mkdir(parents=True)
    odd.write_bytes(face.read_bytes())
    decision = attempt(trained, odd, voice)
    assert decision.granted and decision.member == "alice"


def test_eight_concurrent_logins_eight_rows(trained: Workspace) -> None:
    face, voice = genuine_pair(trained)
    authenticator = Authenticator(trained, load_settings(trained.root))
    authenticator.authenticate(face, voice)  # warm: models and replay index loaded
    decisions = []

    def one() -> None:
        decisions.append(authenticator.authenticate(face, voice))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(decisions) == 8 and all(d.granted for d in decisions)
    assert open_store(trained).count_attempts() == 9
    assert verify_audit(trained).intact


def test_corrupt_database_fails_closed(trained: Workspace) -> None:
    face, voice = genuine_pair(trained)
    trained.database.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):  # the write-ahead log would still hold the real pages
        Path(f"{trained.database}{suffix}").unlink(missing_ok=True)
    result = runner.invoke(
        create_app(),
        ["authenticate", "--face", str(face), "--voice", str(voice), "-w", str(trained.root)],
    )
    assert result.exit_code == 1
    assert "DENIED" in result.stdout and "audit" in result.stdout
    assert "attempt #None" not in result.stdout and "not written to the audit log" in result.stdout
