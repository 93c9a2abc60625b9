"""Worker processes under the app: started safely, and never writing over the screen.

Feature extraction and simulation run on loky or dask worker processes when ``jobs`` > 1. Two
things go wrong if they start while Textual owns the terminal:

- Textual replaces ``sys.stderr`` with an object whose ``fileno()`` is -1; the resource trackers
  of loky and of multiprocessing (used by dask) pass ``sys.stderr.fileno()`` to the child they
  spawn on first use, and ``_posixsubprocess`` refuses -1 ("bad value(s) in fds_to_keep").
- Every child inherits file descriptors 1 and 2, the terminal: a worker's warning or log line
  would be drawn over the app.

So while the app runs, descriptors 1 and 2 point at a log file and the app draws on private
copies of the terminal's descriptors; before the first long work, both resource trackers are
started with ``sys.stderr`` pointed at the log for that moment (Session.prepare_processes).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

STANDARD_DESCRIPTORS = (1, 2)


def worker_log_path() -> Path:
    """Where the output of the app's worker processes goes (one file per user, rewritten at
    each start)."""
    return Path(tempfile.gettempdir()) / f"mmauth-tui-{os.getuid()}.log"


def start_resource_trackers(log_path: Path) -> None:
    """Start loky's and multiprocessing's resource trackers now, with ``sys.stderr`` a real file
    (the log) while they spawn; later workers reuse them instead of spawning them from a worker
    thread while Textual's stderr is in place. Imports joblib: not for the start-up path."""
    from multiprocessing import resource_tracker

    from joblib.externals.loky.backend import resource_tracker as loky_resource_tracker

    with log_path.open("a", encoding="utf-8") as log, contextlib.redirect_stderr(log):
        resource_tracker.ensure_running()
        loky_resource_tracker.ensure_running()


def _terminal_copy(descriptor: int, like: TextIO) -> TextIO:
    """A text stream on a private (non-inheritable) copy of a terminal descriptor."""
    return open(  # noqa: SIM115 - closed by the caller when the app ends
        os.dup(descriptor),
        "w",
        encoding=like.encoding,
        errors=like.errors,
        buffering=1,
    )


@contextlib.contextmanager
def child_output_to(log_path: Path) -> Iterator[None]:
    """Inside: processes started by this one write their standard output and error to
    ``log_path``, and ``sys.__stdout__``/``sys.__stderr__`` (which Textual draws on and sizes
    itself by) are copies of the terminal. Everything is put back on exit."""
    if sys.__stdout__ is None or sys.__stderr__ is None:
        yield
        return
    streams = (sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr)
    for stream in streams:
        stream.flush()
    saved = {descriptor: os.dup(descriptor) for descriptor in STANDARD_DESCRIPTORS}
    terminal_out = _terminal_copy(1, sys.__stdout__)
    terminal_err = _terminal_copy(2, sys.__stderr__)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for descriptor in STANDARD_DESCRIPTORS:
            os.dup2(log, descriptor)
        # sys.__stdout__ and sys.__stderr__ are meant to be constant; here they must follow
        # the terminal, which Textual finds through them.
        for name, stream in (("stdout", terminal_out), ("stderr", terminal_err)):
            setattr(sys, f"__{name}__", stream)
            setattr(sys, name, stream)
        yield
    finally:
        os.close(log)
        for stream in (terminal_out, terminal_err):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        for descriptor, copy in saved.items():
            os.dup2(copy, descriptor)
            os.close(copy)
        for name, stream in zip(
            ("__stdout__", "__stderr__", "stdout", "stderr"), streams, strict=True
        ):
            setattr(sys, name, stream)
        terminal_out.close()
        terminal_err.close()
