import threading
from pathlib import Path

import numpy as np
import pytest

from engine.core.batch import BatchItem, ExecutionPlan, run_batch
from engine.core.errors import CancelledError
from engine.core.progress import Progress
from tests.engine.batch_functions import count_bytes


def make_items(folder: Path, contents: dict[str, bytes]) -> list[BatchItem]:
    items = []
    for name, data in contents.items():
        (folder / name).write_bytes(data)
        items.append(BatchItem(path=folder / name, label="ana", role="enrol", source=name))
    return items


def test_results_keep_order_and_failures_do_not_stop_the_batch(tmp_path: Path) -> None:
    items = make_items(tmp_path, {"a": b"12345", "b": b"bad file", "c": b"crash", "d": b"12"})
    events: list[Progress] = []
    results = run_batch(items, count_bytes, {"scale": 2}, stage="test", progress=events.append)
    assert [r.item.source for r in results] == ["a", "b", "c", "d"]
    assert results[0].output is not None and results[0].output.features[0, 0] == 10.0
    assert results[1].output is None and "starts with 'bad'" in (results[1].error or "")
    assert "unexpected ZeroDivisionError" in (results[2].error or "")
    assert events[-1].step == events[-1].total == 4


def test_cache_reuses_results_until_content_or_params_change(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    items = make_items(tmp_path, {"a": b"123", "b": b"4567"})
    first = run_batch(items, count_bytes, {"scale": 1}, stage="t", cache_dir=cache)
    assert not any(r.cached for r in first)
    second = run_batch(items, count_bytes, {"scale": 1}, stage="t", cache_dir=cache)
    assert all(r.cached for r in second)
    np.testing.assert_array_equal(second[1].output.sequences[0], first[1].output.sequences[0])
    (tmp_path / "b").write_bytes(b"changed!")
    third = run_batch(items, count_bytes, {"scale": 1}, stage="t", cache_dir=cache)
    assert [r.cached for r in third] == [True, False]
    fourth = run_batch(items, count_bytes, {"scale": 3}, stage="t", cache_dir=cache)
    assert not any(r.cached for r in fourth)


def test_damaged_cache_entry_is_recomputed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    items = make_items(tmp_path, {"a": b"123"})
    run_batch(items, count_bytes, {"scale": 1}, stage="t", cache_dir=cache)
    for entry in cache.rglob("*.npz"):
        entry.write_bytes(b"garbage")
    again = run_batch(items, count_bytes, {"scale": 1}, stage="t", cache_dir=cache)
    assert not again[0].cached and again[0].output is not None


def test_unreadable_file_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    item = BatchItem(path=tmp_path / "missing", label="ana", role="enrol", source="missing")
    (result,) = run_batch([item], count_bytes, {"scale": 1}, stage="t")
    assert result.output is None and "cannot read the file" in (result.error or "")


def test_loky_workers_give_the_same_results(tmp_path: Path) -> None:
    items = make_items(tmp_path, {f"f{i}": b"x" * i for i in range(1, 7)})
    local = run_batch(items, count_bytes, {"scale": 1}, stage="t")
    parallel = run_batch(items, count_bytes, {"scale": 1}, stage="t", plan=ExecutionPlan(jobs=2))
    assert [r.output.features.tolist() for r in local] == [
        r.output.features.tolist() for r in parallel
    ]


def test_cancel_stops_the_batch(tmp_path: Path) -> None:
    items = make_items(tmp_path, {"a": b"1", "b": b"2"})
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError, match="was cancelled"):
        run_batch(items, count_bytes, {"scale": 1}, stage="t", cancel=cancel)


def test_parameters_can_differ_per_item_and_key_the_cache_apart(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    items = make_items(tmp_path, {"a": b"123", "b": b"123"})
    scale = {"a": {"scale": 1}, "b": {"scale": 10}}
    results = run_batch(
        items, count_bytes, lambda item: scale[item.source], stage="t", cache_dir=cache
    )
    assert [r.output.features[0, 0] for r in results] == [3.0, 30.0]
    # Same content, different parameters: two cache entries, both reused next time.
    again = run_batch(
        items, count_bytes, lambda item: scale[item.source], stage="t", cache_dir=cache
    )
    assert all(r.cached for r in again) and again[1].output.features[0, 0] == 30.0
