"""Files written safely: folders checked before work starts, atomic writes, JSON of NumPy values.

Writes are atomic (a temporary file in the same folder, then a rename), so a
crash never leaves a truncated file behind, and files get the permissions the
process's umask allows (0644 under the usual umask 022).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but brief)
    os.umask(mask)
    return mask


def _fs_error(err: OSError, what: str) -> OSError:
    """An error of the same kind as ``err`` whose message says what failed and where."""
    new = type(err)(f"{what}: {err.strerror or err}")
    new.errno = err.errno
    return new


def ensure_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Creates folder ``path`` if needed and checks that files can be written into it.

    Raises:
      NotADirectoryError: ``path`` is an existing file.
      OSError: the folder cannot be created or written to (the message names it).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"{what} {path} is an existing file, not a folder; choose a folder"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _fs_error(err, f"cannot create {what} {path}") from err
    try:  # os.access is not reliable (root, ACLs, read-only mounts): try it
        fd, probe = tempfile.mkstemp(prefix=".asyncjax-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise _fs_error(err, f"cannot write into {what} {path}") from err
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Calls ``write(fileobj)`` on a temporary file, then renames it to ``path``.

    The file gets mode 0666 minus the umask, as ``open`` would give it (the
    temporary file is created 0600).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=scratch_name(path), suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _fs_error(err, f"cannot write {path}") from err
    try:
        with os.fdopen(fd, mode) as fh:
            os.chmod(tmp, 0o666 & ~_umask())
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno is not None:  # a full disk, a permission: name it
            raise _fs_error(err, f"cannot write {path}") from err
        raise
    return path


def scratch_name(path: Path) -> str:
    """The prefix of the scratch files `atomic_write` makes for ``path`` (suffix ``.tmp``)."""
    return f".{path.name}."


def remove_scratch(folder: str | os.PathLike, names: Iterable[str] | None = None) -> None:
    """Removes what a killed writer left in ``folder``: the ``.NAME.*.tmp`` scratch files and
    folders of `atomic_write` (and of `asyncjax.results`' replacing writes), for the file names
    ``names``, or for any name where None (a folder asyncjax owns)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    prefixes = None if names is None else tuple(scratch_name(folder / n) for n in names)
    for entry in folder.iterdir():
        name = entry.name
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        if prefixes is not None and not name.startswith(prefixes):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def jsonable(obj: Any) -> Any:
    """``obj`` with NumPy values as Python ones and non-finite floats as None, "inf" or "-inf"."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        if all(type(v) is int for v in obj):  # e.g. 10^8 seeds: one cheap pass, same result
            return list(obj)
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically writes ``obj`` as indented JSON (NumPy values converted)."""
    text = json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n"
    return atomic_write(path, lambda fh: fh.write(text), mode="w")
