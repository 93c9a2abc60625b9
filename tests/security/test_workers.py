"""A killed `mmauth features` leaves no worker behind (loky and dask), and the next run
recovers: the cache holds only whole entries."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.security.processes import alive, descendants

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.sample.workspace import write_sample_workspace

    root = tmp_path_factory.mktemp("workers") / "sample"
    write_sample_workspace(root, members=3, strangers=1, seed=0)
    return root


def mmauth(*arguments: str) -> list[str]:
    return [sys.executable, "-c", "from cli.main import main; main()", *arguments]


@pytest.mark.parametrize("executor", ["loky", "dask"])
def test_killed_features_leaves_no_worker(sample_root: Path, executor: str) -> None:
    cache = sample_root / "data" / "processed" / "cache"
    shutil.rmtree(cache, ignore_errors=True)  # every run has work to be killed in
    command = mmauth("features", "-w", str(sample_root), "--jobs", "2", "--executor", executor)
    parent = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path.cwd()
    )
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 120
        # Wait until both workers run and have done some work (cache entries appear).
        while time.monotonic() < deadline and parent.poll() is None:
            workers = descendants(parent.pid)
            if len(workers) >= 2 and cache.is_dir() and any(cache.rglob("*.npz")):
                break
            time.sleep(0.2)
        assert parent.poll() is None, "features finished before it could be killed"
        assert len(workers) >= 2, f"no workers seen under {parent.pid}"
        workers = descendants(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in workers):
            time.sleep(0.2)
        survivors = [pid for pid in workers if alive(pid)]
        assert not survivors, f"processes left behind by the killed parent: {survivors}"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    rerun = subprocess.run(
        mmauth("features", "-w", str(sample_root), "--json"), capture_output=True, text=True
    )
    assert rerun.returncode in (0, 1), rerun.stderr
    assert '"cached"' in rerun.stdout
