"""One BLAS thread for the small matrix products of per-file and per-attempt work."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

_controller: tuple[int, Any] | None = None
_lock = threading.Lock()


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """One BLAS thread while the block runs.

    The matrices of one clip, one photo or one model fit are small, and on the shared 2-core
    machine BLAS threads waiting for a busy core made them many times slower: the 40 x 257 mel
    product of a clip took 5-28 ms instead of ~20 µs (voice features, docs/BENCHMARKS.md), a
    replay fingerprint 8-16 ms instead of 0.4 ms, a classic face model's fit 139 s instead of 2 s.
    """
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


def _blas_controller() -> Any:
    """threadpoolctl's controller, kept while no module has been imported since.

    ``threadpool_limits()`` scans every loaded library on each call (~2 ms, several times per
    authentication attempt); a controller scans once but only knows the libraries loaded before
    it, so a new one is made whenever the set of imported modules grew (a BLAS arrives with an
    import).
    """
    global _controller
    loaded = len(sys.modules)
    with _lock:
        if _controller is None or _controller[0] != loaded:
            from threadpoolctl import ThreadpoolController

            _controller = (len(sys.modules), ThreadpoolController())
        return _controller[1]
