"""The pyramid family: a shared superresolving prior plus a short per-image fit, lossless.

    image x (H, W, 3) -> levels x[::2^l, ::2^l]; the coarsest (<= 64 pixels) coded flat
    level l from level l+1, in parallel phases (layout.py, the prior's order):
        (odd, odd) pixels, then (even, odd) and (odd, even) pixels, each seeing 16 known pixels
        (residuals to the mean of its 4 nearest known neighbours), R then G then B
    shared prior (diffcode/data/, prior.py) + per-image integer deltas (fit.py, deltas.py)
    -> exact integer network (engine.py; network.py for the first prior) -> per subpixel a
       logistic location and scale, corrected online from the subpixels already coded (online.py)
    -> one rANS stream of quantized discretized logistics (entropy.py, coding.py), in segments with order 4,
       coded in bands of bounded size (chunks), so memory is the image's bytes plus a constant

It keeps the report's spirit (a superresolving network grows the image stage by stage; a shared
network and a per-image part fitted with Adam on the total bits) but every stage sees the exactly
decoded coarser image, the pixels of its level decoded before it and the pixel's earlier colours.
Presets (spec.PRESETS): `instant` (the prior alone), `fast`, `default`, `max`. The registry's entry,
`FAMILY`, is the protocol of `diffcode.families` over these modules.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np

from ...errors import DecoderMismatchError, DiffcodeError
from ...limits import Linear
from .. import Decoded, Encoded, Fit, take_options
from . import exact, prior, spec


class Pyramid:
    name = spec.NAME
    presets = ("default",) + tuple(name for name in spec.PRESETS if name != "default")
    storages = ("none",)  # no encodings to store: the per-image weights are rANS-coded deltas
    budget_nats = None
    # experiments/results/memory-pyramid3.csv (prior 3, 256x256 to 3072x2048): lines just above every measured
    # peak. The image's own bytes grow with it; the work does not (chunks, segments, the fit's sample of
    # contexts: docs/pyramid.md), so the fit's line overstates large images (its sample stops growing at 2 MP).
    # A whole decode process also holds the PNG it writes: 751 MiB at 25 MP, 1303 MiB at 50 MP
    # (large_images.md), hence decode's 22 MiB per megapixel (12 in process)
    memory = {"fit": Linear(900.0, 40.0), "store": Linear(525.0, 17.0), "decode": Linear(500.0, 22.0)}
    memory_table = "memory-pyramid3.csv"
    # made with the shipped prior that was current: instant and fast with the first, prior2-* with model 2,
    # prior3-* with model 2 in order 4 (the error table in segments), prior4-* with the mixture of two logistics,
    # prior5-* with the mixture trained twice as long, prior6-* with it trained 32,000 steps and a per-file online
    # adaptation (the side information names it)
    golden = {"instant": {"preset": "instant"}, "fast": {"preset": "fast", "steps": 3},
              "prior2-instant": {"preset": "instant"}, "prior2-fast": {"preset": "fast", "steps": 3},
              "prior3-instant": {"preset": "instant"}, "prior3-fast": {"preset": "fast", "steps": 3},
              "prior4-instant": {"preset": "instant"}, "prior4-fast": {"preset": "fast", "steps": 3},
              "prior5-instant": {"preset": "instant"}, "prior5-fast": {"preset": "fast", "steps": 3},
              "prior6-instant": {"preset": "instant"}, "prior6-fast": {"preset": "fast", "steps": 3},
              "prior7-instant": {"preset": "instant"}, "prior7-fast": {"preset": "fast", "steps": 3}}

    def load_model(self, path=None) -> prior.Prior:
        return prior.load(path)

    def find_model(self, hash: str) -> prior.Prior | None:
        return prior.find(bytes.fromhex(hash[:32]))

    def fit_steps(self, preset: str, steps: int | None) -> int:
        """Adam steps of a fit, those of the presets it also tries included (`spec.Preset.tries`)."""
        p = spec.PRESETS[preset]
        own = steps if steps is not None else p.steps
        return own + sum(spec.PRESETS[t].steps for t in p.tries) if own else 0

    def preset_settings(self, preset: str) -> dict:
        if preset not in spec.PRESETS:
            raise DiffcodeError(f"the pyramid variant has no preset {preset!r}; known: {', '.join(self.presets)}")
        return asdict(spec.PRESETS[preset])

    def fit(self, image, model: prior.Prior, *, preset: str = "default", steps=None, seed=None, generator=None,
            progress=None, device: str = "cpu", **options) -> Fit:
        """Fine-tune deltas of the prior on one image; `steps` overrides the preset's step count.
        With zero steps nothing is fitted and torch is not even imported."""
        take_options({"preset": preset, **options}, {"preset": self.presets, "storage": self.storages}, self.name)
        if steps is not None and steps < 0:
            raise DiffcodeError(f"--steps must be 0 or more, not {steps}")
        p = spec.PRESETS[preset]
        steps = steps if steps is not None else p.steps
        start = time.perf_counter()
        k, adapt, history = np.zeros(0, np.int16), p.adapt, []
        if steps:
            import torch

            from .fit import fit_deltas  # the fitting code (torch) loads only to fit

            runs = [(p, steps, generator)] + [(spec.PRESETS[t], spec.PRESETS[t].steps, None) for t in p.tries]
            best, done = None, 0
            for q, n, gen in runs:
                gen = gen or torch.Generator().manual_seed(0 if seed is None else seed)
                shifted = progress and (lambda step, bpsp, done=done: progress(done + step, bpsp))
                k, history = fit_deltas(image, model.arrays, steps=n, adapt=q.adapt, lr=q.lr, batch=q.batch,
                                        generator=gen, progress=shifted, device=device, order=model.order)
                done += n
                size = exact.file_bytes(exact.encode(image, k, p, q.adapt, model)) if len(runs) > 1 else 0
                if best is None or size < best[0]:
                    best = (size, k, q.adapt, history)
            _, k, adapt, history = best
        return Fit(self.name, image, {"deltas": k}, {"adapt": adapt}, model.sha256, preset,
                   0 if seed is None else seed, history, time.perf_counter() - start)

    def encode(self, fit: Fit, model: prior.Prior, *, device: str = "cpu", progress=None, **options) -> Encoded:
        take_options(options, {"storage": self.storages}, self.name)
        if fit.model_hash != model.hash:
            raise DecoderMismatchError(f"the fit used pyramid prior {fit.model_hash[:16]}, the loaded one is "
                                       f"{model.hash[:16]}")
        if fit.preset not in spec.PRESETS:
            raise DiffcodeError(f"unknown pyramid preset {fit.preset!r} in the fit; known: {', '.join(spec.PRESETS)}")
        k = np.asarray(fit.arrays["deltas"], np.int16)
        return exact.encode(fit.image, k, spec.PRESETS[fit.preset], fit.meta.get("adapt"), model, progress)

    def check_sizes(self, header, sections) -> None:
        exact.check_sizes(header, sections)

    def decode(self, header, sections, model: prior.Prior, *, device: str = "cpu", progress=None) -> Decoded:
        return exact.decode(header, sections, model, progress)

    def header_fields(self, header) -> dict:
        return {"storage": header.storage, "error_model": header.error_model, "decoder_hash": header.decoder_hash.hex()}

    def train(self, *, steps: int | None = None, crop: int | None = None, kodak_dir: str | None = None,
              log=print) -> prior.Prior:
        """Train a prior with the shipped one's recipe (photos from $DIFFCODE_PHOTOS; train.train_prior)."""
        from .train import train_prior

        settings = {k: v for k, v in {"steps": steps, "crop": crop}.items() if v is not None}
        return train_prior(kodak_dir=kodak_dir, log=log, **settings)[0]

    def maps(self, decoded: Decoded) -> None:
        return None


FAMILY = Pyramid()
