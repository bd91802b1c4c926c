"""Small real data sets for the classification problems, split and standardised.

`digits` loads scikit-learn's bundled 8x8 handwritten digits (1797
images, 64 pixels, 10 classes; no download), splits them into a training and a
held-out part with a fixed seed, stratified by class, and standardises every
pixel with the training part's mean and standard deviation.

scikit-learn is an optional dependency: ``pip install "asyncjax[data]"``.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any, NamedTuple

import numpy as np

from asyncjax._validate import as_float_array, check_int, py

__all__ = ["Dataset", "digits", "split", "standardize"]


class Dataset(NamedTuple):
    """A labelled data set with a held-out part (NumPy arrays, host memory).

    Labels are the original class values (any sortable values, e.g. 0..9);
    ``classes`` lists them, and a problem's class index c stands for
    ``classes[c]``.
    """

    X_train: np.ndarray  # (n, d) float64 features
    y_train: np.ndarray  # (n,) labels, values from `classes`
    X_test: np.ndarray  # (n_test, d) float64 features
    y_test: np.ndarray  # (n_test,) labels, values from `classes`
    classes: np.ndarray  # (C,) the distinct labels, sorted
    name: str = "dataset"

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={tuple(self.X_train.shape)}, "
            f"test={tuple(self.X_test.shape)}, classes={len(self.classes)})"
        )


def split(y: Any, test_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/held-out split of n labelled rows.

    The held-out part has ceil(test_fraction * n) rows, shared among the
    classes in proportion to their counts (largest remainders get the
    leftover rows); which rows of a class are held out is drawn with
    ``numpy.random.default_rng(seed)``.

    Args:
      y: (n,) labels.
      test_fraction: fraction of the rows held out, in (0, 1).
      seed: seed of the draw.

    Returns:
      (train_rows, test_rows): sorted int64 row indices, disjoint, covering 0..n-1.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    frac = float(as_float_array("test_fraction", test_fraction))
    if not 0.0 < frac < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {py(test_fraction)!r}")
    seed = check_int(seed, "seed")
    n = y.size
    n_test = math.ceil(frac * n - 1e-9)
    if n_test < 1 or n_test >= n:
        raise ValueError(
            f"test_fraction={frac!r} of {n} rows leaves {n_test} held-out and {n - n_test} "
            "training rows; both parts need at least one"
        )
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    quota = counts * (n_test / n)
    take = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: n_test - int(take.sum())]] += 1
    rng = np.random.default_rng(seed)
    test_rows = []
    for c in range(classes.size):
        rows = np.flatnonzero(inverse == c)
        test_rows.append(rng.permutation(rows)[: take[c]])
    test = np.sort(np.concatenate(test_rows))
    train = np.setdiff1d(np.arange(n), test)
    return train, test


def standardize(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scales every column to zero mean and unit variance on the training part.

    Columns constant on the training part carry no information for a model
    fitted to it; they are set to 0 in both parts (never divided by 0).

    Args:
      X_train: (n, d) training features.
      X_test: (n_test, d) held-out features.

    Returns:
      The standardised (X_train, X_test), float64.
    """
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    constant = std <= 1e-12 * (1.0 + np.abs(mean))
    scale = np.where(constant, 1.0, std)
    train = (X_train - mean) / scale
    test = (X_test - mean) / scale
    train[:, constant] = 0.0
    test[:, constant] = 0.0
    return train, test


def require_scikit_learn(what: str) -> None:
    """Raises a clear ImportError, naming the install command, if scikit-learn is missing.

    Args:
      what: what needs it, for the message (e.g. ``"the liu2018-dnn preset"``).
    """
    if importlib.util.find_spec("sklearn") is None:
        raise ImportError(
            f'{what} needs scikit-learn; install it with pip install "asyncjax[data]" '
            '(in a clone of the repository: pip install -e ".[data]")'
        )


def digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 handwritten digits: 1797 images, 64 pixels, classes 0-9.

    Split with `split` (stratified; 1437 training and 360 held-out
    images at the default 0.2) and standardised with `standardize`
    (pixels that are constant on the training part, e.g. the always-blank
    corners, are 0).

    Args:
      test_fraction: fraction held out, in (0, 1).
      seed: seed of the split.

    Returns:
      A `Dataset` named ``"digits"``.

    Raises:
      ImportError: scikit-learn is not installed.
    """
    require_scikit_learn("asyncjax.datasets.digits()")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = np.asarray(bunch.data, np.float64)
    y = np.asarray(bunch.target, np.int64)
    train, test = split(y, test_fraction, seed)
    X_train, X_test = standardize(X[train], X[test])
    return Dataset(X_train, y[train], X_test, y[test], np.unique(y), "digits")
