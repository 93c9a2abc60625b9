"""mmauth-tui in a real terminal: started inside tmux, driven by keys, read off the pane."""

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

from engine.core.workspace import Workspace


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


def wait_for(socket: str, session: str, *texts: str, timeout: float = 30.0) -> str:
    """The pane once every text is on it; fails with the pane's content after ``timeout``."""
    deadline = time.monotonic() + timeout
    pane = ""
    while time.monotonic() < deadline:
        pane = pane_text(socket, session)
        if all(text in pane for text in texts):
            return pane
        time.sleep(0.1)
    raise AssertionError(f"{texts} not on the pane after {timeout} s:\n{pane}")


def send(socket: str, session: str, *keys: str) -> None:
    subprocess.run(["tmux", "-L", socket, "send-keys", "-t", session, *keys], check=True)


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

    send(socket, session, "3")
    pane = wait_for(socket, session, "Photo", "Clip", "Files", "Decision", "Pick a photo")
    assert "raw" in pane and "probes" in pane

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
