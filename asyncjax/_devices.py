"""Host devices: let XLA's CPU backend use every core."""

from __future__ import annotations

import os

import jax


def use_cpu_cores(n: int | None = None) -> None:
    """Exposes ``n`` CPU devices (default: ASYNCJAX_CPU_DEVICES, else one per core).

    Sweeps split each chunk over all local devices, and XLA shows a single CPU
    device by default, so on a multi-core machine this is what uses the other
    cores. Call it before JAX first touches a device; afterwards (or when
    XLA_FLAGS already forces a device count) it does nothing.
    """
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    n = n or int(os.environ.get("ASYNCJAX_CPU_DEVICES") or os.cpu_count() or 1)
    try:
        jax.config.update("jax_num_cpu_devices", int(n))
    except (RuntimeError, ValueError):  # backends already initialised, or a bad value
        pass
