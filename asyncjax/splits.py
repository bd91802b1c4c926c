"""Per-worker data: which rows of a data set each worker holds.

A split is a frozen, hashable description (`IID`, `ByLabel`, `Dirichlet`;
build one with `iid`, `by_label` or `dirichlet`): static structure that becomes
part of a problem's static key. Given a data set's row count and labels,
`Split.shards` assigns every row to exactly one worker and returns the
per-worker row index tables as `Shards`: a padded (W, max size) table and the
W shard sizes, so shards of unequal size need no special case.

A problem given a split (``LeastSquares``, ``Logistic`` and ``MLP`` take
``split=``) passes the table to the engine as an operand; the data of a step
stays one shared counter-based draw of uniforms u, and worker j turns it into
rows of its own shard as ``table[j, floor(u · size_j)]``. With ``iid`` and
equal shards, a uniform row of a uniformly chosen worker's shard is a uniform
row, so statistics match shared sampling; with one worker it is today's draw
exactly.

Example::

    import asyncjax as aj
    ds = aj.datasets.digits()
    split = aj.splits.dirichlet(16, alpha=0.1, seed=0)
    problem = aj.Logistic.from_dataset(ds, split=split)   # worker j samples its own shard
    problem.shards.sizes                                  # (16,) rows per worker
    aj.sweep(problem, aj.Grid(workers=16, lr=0.05, momentum=0.0, seed=range(8)),
             delay_model=aj.delays.workers("exponential"), steps=2000, record_every=100)

(`asyncjax.MLP` and `asyncjax.LeastSquares` take ``split=`` alike.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from asyncjax._validate import as_float_array, check_int, did_you_mean, py

__all__ = [
    "SPLITS",
    "ByLabel",
    "Dirichlet",
    "IID",
    "Shards",
    "Split",
    "by_label",
    "dirichlet",
    "get_split",
    "iid",
]

# Independent NumPy streams of one split seed: the Dirichlet proportions, the row shuffles.
_PROPORTIONS, _ROWS = 0, 1


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


class Shards(NamedTuple):
    """Every worker's rows of one data set (host NumPy arrays).

    Worker j holds rows ``table[j, :sizes[j]]`` (sorted); every row of the data
    set appears in exactly one worker's part. The table is padded to the
    largest shard with the worker's own first row, which a draw never reaches.
    """

    table: np.ndarray  # (W, max size) int32 row indices
    sizes: np.ndarray  # (W,) int32 rows per worker, each >= 1

    @property
    def workers(self) -> int:
        return int(self.sizes.shape[0])

    def rows(self, worker: int) -> np.ndarray:
        """Worker ``worker``'s rows (sizes[worker],) int32, sorted."""
        return self.table[worker, : self.sizes[worker]]

    def label_counts(self, labels: Any) -> np.ndarray:
        """(W, C) rows of each class held by each worker; class c is the c-th distinct label."""
        _, codes = np.unique(np.asarray(labels), return_inverse=True)
        codes = codes.reshape(-1)
        n_classes = int(codes.max()) + 1
        out = np.zeros((self.workers, n_classes), np.int64)
        for j in range(self.workers):
            out[j] = np.bincount(codes[self.rows(j)], minlength=n_classes)
        return out


def _pack(parts: list[np.ndarray], split: Split, n: int) -> Shards:
    """The padded table of per-worker row lists; a worker left without rows is refused."""
    sizes = np.array([p.size for p in parts], np.int64)
    empty = np.flatnonzero(sizes == 0)
    if empty.size:
        raise ValueError(
            f"{split!r} leaves worker {int(empty[0])} with no rows of the {n} "
            f"({empty.size} of {len(parts)} workers are empty); {split.remedy}"
        )
    table = np.empty((len(parts), int(sizes.max())), np.int32)
    for j, rows in enumerate(parts):
        rows = np.sort(rows)
        table[j, : rows.size] = rows
        table[j, rows.size :] = rows[0]
    return Shards(table=table, sizes=sizes.astype(np.int32))


def _check_rows(split: Split, n: Any) -> int:
    n = check_int(n, "rows", minimum=1)
    if split.workers > n:
        raise ValueError(
            f"{split!r} has more workers than the data set has rows ({n}); use at most {n} workers"
        )
    return n


