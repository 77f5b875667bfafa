"""The probes a study can record, by the name a study file gives (`probes: [{probe: lesion}]`).

One probe, one module; the registry maps names to "module:Class" and imports a probe only when
a study names it (torch-heavy probes cost nothing to studies that do not use them).
"""

from __future__ import annotations

import importlib

from .base import Probe, ProbeContext, ProbeValue, When

PROBES: dict[str, str] = {
    "signal_std": "signal_std:SignalStd",
    "filter_similarity": "filter_similarity:FilterSimilarity",
    "landscape": "landscape:Landscape",
    "lesion": "lesion:Lesion",
    "dense_weights": "dense_weights:DenseWeights",
    "se_excitations": "se_excitations:SEExcitations",
    "class_maps": "class_maps:ClassMaps",
}
"""probe name -> "module:Class" under compiler.study.probes."""


def probe_class(name: str) -> type[Probe]:
    """The class of probe `name` (KeyError when there is none)."""
    module, cls = PROBES[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


__all__ = ["PROBES", "Probe", "ProbeContext", "ProbeValue", "When", "probe_class"]
