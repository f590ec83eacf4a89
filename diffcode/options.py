"""The checks of a fit's, compress's or store's options, shared by the CLI and the Python API.

    family = check_options("auto", preset="fast", steps=None, seed=0, storage=None, device="cpu")

Each refusal is a one-line UsageError, raised before any work (no image read, no model loaded,
torch not imported unless a non-cpu device is named), so that `diffcode compress` and
`diffcode.compress` refuse the same things with the same words.
"""

from __future__ import annotations

import numbers

from . import families
from .errors import UsageError

SEED_LIMIT = 2**32
"""Seeds are stored in 32 bits of the header: 0 <= seed < SEED_LIMIT."""


def _integer(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UsageError(f"{name} must be an integer, not {value!r}")
    return int(value)


def _alternatives(names) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def check_options(variant: str = families.DEFAULT, *, preset: str | None = None, steps: int | None = None,
                  seed: int | None = None, storage: str | None = None, budget_nats: float | None = None,
                  device: str | None = None):
    """Refuse options that cannot apply (UsageError); return the variant's family (`diffcode.families`).

    Args (None: not given, nothing to check):
        variant: a registered family name (`diffcode.families.names()`).
        preset: one of the family's presets (`Family.presets`).
        steps: an integer >= 1 (unset: the preset's own count), for a preset that fits (not the
            pyramid's instant, whose files hold no per-image weights whatever the steps).
        seed: an integer, 0 <= seed < 2**32 (the header stores it in 32 bits).
        storage: one of the storages the family uses (`Family.storages`); for a store, None means the
            scheme the fit prepared for.
        budget_nats: the randseed segment budget, in the family's range (`Family.budget_nats`), and only
            with randseed storage: refused with any other storage named, and with storage None for a
            family that has no randseed storage (the family's encode checks the rest).
        device: cpu, or cuda[:N] when a CUDA device is present.
    """
    if variant == families.AUTO:  # the mode decision: the photo model's presets, no storage to choose
        if storage not in (None, "none"):
            raise UsageError(f"the {families.AUTO} variant chooses its own storage; name a variant to choose one")
        variant = families.AUTO_MODEL
    if variant not in families.names():
        raise UsageError(f"unknown variant {variant!r}; known: {', '.join(families.names())}, {families.AUTO}")
    family = families.get(variant)
    if preset is not None and preset not in family.presets:
        raise UsageError(f"the {family.name} variant takes preset{'s' if len(family.presets) > 1 else ''} "
                         f"{_alternatives(family.presets)}, not {preset!r}")
    if steps is not None and _integer("steps", steps) < 1:
        raise UsageError(f"steps must be at least 1, not {steps} (leave steps unset for the preset's own count)")
    if steps is not None and preset is not None and family.fit_steps(preset, None) == 0:
        raise UsageError(f"the {preset} preset fits nothing per image, so steps does not apply; choose another "
                         "preset to fit")
    if seed is not None and not 0 <= _integer("seed", seed) < SEED_LIMIT:
        raise UsageError(f"seed {seed} out of range: 0 <= seed < 2**32")
    if storage is not None and storage not in family.storages:
        raise UsageError(f"the {family.name} variant takes storage {_alternatives(family.storages)}, not {storage!r}")
    if budget_nats is not None:
        if family.budget_nats is None:
            raise UsageError(f"the {family.name} variant has no randseed storage, so no segment budget")
        if storage is not None and storage != "randseed":
            raise UsageError(f"{storage} storage has no segment budget (--budget is for randseed)")
        if isinstance(budget_nats, bool) or not isinstance(budget_nats, numbers.Real):
            raise UsageError(f"budget_nats must be a number, not {budget_nats!r}")
        low, high = family.budget_nats
        if not low <= budget_nats <= high:
            raise UsageError(f"budget_nats must be in [{low}, {high}], got {budget_nats}")
    if device is not None:
        check_device(device)
    return family


def check_device(name: str) -> str:
    """The device name, if it is cpu or an available cuda[:N] (else UsageError saying what to use)."""
    if name == "cpu":
        return name
    if not isinstance(name, str) or not (name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit())):
        raise UsageError(f"device {name!r}: expected cpu or cuda[:N]")
    import torch  # only to ask about other devices: a cpu run of the pyramid family never imports it

    if not torch.cuda.is_available():
        raise UsageError(f"device {name}: no CUDA device is available here; use cpu")
    return name
