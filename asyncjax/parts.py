"""What a part of a run declares (public face of `asyncjax._parts`).

A problem, an optimizer, a delay model or a mitigation declares the values a
grid may sweep as a tuple of `Hyper` in its ``hyperparameters``; the
checks below fit ``Hyper(check=...)`` as they are::

    class MyProblem(aj.Problem):
        hyperparameters = (Hyper("noise", 0.1, check_nonnegative),)

`resolve` is the one loop every run goes through: unknown names, missing
required ones and refused values fail here, before anything compiles.
"""

from asyncjax._parts import OMITTED, REQUIRED, Hyper, Part, allowed_axes, hp_names, resolve, select
from asyncjax._validate import (
    check_momentum,
    check_nonnegative,
    check_positive,
    check_unit_interval,
    check_whole,
)

__all__ = [
    "Hyper",
    "Part",
    "REQUIRED",
    "OMITTED",
    "resolve",
    "allowed_axes",
    "hp_names",
    "select",
    "check_positive",
    "check_nonnegative",
    "check_momentum",
    "check_unit_interval",
    "check_whole",
]