def _codes(split: Split, labels: Any, n: int) -> tuple[np.ndarray, int]:
    """Class indices (n,) of the rows (class c: the c-th distinct label) and the class count."""
    if labels is None:
        raise ValueError(
            f"{split!r} needs the rows' class labels and this data set has none; "
            "use asyncjax.splits.iid(...) (or give the problem labels=)"
        )
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), one per row, got {labels.shape}")
    classes, codes = np.unique(labels, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), int(classes.size)


@dataclass(frozen=True)
class Split:
    """Base of the split descriptions: a number of workers and a seed.

    Attributes:
      workers: W, the number of workers the split is made for (the run's
        ``workers`` must equal it).
      seed: seed of the split's draws (NumPy ``default_rng``), independent of
        the trajectories' seeds: every trajectory sees the same shards.
    """

    workers: int
    seed: int = 0

    kind: ClassVar[str] = ""
    needs_labels: ClassVar[bool] = False

    def __post_init__(self):  # plain ints, so a NumPy integer describes and hashes alike
        object.__setattr__(self, "workers", check_int(self.workers, "workers", minimum=1))
        object.__setattr__(self, "seed", check_int(self.seed, "seed"))

    @property
    def remedy(self) -> str:
        """What to change when a worker is left without rows."""
        return "use fewer workers"

    def shards(self, n: int, labels: Any = None) -> Shards:
        """Assigns each of ``n`` rows to one worker.

        Args:
          n: the data set's row count.
          labels: (n,) class labels of the rows (any sortable values), needed by
            the label splits.

        Returns:
          `Shards`: the per-worker row tables and sizes.
        """
        n = _check_rows(self, n)
        return _pack(self._assign(n, labels), self, n)

    def _assign(self, n: int, labels: Any) -> list[np.ndarray]:
        raise NotImplementedError

    def check_workers(self, n: Any) -> None:
        """Refuses a run whose number of workers is not the one the split was made for."""
        if int(n) != self.workers:
            raise ValueError(
                f"the split {self!r} is made for {self.workers} workers but the run has "
                f"workers = {py(n)!r}; make the split for {py(n)!r} workers or set workers = "
                f"{self.workers}"
            )

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable settings, enough to rebuild the split (`get_split`)."""
        return {"kind": self.kind, "workers": self.workers, "seed": self.seed}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "kind")
        return f"{self.kind}({opts})"


@dataclass(frozen=True, repr=False)
class IID(Split):
    """The rows shuffled with the seed and cut into W parts of equal size (±1)."""

    kind: ClassVar[str] = "iid"

    def _assign(self, n, labels):
        return np.array_split(_rng(self.seed, _ROWS).permutation(n), self.workers)


@dataclass(frozen=True, repr=False)
class ByLabel(Split):
    """Each worker holds the rows of ``classes_per_worker`` classes.

    Worker j holds classes (j·k + i) mod C, i = 0 … k − 1 (k =
    ``classes_per_worker``, C the number of distinct labels, classes in sorted
    order), so consecutive workers hold consecutive classes and every class is
    held when W·k >= C. The rows of a class are shuffled with the seed and
    shared as evenly as possible (±1) among the workers that hold it.
    """

    classes_per_worker: int = 1

    kind: ClassVar[str] = "by_label"
    needs_labels: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        k = check_int(self.classes_per_worker, "classes_per_worker", minimum=1)
        object.__setattr__(self, "classes_per_worker", k)

    @property
    def remedy(self) -> str:
        return "use fewer workers or more classes_per_worker"

    def holders(self, n_classes: int) -> list[list[int]]:
        """Class c -> the workers that hold it (see the class docstring)."""
        k, W = self.classes_per_worker, self.workers
        if k > n_classes:
            raise ValueError(
                f"classes_per_worker={k} is more than the data set's {n_classes} classes; "
                f"use 1 … {n_classes}"
            )
        if W * k < n_classes:
            raise ValueError(
                f"{self!r} holds at most {W * k} of the {n_classes} classes, so some rows would "
                f"belong to no worker; use classes_per_worker >= {math.ceil(n_classes / W)} "
                f"or at least {math.ceil(n_classes / k)} workers"
            )
        out: list[list[int]] = [[] for _ in range(n_classes)]
        for j in range(W):
            for i in range(k):
                out[(j * k + i) % n_classes].append(j)
        return out

    def _assign(self, n, labels):
        codes, n_classes = _codes(self, labels, n)
        rng = _rng(self.seed, _ROWS)
        parts: list[list[np.ndarray]] = [[] for _ in range(self.workers)]
        for c, workers in enumerate(self.holders(n_classes)):
            rows = rng.permutation(np.flatnonzero(codes == c))
            for j, piece in zip(workers, np.array_split(rows, len(workers))):
                parts[j].append(piece)
        return [np.concatenate(p) for p in parts]

    def describe(self):
        return {**super().describe(), "classes_per_worker": self.classes_per_worker}


@dataclass(frozen=True, repr=False)
class Dirichlet(Split):
    """Label proportions per worker drawn from Dirichlet(α) (Hsu et al. 2019).

    For every class c, proportions p_c ~ Dirichlet(α, …, α) over the W workers
    are drawn with the seed (`proportions`); the class's rows, shuffled, are
    cut at floor(n_c · (p_c1 + … + p_cj)), so worker j gets n_c · p_cj rows of
    class c to within one row. α = 0.1 is strongly heterogeneous (most workers
    hold one or two classes), α = 100 close to i.i.d.
    """

    alpha: float = 1.0

    kind: ClassVar[str] = "dirichlet"
    needs_labels: ClassVar[bool] = True

    def __post_init__(self):
        super().__post_init__()
        alpha = float(as_float_array("alpha", self.alpha, ndim=0))
        if alpha <= 0:
            raise ValueError(
                f"alpha must be > 0, got {py(self.alpha)!r} (0.1: strongly heterogeneous, "
                "100: close to i.i.d.)"
            )
        object.__setattr__(self, "alpha", alpha)

    @property
    def remedy(self) -> str:
        return "try another seed, a larger alpha or fewer workers"

    def proportions(self, n_classes: int) -> np.ndarray:
        """(C, W) the drawn proportions: row c is class c's share per worker (sums to 1)."""
        n_classes = check_int(n_classes, "n_classes", minimum=1)
        alpha = np.full(self.workers, self.alpha)
        return _rng(self.seed, _PROPORTIONS).dirichlet(alpha, size=n_classes)

    def _assign(self, n, labels):
        codes, n_classes = _codes(self, labels, n)
        P = self.proportions(n_classes)
        rng = _rng(self.seed, _ROWS)
        parts: list[list[np.ndarray]] = [[] for _ in range(self.workers)]
        for c in range(n_classes):
            rows = rng.permutation(np.flatnonzero(codes == c))
            cuts = np.floor(np.cumsum(P[c])[:-1] * rows.size).astype(np.int64)
            for j, piece in enumerate(np.split(rows, np.minimum(cuts, rows.size))):
                parts[j].append(piece)
        return [np.concatenate(p) for p in parts]

    def describe(self):
        return {**super().describe(), "alpha": self.alpha}


