"""The pyramid family's per-image fit: Adam on the total bits, starting from the shared prior (torch).

    prior arrays --(adapted tensors get a delta)--> float model
    loss = error-table bits of a random batch of the image's subpixels, scaled to the whole image
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

from ...storage import container
from . import deltas as delta_coding
from .model import PyramidNet
from .train import batch_bits, mean_bpsp, samples


def fit_deltas(image: np.ndarray, prior_arrays: dict, *, steps: int, adapt: str, lr: float, batch: int,
               generator: torch.Generator, progress=None, device: str = "cpu", order: int = 1) -> tuple[np.ndarray, list[dict]]:
    """Fit the deltas of the adapted tensors; returns (int16 integer deltas in coding order, history)."""
    names = delta_coding.adapted_names(prior_arrays, adapt)
    if steps == 0 or not names:
        return np.zeros(0, np.int16), []
    s = samples([image], order)
    if sum(len(t) for t in s.target) == 0:  # nothing but the flat-coded coarsest level
        return np.zeros(0, np.int16), []
    net = PyramidNet.from_arrays(prior_arrays, order).to(device)
    params = dict(net.named_parameters())
    for name, p in params.items():
        p.requires_grad_(name in names)
    prior = {name: params[name].detach().clone() for name in names}
    step_size = delta_coding.STEP
    optimizer = torch.optim.Adam([params[n] for n in names], lr=lr)
    rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=generator)))
    history, start = [], time.perf_counter()
    for step in range(1, steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / steps))
        error_bpsp = batch_bits(net, s, rng, batch, device)
        rate_bits = sum(torch.log2(1 + (params[n] - prior[n]).abs() / step_size).sum() for n in names)
        loss = error_bpsp + rate_bits / s.subpixels
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append({"step": step, "bpsp": round(loss.item(), 5), "seconds": round(time.perf_counter() - start, 2)})
        if progress:
            progress(step, loss.item())
    fitted = {n: params[n].detach().cpu().numpy() - prior_arrays[n] for n in names}
    k = delta_coding.to_integers(fitted, names)
    return (k if _pays(s, prior_arrays, adapt, k, names, device, order) else np.zeros(0, np.int16)), history


def _pays(s, prior_arrays: dict, adapt: str, k: np.ndarray, names: list[str], device: str, order: int) -> bool:
    """Whether the deltas save more error-table bits (float model, whole image) than they cost (real code)."""
    sizes = [prior_arrays[n].size for n in names]
    # their stream (ideal bits + the 64-bit flush and a last word), scale bytes, and section-table entry
    cost = delta_coding.encode(k, sizes)[2] + 96 + 8 * len(sizes) + 8 * (container.header_bytes(3) - container.header_bytes(2))
    before = mean_bpsp(PyramidNet.from_arrays(prior_arrays, order).to(device), s, device)
    after = mean_bpsp(PyramidNet.from_arrays(delta_coding.apply(prior_arrays, adapt, k), order).to(device), s, device)
    return (before - after) * s.subpixels > cost
