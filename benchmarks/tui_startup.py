"""Start-up time of mmauth-tui in a real terminal: launch to the first screen drawn.

    .venv/bin/python -m benchmarks.tui_startup [--runs 7] [--workspace DIR]

Each run starts `mmauth-tui WORKSPACE` in a fresh detached tmux session of 100x30 cells and polls
the pane (every 5 ms) until the Stats screen's frame is on it (its tab bar and the footer), then
until the workspace statistics are filled in (a line naming missing inputs or "Every input is
present."). Prints the median and range of both over the runs. Without --workspace an empty
temporary workspace is used. Needs tmux.

The machine is shared and its load varies, so the same runs also time a floor: a bare Textual
app (a Static reading "Overview" and a Footer) started the same way, interleaved with the
mmauth-tui runs; the ratio of the medians says what mmauth-tui adds to Textual's own start-up.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOCKET = "mmauth-tui-startup"
FRAME_MARKERS = ("Overview", "palette")
STATS_MARKERS = ("is missing: run", "Every input is present.")
TIMEOUT_S = 30.0
BARE_APP = (
    "from textual.app import App\n"
    "from textual.widgets import Footer, Static\n"
    "class Bare(App):\n"
    "    def compose(self):\n"
    "        yield Static('Overview\\nEvery input is present.')\n"
    "        yield Footer()\n"
    "Bare().run()\n"
)


def tmux(*arguments: str) -> str:
    """Run a tmux command on the benchmark's own server and return its output."""
    done = subprocess.run(
        ["tmux", "-L", SOCKET, *arguments], capture_output=True, text=True, check=False
    )
    return done.stdout


def time_one_launch(command: list[str], session: str) -> tuple[float, float]:
    """Seconds from launch until the frame is drawn, and until the statistics are shown."""
    started = time.perf_counter()
    subprocess.run(
        [
            "tmux",
            "-L",
            SOCKET,
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "100",
            "-y",
            "30",
            *command,
        ],
        check=True,
    )
    frame_s = None
    try:
        while time.perf_counter() - started < TIMEOUT_S:
            pane = tmux("capture-pane", "-p", "-t", session)
            now = time.perf_counter() - started
            if frame_s is None and all(marker in pane for marker in FRAME_MARKERS):
                frame_s = now
            if frame_s is not None and any(marker in pane for marker in STATS_MARKERS):
                return frame_s, now
            time.sleep(0.005)
        raise RuntimeError(f"mmauth-tui did not draw its first screen within {TIMEOUT_S} s")
    finally:
        tmux("kill-session", "-t", session)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workspace", type=Path, default=None)
    arguments = parser.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("tmux is not installed (apt-get install tmux)")
    executable = Path(sys.executable).with_name("mmauth-tui")
    with tempfile.TemporaryDirectory(prefix="mmauth-tui-bench-") as scratch:
        workspace = arguments.workspace or Path(scratch)
        command = [str(executable), str(workspace)]
        # A server kept alive between runs, so its own start-up is not timed.
        tmux("new-session", "-d", "-s", "keepalive", "-x", "100", "-y", "30", "sleep 600")
        try:
            # One untimed launch warms the file-system cache, as a person's second start would be.
            bare = [sys.executable, "-c", BARE_APP]
            time_one_launch(command, "warmup")
            time_one_launch(bare, "warmup-bare")
            runs, floor = [], []
            for index in range(arguments.runs):
                runs.append(time_one_launch(command, f"run{index}"))
                floor.append(time_one_launch(bare, f"bare{index}")[0])
        finally:
            tmux("kill-server")
    frames = [frame for frame, _ in runs]
    stats = [shown for _, shown in runs]
    print(f"mmauth-tui {workspace} in tmux 100x30, {arguments.runs} runs (after 1 warm-up)")
    for name, values in (
        ("first screen drawn", frames),
        ("statistics shown", stats),
        ("bare Textual app", floor),
    ):
        print(
            f"{name:>19}: median {statistics.median(values):.2f} s "
            f"(min {min(values):.2f}, max {max(values):.2f})"
        )
    ratio = statistics.median(frames) / statistics.median(floor)
    print(f"first screen / bare Textual app: {ratio:.2f}x")


if __name__ == "__main__":
    main()
