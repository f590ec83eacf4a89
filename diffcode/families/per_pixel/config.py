"""The per-pixel fit's settings (light: the family's spec and the CLI read it without torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ...errors import UsageError


@dataclass(frozen=True)
class FitConfig:
    """Settings of one fit.

    Defaults (issue 13): 150 steps at lr 0.1 with bfloat16 convolutions where the hardware has them
    gave the bits of the report's 200 steps at lr 0.05 (float32) on two validation crops
    (experiments/results/fit_curve-pp-val-crop256*.md: 7.135 against 7.141 bpsp); 100 steps cost
    1.3-1.5 % more at lr 0.1 and 0.2, 5.5 % at lr 0.05.
    """

    steps: int = 150
    lr: float = 0.1
    maximize_steps: int = 15
    entropy_on_fraction: float = 0.3
    init_from_image: bool = True
    freeze_stages: bool = True
    freeze_fraction: float = 0.2
    seed: int = 0
    storage: str = "dither"
    conv_dtype: str = "auto"  # the float pass's convolutions (diffcode.layers.fit_dtype)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_steps(self, steps: int) -> "FitConfig":
        """This schedule rescaled to `steps` in total: the entropy-maximizing phase keeps its share
        (15 of 150 steps by default; 0 of 1, 2 of 20), the other phases are fractions already."""
        if steps < 1:
            raise UsageError(f"a fit needs at least 1 step, got {steps}")
        return replace(self, steps=steps, maximize_steps=round(self.maximize_steps * steps / self.steps))


def config_of(meta: dict) -> FitConfig:
    """The FitConfig recorded in a fit's meta; fit files older than the storage field were made for
    the random-seed scheme."""
    return FitConfig(**{"storage": "randseed", **meta["config"]})
