"""Worker processes started while the app runs: no 'bad value(s) in fds_to_keep', and their
output goes to the log, not over the screen."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Run in a fresh interpreter: the resource trackers must not be running yet, as in the app.
SCRIPT = """
import sys, threading
from pathlib import Path
from tui.child_processes import child_output_to, start_resource_trackers


class TextualLikeStderr:
    # What Textual puts in sys.stderr while it runs: writes are captured, fileno() is -1.
    def write(self, text): return len(text)
    def flush(self): pass
    def fileno(self): return -1


def work(outcome):
    import joblib
    from dask.distributed import Client, LocalCluster
    try:
        loky = joblib.Parallel(n_jobs=2)(joblib.delayed(print)("loky worker") for _ in range(4))
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.submit(print, "dask worker").result()
        outcome.append(f"ran {len(loky)}")
    except Exception as error:
        outcome.append(f"{type(error).__name__}: {error}")


def run(prepare=None):
    outcome = []
    terminal = sys.stdout
    sys.stderr = TextualLikeStderr()
    for target, arguments in ((prepare, ()), (work, (outcome,))):
        if target is not None:  # each from a worker thread, one after the other, as in the app
            thread = threading.Thread(target=target, args=arguments)
            thread.start()
            thread.join()
    sys.stderr = sys.__stderr__
    terminal.write(outcome[0] + "\\n")


if sys.argv[1] == "app":
    log = Path(sys.argv[2])
    with child_output_to(log):
        run(prepare=lambda: start_resource_trackers(log))
else:
    run()
"""


def run_script(mode: str, log: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(log)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=Path(__file__).parents[2],
    )


@pytest.mark.parametrize("mode", ["bare", "app"])
def test_worker_processes_start_from_a_thread_while_stderr_is_replaced(
    tmp_path: Path, mode: str
) -> None:
    log = tmp_path / "workers.log"
    done = run_script(mode, log)
    if mode == "bare":
        # The failure the app had: the trackers start lazily and pass fileno() -1 on.
        assert "bad value(s) in fds_to_keep" in done.stdout, done.stdout + done.stderr
        return
    assert done.stdout.strip() == "ran 4", done.stdout + done.stderr
    # The workers' own output went to the log, none of it to the terminal.
    assert "loky worker" not in done.stdout and "dask worker" not in done.stdout
    assert "loky worker" in log.read_text()
