"""Problems the engine can optimise (see :mod:`asyncjax.problems.base` for the protocol)."""

from asyncjax.problems.base import Problem
from asyncjax.problems.pca import PCAOperands, StreamingPCA, sample_block, seq_sum, sin2_and_norm

__all__ = ["Problem", "StreamingPCA", "PCAOperands", "sample_block", "seq_sum", "sin2_and_norm"]
