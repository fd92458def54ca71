"""How many threads numpy's BLAS may use while the model runs.

OpenBLAS splits a matrix product across threads that busy-wait for each other. When
other work keeps the cores busy — the UI, a training run, a test suite — each product
waits for a descheduled helper thread. Measured on the project's 2-core machine with a
training run in the background, one thread against all: cached decode of anatomy-mini
2,400 vs 120-190 tokens/s; a traced 256-token forward 20-35 vs 100-500 ms. So small
models run on one thread.

A large model is different: its decode step streams tens of megabytes of weights, and a
second thread streams the other half of each matrix (see ``benchmarks/bench_byom.py``
for the measured gain on SmolLM2-135M). :func:`threads_for` makes that choice from the
weight bytes; :func:`limit` applies it for the duration of a ``with`` block.

The thread count is set through ``threadpoolctl`` (the library scikit-learn uses for the
same job): it finds numpy's BLAS whatever its build (OpenBLAS, MKL, BLIS …). The setting
is process wide and BLAS has no per-thread one, so overlapping sections from several
Python threads are counted: while any section asks for fewer threads, that many are used,
and the default comes back when the last section ends — never left lowered by accident.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

SMALL_MODEL_BYTES = 64 * 2**20
"""Models with at most this many bytes of float32 weights run on one BLAS thread."""

MULTI_THREAD_LARGE_MODELS = True
"""False: every model runs on one BLAS thread (the setting before large models existed)."""


class BlasThreads:
    """Counted, process-wide limits on numpy's BLAS thread count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: list[int] = []  # one entry per open section
        self._controller = None
        self._default: int | None = None
        self._loaded = False

    def _load(self) -> None:
        self._loaded = True
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a declared dependency
            return
        import numpy  # noqa: F401  (its BLAS must be loaded before we look for it)

        controller = ThreadpoolController().select(user_api="blas")
        if controller.lib_controllers:
            self._controller = controller
            self._default = max(c.num_threads for c in controller.lib_controllers)

    def _apply(self) -> None:
        want = min(self._limits) if self._limits else self._default
        if self._controller is not None and want is not None:
            for lib in self._controller.lib_controllers:
                lib.set_num_threads(want)

    def threads(self) -> int | None:
        """BLAS's current thread count, or None if it cannot be controlled here."""
        with self._lock:
            if not self._loaded:
                self._load()
            if self._controller is None:
                return None
            return max(c.num_threads for c in self._controller.lib_controllers)

    @property
    def default(self) -> int | None:
        """The thread count BLAS had before any section (None: cannot be controlled)."""
        self.threads()
        return self._default

    @contextlib.contextmanager
    def limit(self, n: int | None) -> Iterator[None]:
        """At most ``n`` BLAS threads inside the block (None: no limit of its own)."""
        if n is None:
            yield
            return
        with self._lock:
            if not self._loaded:
                self._load()
            self._limits.append(int(n))
            self._apply()
        try:
            yield
        finally:
            with self._lock:
                self._limits.remove(int(n))
                self._apply()


BLAS = BlasThreads()


def threads_for(weight_bytes: int) -> int | None:
    """The BLAS thread limit for a model with this many bytes of weights: 1 for a small
    model, None (every core) for a large one.

    >>> threads_for(10 * 2**20), threads_for(600 * 2**20) is None
    (1, True)
    """
    if MULTI_THREAD_LARGE_MODELS and weight_bytes > SMALL_MODEL_BYTES:
        return None
    return 1


def limit(n: int | None) -> contextlib.AbstractContextManager:
    """``with limit(n):`` runs the block with at most ``n`` BLAS threads (None: all)."""
    return BLAS.limit(n)


def one_blas_thread() -> contextlib.AbstractContextManager:
    """``with one_blas_thread():`` limits numpy's BLAS to one thread, then restores it."""
    return BLAS.limit(1)
