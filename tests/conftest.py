"""Test configuration: several CPU devices, strict promotion, a NumPy reference of eq. 5."""

import os

from _child import fast_compile_flags

# Under pytest-xdist (the default: `-n auto` in pyproject.toml) each worker process compiles and
# runs its tests on one XLA thread, before JAX starts: the tests' programs are small, and two
# processes whose XLA thread pools each spread over both cores of a 2-core machine took as long
# as one process; on one thread each, two workers halve the time.
# The workers also compile more cheaply (_child.FAST_COMPILE, when this XLA accepts it; the
# controller checks once and hands the verdict down in TEST_FLAGS_VAR): compiling was two thirds
# of the default set's CPU time, and these settings take 55% less of it (backend compile
# 484 -> 220 s; the set 6 min 35 s -> 3 min 52 s on 2 cores), and bit-identity across chunk
# sizes, device counts and processes holds as at the defaults. Sums differ from the defaults'
# in the last bits (no fused multiply-adds), so the results stored from the library's defaults
# are computed again in a child process at those defaults (test_compat); the slow set (`-n 0`)
# runs at the defaults throughout.
TEST_FLAGS_VAR = "ASYNCJAX_TEST_XLA_FLAGS"
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER") is not None
if XDIST_WORKER and "XLA_FLAGS" not in os.environ:
    os.environ["XLA_FLAGS"] = (
        f"--xla_cpu_multi_thread_eigen=false {os.environ.get(TEST_FLAGS_VAR, '')}".strip()
    )

import jax  # noqa: E402

# The xdist workers share one on-disk cache of compiled programs for the session (each would
# otherwise compile what the other already has: the two together spent 28% more CPU time than
# one process). A fresh folder per session, so a run's time is a newcomer's; the variable also
# reaches the processes the tests start.
if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    import atexit
    import shutil
    import tempfile

    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="asyncjax-tests-xla-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.05)

# Several CPU devices so the sharded path runs without an accelerator.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    jax.config.update("jax_num_cpu_devices", 4)
jax.devices()  # start the backend now, so the CLI's use_cpu_cores() cannot change the count in any test order
# House rules: no silent dtype or rank promotion anywhere in the library.
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

import contextlib  # noqa: E402
import ctypes  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

try:  # one BLAS thread: the tests' matrices are small, and on 2 cores shared with XLA (and the
    # other test process) a second thread only waits; np.roots of degree 200 took 5x longer
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
except ImportError:  # threadpoolctl comes with scikit-learn (the [test] extra)
    pass


def _clear_compiled():
    """Drops every compiled program: JAX's caches and the lru_caches of asyncjax's modules
    (compiled engines and clocks keyed by their static configuration)."""
    for name, module in list(sys.modules.items()):
        if name == "asyncjax" or name.startswith("asyncjax."):
            for value in list(vars(module).values()):
                if isinstance(value, functools._lru_cache_wrapper):
                    value.cache_clear()
    jax.clear_caches()
    gc.collect()
    try:  # glibc keeps freed memory in its arenas until asked to give it back
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the freed memory is reused, just not returned
        pass


# Compiled programs are kept for reuse, until the process holds this much; then all are dropped.
# Per process, xdist workers included (the largest process peaked at 1.2-1.4 GB; at 640 MiB a
# worker emptied its caches 127 times a run, about 0.5 s each, and compiled much of it again).
RSS_LIMIT = 1 << 30


def pytest_configure(config):
    """In the controller of an xdist run: whether the workers may compile with FAST_COMPILE
    (not asked when XLA_FLAGS is set: the workers then take the caller's flags as they are)."""
    if XDIST_WORKER or not config.getoption("numprocesses", None):
        return
    if "XLA_FLAGS" not in os.environ and TEST_FLAGS_VAR not in os.environ:
        os.environ[TEST_FLAGS_VAR] = fast_compile_flags()


