"""Problems the engine can optimise (see :mod:`asyncjax.problems.base` for the protocol)."""

from asyncjax.problems.base import Problem
from asyncjax.problems.pca import PCAOperands, StreamingPCA, sample_block, seq_sum, sin2_and_norm
from asyncjax.problems.quadratic import Quadratic, QuadraticOperands
from asyncjax.problems.regression import LeastSquares, LeastSquaresOperands, Logistic, LogisticOperands

__all__ = [
    "Problem",
    "StreamingPCA",
    "Quadratic",
    "LeastSquares",
    "Logistic",
    "PCAOperands",
    "QuadraticOperands",
    "LeastSquaresOperands",
    "LogisticOperands",
    "sample_block",
    "seq_sum",
    "sin2_and_norm",
]
