"""Coordination of the processes of one ``jax.distributed`` job.

Sweeps need no collectives: each process computes its share of the chunks on
its local devices and writes them to a folder every process reaches. The
processes meet only at a few named points (barriers) and pass short strings
through the coordinator's key-value store, always with a timeout, so a dead
peer gives a clear error rather than a hang.
"""

from __future__ import annotations

import math
import re
import socket
import sys
import time
from typing import Any

import jax


class DistributedError(RuntimeError):
    """Another process of the job failed, died or disagreed; the message says which and what to do."""


def initialize(
    coordinator: str | None,
    num_processes: int | None,
    process_id: int | None,
    *,
    auto: bool = False,
    timeout: float = 600.0,
) -> None:
    """Joins a ``jax.distributed`` job, after checking the arguments.

    Call before JAX touches a device (``jax_num_cpu_devices`` may be set first).

    Args:
      coordinator: ``HOST:PORT`` of process 0's coordinator.
      num_processes: processes in the job.
      process_id: this process's index, 0 <= process_id < num_processes.
      auto: let ``jax.distributed.initialize()`` detect everything (SLURM,
        TPU pods, ...); the other arguments must then be None.
      timeout: seconds to wait for the coordinator and the other processes to
        join. A process other than 0 that cannot reach the coordinator in that
        time fails with a clear error; a job whose processes do not all join is
        ended by JAX itself after it (with its own message: that abort happens
        in JAX's runtime and cannot be caught).

    Raises:
      ValueError: a missing, contradictory or out-of-range argument, or a
        cluster environment that JAX cannot detect.
    """
    given = [a is not None for a in (coordinator, num_processes, process_id)]
    if auto:
        if any(given):
            raise ValueError(
                "--distributed detects the coordinator, process count and id by itself; "
                "drop --coordinator/--num-processes/--process-id, or drop --distributed"
            )
        try:
            jax.distributed.initialize()
        except ValueError as err:
            raise ValueError(
                f"--distributed found no cluster environment that JAX detects (SLURM, TPU, "
                f"Open MPI, ...): {err}; pass --coordinator, --num-processes and --process-id"
            ) from err
        return
    if not all(given):
        missing = [
            n for n, g in zip(("--coordinator", "--num-processes", "--process-id"), given) if not g
        ]
        raise ValueError(
            f"a multi-process run needs --coordinator HOST:PORT, --num-processes N and --process-id I; "
            f"missing {', '.join(missing)}"
        )
    host, sep, port = coordinator.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"--coordinator must be HOST:PORT (e.g. localhost:12345), got {coordinator!r}"
        )
    if num_processes < 1:
        raise ValueError(f"--num-processes must be >= 1, got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise ValueError(
            f"--process-id must be in 0..{num_processes - 1} for {num_processes} processes, "
            f"got {process_id}"
        )
    if process_id != 0:
        _wait_for_coordinator(host, int(port), timeout)
    print(
        f"asyncjax: process {process_id} of {num_processes} joining the job at {coordinator} "
        f"(waiting up to {timeout:g} s for the others)",
        file=sys.stderr,
        flush=True,
    )
    jax.distributed.initialize(
        coordinator,
        num_processes,
        process_id,
        initialization_timeout=max(1, int(math.ceil(timeout))),
    )


def _wait_for_coordinator(host: str, port: int, timeout: float) -> None:
    """Returns once ``host:port`` accepts a connection; raises after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(5.0, timeout)):
                return
        except OSError as err:
            if time.monotonic() >= deadline:
                raise DistributedError(
                    f"no coordinator answered at {host}:{port} within {timeout:g} s ({err}); start process 0 "
                    "with the same --coordinator, or check the address and port"
                ) from None
            time.sleep(0.5)


class Group:
    """The processes of the running job, as a sweep sees them.

    Args:
      tag: a name unique to this sweep in this job (the same in every process),
        prefixed to every barrier and key.
      timeout: seconds to wait for the other processes at a meeting point.
    """

    def __init__(self, tag: str, timeout: float):
        from jax._src.distributed import global_state  # the job's coordination client

        self.client = global_state.client
        self.index = jax.process_index()
        self.size = jax.process_count()
        self.tag = tag
        self.timeout = float(timeout)

    @property
    def leader(self) -> bool:
        return self.index == 0

    def _ms(self) -> int:
        return max(1, int(self.timeout * 1000))

    def barrier(self, name: str, what: str) -> None:
        """Waits until every process reaches ``name``.

        Raises:
          DistributedError: some process did not arrive within the timeout
            (``what`` says what it was doing).
        """
        try:
            self.client.wait_at_barrier(f"{self.tag}/{name}", self._ms())
        except Exception as err:  # the runtime's error: DEADLINE_EXCEEDED, or a peer's failure
            late = _late_tasks(str(err))
            who = f"process(es) {late}" if late else "the other processes"
            raise DistributedError(
                f"process {self.index} of {self.size} waited {self.timeout:g} s for {who} to {what}, and not all "
                f"arrived (died, failed or much slower; see their logs). Runtime said: {_first_lines(err, 1)}"
            ) from err

    def publish(self, key: str, value: str) -> None:
        """Stores ``value`` under ``key`` for the other processes."""
        self.client.key_value_set(f"{self.tag}/{key}", value)

    def fetch(self, key: str, what: str) -> str:
        """The value another process published under ``key`` (waits up to the timeout).

        Raises:
          DistributedError: nothing was published within the timeout.
        """
        try:
            return self.client.blocking_key_value_get(f"{self.tag}/{key}", self._ms())
        except Exception as err:
            raise DistributedError(
                f"process {self.index} of {self.size} waited {self.timeout:g} s for {what} and "
                f"got nothing. Runtime said: {_first_lines(err)}"
            ) from err


def _late_tasks(text: str) -> str:
    """The task ids a barrier error names as timed out ("" if it names none)."""
    found = re.search(r"timed out task names:\s*([\d,\s]+)", text)
    return ", ".join(found.group(1).split()).replace(",,", ",") if found else ""


def _first_lines(err: Any, n: int = 3) -> str:
    lines = [ln for ln in str(err).splitlines() if ln.strip()]
    return " ".join(lines[:n])


_COUNT = 0


def current(key: str, timeout: float) -> Group | None:
    """The job's processes for a new sweep of settings ``key``, or None in a single-process run.

    Every process of a job must call sweeps in the same order: the n-th sweep
    of each process meets the n-th sweep of the others.
    """
    global _COUNT
    if jax.process_count() <= 1:
        return None
    _COUNT += 1
    return Group(f"asyncjax/{_COUNT}/{key}", timeout)
