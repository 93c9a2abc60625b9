"""mmauth-tui in a real terminal: started inside tmux, driven by keys, read off the pane.

The long flows (Simulate, Enrol then Auth, Train with a cancel) run on the sample workspace with
the settings its mmauth.toml writes (jobs = 2: worker processes), at 120x40 and at 80x24.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.auth.store import open_store
from engine.core.workspace import Workspace
from tests.conftest import copy_workspace


@pytest.fixture
def tmux_session() -> Iterator[tuple[str, str]]:
    """A private tmux server socket and session name; the server is killed afterwards."""
    if shutil.which("tmux") is None:
        if os.environ.get("MMAUTH_REQUIRE_SHARED") == "1":
            pytest.fail("tmux is not installed and MMAUTH_REQUIRE_SHARED=1")
        pytest.skip("tmux is not installed")
    socket = f"mmauth-test-{uuid.uuid4().hex[:8]}"
    yield socket, "tui"
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)


def pane_text(socket: str, session: str) -> str:
    done = subprocess.run(
        ["tmux", "-L", socket, "capture-pane", "-p", "-t", session],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout


def wait_for(
    socket: str,
    session: str,
    *texts: str,
    timeout: float = 30.0,
    alternatives: tuple[str, ...] = (),
) -> str:
    """The pane once every text is on it, or any of ``alternatives`` is; fails with the pane's
    content after ``timeout``."""
    deadline = time.monotonic() + timeout
    pane = ""
    while time.monotonic() < deadline:
        pane = pane_text(socket, session)
        if all(text in pane for text in texts) or any(text in pane for text in alternatives):
            return pane
        time.sleep(0.1)
    raise AssertionError(f"{texts} not on the pane after {timeout} s:\n{pane}")


def send(socket: str, session: str, *keys: str) -> None:
    """Send keys (or, after ``-l``, text); then pause as a person would: keys arriving in the
    same read as typed text are taken by the terminal parser as part of a paste."""
    subprocess.run(["tmux", "-L", socket, "send-keys", "-t", session, *keys], check=True)
    time.sleep(0.3)


def test_mmauth_tui_reaches_authenticate_in_tmux(
    tmux_session: tuple[str, str], small_workspace: Workspace
) -> None:
    socket, session = tmux_session
    executable = Path(sys.executable).with_name("mmauth-tui")
    assert executable.exists(), "mmauth-tui is not installed (pip install -e .)"
    subprocess.run(
        ["tmux", "-L", socket, "new-session", "-d", "-s", session, "-x", "100", "-y", "30"]
        + ["-e", "TERM=xterm-256color", str(executable), str(small_workspace.root)],
        check=True,
    )
    wait_for(socket, session, "Overview", "Every input is present.", "ana", "A101")

    send(socket, session, "F4")
    pane = wait_for(socket, session, "Photo", "Clip", "Files", "Pick a photo")
    assert "probes" in pane and "faces" in pane

    # Escape puts the focus on the file tree whatever the screen focused first; Tab moves on to
    # the photo's path.
    send(socket, session, "Escape")
    time.sleep(0.3)
    send(socket, session, "Tab")
    send(socket, session, "-l", "data/raw/probes/faces/ana/dim.png")
    wait_for(socket, session, "faces/ana/dim.png")
    send(socket, session, "Enter")  # previews the photo and moves on to the clip's path
    wait_for(socket, session, "\u2580")  # the photo's half-block preview
    send(socket, session, "-l", "data/raw/probes/voices/ana/yes_approve_3.wav")
    wait_for(socket, session, "yes_approve_3.wav")
    send(socket, session, "Enter")  # previews the clip and moves on to Run
    pane = wait_for(socket, session, "0.80 s clip, speech")
    send(socket, session, "C-r")
    pane = wait_for(socket, session, "DENIED (models_missing)")
    assert "Traceback" not in pane

    send(socket, session, "C-q")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = subprocess.run(
            ["tmux", "-L", socket, "has-session", "-t", session], capture_output=True, check=False
        )
        if alive.returncode != 0:
            break
        time.sleep(0.1)
    else:
        pytest.fail("mmauth-tui did not quit on ctrl+q")


SIZES = [pytest.param((120, 40), id="120x40"), pytest.param((80, 24), id="80x24")]
ERROR_MARKS = ("Unexpected error", "fds_to_keep", "Traceback", "Error")


def launch(socket: str, session: str, workspace: Workspace, size: tuple[int, int]) -> None:
    """Start mmauth-tui on the workspace in a detached tmux session of ``size`` cells."""
    executable = Path(sys.executable).with_name("mmauth-tui")
    width, height = size
    subprocess.run(
        ["tmux", "-L", socket, "new-session", "-d", "-s", session]
        + ["-x", str(width), "-y", str(height), "-e", "TERM=xterm-256color"]
        + [str(executable), str(workspace.root)],
        check=True,
    )
    wait_for(socket, session, "Overview", "F6", timeout=60)


def assert_no_error(pane: str) -> None:
    shown = [mark for mark in ERROR_MARKS if mark in pane]
    assert not shown, f"{shown} on the screen:\n{pane}"


def copy_of(workspace: Workspace, tmp_path: Path) -> Workspace:
    return copy_workspace(workspace.root, tmp_path / "sample")


def still(socket: str, session: str, seconds: float = 1.5) -> str:
    """The pane once it stays the same for ``seconds`` (nothing animating any more)."""
    deadline = time.monotonic() + 30
    pane = pane_text(socket, session)
    while time.monotonic() < deadline:
        time.sleep(seconds)
        again = pane_text(socket, session)
        if again == pane:
            return pane
        pane = again
    raise AssertionError(f"the screen keeps changing:\n{pane}")


@pytest.mark.parametrize("size", SIZES)
def test_simulate_runs_on_worker_processes_and_cancels(
    tmux_session: tuple[str, str], default_sample: Workspace, tmp_path: Path, size: tuple[int, int]
) -> None:
    socket, session = tmux_session
    workspace = copy_of(default_sample, tmp_path)
    # Without cached features every probe goes through the worker processes.
    shutil.rmtree(workspace.cache_dir)
    launch(socket, session, workspace, size)
    send(socket, session, "F5")
    wait_for(socket, session, "Runs every probe")
    send(socket, session, "C-r")
    pane = wait_for(
        socket, session, "authorised success", "genuine", "bad_input", "system rate", timeout=300
    )
    assert_no_error(pane)
    assert "Last simulation" not in pane and "/tmp" not in pane
    assert (workspace.reports_dir / "simulation.json").is_file()

    send(socket, session, "C-r")
    time.sleep(0.3)
    send(socket, session, "Escape")
    pane = wait_for(socket, session, "cancelled", timeout=120)
    assert_no_error(pane)
    pane = still(socket, session)
    assert "genuine" in pane  # the last finished run's rates stay


@pytest.mark.parametrize("size", SIZES)
def test_enrol_then_authenticate_as_the_new_member(
    tmux_session: tuple[str, str], default_sample: Workspace, tmp_path: Path, size: tuple[int, int]
) -> None:
    socket, session = tmux_session
    workspace = copy_of(default_sample, tmp_path)
    newcomer = "mallory"  # the sample's stranger, with probes to enrol and to authenticate
    faces = sorted(workspace.relative(p) for p in (workspace.probe_faces_dir / newcomer).iterdir())
    voices = sorted(
        workspace.relative(p) for p in (workspace.probe_voices_dir / newcomer).iterdir()
    )
    enrol_faces = faces[:2]
    enrol_voices = [v for v in voices if v.endswith("_1.wav")]
    probe_face, probe_voice = faces[2], voices[1]  # neither was enrolled
    assert probe_face not in enrol_faces and probe_voice not in enrol_voices
    launch(socket, session, workspace, size)

    # Each step waits for the screen to show the last one, as a person looks before typing on:
    # on a loaded machine a key sent ahead can reach a field before the focus has moved.
    send(socket, session, "F7")
    wait_for(socket, session, "Enrol a member", "Add file")
    send(socket, session, "-l", newcomer)  # the name field has the focus
    wait_for(socket, session, f"Name      {newcomer}")
    for _ in range(2):  # past the customer id, to the file's path
        send(socket, session, "Tab")
        time.sleep(1.0)
    photos = clips = 0
    for path in [*enrol_faces, *enrol_voices]:
        send(socket, session, "-l", path)
        wait_for(socket, session, path)
        send(socket, session, "Enter")
        photos, clips = (photos, clips + 1) if path.endswith(".wav") else (photos + 1, clips)
        wait_for(socket, session, f"{photos} photos", f"{clips} clips")
    send(socket, session, "C-r")
    pane = wait_for(socket, session, f"{newcomer} is enrolled", timeout=180)
    assert_no_error(pane)
    assert (workspace.faces_dir / newcomer).is_dir()

    send(socket, session, "F4")
    wait_for(socket, session, "Pick a photo")
    send(socket, session, "Escape")
    time.sleep(1.0)
    send(socket, session, "Tab")
    time.sleep(1.0)
    send(socket, session, "-l", probe_face)
    wait_for(socket, session, Path(probe_face).name)  # the field scrolls to its end
    send(socket, session, "Enter")  # previews the photo and moves on to the clip
    wait_for(socket, session, "\u2580")
    time.sleep(1.0)
    send(socket, session, "-l", probe_voice)
    wait_for(socket, session, Path(probe_voice).name)
    send(socket, session, "Enter")
    wait_for(socket, session, "s clip, speech")
    send(socket, session, "C-r")
    pane = wait_for(socket, session, "GRANTED", timeout=120, alternatives=("DENIED (",))
    assert_no_error(pane)
    banner = decision_banner(pane)
    # The face is recognised as the new member (the voice may still hold the attempt up).
    assert "unknown_face" not in banner and "Could not run" not in banner, pane
    (attempt,) = open_store(workspace).history(limit=1)
    assert attempt.identified_member == newcomer
    assert attempt.face_path.endswith(probe_face) and attempt.voice_path.endswith(probe_voice)


def decision_banner(pane: str) -> str:
    """The decision banner's words, its wrapped lines joined (the file tree's column cut off)."""
    lines = pane.splitlines()
    start = next(i for i, line in enumerate(lines) if "GRANTED" in line or "DENIED (" in line)
    words = []
    for line in lines[start:-1]:  # the last line is the footer
        text = line.rsplit("\u2595", 1)[-1].strip()
        if not text:
            break
        words.append(text)
    return " ".join(words)


@pytest.mark.parametrize("size", SIZES)
def test_train_then_cancel_a_second_run(
    tmux_session: tuple[str, str], default_sample: Workspace, tmp_path: Path, size: tuple[int, int]
) -> None:
    socket, session = tmux_session
    workspace = copy_of(default_sample, tmp_path)
    launch(socket, session, workspace, size)
    send(socket, session, "F3")
    wait_for(socket, session, "Saved models", "face", "voice", "product")
    send(socket, session, "C-r")
    pane = wait_for(socket, session, "Models trained and saved", timeout=400)
    assert_no_error(pane)
    assert "train.product" in pane and "nan" not in pane

    send(socket, session, "C-r")
    time.sleep(1.0)
    send(socket, session, "Escape")
    pane = wait_for(socket, session, "cancelled", timeout=200)
    assert_no_error(pane)
    # Nothing goes on animating once the run stopped; the saved metrics are back.
    pane = still(socket, session)
    assert "Saved models" in pane and "nan" not in pane
