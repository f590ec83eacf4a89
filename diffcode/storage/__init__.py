"""What more than one family stores with: the container, rANS, dither, shared randomness, entropy units.

A module only one family uses lives in that family's folder. The old names of the modules that
moved (issue 25) still resolve here for `from diffcode.storage import schemes` in scripts not yet
updated (experiments/fuzz.py, experiments/reliability.py); the package itself never uses them.
"""

from __future__ import annotations

import importlib

MOVED = {  # old name -> the module it became
    "randseed": "diffcode.families.per_pixel.randseed",
    "geometric": "diffcode.families.per_pixel.geometric",
    "schemes": "diffcode.families.per_pixel.schemes",
    "positions": "diffcode.families.weights.positions",
    "side_info": "diffcode.families.weights.side_info",
}


def __getattr__(name: str):
    if name in MOVED:
        return importlib.import_module(MOVED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
