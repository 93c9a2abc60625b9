"""One BLAS thread for the small matrix products of per-file and per-attempt work."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """One BLAS thread while the block runs.

    The matrices of one clip, one photo or one model fit are small, and on the shared 2-core
    machine BLAS threads waiting for a busy core made them many times slower: the 40 x 257 mel
    product of a clip took 5-28 ms instead of ~20 µs (voice features, docs/BENCHMARKS.md), a
    replay fingerprint 8-16 ms instead of 0.4 ms, a classic face model's fit 139 s instead of 2 s.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
