"""The presets of ``asyncjax reproduce``, and the functions that read their TOML files.

Each preset is a TOML file here (its sweeps) and a module beside it (the
analysis it reports; e.g. ``liu2018-fig1.toml`` and ``liu2018_fig1.py``).
`asyncjax.experiments.runner` runs them; ``_common.py`` holds what several
presets share. This file imports none of them.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from asyncjax._toml import load_toml

__all__ = ["available", "load_preset", "preset_text"]


def available() -> list[str]:
    """Names of the shipped presets."""
    return sorted(
        p.name[: -len(".toml")]
        for p in resources.files(__name__).iterdir()
        if p.name.endswith(".toml")
    )


def preset_text(name: str) -> str:
    """The TOML text of preset ``name``."""
    names = available()
    if name not in names:
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(names)}")
    return resources.files(__name__).joinpath(f"{name}.toml").read_text()


def load_preset(name: str) -> dict[str, Any]:
    """The parsed TOML of preset ``name``."""
    return load_toml(preset_text(name))
