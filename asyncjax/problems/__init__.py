"""Problems the engine can optimise (see `asyncjax.problems.base` for the protocol)."""

from asyncjax.problems.base import Problem
from asyncjax.problems.mlp import MLP, MLPOperands
from asyncjax.problems.pca import PCAOperands, StreamingPCA, sample_block, sin2_and_norm
from asyncjax.problems.quadratic import Quadratic, QuadraticOperands, WorkerQuadraticOperands
from asyncjax.problems.quadratic_form import (
    QuadraticForm,
    QuadraticFormOperands,
    banded_matvec,
    ringmaster_quadratic,
)
from asyncjax.problems.regression import (
    LeastSquares,
    LeastSquaresOperands,
    Logistic,
    LogisticOperands,
)
from asyncjax.problems.saddle import QuarticSaddle, SaddleOperands

__all__ = [
    "Problem",
    "StreamingPCA",
    "Quadratic",
    "QuadraticForm",
    "ringmaster_quadratic",
    "LeastSquares",
    "Logistic",
    "QuarticSaddle",
    "MLP",
    "PCAOperands",
    "QuadraticOperands",
    "WorkerQuadraticOperands",
    "QuadraticFormOperands",
    "banded_matvec",
    "LeastSquaresOperands",
    "LogisticOperands",
    "SaddleOperands",
    "MLPOperands",
    "sample_block",
    "sin2_and_norm",
]
