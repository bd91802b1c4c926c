"""``asyncjax.reproduce``: the runner of the paper presets, under the name users import it by.

The runner and every preset live in `asyncjax.experiments`
(`asyncjax.experiments.runner`); this module keeps
``from asyncjax.reproduce import reproduce`` working.
"""

from asyncjax.experiments.runner import PRESETS, Preset, headline, reproduce

__all__ = ["reproduce", "headline", "Preset", "PRESETS"]
