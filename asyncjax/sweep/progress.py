"""The progress line a sweep prints on stderr."""

from __future__ import annotations

import sys
import time


def _in_notebook() -> bool:
    """Whether stderr is a Jupyter kernel's stream (a notebook, Colab)."""
    return type(sys.stderr).__module__.split(".")[0] == "ipykernel"


def _is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


class Progress:
    """A one-line progress report on stderr.

    Redrawn in place in a terminal or a notebook; elsewhere (a log file, a
    pipe) one line at most every 10 s and one at the end. Shown by default in
    a terminal or a notebook; ``enabled=True`` shows it anywhere.
    """

    def __init__(self, total: int, work_per_chunk: float, enabled: bool | None):
        self.total, self.work = total, work_per_chunk
        self.tty = _is_tty() or _in_notebook()
        self.enabled = self.tty if enabled is None else bool(enabled)
        self.start = time.perf_counter()
        self.last_print = 0.0

    def update(self, done: int, computed: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < self.total and now - self.last_print < (0.2 if self.tty else 10.0):
            return
        self.last_print = now
        elapsed = now - self.start
        if done >= self.total and not computed:
            msg = "asyncjax: nothing to compute: every chunk is on disk already"
        else:
            rate = computed * self.work / elapsed if elapsed > 0 and computed else 0.0
            eta = f"{(self.total - done) / computed * elapsed:.1f}s" if computed else "?"
            msg = (
                f"asyncjax: chunk {done}/{self.total}  {rate:.3g} trajectory-steps/s  "
                f"elapsed {elapsed:.1f}s  eta {eta}"
            )
        print(
            ("\r" + msg) if self.tty else msg,
            end="" if self.tty and done < self.total else "\n",
            file=sys.stderr,
            flush=True,
        )
