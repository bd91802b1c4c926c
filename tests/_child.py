"""The XLA settings of the test processes, and the environment of the processes tests start."""

from __future__ import annotations

import os
import subprocess
import sys

# Cheaper compilation for the default set's xdist workers (see conftest.py): LLVM -O1, XLA's
# classic CPU emitters, and no instructions past AVX (so no fused multiply-adds, whose use by the
# classic emitters depends on the batch shape; without them a trajectory's bits stay the same
# whatever the chunk size, as they do at the library's defaults).
FAST_COMPILE = (
    "--xla_backend_optimization_level=1 --xla_cpu_use_fusion_emitters=false --xla_cpu_max_isa=AVX"
)


def fast_compile_flags() -> str:
    """FAST_COMPILE if this jaxlib's XLA accepts it (XLA aborts on a flag it does not know, and a
    newer one may drop these), else the empty string. Takes a child process, about 1.5 s."""
    probe = subprocess.run(
        [sys.executable, "-c", "import jax; jax.jit(lambda x: x + 1)(1.0)"],
        env={**os.environ, "XLA_FLAGS": FAST_COMPILE},
        capture_output=True,
        timeout=300,
    )
    return FAST_COMPILE if probe.returncode == 0 else ""


def child_env(*, defaults: bool = False, **extra: str) -> dict[str, str]:
    """``os.environ`` for a child process, plus ``extra``.

    XLA_FLAGS loses a forced CPU device count (the child sets its own through
    ASYNCJAX_CPU_DEVICES) and keeps the rest, so the child compiles as this process does; with
    ``defaults=True`` it loses every flag, so the child compiles as a user's process would.
    """
    env = {**os.environ, **extra}
    kept = [
        flag
        for flag in env.pop("XLA_FLAGS", "").split()
        if not defaults and not flag.startswith("--xla_force_host_platform_device_count")
    ]
    if kept:
        env["XLA_FLAGS"] = " ".join(kept)
    return env
