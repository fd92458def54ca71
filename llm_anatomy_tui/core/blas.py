"""How many threads numpy's BLAS may use while the model runs.

OpenBLAS splits a matrix product across threads that busy-wait for each other. When
other work keeps the cores busy — the UI, a training run, a test suite — each product
waits for a descheduled helper thread. Measured on the project's 2-core machine with a
training run in the background, one thread against all: cached decode of anatomy-mini
2,400 vs 120-190 tokens/s; a traced 256-token forward 20-35 vs 100-500 ms. So small
models run on one thread.

A large model is different: its decode step streams hundreds of megabytes of weights,
and on an idle machine a second thread streams the other half of each matrix. But the
same helper threads make it several times *slower* when the other core is busy (measured
with SmolLM2-135M, ``benchmarks/bench_byom.py``: 60 tokens/s on both threads when idle;
at load average 5, 3 tokens/s on both against 22 on one). Neither fixed choice is right,
so a large model measures: :class:`ThreadChooser` times its decode steps on one thread
and on all, keeps an average of each, uses the faster, and re-tries the other every
:attr:`ThreadChooser.EXPLORE_EVERY` steps so it follows the machine's load.
:func:`limit` applies a choice for the duration of a ``with`` block.

``threadpoolctl`` (the library scikit-learn uses for the same job) finds numpy's BLAS
library, whatever its build and file name. The count itself is set through OpenBLAS's own
``openblas_set_num_threads`` symbol in that library, not through threadpoolctl's setter:
threadpoolctl 3.8 lets only the first Python thread that set a limit change OpenBLAS's
(a guard against threads fighting), and this app sets limits from worker threads — with
its setter, a worker's "one thread" was silently ignored (measured: 2 threads inside the
worker's section; ``tests/core/test_blas.py`` checks a worker's limit holds). The setting
is process wide and OpenBLAS has no per-thread one, so overlapping sections from several
Python threads are counted here instead: while any section asks for fewer threads, that
many are used, and the default comes back when the last section ends — never left
lowered by accident. A BLAS other than OpenBLAS is left alone (``threads()`` is None).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator

SMALL_MODEL_BYTES = 64 * 2**20
"""Models with at most this many bytes of float32 weights run on one BLAS thread."""

MULTI_THREAD_LARGE_MODELS = True
"""False: every model runs on one BLAS thread (the setting before large models existed)."""


class BlasThreads:
    """Counted, process-wide limits on numpy's OpenBLAS thread count."""

    _SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                "openblas_set_num_threads64_", "openblas_set_num_threads")  # fmt: skip
    _GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
                "openblas_get_num_threads64_", "openblas_get_num_threads")  # fmt: skip

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: list[int] = []  # one entry per open section
        self._set = self._get = None
        self._default: int | None = None
        self._current: int | None = None
        self._loaded = False

    def _load(self) -> None:
        self._loaded = True
        import numpy  # noqa: F401  (its BLAS must be loaded before we look for it)

        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a declared dependency
            return
        for lib in ThreadpoolController().select(internal_api="openblas").lib_controllers:
            try:
                dll = ctypes.CDLL(lib.filepath)
            except OSError:
                continue
            setter = next((getattr(dll, n) for n in self._SETTERS if hasattr(dll, n)), None)
            getter = next((getattr(dll, n) for n in self._GETTERS if hasattr(dll, n)), None)
            if setter is not None and getter is not None:
                self._set, self._get = setter, getter
                self._default = self._current = int(getter())
                return

    def _apply(self) -> None:
        want = min(self._limits) if self._limits else self._default
        if self._set is not None and want is not None and want != self._current:
            self._set(want)
            self._current = want

    def threads(self) -> int | None:
        """OpenBLAS's current thread count, or None if it cannot be controlled here."""
        with self._lock:
            if not self._loaded:
                self._load()
            return None if self._get is None else int(self._get())

    @property
    def default(self) -> int | None:
        """The thread count OpenBLAS had before any section (None: cannot be controlled)."""
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


class ThreadChooser:
    """One model's choice between one BLAS thread and all, from measured step times.

    ``pick()`` returns the thread limit for the next step (1 or None = all): each option
    is tried once, then the faster by its running average is used, and the other is
    tried again every :attr:`EXPLORE_EVERY` steps — times how many times slower it was,
    so a bad option (all threads on a busy machine can be 10x slower) costs at most
    ~1/16 of the time. ``record(threads, seconds)`` feeds a step's time back.
    :meth:`best` (one thread until measured) serves multi-token passes. Thread-safe.

    >>> c = ThreadChooser()
    >>> first, second = c.pick(), c.pick()
    >>> sorted([first, second], key=str)  # both tried before any is preferred
    [1, None]
    >>> c.record(1, 0.010); c.record(None, 0.030)
    >>> [c.pick() for _ in range(3)]
    [1, 1, 1]
    """

    EXPLORE_EVERY = 16
    ALPHA = 0.3  # weight of the newest step time in the running average

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._avg: dict[int | None, float | None] = {1: None, None: None}
        self._tried: set[int | None] = set()
        self._steps = 0

    def best(self) -> int | None:
        one, every = self._avg[1], self._avg[None]
        if one is None or every is None:
            return 1  # the safe choice: one thread is never catastrophically slow
        return 1 if one <= every else None

    def _explore_every(self) -> int:
        one, every = self._avg[1], self._avg[None]
        if one is None or every is None or min(one, every) <= 0:
            return self.EXPLORE_EVERY
        return self.EXPLORE_EVERY * max(1, round(max(one, every) / min(one, every)))

    def pick(self) -> int | None:
        with self._lock:
            self._steps += 1
            untried = [t for t in (None, 1) if t not in self._tried]
            if untried:
                self._tried.add(untried[0])
                return untried[0]
            best = self.best()
            if self._steps % self._explore_every() == 0:
                return None if best == 1 else 1
            return best

    def record(self, threads: int | None, seconds: float) -> None:
        with self._lock:
            old = self._avg[threads]
            self._avg[threads] = seconds if old is None else old + self.ALPHA * (seconds - old)


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
