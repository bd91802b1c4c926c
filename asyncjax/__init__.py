"""asyncjax: a batched JAX simulator of asynchronous momentum SGD.

Quick start::

    import asyncjax as aj
    pca = aj.StreamingPCA([4.0, 3.0, 2.0, 1.0])
    grid = aj.Grid(momentum=[0.7, 0.9], delay=range(0, 151, 10), lr=5e-4, seed=range(100))
    res = aj.sweep(pca, grid, steps=20_000, record_every=500)
    aj.theory.pca_threshold(pca.eigenvalues, [0.7, 0.9], 5e-4)   # predicted thresholds

Modules: ``analysis``, ``theory``, ``delays`` (the laws, the worker clock,
traces), ``servers`` (what the server does with each arrival: ASGD, Rennala,
m-Synchronous, Ringmaster, FedBuff), ``splits`` (per-worker data: which rows
each worker holds), ``mitigations``, ``optim``, ``parts`` (how a part declares its swept
values), ``rng``, ``datasets`` and ``wallclock`` (re-exported here);
``problems``, ``sweep``, ``results``, ``plotting``, ``wallclock_plots``,
``config``, ``reproduce`` (the presets are in ``experiments``) and ``bench``
(import them by name).
"""

from asyncjax import (
    analysis,
    datasets,
    delays,
    mitigations,
    optim,
    parts,
    rng,
    servers,
    splits,
    theory,
    wallclock,
)
from asyncjax._devices import use_cpu_cores
from asyncjax._parts import OMITTED, REQUIRED, Hyper
from asyncjax._version import __version__
from asyncjax.delays import DELAY_MODELS, DelayModel, get_delay_model
from asyncjax.engine import Spec, Trace, compile_count
from asyncjax.optim import Optimizer
from asyncjax.problems import (
    MLP,
    LeastSquares,
    Logistic,
    Problem,
    Quadratic,
    QuadraticForm,
    QuarticSaddle,
    StreamingPCA,
)
from asyncjax.results import Results
from asyncjax.simulate import data_stream, delay_stream, simulate
from asyncjax.sweep import Grid, sweep
from asyncjax.sweep import plan as sweep_plan

__all__ = [
    "__version__",
    "analysis",
    "datasets",
    "optim",
    "parts",
    "rng",
    "servers",
    "splits",
    "theory",
    "delays",
    "mitigations",
    "wallclock",
    "Hyper",
    "REQUIRED",
    "OMITTED",
    "DELAY_MODELS",
    "DelayModel",
    "Grid",
    "LeastSquares",
    "Logistic",
    "MLP",
    "Quadratic",
    "QuadraticForm",
    "QuarticSaddle",
    "Optimizer",
    "Problem",
    "Results",
    "Spec",
    "sweep_plan",
    "StreamingPCA",
    "Trace",
    "compile_count",
    "data_stream",
    "delay_stream",
    "get_delay_model",
    "simulate",
    "sweep",
    "use_cpu_cores",
]
