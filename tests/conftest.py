"""Test configuration: several CPU devices, strict promotion, a NumPy reference of eq. 5."""

import os

import jax

# Several CPU devices so the sharded path runs without an accelerator.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    jax.config.update("jax_num_cpu_devices", 4)
jax.devices()  # start the backend now, so the CLI's use_cpu_cores() cannot change the count in any test order
# House rules: no silent dtype or rank promotion anywhere in the library.
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


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
