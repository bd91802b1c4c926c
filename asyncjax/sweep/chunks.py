"""The chunk cut: how a bucket's seeds × points are cut into compiled calls of one shape.

Every chunk has the same shape (the last ones padded by repeating an entry, the
padding's results discarded), so one compilation serves them all; with more
than one device the seed or point side is rounded up to split evenly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChunkCut:
    """A bucket's seeds × points cut into chunks of ``chunk_seeds`` × ``chunk_hyper``.

    Chunk ``i`` is seed block ``i // n_hyper_blocks`` × point block
    ``i % n_hyper_blocks``.
    """

    seeds: np.ndarray | range  # (S,); a range is read a chunk at a time
    hyper: dict  # name -> (H,) NumPy array
    chunk_seeds: int  # S_c (padded for sharding)
    chunk_hyper: int  # H_c
    shard_axis: str | None  # "seed", "hyper" or None
    n_dev: int = 1  # devices a chunk is split over along shard_axis

    @property
    def n_seed_blocks(self) -> int:
        return math.ceil(len(self.seeds) / self.chunk_seeds)

    @property
    def n_hyper_blocks(self) -> int:
        return math.ceil(self.n_hyper / self.chunk_hyper)

    @property
    def n_hyper(self) -> int:
        return next(iter(self.hyper.values())).size

    @property
    def n_chunks(self) -> int:
        return self.n_seed_blocks * self.n_hyper_blocks

    def chunk(self, i: int) -> tuple[slice, slice, np.ndarray, dict]:
        """Seed and hyper slices of chunk ``i`` and its padded inputs."""
        bs, bh = divmod(i, self.n_hyper_blocks)
        s = slice(bs * self.chunk_seeds, min((bs + 1) * self.chunk_seeds, len(self.seeds)))
        h = slice(bh * self.chunk_hyper, min((bh + 1) * self.chunk_hyper, self.n_hyper))
        seeds = _pad(seed_values(self.seeds[s]), self.chunk_seeds)
        hyper = {k: _pad(a[h], self.chunk_hyper) for k, a in self.hyper.items()}
        return s, h, seeds, hyper


def seed_values(seeds: np.ndarray | range) -> np.ndarray:
    """Seed values as an int32 array (a range as NumPy makes it)."""
    if isinstance(seeds, range):
        return np.arange(seeds.start, seeds.stop, seeds.step, dtype=np.int32)
    return seeds


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    """Pads by repeating the last entry (results of the padding are discarded)."""
    return a if a.size == n else np.concatenate([a, np.repeat(a[-1:], n - a.size)])


def cut_chunks(seeds: np.ndarray | range, hyper: dict, chunk: int, n_dev: int) -> ChunkCut:
    """Cuts seeds × points into chunks of at most about ``chunk`` trajectories.

    A chunk holds every point and as many seeds as fit, or, when the points
    alone are more than ``chunk``, ``chunk`` points of one seed. With
    ``n_dev`` > 1 devices the side that can be split over them (seeds first) is
    rounded up to a multiple of ``n_dev``.

    Args:
      seeds: (S,) seed values, or a range of them (not built here).
      hyper: name -> (H,) values of the points.
      chunk: most trajectories per chunk (before rounding up for the devices).
      n_dev: devices a chunk is split over.
    """
    S, H = len(seeds), next(iter(hyper.values())).size
    if H <= chunk:
        h_c, s_c = H, min(S, max(1, chunk // H))
    else:
        h_c, s_c = chunk, 1
    axis = None
    if n_dev > 1:
        if s_c >= n_dev:
            axis, s_c = "seed", math.ceil(s_c / n_dev) * n_dev
        elif h_c >= n_dev:
            axis, h_c = "hyper", math.ceil(h_c / n_dev) * n_dev
    return ChunkCut(seeds, hyper, s_c, h_c, axis, n_dev if axis else 1)
