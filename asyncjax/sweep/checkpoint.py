"""The chunk files of a sweep's output folder: how they are written, named, checked and resumed."""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from asyncjax._io import atomic_write, ensure_dir, jsonable, remove_scratch, write_json
from asyncjax.sweep.distributed import DistributedError, Group

# Entries of a sweep's attrs that describe it but do not change its results.
_NOT_SETTINGS = ("variables", "source", "timing")
_SWEEP_FORMAT = "asyncjax-sweep/2"


def sweep_key(attrs: Mapping[str, Any]) -> str:
    """A hash of every setting that changes a sweep's results.

    Chunk size and device count are not settings (results are bit-identical
    across them), and neither are descriptions (``variables``, ``source``).
    """
    settings = {k: v for k, v in attrs.items() if k not in _NOT_SETTINGS}
    text = json.dumps(jsonable(settings), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ChunkError(ValueError):
    """A chunk file that cannot be used; the message names it."""


class ChunkWarning(UserWarning):
    """A chunk file was unusable and its cells are recomputed."""


def _columns(hyper: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The hyperparameter columns in a fixed (name) order, as chunk files record them."""
    return [hyper[k] for k in sorted(hyper)]


class Checkpoint:
    """Chunk files under ``root/chunks`` plus ``root/sweep.json`` naming the sweep.

    A chunk file is self-describing. Beside the data of its cells it holds
    ``chunk.key`` (the sweep key of `sweep_key`), ``chunk.seeds`` (the seed
    value of each row), ``chunk.points`` (the index of each column among the
    sweep's hyperparameter points, in grid order) and ``chunk.hyper`` (those
    points' (momentum, lr, delay) values, as a check). Its name gives the range
    of seed positions and points it covers, so chunks of differently cut plans
    never collide.

    On resume every chunk file is read: its cells are copied into place by seed
    value and point index, and a mask records which (seed, point) cells are
    covered. The new plan -- whatever its chunk size or device count -- then
    computes only the chunks not fully covered; a chunk that is only partly
    covered is recomputed whole (its covered cells come out bit-identical, so
    nothing is mixed). A cell held by two files must agree in both, or resume
    stops. A file that cannot be read is renamed ``*.corrupt`` with a warning
    naming it, and its cells are recomputed.
    """

    def __init__(self, root: str | Path, attrs: dict, resume: bool, overwrite: bool):
        self.root = Path(root)
        self.dir = self.root / "chunks"
        self.key = sweep_key(attrs)
        self.overwrite = overwrite
        ensure_dir(self.root)
        meta_path = self.root / "sweep.json"
        results_path = self.root / "results.npz"
        chunks = self.files()
        has_data = bool(chunks) or results_path.exists()
        problem = None  # why the folder's contents cannot be kept, if they cannot
        if meta_path.exists():
            try:
                old = json.loads(meta_path.read_text())
                old_key, old_format = old["key"], old.get("format")
            except (OSError, ValueError, KeyError, TypeError) as err:
                problem = ValueError(f"{meta_path} cannot be read ({type(err).__name__}: {err})")
            else:
                if old_format != _SWEEP_FORMAT and chunks:
                    problem = ValueError(
                        f"{self.root} holds {len(chunks)} chunk(s) written by an older asyncjax, which do "
                        "not record which seeds and points they hold, so they cannot be resumed safely"
                    )
                elif old_key != self.key and has_data:
                    problem = ValueError(
                        f"{self.root} holds a different sweep (its settings differ from this one's)"
                    )
                elif has_data and not resume:
                    what = f"{len(chunks)} finished chunk(s)" if chunks else "the finished results"
                    problem = FileExistsError(
                        f"{self.root} already holds {what} of this sweep; pass resume=True (--resume) "
                        "to continue or reuse them"
                    )
        elif has_data:
            problem = ValueError(
                f"{self.root} holds {'chunks' if chunks else 'results.npz'} but no "
                "sweep.json saying which sweep they belong to"
            )
        if problem is not None:
            if not overwrite:
                raise type(problem)(
                    f"{problem}; pass overwrite=True (--overwrite) to replace what it "
                    "holds, or choose another output folder"
                )
            for path in chunks + sorted(self.dir.glob("*.corrupt")):
                path.unlink()
            if results_path.exists():
                results_path.unlink()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise type(err)(f"cannot create {self.dir}: {err.strerror or err}") from err
        # what a killed run was writing (the files themselves are whole: writes are atomic)
        remove_scratch(self.root, ("sweep.json", "results.npz"))
        remove_scratch(self.dir)
        write_json(meta_path, {"format": _SWEEP_FORMAT, "key": self.key, "settings": attrs})

    @classmethod
    def attach(cls, root: str | Path, attrs: dict, overwrite: bool) -> Checkpoint:
        """The folder another process (process 0 of the job) has already prepared."""
        ck = cls.__new__(cls)
        ck.root, ck.key, ck.overwrite = Path(root), sweep_key(attrs), overwrite
        ck.dir = ck.root / "chunks"
        return ck

    def files(self) -> list[Path]:
        return sorted(self.dir.glob("chunk-*.npz")) if self.dir.is_dir() else []

    def remove_chunks(self) -> None:
        """Deletes the chunk files (``results.npz`` holds their cells now) and their folder."""
        for path in self.files():
            path.unlink(missing_ok=True)
        try:
            self.dir.rmdir()
        except OSError:  # not empty (a *.corrupt file, something of the user's): leave it
            pass

    def path(self, s: slice, points: np.ndarray) -> Path:
        """A chunk's file: its seed positions and points; a digest if the points are not a range."""
        first, stop = int(points[0]), int(points[-1]) + 1
        name = f"chunk-s{s.start:07d}-{s.stop:07d}-p{first:07d}-{stop:07d}"
        if points.size != stop - first:  # a bucket's points: not contiguous
            name += "-" + hashlib.sha256(np.asarray(points, np.int64).tobytes()).hexdigest()[:8]
        return self.dir / f"{name}.npz"

    def save(
        self,
        s: slice,
        points: np.ndarray,
        parts: dict[str, np.ndarray],
        seeds: np.ndarray,
        hyper: dict,
    ) -> None:
        """Writes the cells of seed positions ``s`` × points ``points`` (ascending indices; atomically)."""
        book = {
            "chunk.key": np.array(self.key),
            "chunk.seeds": np.asarray(seeds, np.int64),
            "chunk.points": np.asarray(points, np.int64),
            "chunk.hyper": np.stack(
                [np.asarray(a[points], np.float64) for a in _columns(hyper)], axis=-1
            ),
        }
        atomic_write(self.path(s, points), lambda fh: np.savez(fh, **book, **parts))

    def _read(self, path: Path) -> dict[str, np.ndarray] | None:
        """A chunk file's arrays, or None (with a warning) if it cannot be read."""
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as err:
            bad = path.with_name(path.name + ".corrupt")
            try:
                path.replace(bad)
                moved = f"moved to {bad.name}"
            except OSError:
                moved = "left in place"
            warnings.warn(
                f"chunk file {path} cannot be read ({type(err).__name__}: {err}); it is truncated or "
                f"damaged, so its cells will be recomputed ({moved})",
                ChunkWarning,
                stacklevel=4,
            )
            return None

    def restore(self, store: dict[str, np.ndarray], seeds: np.ndarray, hyper: dict) -> np.ndarray:
        """Copies every usable chunk on disk into ``store``; returns the (S, H) covered mask."""
        S, H = store["diverged_at"].shape
        covered = np.zeros((S, H), bool)
        position = {int(v): i for i, v in enumerate(seeds)}
        hyper_cols = np.stack(
            [np.asarray(a, np.float64) for a in _columns(hyper)], axis=-1
        )  # (H, names)
        for path in self.files():
            f = self._read(path)
            if f is None:
                continue
            try:
                covered |= self._place(path, f, store, covered, position, hyper_cols)
            except ChunkError as err:
                if not self.overwrite:
                    raise
                path.unlink()
                warnings.warn(f"{err}; deleted it (overwrite=True)", ChunkWarning, stacklevel=3)
        return covered

    def _place(
        self,
        path: Path,
        f: dict[str, np.ndarray],
        store: dict[str, np.ndarray],
        covered: np.ndarray,
        position: dict[int, int],
        hyper_cols: np.ndarray,
    ) -> np.ndarray:
        """Copies the cells of chunk file ``f`` into ``store``; returns the mask of cells it covers."""
        S, H = covered.shape
        mask = np.zeros((S, H), bool)
        if "chunk.key" not in f:
            raise ChunkError(
                f"chunk file {path} does not record which seeds and points it holds (written by "
                "an older asyncjax); delete it or pass overwrite=True (--overwrite)"
            )
        if str(f["chunk.key"]) != self.key:
            raise ChunkError(
                f"chunk file {path} belongs to a different sweep (key {f['chunk.key']}, this "
                f"sweep's {self.key}); delete it or pass overwrite=True (--overwrite)"
            )
        seed_vals, points = f["chunk.seeds"], f["chunk.points"]
        missing = [int(v) for v in seed_vals if int(v) not in position]
        if missing:
            raise ChunkError(
                f"chunk file {path} holds seed {missing[0]}, which this sweep does not have"
            )
        if points.size and (
            points.min() < 0
            or points.max() >= H
            or not np.array_equal(f["chunk.hyper"], hyper_cols[points])
        ):
            raise ChunkError(
                f"chunk file {path} holds hyperparameter points this sweep does not have"
            )
        rows = np.array([position[int(v)] for v in seed_vals], dtype=np.int64)
        cells = np.ix_(rows, points)
        for k, v in store.items():
            if (
                k not in f
                or f[k].shape != (rows.size, points.size) + v.shape[2:]
                or f[k].dtype != v.dtype
            ):
                got = f"shape {f[k].shape}, dtype {f[k].dtype}" if k in f else "nothing"
                raise ChunkError(
                    f"chunk file {path} holds {got} for variable {k!r}, not what this sweep "
                    "records; delete it or pass overwrite=True (--overwrite)"
                )
        seen = covered[cells]
        if seen.any():
            for k, v in store.items():
                if not np.array_equal(v[cells][seen], f[k][seen], equal_nan=v.dtype.kind == "f"):
                    raise ChunkError(
                        f"chunk file {path} disagrees with another chunk file over the same cells (variable "
                        f"{k!r}); the folder mixes runs: pass overwrite=True (--overwrite) to recompute"
                    )
        for k, v in store.items():
            v[cells] = f[k]
        mask[cells] = True
        return mask


def remove_finished_chunks(root: str | Path) -> None:
    """Deletes the chunk files of every finished sweep under ``root`` (one with its results.npz)."""
    for meta in sorted(Path(root).rglob("sweep.json")):
        if (meta.parent / "results.npz").exists():
            ck = Checkpoint.__new__(Checkpoint)
            ck.root, ck.dir = meta.parent, meta.parent / "chunks"
            ck.remove_chunks()


def open_checkpoint(
    out: str | Path | None,
    attrs: dict,
    resume: bool,
    overwrite: bool,
    group: Group | None,
    digest: Callable[[], str],
) -> Checkpoint | None:
    """The chunk folder; in a multi-process job process 0 prepares it and the others wait for it.

    Args:
      out: the output folder, or None (no checkpoint).
      attrs: the sweep's settings (their hash names the sweep).
      resume, overwrite: as for `asyncjax.sweep`.
      group: the processes of the job, or None (one process).
      digest: the plan's `digest`; every process must cut
        the sweep alike.
    """
    if out is None:
        return None
    if group is None:
        return Checkpoint(out, attrs, resume, overwrite)
    if group.leader:
        group.publish("plan", digest())
        try:
            ckpt = Checkpoint(out, attrs, resume, overwrite)
        except Exception as err:
            group.publish("setup", f"{type(err).__name__}: {err}")
            raise
        group.publish("setup", "ok")
        return ckpt
    if group.fetch("plan", "process 0's plan") != digest():
        raise DistributedError(
            f"process {group.index} cut the sweep into other chunks than process 0 (the processes see different "
            "devices or memory); pass the same chunk_size (run.chunk_size) to every process"
        )
    status = group.fetch("setup", "process 0 to prepare the output folder")
    if status != "ok":
        raise DistributedError(f"process 0 could not prepare {out}: {status}")
    return Checkpoint.attach(out, attrs, overwrite)
