"""The parallel, cached machinery that turns many files into feature rows (photos and recordings).

One implementation serves the face and the voice pipelines: a per-file function is run locally
(``jobs=1``), on joblib's loky processes, or on a dask.distributed cluster through joblib's dask
backend; results are cached on disk by the file's content hash and the parameters, so a re-run
only processes new or changed files. A file that fails is recorded with its reason and the rest
of the batch goes on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import AcquisitionError, MmauthError
from engine.core.fileio import atomic_write_bytes, file_sha256, json_sha256
from engine.core.progress import Progress, ProgressCallback, check_cancelled, no_progress

CACHE_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class BatchItem:
    """One input file and what it is for."""

    path: Path
    """The file to process."""
    label: str
    """The member the file belongs to (enrolment) or the probe's label."""
    role: str
    """``enrol`` for enrolment files, ``probe`` for files to authenticate."""
    source: str
    """The file's path as written in outputs (workspace-relative)."""


@dataclasses.dataclass
class ItemOutput:
    """What a per-file function returns: one record per output row (e.g. per augmentation)."""

    records: list[dict[str, Any]]
    """Plain JSON values describing each row (augmentation, emotion, phrase, ...)."""
    features: np.ndarray
    """Feature matrix, one row per record."""
    sequences: list[np.ndarray] = dataclasses.field(default_factory=list)
    """Optional frame-level arrays, one per record (e.g. MFCC sequences for DTW)."""


@dataclasses.dataclass
class ItemResult:
    """The outcome for one file: its rows, or the reason it failed."""

    item: BatchItem
    output: ItemOutput | None
    """None when the file failed."""
    error: str | None = None
    """Why the file failed, in words a person can act on."""
    cached: bool = False
    """True when the result came from the on-disk cache."""
    error_type: type[MmauthError] | None = None
    """The class of the error the file failed with (e.g. MultipleFacesError), so a consumer can
    raise the same kind of error a direct call would have; None for an unreadable file or an
    unexpected failure."""

    @property
    def acquisition_failure(self) -> bool:
        """True when the file was readable but held no usable sample (AcquisitionError: an FTA)."""
        return self.error_type is not None and issubclass(self.error_type, AcquisitionError)


@dataclasses.dataclass(frozen=True)
class ExecutionPlan:
    """Where the per-file work runs."""

    jobs: int = 1
    """Worker processes (loky) or the number of tasks in flight (dask)."""
    executor: str = "loky"
    """``loky`` or ``dask``."""
    scheduler: str = ""
    """dask scheduler address; empty starts a LocalCluster with ``jobs`` workers."""


ProcessFunction = Callable[[Path, dict[str, Any]], ItemOutput]


def run_batch(
    items: Sequence[BatchItem],
    process: ProcessFunction,
    params: dict[str, Any] | Callable[[BatchItem], dict[str, Any]],
    *,
    stage: str,
    cache_dir: Path | None = None,
    plan: ExecutionPlan | None = None,
    progress: ProgressCallback = no_progress,
    cancel: threading.Event | None = None,
) -> list[ItemResult]:
    """Run ``process(path, params)`` on every item, in item order, reusing cached results.

    ``process`` must be a module-level function (it is sent to worker processes) and raise
    MmauthError for bad input. ``params`` (or what it returns for an item, e.g. augmentation
    for enrolment files only) must be JSON-serialisable: with the function's name and the
    file's content it forms the cache key. One call runs every item on one executor (a dask
    LocalCluster starts once).
    """
    plan = plan or ExecutionPlan()
    params_of = params if callable(params) else lambda _item: params
    item_params = [params_of(item) for item in items]
    total = len(items)
    results: list[ItemResult | None] = [None] * total
    pending: list[int] = []
    keys: dict[int, str] = {}
    function = f"{process.__module__}.{process.__qualname__}"
    params_keys: dict[int, str] = {}
    done = 0
    for index, item in enumerate(items):
        check_cancelled(cancel, stage)
        parameters = item_params[index]
        if id(parameters) not in params_keys:
            params_keys[id(parameters)] = json_sha256(
                {"function": function, "params": parameters, "format": CACHE_FORMAT}
            )
        try:
            key = f"{file_sha256(item.path)}-{params_keys[id(parameters)][:16]}"
        except OSError as read_error:
            results[index] = ItemResult(
                item, None, error=f"cannot read the file: {read_error.strerror}"
            )
            done += 1
            continue
        keys[index] = key
        cached = _cache_load(cache_dir, key) if cache_dir else None
        if cached is not None:
            results[index] = ItemResult(item, cached, cached=True)
            done += 1
        else:
            pending.append(index)
    progress(Progress(stage, done, total, f"{done} of {total} files cached or unreadable"))

    for index, (output, error, error_type) in zip(
        pending,
        _execute([(items[i].path, item_params[i]) for i in pending], process, plan),
        strict=False,
    ):
        check_cancelled(cancel, stage)
        item = items[index]
        results[index] = ItemResult(item, output, error=error, error_type=error_type)
        if output is not None and cache_dir is not None:
            _cache_store(cache_dir, keys[index], output)
        done += 1
        message = f"{item.source}: {error}" if error else item.source
        progress(Progress(stage, done, total, message))
    check_cancelled(cancel, stage)
    return [result for result in results if result is not None]


