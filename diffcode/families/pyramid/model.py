"""The pyramid family's float model (torch): the network of `spec`, and its cost in nats.

Used by training and by the per-image fit; coding runs the exact integer pass of `network`
on the same parameters (quantized), so the two differ only by rounding.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import spec
from .layout import ORDERS


class PhaseNet(nn.Module):
    """Trunk and three channel heads of one phase."""

    def __init__(self, width: int, head: int, generator: torch.Generator | None = None,
                 n_inputs: int = spec.N_INPUTS, components: int = 1):
        super().__init__()
        self.trunk1 = nn.Linear(n_inputs, width)
        self.trunk2 = nn.Linear(width, width)
        self.heads1 = nn.ModuleList(nn.Linear(width + c, head) for c in range(3))
        self.heads2 = nn.ModuleList(nn.Linear(head, outputs(components)) for _ in range(3))
        with torch.no_grad():
            for layer in self.modules():
                if isinstance(layer, nn.Linear):
                    bound = 1.0 / math.sqrt(layer.in_features)
                    layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) * 2 * bound - bound)
                    layer.bias.zero_()
            for layer in self.heads2:
                layer.weight.mul_(0.1)

    def forward(self, inputs: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
        """inputs float (N, 72), own float (N, 3) residuals of the pixel's channels (both /384).

        Returns float (N, 3, outputs): per channel (o_loc, o_scale), and for a mixture per further component
        (o_offset, o_scale, o_logit) (`mixture_nats`); channel c sees own[:, :c] only.
        """
        h = F.relu(self.trunk2(F.relu(self.trunk1(inputs))))
        # the heads' first layers read the trunk in one product (as the exact pass does), then each adds its
        # pixel's earlier channels: no copy of the trunk's activations per head
        width = h.shape[1]
        weights = [layer.weight for layer in self.heads1]  # read once: a fit's parametrization rebuilds them
        trunk_parts = F.linear(h, torch.cat([w[:, :width] for w in weights]),
                               torch.cat([layer.bias for layer in self.heads1]))
        outs = []
        for c, part in enumerate(trunk_parts.split(weights[0].shape[0], 1)):
            if c:
                part = part + own[:, :c] @ weights[c][:, width:].T
            outs.append(self.heads2[c](F.relu(part)))
        return torch.stack(outs, 1)


def outputs(components: int) -> int:
    """The heads' outputs per channel for a mixture of this many logistics (1: a single one)."""
    return 3 * components - 1


class PyramidNet(nn.Module):
    """One PhaseNet per phase of the order (`layout.ORDERS`); each subpixel's distribution a logistic, or a mixture
    of `components` logistics (the exact coder takes 1 or 2: `entropy`)."""

    def __init__(self, width: int = 64, head: int = 32, generator: torch.Generator | None = None, order: int = 1,
                 components: int = 1):
        super().__init__()
        self.width, self.head, self.order, self.components = width, head, order, components
        n_inputs = spec.n_inputs(ORDERS[order].n_neighbours)
        self.phases = nn.ModuleList(PhaseNet(width, head, generator, n_inputs, components)
                                    for _ in range(len(ORDERS[order])))

    def arrays(self) -> dict[str, np.ndarray]:
        """Parameters as float32 numpy arrays by name (what a prior file stores)."""
        return {name: p.detach().cpu().numpy().astype(np.float32) for name, p in self.named_parameters()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], order: int = 1) -> "PyramidNet":
        width, head = arrays["phases.0.trunk1.weight"].shape[0], arrays["phases.0.heads1.0.weight"].shape[0]
        components = (arrays["phases.0.heads2.0.weight"].shape[0] + 1) // 3
        # its initial values are overwritten: torch's global RNG is untouched
        net = cls(width, head, torch.Generator(), order, components)
        net.load_state_dict({name: torch.from_numpy(np.asarray(a, np.float32).copy()) for name, a in arrays.items()})
        return net


def logistic_nats(x: torch.Tensor, loc: torch.Tensor, scale_index: torch.Tensor) -> torch.Tensor:
    """-ln P(x) of a logistic discretized to 0..255, tails folded into 0 and 255 (PixelCNN++ form).

    x, loc in grey levels; scale_index as in spec (continuous here, rounded when coding).
    """
    log_scale = math.log(spec.SCALE_MIN) + spec.SCALE_LOG_STEP * scale_index.clamp(0, spec.N_SCALES - 1)
    inv = torch.exp(-log_scale)
    centered = x - loc
    plus, minus = inv * (centered + 0.5), inv * (centered - 0.5)
    log_cdf_plus = plus - F.softplus(plus)  # ln sigmoid(plus), for x = 0
    log_sf_minus = -F.softplus(minus)  # ln (1 - sigmoid(minus)), for x = 255
    mid = torch.sigmoid(plus) - torch.sigmoid(minus)
    mid_in = inv * centered
    log_pdf_mid = mid_in - log_scale - 2 * F.softplus(mid_in)
    log_mid = torch.where(mid > 1e-5, torch.log(mid.clamp_min(1e-12)), log_pdf_mid)
    log_p = torch.where(x < 0.5, log_cdf_plus, torch.where(x > 254.5, log_sf_minus, log_mid))
    return -log_p


def phase_nats(net: PhaseNet, inputs: torch.Tensor, own: torch.Tensor, base12: torch.Tensor,
               target: torch.Tensor) -> torch.Tensor:
    """Nats (N, 3) of the targets under the float model. inputs/own/base12 are the integer tensors as float."""
    out = net(inputs / spec.INPUT_UNITS, own / spec.INPUT_UNITS)
    return mixture_nats(out, base12, target)


def mixture_nats(out: torch.Tensor, base12: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Nats (N, 3) of the targets under the heads' outputs (N, 3, 3K - 1): the first component's location
    base + LOC_GAIN o_loc and scale index SCALE_MID + SCALE_GAIN o_scale; component k > 0's location the first's
    plus LOC_GAIN o[3k - 1], its scale index from o[3k], its logit o[3k + 1] (the first's logit is 0), as the
    exact coder quantizes them (`engine.outputs`). One component: a single logistic."""
    first = base12 / spec.LOC_STEP + spec.LOC_GAIN * out[..., 0]
    terms = [-logistic_nats(target, first, spec.SCALE_MID + spec.SCALE_GAIN * out[..., 1])]
    if out.shape[-1] == 2:
        return -terms[0]
    logits = [torch.zeros_like(first)]
    for k in range(1, (out.shape[-1] + 1) // 3):
        loc = first + spec.LOC_GAIN * out[..., 3 * k - 1]
        terms.append(-logistic_nats(target, loc, spec.SCALE_MID + spec.SCALE_GAIN * out[..., 3 * k]))
        logits.append(out[..., 3 * k + 1])
    log_w = F.log_softmax(torch.stack(logits, -1), -1)
    return -torch.logsumexp(log_w + torch.stack(terms, -1), -1)
