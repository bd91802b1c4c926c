"""Results: arrays with named axes and coordinates, saved as plain ``.npz``.

On disk a result is one NumPy ``.npz`` archive that opens without asyncjax and
without pickle::

    f = np.load("results.npz")                       # allow_pickle stays False
    meta = json.loads(str(f["metadata"]))            # dims, attrs (every setting)
    err = f["data.error"]                            # axes: meta["dims"]["error"]
    delays = f["coord.delay"]

Writes are atomic (temporary file in the same folder, then rename), so a crash
never leaves a truncated file behind, and files get the permissions the
process's umask allows (0644 under the usual umask 022), like any other file
the user creates.

For other tools, `Results.to_xarray` gives an ``xarray.Dataset`` (every
coordinate, the settings as attributes), `Results.to_dataframe` a
long-form pandas table, and `Results.to_netcdf` / `Results.to_zarr`
(``asyncjax export DIR --to netcdf|zarr``) files that xarray, R, Julia or
Panoply open without asyncjax. These need the optional extra:
``pip install "asyncjax[xarray]"``.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from asyncjax._io import atomic_write, jsonable, scratch_name
from asyncjax._validate import did_you_mean

__all__ = ["Results"]

FORMAT = "asyncjax-results/1"
JSON_ATTRS = "json_attrs"  # the dataset attribute naming the attributes stored as JSON text


def _optional(module: str, what: str) -> Any:
    """Imports an optional dependency, or says which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f'{what} needs the optional package {module!r}: pip install "asyncjax[xarray]"'
        ) from err


def _flat(value: Any) -> bool:
    """Whether ``value`` can be a NetCDF attribute as it is (a string or a number, not a bool)."""
    return isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _unknown(kind: str, name: Any, known: Any) -> str:
    """'no variable 'errror' (did you mean 'error'?); known: ...'."""
    return (
        f"no {kind} {name!r}{did_you_mean(name, known)}; known: {', '.join(str(k) for k in known)}"
    )


