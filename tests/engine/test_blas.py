"""engine.core.blas: one BLAS thread inside the block, the previous limits after it."""

from __future__ import annotations

import sys
import types

import numpy as np  # noqa: F401 - loads the BLAS whose threads are limited
import pytest
from threadpoolctl import threadpool_info

from engine.core import blas


def blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_one_thread_inside_and_the_previous_limits_after() -> None:
    before = blas_threads()
    if not before:
        pytest.skip("no BLAS library visible to threadpoolctl")
    with blas.single_threaded_blas():
        assert set(blas_threads()) == {1}
    assert blas_threads() == before


def test_the_controller_is_reused_until_a_module_is_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with blas.single_threaded_blas():
        pass
    first = blas._blas_controller()
    assert blas._blas_controller() is first
    monkeypatch.setitem(sys.modules, "mmauth_test_new_module", types.ModuleType("new"))
    assert blas._blas_controller() is not first
