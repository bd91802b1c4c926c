"""What a run prints on stderr while it works: one line per stage, and a tqdm bar over the chunks.

A run goes through stages -- planning, compiling, the chunks, assembling,
compressing the results file, the figures -- and each one that takes time
says so as it starts, so that no stage looks like a hang. The chunks get a
`tqdm <https://tqdm.github.io>`_ bar: redrawn in place in a terminal, a
widget in a notebook (plain text there without ``ipywidgets``), and in a log
file or a pipe one plain line at most every 10 s and one at the end, never a
stream of carriage returns. Shown by default in a terminal or a notebook;
``enabled=True`` shows it anywhere, ``enabled=False`` prints nothing.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm import tqdm as text_bar

LOG_INTERVAL_S = 10.0  # seconds between two lines of the bar in a log file or a pipe


def _in_notebook() -> bool:
    """Whether stderr is a Jupyter kernel's stream (a notebook, Colab)."""
    return type(sys.stderr).__module__.split(".")[0] == "ipykernel"


def _is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def interactive() -> bool:
    """Whether stderr is seen live (a terminal or a notebook): progress shows by default there."""
    return _is_tty() or _in_notebook()


def shown(enabled: bool | None) -> bool:
    """Whether progress is printed: ``enabled``, or by default where stderr is seen live."""
    return interactive() if enabled is None else bool(enabled)


def stage(message: str, enabled: bool | None) -> None:
    """Prints ``asyncjax: MESSAGE`` on stderr, as a stage of a run starts (if progress is shown)."""
    if shown(enabled):
        text_bar.write(f"asyncjax: {message}", file=sys.stderr)
        sys.stderr.flush()


class _Lines:
    """A stream for tqdm in a log file or a pipe: each redraw becomes one plain line."""

    def __init__(self, stream: Any):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").rstrip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def _notebook_bar() -> type | None:
    """tqdm's notebook widget, where ``ipywidgets`` is installed (else the text bar serves)."""
    try:
        import ipywidgets  # noqa: F401
        from tqdm.notebook import tqdm as widget_bar
    except ImportError:
        return None
    return widget_bar


class Progress:
    """A run's progress on stderr: `stage` lines and a bar over the chunks.

    Args:
      total: chunks to compute.
      work_per_chunk: trajectory-steps per chunk (for the rate shown beside the bar).
      enabled: show it; None: where stderr is a terminal or a notebook.
    """

    def __init__(self, total: int, work_per_chunk: float, enabled: bool | None):
        self.total, self.work = total, work_per_chunk
        self.enabled = shown(enabled)
        self.start = time.perf_counter()
        self.bar: Any = None
        self.finished = False
        if not self.enabled or not total:
            return
        options = dict(total=total, desc="asyncjax: chunks", unit="chunk", dynamic_ncols=True)
        if _in_notebook():
            self.bar = (_notebook_bar() or text_bar)(**options, file=sys.stderr)
        elif _is_tty():
            self.bar = text_bar(**options, file=sys.stderr, mininterval=0.2)
        else:  # a log: plain lines, at most one every LOG_INTERVAL_S
            self.bar = text_bar(
                **options,
                file=_Lines(sys.stderr),
                mininterval=LOG_INTERVAL_S,
                maxinterval=LOG_INTERVAL_S,
                ascii=True,
                ncols=100,
            )

    def stage(self, message: str) -> None:
        """A stage line (compiling, assembling, ...), printed above the bar."""
        if self.enabled:
            text_bar.write(f"asyncjax: {message}", file=sys.stderr)

    def update(self, done: int, computed: int) -> None:
        """``done`` of the ``total`` chunks are finished, ``computed`` of them in this run."""
        if not self.enabled or self.finished:
            return
        if self.bar is None:  # nothing to compute
            self.stage("nothing to compute: every chunk is on disk already")
            self.finished = True
            return
        elapsed = time.perf_counter() - self.start
        if computed and elapsed > 0:
            rate = computed * self.work / elapsed
            self.bar.set_postfix_str(f"{rate:.3g} trajectory-steps/s", refresh=False)
        self.bar.update(done - self.bar.n)
        if done >= self.total:
            self.close()

    def close(self) -> None:
        """Ends the bar (also when the run stops early)."""
        self.finished = True
        if self.bar is not None:
            self.bar.close()
            self.bar = None
