"""The pyramid family's per-image fit: Adam on the total bits, starting from the shared prior (torch).

    prior arrays --(adapted tensors get a delta)--> float model
    the image's subpixel contexts: every one, or above MAX_TARGETS targets a uniform random subset of
        that many (`train.samples`), which stands for the whole image
    loss = error-table bits of a random batch of those subpixels, scaled to the whole image
         + rate of the deltas (log2(1 + |delta| / step) per weight, a proxy; the file pays the real
           code length, see `deltas.py`)
    -> deltas rounded to integer multiples of 2^-STEP_EXPONENT -> Fit arrays {"deltas": int16}

With zero steps nothing is adapted and the file holds no per-image weights; neither does it when
the fitted deltas would cost more than they save (small images: `_pays`).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ...storage import container
from . import deltas as delta_coding
from .model import PyramidNet
from .train import Samples, batch_bits, mean_bpsp, samples

# The most targets (pixels, 159 bytes of contexts each) a fit holds: about 330 MB. Every image up to 2^21 pixels
# (1920 x 1080, Kodak, the 0.8-1.4 MP photos) keeps all its targets, so its fit is what it was without the bound;
# a 25 MP photo is fitted on a twelfth of its targets.
MAX_TARGETS = 1 << 21
SAMPLE_SEED = 0  # of the subset: it depends on the image alone
# The most targets `_pays` weighs the deltas on: the same uniform subset before and after (a paired difference),
# so its two passes of the float model cost a sixth of a Kodak image's instead of the whole
PAYS_TARGETS = 1 << 16


class _Delta(nn.Module):
    """A parametrization adding a fitted delta to a prior tensor: a whole-tensor delta `d`, a gain per row
    (`gain`: w * (1 + g)), or a low-rank delta a @ b whose factors are rounded to their coding steps in the
    forward pass (straight-through gradients), so the fit sees the weights the file will hold."""

    def __init__(self, shape: tuple, rank: int, generator: torch.Generator, gain: bool = False,
                 columns: bool = False):
        super().__init__()
        self.rank, self.gain, self.columns = rank, gain, columns
        if columns:
            self.c = nn.Parameter(torch.zeros(shape[1]))
        if rank:
            self.a = nn.Parameter(torch.zeros(shape[0], rank))
            b = torch.randn(rank, shape[1], generator=generator)
            self.b = nn.Parameter(torch.round(b / delta_coding.FACTOR_STEP) * delta_coding.FACTOR_STEP)
        else:
            self.d = nn.Parameter(torch.zeros(shape[:1] if gain else shape))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.gain:
            w = w * (1 + self.d)[:, None]
            return w * (1 + self.c)[None, :] if self.columns else w
        if not self.rank:
            return w + self.d
        return w + _rounded(self.a, delta_coding.STEP) @ _rounded(self.b, delta_coding.FACTOR_STEP)

    def values(self) -> dict[str, torch.Tensor]:
        if self.rank:
            return {":a": self.a, ":b": self.b}
        return {":g": self.d, ":c": self.c} if self.columns else {":g" if self.gain else "": self.d}


def _rounded(v: torch.Tensor, step: float) -> torch.Tensor:
    return v + (torch.round(v / step) * step - v).detach()


def fit_deltas(image: np.ndarray, prior_arrays: dict, *, steps: int, adapt: str, lr: float, batch: int,
               generator: torch.Generator, progress=None, device: str = "cpu", order: int = 1
               ) -> tuple[np.ndarray, list[dict]]:
    """Fit the deltas of the adapted tensors; returns (int16 integers of every coded part in coding order, history)."""
    names = delta_coding.adapted_names(prior_arrays, adapt)
    if steps == 0 or not names:
        return np.zeros(0, np.int16), []
    s = samples([image], order, max_targets=MAX_TARGETS, seed=SAMPLE_SEED)
    if s.targets == 0:  # nothing but the flat-coded coarsest level
        return np.zeros(0, np.int16), []
    net = PyramidNet.from_arrays(prior_arrays, order).to(device)
    for p in net.parameters():
        p.requires_grad_(False)
    rank = delta_coding.rank(adapt)
    deltas = {}
    for name in names:
        module, attr = name.rsplit(".", 1)
        matrix = attr == "weight"
        deltas[name] = _Delta(prior_arrays[name].shape, rank if matrix else 0, generator,
                              gain=matrix and adapt.startswith("gains"),
                              columns=matrix and adapt == "gains2").to(device)
        parametrize.register_parametrization(net.get_submodule(module), attr, deltas[name])
    values = {name + suffix: v for name, d in deltas.items() for suffix, v in d.values().items()}
    coded = delta_coding.parts(prior_arrays, adapt)
    steps_of = {p.name: p.step for p in coded}
    optimizer = torch.optim.Adam(list(values.values()), lr=lr)
    rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=generator)))
    history, start = [], time.perf_counter()
    for step in range(1, steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / steps))
        error_bpsp = batch_bits(net, s, rng, batch, device)
        rate_bits = sum(torch.log2(1 + v.abs() / steps_of[name]).sum() for name, v in values.items())
        loss = error_bpsp + rate_bits / s.subpixels
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append({"step": step, "bpsp": round(loss.item(), 5), "seconds": round(time.perf_counter() - start, 2)})
        if progress:
            progress(step, loss.item())
    k = delta_coding.to_integers({name: v.detach().cpu().numpy() for name, v in values.items()}, coded)
    return (k if _pays(s, prior_arrays, adapt, k, coded, device, order) else np.zeros(0, np.int16)), history


def _pays(s, prior_arrays: dict, adapt: str, k: np.ndarray, coded: list, device: str, order: int) -> bool:
    """Whether the deltas save more error-table bits (float model, whole image: sampled bits are scaled to it)
    than they cost (real code)."""
    sizes = [p.size for p in coded]
    # their stream (ideal bits + the 64-bit flush and a last word), scale bytes, and section-table entry
    cost = delta_coding.encode(k, sizes)[2] + 96 + 8 * len(sizes) + 8 * (container.header_bytes(3) - container.header_bytes(2))
    s = _subset(s, PAYS_TARGETS, SAMPLE_SEED)
    before = mean_bpsp(PyramidNet.from_arrays(prior_arrays, order).to(device), s, device)
    after = mean_bpsp(PyramidNet.from_arrays(delta_coding.apply(prior_arrays, adapt, k), order).to(device), s, device)
    return (before - after) * s.subpixels > cost


def _subset(s: Samples, n: int, seed: int) -> Samples:
    """A uniform random subset of about n of the samples' targets (each phase in proportion), standing for the same
    image; the samples themselves when they hold at most n."""
    if s.targets <= n:
        return s
    rng = np.random.default_rng(seed)
    picks = [np.sort(rng.choice(len(t), round(n * len(t) / s.targets), replace=False)) for t in s.target]
    fields = [[a[phase][pick] for phase, pick in enumerate(picks)] for a in (s.inputs, s.own, s.base12, s.target)]
    return Samples(*fields, core_subpixels=s.core_subpixels, image_targets=s.image_targets or s.targets)
