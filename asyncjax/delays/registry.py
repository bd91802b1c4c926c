"""The delay models by name: `DELAY_MODELS` and `get_delay_model`."""

from __future__ import annotations

from asyncjax.delays.base import DelayModel
from asyncjax.delays.laws import Constant, Geometric, Uniform
from asyncjax.delays.worker_clock import workers

DELAY_MODELS: dict[str, DelayModel] = {
    "constant": Constant(),
    "uniform": Uniform(),
    "geometric": Geometric(),
    "workers": workers(),
}


def get_delay_model(name: str | DelayModel) -> DelayModel:
    """A delay model by name (``"workers"``: exponential times; `workers` for the options)."""
    if isinstance(name, DelayModel):
        return name
    if name == "trace":
        raise ValueError(
            "the trace delay model needs its values: pass asyncjax.delays.trace(values_or_file)"
        )
    try:
        return DELAY_MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown delay model {name!r}; choose one of {sorted(DELAY_MODELS)} "
            "or pass asyncjax.delays.trace(...)"
        ) from None