def pytest_report_header(config):
    if XDIST_WORKER:
        return None
    if "XLA_FLAGS" in os.environ:
        return f"XLA_FLAGS (the caller's, for every process): {os.environ['XLA_FLAGS']}"
    if config.getoption("numprocesses", None):
        flags = os.environ.get(TEST_FLAGS_VAR, "")
        return f"xdist workers' XLA_FLAGS: --xla_cpu_multi_thread_eigen=false {flags}".strip()
    return None


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # no /proc (not Linux): never cleared
        return 0


@pytest.fixture(autouse=True)
def _bounded_compile_caches():
    """Every compiled program stays cached (a CPU executable takes 1-2 MB, and the suite compiles
    thousands), which took the process to 4.5 GB; once it holds more than RSS_LIMIT after a
    test, the caches are emptied. Compile counts are compared within a test, so a clear between
    tests changes no assertion, only what the next test compiles."""
    yield
    if _rss_bytes() > RSS_LIMIT:
        _clear_compiled()


@contextlib.contextmanager
def _exclusive(path):
    """Holds an exclusive lock on ``path`` (so one test process runs what the others then read)."""
    import fcntl

    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


_QUICK_RUNS: dict = {}


@pytest.fixture(scope="session")
def quick_preset(tmp_path_factory):
    """``asyncjax reproduce NAME --quick [--seeds N]`` run once per session, as a user would.

    ``quick_preset(name, seeds=None)`` gives ``.out`` (the folder), ``.printed`` (its stdout),
    ``.summary`` (summary.json) and ``.returned`` (a pickle of what `reproduce` returned, which
    holds NaN where the JSON has null). The preset tests and the notebooks that run presets read
    the same runs, read only. Under pytest-xdist the workers share them too: the first to ask
    runs the preset, under a lock.
    """
    from _headline import reproduce_quick

    import asyncjax.reproduce

    shared = os.environ.get("PYTEST_XDIST_WORKER") is not None
    root = tmp_path_factory.getbasetemp().parent if shared else tmp_path_factory.getbasetemp()

    def get(name: str, seeds: int | None = None):
        key = (name, seeds)
        if key not in _QUICK_RUNS:
            tag = f"quick-{name}" + ("" if seeds is None else f"-seeds{seeds}")
            out, printed = root / tag, root / f"{tag}.printed.txt"
            returned = root / f"{tag}.returned.pkl"
            with _exclusive(root / f"{tag}.lock") if shared else contextlib.nullcontext():
                if not printed.exists():  # written last: the run is complete
                    real = asyncjax.reproduce.reproduce
                    kept = []

                    def spy(*args, **kwargs):
                        kept.append(real(*args, **kwargs))
                        return kept[-1]

                    asyncjax.reproduce.reproduce = spy  # the command imports it when it runs
                    try:
                        text = reproduce_quick(name, out, seeds)
                    finally:
                        asyncjax.reproduce.reproduce = real
                    returned.write_bytes(pickle.dumps(kept[0]))
                    printed.write_text(text)
            _QUICK_RUNS[key] = types.SimpleNamespace(
                out=out,
                printed=printed.read_text(),
                summary=json.loads((out / "summary.json").read_text()),
                returned=returned,
            )
        return _QUICK_RUNS[key]

    return get


def reference_msgd(xs, momentum, lr, delays, v0):
    """Plain NumPy loop of eq. 5 (float64): returns the iterates v_0 … v_n.

    Args:
      xs: (n, d) observations X_k.
      delays: (n,) staleness τ_k of each step.
      v0: (d,) start; the history v_{-i} is v0.
    """
    v0 = np.asarray(v0, np.float64)
    hist = [v0]
    v_prev = v0
    for k, x in enumerate(np.asarray(xs, np.float64)):
        v = hist[-1]
        v_s = hist[max(k - int(delays[k]), 0)]
        s = x @ v_s
        v_new = v + momentum * (v - v_prev) + lr * (s * x - s * s * v_s)
        v_prev = v
        hist.append(v_new)
    return np.array(hist)


def sin2(v, q1=None):
    v = np.atleast_2d(v)
    top = v[:, 0] if q1 is None else v @ q1
    return 1.0 - top**2 / np.sum(v * v, axis=1)


@pytest.fixture
def pca():
    import asyncjax as aj

    return aj.StreamingPCA([4.0, 3.0, 2.0, 1.0])
