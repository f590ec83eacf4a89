"""The per-pixel family (report 4.1): a shared decoder, and per-image circular encodings per pixel.

    image --fit (Adam on the encodings' centers, decoder fixed; fit.py, model.py)--> Fit
          arrays centers_<k> float32 (n, h_k, w_k) radians per stage, head last
          meta   config (FitConfig, with the storage scheme the fit prepared for)
    Fit --exact pass (exact.py) stage by stage--> ENCODINGS x stages, ERROR_TABLE

The decoder (seed, superresolver, head; `diffcode/data/per_pixel_default.npz`) is trained on the
Kodak training split (`diffcode.families.per_pixel.train`), pinned by its hash (`checkpoint.SHIPPED`)
and named in every header by it. Header fields the family owns: storage (randseed or dither),
rng_version, seed, segment budget (randseed), decoder_hash. Fitting code is imported only when
fitting.
"""

from __future__ import annotations

from dataclasses import asdict, replace

from ...errors import UsageError
from ...limits import Linear
from ...storage import container
from .. import Decoded, Encoded, Fit, common, take_options
from . import exact, randseed, schemes
from .checkpoint import SHIPPED, Checkpoint
from .config import FitConfig, config_of


class PerPixel:
    """The per-pixel family (`diffcode.families.Family`); the shared model is a decoder `Checkpoint`."""

    name = exact.NAME
    presets = ("default",)
    storages = ("dither", "randseed")  # what fit/encode take as storage; the first is the default
    # Peak memory from experiments/results/memory.csv (256x256, 768x512, 2048x2048; commit 7ca98ee):
    # the base is the least-squares intercept, the slope the largest (peak - base) / megapixels over
    # the measured sizes, so the line lies on or above every measured peak (tests/test_limits.py
    # checks it against the table). Least squares alone predicts 10.4 megapixels for fit in 24 GiB;
    # this bound refuses above 8.7 (for example 3600x2400).
    memory = {"fit": Linear(597.0, 2760.0), "store": Linear(388.0, 2483.0), "decode": Linear(379.0, 2186.0)}
    memory_table = "memory.csv"  # experiments/results/, the measurements behind `memory`
    golden = {name: {"storage": name, "steps": 10} for name in schemes.NAMES}  # tests/golden/make_golden.py
    budget_nats = (randseed.MIN_BUDGET_NATS, randseed.MAX_BUDGET_NATS)  # randseed's segment budget

    def load_model(self, path=None) -> Checkpoint:
        return Checkpoint.load(path)

    def find_model(self, hash: str) -> Checkpoint | None:
        return SHIPPED.find(bytes.fromhex(hash[:32]))

    def fit_steps(self, preset: str, steps: int | None) -> int:
        return steps if steps is not None else FitConfig().steps

    def preset_settings(self, preset: str) -> dict:
        return asdict(FitConfig())

    def fit(self, image, model: Checkpoint, *, preset: str = "default", steps=None, seed=None, generator=None,
            progress=None, device: str = "cpu", **options) -> Fit:
        """Options: config (a FitConfig; seed and storage override its values, `steps` rescales its
        phases: FitConfig.with_steps), storage."""
        from .fit import fit_image  # the fitting code (torch models) loads only to fit

        given = take_options({"preset": preset, **options},
                             {"preset": self.presets, "storage": schemes.NAMES, "config": None}, self.name)
        config = given.get("config", FitConfig())
        if steps is not None:  # the phases scale with the step count
            config = config.with_steps(steps)
        overrides = {"seed": seed, "storage": given.get("storage")}
        config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
        return fit_image(image, model, config, progress=progress, device=device, generator=generator)

    def encode(self, fit: Fit, model: Checkpoint, *, device: str = "cpu", progress=None, **options) -> Encoded:
        """Options: storage (default: the scheme the fit prepared for), budget_nats (randseed)."""
        given = take_options(options, {"storage": schemes.NAMES, "budget_nats": None}, self.name)
        storage = given.get("storage", config_of(fit.meta).storage)
        if storage != "randseed" and "budget_nats" in given:
            raise UsageError(f"{storage} storage has no segment budget (--budget is for randseed)")
        scheme = schemes.get(storage, given.get("budget_nats"))
        centers = [fit.arrays[f"centers_{k}"] for k in range(len(fit.arrays))]
        return exact.encode(fit.image, centers, model, fit.seed, scheme, device, progress)

    def check_sizes(self, header, sections) -> None:
        """Encodings sections, then an error table long enough for the declared size; how many stages
        the size needs depends on the decoder's configuration and is checked by `decode`."""
        common.check_error_table_size(header, sections)
        if any(kind != container.ENCODINGS for kind, _ in sections[:-1]):
            common.check_layout([kind for kind, _ in sections], [container.ENCODINGS] * (len(sections) - 1)
                                + [container.ERROR_TABLE], "a per-pixel file")

    def decode(self, header, sections, model: Checkpoint, *, device: str = "cpu", progress=None) -> Decoded:
        return exact.decode(header, sections, model, device)

    def header_fields(self, header) -> dict:
        return {"storage": header.storage, "rng_version": header.rng_version, "error_model": header.error_model,
                "seed": header.seed, "segment_budget_nats": header.segment_budget_cnats / 100,
                "decoder_hash": header.decoder_hash.hex()}

    def train(self, *, steps: int | None = None, crop: int | None = None, kodak_dir: str | None = None,
              log=print) -> Checkpoint:
        """Train the shared decoder on the Kodak training split (diffcode.families.per_pixel.train)."""
        from .train import TrainConfig, train

        config = replace(TrainConfig(), **{k: v for k, v in {"steps": steps, "crop": crop}.items() if v is not None})
        return train(config, kodak_dir=kodak_dir, log=log)

    def maps(self, decoded: Decoded) -> dict:
        return exact.maps(decoded)


FAMILY = PerPixel()
