"""The per-pixel fit's settings (light: the family's spec and the CLI read it without torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ...errors import UsageError


@dataclass(frozen=True)
class FitConfig:
    """Settings of one fit.

    Defaults: `cli.py compress` of a 768x512 image took 17 min 7 s on 2 CPU cores (README,
    its first minutes on a shared CPU); about 4-5 s per step with the stage freezing.
    """

    steps: int = 200
    lr: float = 0.05
    maximize_steps: int = 20
    entropy_on_fraction: float = 0.3
    init_from_image: bool = True
    freeze_stages: bool = True
    freeze_fraction: float = 0.2
    seed: int = 0
    storage: str = "dither"
    conv_dtype: str = "float32"  # the float pass's convolutions (diffcode.layers.FIT_DTYPES)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_steps(self, steps: int) -> "FitConfig":
        """This schedule rescaled to `steps` in total: the entropy-maximizing phase keeps its share
        (20 of 200 steps by default; 0 of 1, 2 of 20), the other phases are fractions already."""
        if steps < 1:
            raise UsageError(f"a fit needs at least 1 step, got {steps}")
        return replace(self, steps=steps, maximize_steps=round(self.maximize_steps * steps / self.steps))


def config_of(meta: dict) -> FitConfig:
    """The FitConfig recorded in a fit's meta; fit files older than the storage field were made for
    the random-seed scheme."""
    return FitConfig(**{"storage": "randseed", **meta["config"]})