class Results:
    """A set of named arrays sharing named axes, with coordinates and settings.

    Args:
      data: variable name -> array.
      dims: variable name -> its axis names (one per array dimension).
      coords: axis name -> 1-D coordinate values (axes without one are positional).
      attrs: JSON-serialisable settings (problem, steps, delay model, …).
    """

    def __init__(
        self,
        data: Mapping[str, np.ndarray],
        dims: Mapping[str, tuple[str, ...]],
        coords: Mapping[str, np.ndarray],
        attrs: Mapping[str, Any] | None = None,
    ):
        self.data = {k: np.asarray(v) for k, v in data.items()}
        self.dims = {k: tuple(v) for k, v in dims.items()}
        self.coords = {k: np.asarray(v) for k, v in coords.items()}
        self.attrs = dict(attrs or {})
        for name, arr in self.data.items():
            if name not in self.dims or len(self.dims[name]) != arr.ndim:
                raise ValueError(
                    f"variable {name!r} of shape {arr.shape} needs one axis name per dimension"
                )
            for axis, size in zip(self.dims[name], arr.shape):
                if axis in self.coords and self.coords[axis].shape != (size,):
                    raise ValueError(
                        f"coordinate {axis!r} has shape {self.coords[axis].shape}, "
                        f"but {name!r} has {size} entries along it"
                    )

    # ------------------------------------------------------------------ access
    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.data:
            raise KeyError(_unknown("variable", name, self.data))
        return self.data[name]

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def axis(self, name: str, dim: str) -> int:
        """Position of axis ``dim`` in variable ``name``."""
        try:
            return self.dims[name].index(dim)
        except ValueError:
            raise KeyError(
                f"{name!r} has no axis {dim!r}; its axes are {self.dims[name]}"
            ) from None

    def index_of(self, dim: str, value: Any) -> int:
        """Index of coordinate ``value`` along ``dim`` (floats matched to 1e-9)."""
        if dim not in self.coords:
            raise KeyError(_unknown("axis", dim, self.coords))
        if isinstance(value, (str, bytes)) or np.ndim(value) != 0:
            raise KeyError(
                f"{dim}={value!r}: pick one number per axis (several: {dim}=[...] as a list "
                "of numbers)"
            )
        coord = self.coords[dim]
        hits = (
            np.flatnonzero(np.isclose(coord, value, rtol=1e-9, atol=0))
            if coord.dtype.kind == "f"
            else np.flatnonzero(coord == value)
        )
        if hits.size == 0:
            raise KeyError(f"{dim}={value!r} not among {coord.tolist()}")
        return int(hits[0])

    def isel(self, **indexers: Any) -> Results:
        """Picks along named axes: an int drops the axis, a list of ints keeps it with those entries."""
        for dim in indexers:
            if dim not in self.coords and not any(dim in d for d in self.dims.values()):
                raise KeyError(_unknown("axis", dim, self.coords))
        data, dims = {}, {}
        for name, arr in self.data.items():
            names = list(self.dims[name])
            for dim, i in indexers.items():
                if dim in names:
                    arr = np.take(arr, i, axis=names.index(dim))
                    if np.ndim(i) == 0:
                        names.remove(dim)
            data[name], dims[name] = arr, tuple(names)
        dropped = {k for k, i in indexers.items() if np.ndim(i) == 0}
        coords = {
            k: (np.take(v, indexers[k]) if k in indexers else v)
            for k, v in self.coords.items()
            if k not in dropped
        }
        attrs = dict(self.attrs)
        attrs.setdefault("selected", {})
        attrs["selected"] = {
            **attrs["selected"],
            **{
                k: self.coords[k][i].item()
                for k, i in indexers.items()
                if k in self.coords and k in dropped
            },
        }
        return Results(data, dims, coords, attrs)

    def sel(self, **values: Any) -> Results:
        """Like `isel` but by coordinate value: ``r.sel(momentum=0.9)`` drops the axis,
        ``r.sel(momentum=[0.7, 0.9])`` keeps those two."""
        return self.isel(
            **{
                dim: (
                    [self.index_of(dim, x) for x in v]
                    if isinstance(v, (list, tuple, np.ndarray))
                    else self.index_of(dim, v)
                )
                for dim, v in values.items()
            }
        )

    @property
    def sizes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, arr in self.data.items():
            out.update(zip(self.dims[name], arr.shape))
        return out

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}: {v}" for k, v in self.sizes.items())
        return f"Results({sizes}; variables: {', '.join(self.data)})"

    # ------------------------------------------------------------------ other tools
    def to_xarray(self) -> Any:
        """The results as an ``xarray.Dataset`` (needs the ``[xarray]`` extra).

        Every variable keeps its axes, every axis with a coordinate gets it,
        and the settings become the dataset's attributes: strings and numbers
        as they are, anything else (tables, lists, booleans, null) as JSON
        text, named in the attribute ``json_attrs`` -- NetCDF attributes must
        be flat. Each variable's description (``attrs["variables"]``) is also
        that variable's ``description`` attribute. `from_xarray` undoes it.
        """
        xr = _optional("xarray", "Results.to_xarray")
        described = self.attrs.get("variables", {})
        data_vars = {}
        for name, arr in self.data.items():
            about = described.get(name, {}) if isinstance(described, Mapping) else {}
            flat = (
                {k: v for k, v in about.items() if _flat(v)} if isinstance(about, Mapping) else {}
            )
            data_vars[name] = (self.dims[name], arr, flat)
        attrs, encoded = {}, []
        for key, value in self.attrs.items():
            if _flat(value):
                attrs[key] = value
            else:
                attrs[key] = json.dumps(jsonable(value), allow_nan=False)
                encoded.append(key)
        attrs[JSON_ATTRS] = " ".join(encoded)
        attrs["asyncjax_format"] = FORMAT
        coords = {k: (k, v) for k, v in self.coords.items()}
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)

    @classmethod
    def from_xarray(cls, ds: Any) -> Results:
        """Results from a dataset made by `to_xarray` (or read back from its NetCDF or Zarr)."""
        data = {str(k): np.asarray(ds[k].values) for k in ds.data_vars}
        dims = {str(k): tuple(str(d) for d in ds[k].dims) for k in ds.data_vars}
        coords = {str(k): np.asarray(ds[k].values) for k in ds.coords if ds[k].dims == (k,)}
        skip = (JSON_ATTRS, "asyncjax_format")
        attrs = {str(k): v for k, v in ds.attrs.items() if k not in skip}
        for key in str(ds.attrs.get(JSON_ATTRS, "")).split():
            attrs[key] = json.loads(attrs[key])
        attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in attrs.items()}
        return cls(data, dims, coords, attrs)

    def to_dataframe(self, *names: str) -> Any:
        """A long-form ``pandas.DataFrame``: one row per cell, a column per axis and per variable.

        Args:
          *names: variables sharing their axes; default every variable with
            the axes of the first one (the metrics: grid axes and step).

        Returns:
          The table, with the coordinate values (or positions, for an axis
          without one) in the axis columns.
        """
        pd = _optional("pandas", "Results.to_dataframe")
        first = names[0] if names else next(iter(self.data))
        if first not in self.data:
            raise KeyError(_unknown("variable", first, self.data))
        dims = self.dims[first]
        names = names or tuple(k for k in self.data if self.dims[k] == dims)
        for name in names:
            if name not in self.data:
                raise KeyError(_unknown("variable", name, self.data))
            if self.dims[name] != dims:
                raise ValueError(
                    f"{name!r} has axes {self.dims[name]}, {first!r} has {dims}: one table "
                    "holds variables that share their axes; call to_dataframe once for each"
                )
        shape = self.data[first].shape
        index = np.indices(shape).reshape(len(shape), -1)
        columns = {
            d: (self.coords[d][index[i]] if d in self.coords else index[i])
            for i, d in enumerate(dims)
        }
        columns.update({name: self.data[name].reshape(-1) for name in names})
        return pd.DataFrame(columns)

    def to_netcdf(self, path: str | os.PathLike) -> Path:
        """Writes `to_xarray`'s dataset as a compressed NetCDF-4 file (h5netcdf), atomically."""
        _optional("h5netcdf", "writing NetCDF")
        ds = self.to_xarray()
        encoding = {k: {"zlib": True, "complevel": 4} for k in ds.data_vars}
        return _replace_with(
            Path(path), lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
        )

    def to_zarr(self, path: str | os.PathLike) -> Path:
        """Writes `to_xarray`'s dataset as a Zarr store (format 2, consolidated), atomically."""
        _optional("zarr", "writing Zarr")
        ds = self.to_xarray()
        return _replace_with(
            Path(path), lambda tmp: ds.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True)
        )

    # ------------------------------------------------------------------ disk
    def save(self, path: str | os.PathLike) -> Path:
        """Writes one ``.npz`` (atomically); see the module docstring for the layout."""
        meta = {"format": FORMAT, "dims": self.dims, "attrs": self.attrs}
        arrays = {f"data.{k}": v for k, v in self.data.items()}
        arrays.update({f"coord.{k}": v for k, v in self.coords.items()})
        arrays["metadata"] = np.array(json.dumps(jsonable(meta), allow_nan=False))
        return atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Results:
        """Reads a file written by `save` (no pickle involved).

        Raises:
          FileNotFoundError: there is no file at ``path``.
          ValueError: the file is truncated, damaged or not an asyncjax results
            file; the message names it.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist" if not path.exists() else f"{path} is not a file"
            )
        try:
            with np.load(path, allow_pickle=False) as f:
                if not hasattr(f, "files") or "metadata" not in f.files:
                    raise _NotResults(
                        f"{path} is not an asyncjax results file: it has no 'metadata' entry"
                    )
                meta = json.loads(str(f["metadata"]))
                if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                    found = meta.get("format") if isinstance(meta, dict) else None
                    raise _NotResults(f"{path} is not an asyncjax results file (format {found!r})")
                data = {k[5:]: f[k] for k in f.files if k.startswith("data.")}
                coords = {k[6:]: f[k] for k in f.files if k.startswith("coord.")}
            return cls(data, meta["dims"], coords, meta["attrs"])
        except _NotResults:
            raise
        except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
            raise ValueError(
                f"{path} cannot be read as asyncjax results ({type(err).__name__}: {err}); "
                "it is truncated, damaged or was not written by asyncjax"
            ) from err


class _NotResults(ValueError):
    """A readable file that is not asyncjax results."""


def _replace_with(path: Path, write: Any) -> Path:
    """Calls ``write(temporary path)`` in a scratch folder beside ``path``, then swaps the
    result in for ``path`` (a file or, for Zarr, a folder): a crash leaves no half-written file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=scratch_name(path), suffix=".tmp", dir=path.parent))
    except OSError as err:
        raise type(err)(f"cannot write {path}: {err.strerror or err}") from err
    try:
        made = scratch / path.name
        write(str(made))
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(made, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return path