Outcome = tuple[ItemOutput | None, str | None, type[MmauthError] | None]
"""(output, why it failed, the class of the error it failed with)."""


def _safe_process(process: ProcessFunction, path: Path, params: dict[str, Any]) -> Outcome:
    try:
        return process(path, params), None, None
    except MmauthError as error:
        return None, error.message, type(error)
    except MemoryError:
        return None, "not enough memory to process this file", None
    # One undecodable file must not end a batch of thousands: record it and go on.
    except Exception as error:  # noqa: BLE001
        return None, f"unexpected {type(error).__name__}: {error}", None


def _execute(
    work: list[tuple[Path, dict[str, Any]]], process: ProcessFunction, plan: ExecutionPlan
) -> Iterator[Outcome]:
    if not work:
        return iter(())
    if plan.jobs <= 1 and plan.executor == "loky":
        return (_safe_process(process, path, params) for path, params in work)
    return _execute_parallel(work, process, plan)


LOKY_RESTART_WARNING = "A worker stopped while some jobs were given to the executor"
"""loky's notice that it replaced a worker that reached its idle timeout: it restarts the worker
itself and loses no job, so the notice tells a user nothing they can act on."""


def _execute_parallel(
    work: list[tuple[Path, dict[str, Any]]], process: ProcessFunction, plan: ExecutionPlan
) -> Iterator[Outcome]:
    import joblib

    # A process-wide filter: loky warns from its manager thread, possibly after this returns.
    warnings.filterwarnings("ignore", message=LOKY_RESTART_WARNING, category=UserWarning)
    with _backend(plan):
        parallel = joblib.Parallel(n_jobs=plan.jobs, return_as="generator")
        yield from parallel(
            joblib.delayed(_safe_process)(process, path, params) for path, params in work
        )


@contextlib.contextmanager
def _backend(plan: ExecutionPlan) -> Iterator[None]:
    import joblib

    if plan.executor != "dask":
        with joblib.parallel_config(
            backend="loky",
            n_jobs=plan.jobs,
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        ):
            yield
        return
    from dask.distributed import Client, LocalCluster

    if plan.scheduler:
        with Client(plan.scheduler), joblib.parallel_config(backend="dask"):
            yield
        return
    with (
        LocalCluster(
            n_workers=plan.jobs, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
        joblib.parallel_config(backend="dask"),
    ):
        yield


PARENT_CHECK_S = 0.5
"""How often a worker checks that the process that started it is still there."""


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this worker as soon as ``parent_pid`` is no longer its parent.

    loky keeps idle workers for minutes, and a parent killed with SIGKILL cannot stop them: each
    holds its memory (hundreds of MB with dlib's models) until its idle timeout. Checked every
    PARENT_CHECK_S seconds from a daemon thread; reparenting (to init or a subreaper) is what
    the death of the parent looks like from here.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="mmauth-parent-watch", daemon=True).start()


def _cache_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / key[:2] / f"{key}.npz"


def _cache_load(cache_dir: Path, key: str) -> ItemOutput | None:
    path = _cache_path(cache_dir, key)
    if not path.is_file():
        return None
    try:
        # allow_pickle=False: a cache file can hold arrays and text only, never code.
        with np.load(path, allow_pickle=False) as archive:
            records = json.loads(str(archive["records"]))
            features = archive["features"]
            sequences = [archive[f"sequence_{i}"] for i in range(int(archive["n_sequences"]))]
    except (OSError, ValueError, KeyError):
        # A damaged cache entry is recomputed, never trusted.
        return None
    return ItemOutput(records=records, features=features, sequences=sequences)


def _cache_store(cache_dir: Path, key: str, output: ItemOutput) -> None:
    arrays: dict[str, Any] = {
        "records": np.array(json.dumps(output.records)),
        "features": np.asarray(output.features),
        "n_sequences": np.array(len(output.sequences)),
    }
    arrays.update({f"sequence_{i}": np.asarray(s) for i, s in enumerate(output.sequences)})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(_cache_path(cache_dir, key), buffer.getvalue())
