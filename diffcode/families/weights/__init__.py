"""The weights family (report 4.2): every weight of a per-image CNN is an interval encoding.

    image --fit (Adam on the weights' centers and widths, shared MLP fixed; fit.py, model.py)--> Fit
          arrays centers float64 (N,) in [0, 1), level_index int64 (G,) width level per group
          preset the CNN's size and schedule (spec.PRESETS; its code is stored in SIDE_INFO)
    Fit --exact MLP + CNN (spec.py, exact.py)--> SIDE_INFO, WEIGHT_ENCODINGS, ERROR_TABLE

Only the shared MLP is shipped (`diffcode/data/weights_mlp.npz`, hash pinned in
`spec.SHIPPED`, named in every header's decoder_hash); it is trained by
`experiments/train_weights_mlp.py`. Header fields the family owns: storage (always dither),
rng_version, seed, decoder_hash; the segment budget is always 0.
"""

from __future__ import annotations

from dataclasses import asdict

from ...limits import Linear
from .. import Decoded, Encoded, Fit, take_options
from . import exact
from . import spec as wv


class Weights:
    """The weights family (`diffcode.families.Family`); the shared model is the MLP (`spec.MLPCheckpoint`)."""

    name = wv.NAME
    presets = ("default",) + tuple(name for name in wv.PRESETS if name != "default")
    storages = ("dither",)  # what fit/encode take as storage; the first is the default
    # experiments/results/memory-weights.csv, the rule of the per-pixel family (commit a2c789b, the
    # default preset's 16-32 channels); the report preset's 200-channel layers need more and are not modelled
    memory = {"fit": Linear(542.0, 1325.0), "store": Linear(357.0, 1441.0), "decode": Linear(366.0, 1309.0)}
    memory_table = "memory-weights.csv"  # experiments/results/, the measurements behind `memory`
    golden = {"tiny": {"preset": "tiny"}}  # label -> fit options of its golden files (tests/golden/make_golden.py)
    budget_nats = None  # no randseed storage

    def load_model(self, path=None) -> wv.MLPCheckpoint:
        return wv.MLPCheckpoint.load(path)

    def find_model(self, hash: str) -> wv.MLPCheckpoint | None:
        return wv.SHIPPED.find(bytes.fromhex(hash[:32]))

    def fit_steps(self, preset: str, steps: int | None) -> int:
        return steps if steps is not None else wv.preset(preset).steps

    def preset_settings(self, preset: str) -> dict:
        return asdict(wv.preset(preset))

    def fit(self, image, model: wv.MLPCheckpoint, *, preset: str = "default", steps=None, seed=None,
            generator=None, progress=None, device: str = "cpu", **options) -> Fit:
        """`steps` rescales the preset's three phases; the only storage is dither."""
        from .fit import fit_image  # the fitting code (torch models) loads only to fit

        take_options({"preset": preset, **options}, {"storage": (exact.STORAGE,), "preset": self.presets}, self.name)
        p = wv.preset(preset)
        if steps is not None:
            p = wv.with_steps(p, steps)
        return fit_image(image, model, p, 0 if seed is None else seed, progress, device=device, generator=generator)

    def encode(self, fit: Fit, model: wv.MLPCheckpoint, *, device: str = "cpu", progress=None, **options) -> Encoded:
        take_options(options, {"storage": (exact.STORAGE,)}, self.name)
        return exact.encode(fit.image, fit.arrays["centers"], fit.arrays["level_index"], wv.preset(fit.preset), model,
                            fit.seed)

    def check_sizes(self, header, sections) -> None:
        exact.check_sizes(header, sections)

    def decode(self, header, sections, model: wv.MLPCheckpoint, *, device: str = "cpu", progress=None) -> Decoded:
        return exact.decode(header, sections, model)

    def header_fields(self, header) -> dict:
        return {"storage": header.storage, "rng_version": header.rng_version, "error_model": header.error_model,
                "seed": header.seed, "decoder_hash": header.decoder_hash.hex()}

    def train(self, *, steps: int | None = None, crop: int | None = None, kodak_dir: str | None = None,
              log=print) -> wv.MLPCheckpoint:
        """Train the shared MLP with the shipped one's recipe (diffcode.families.weights.train)."""
        from .train import train_mlp

        settings = {k: v for k, v in {"steps": steps, "crop": crop}.items() if v is not None}
        return train_mlp(kodak_dir=kodak_dir, log=log, **settings)

    def maps(self, decoded: Decoded) -> None:
        return None


FAMILY = Weights()