def iid(workers: int, *, seed: int = 0) -> IID:
    """Equal shares of i.i.d. rows: the rows shuffled with ``seed``, cut into ``workers`` parts.

    Shard sizes differ by at most one row when the row count is not a multiple
    of ``workers``.
    """
    return IID(workers, seed)


def by_label(workers: int, classes_per_worker: int, *, seed: int = 0) -> ByLabel:
    """Each worker holds the rows of ``classes_per_worker`` classes (see `ByLabel`).

    Needs ``workers · classes_per_worker`` >= the number of classes, so that
    every row has a worker.
    """
    return ByLabel(workers, seed, classes_per_worker)


def dirichlet(workers: int, alpha: float, seed: int = 0) -> Dirichlet:
    """Per-worker label proportions from Dirichlet(``alpha``) (see `Dirichlet`).

    A draw that leaves a worker without rows (likely for small ``alpha`` and
    many workers) is refused, naming the worker: change the seed, raise
    ``alpha`` or use fewer workers.
    """
    return Dirichlet(workers, seed, alpha)


SPLITS = {"iid": iid, "by_label": by_label, "dirichlet": dirichlet}


def get_split(kind: Any, workers: int, **options: Any) -> Split:
    """A split by name (``"iid"``, ``"by_label"``, ``"dirichlet"``) with its options."""
    if kind not in SPLITS:
        raise ValueError(
            f"split kind {kind!r} is not known{did_you_mean(kind, SPLITS)}; "
            f"choose one of {', '.join(SPLITS)}"
        )
    return SPLITS[kind](workers, **options)
