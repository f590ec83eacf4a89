"""A mixture of two logistics per subpixel instead of one: the float prior's validation bits, before any coder
supports it (issue 21's "model capacity" row).

    python experiments/mixture_ablation.py [--components K] [train_pyramid.py options]

Runs `experiments/train_pyramid.py` with its options, with the network's last layer giving 3K - 1 numbers per
channel instead of two (the first component's location and scale index as today; for each other component a
location offset from the first, a scale index and a weight logit, the first component's logit being 0) and the
loss the K-logistic mixture's discretized likelihood (K = 2 by default) (each component as `model.logistic_nats`: tails folded into 0 and 255). Everything else
(data, schedule, validation sets, the record) is train_pyramid's, so a row compares with a one-logistic run of
the same options, e.g. `ablation-o1w128.md`:

    python experiments/mixture_ablation.py --no-kodak --data train --steps 3000 --order 1 --width 128 \\
        --head 48 --threads 1 --out /tmp/mix2.npz --record ablation-mix2-o1w128

The prior it writes is for this comparison only: no coder reads five outputs.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import train_pyramid  # noqa: E402
from diffcode.families.pyramid import model, spec, train  # noqa: E402

COMPONENTS = 2


class MixtureNet(model.PyramidNet):
    """PyramidNet whose heads' last layers give 3 COMPONENTS - 1 numbers per channel."""

    def __init__(self, width: int = 64, head: int = 32, generator: torch.Generator | None = None, order: int = 1):
        super().__init__(width, head, generator, order)
        for phase in self.phases:
            phase.heads2 = nn.ModuleList(nn.Linear(head, 3 * COMPONENTS - 1) for _ in range(3))
            with torch.no_grad():
                for layer in phase.heads2:
                    bound = 1.0 / math.sqrt(head)
                    layer.weight.copy_((torch.rand(layer.weight.shape, generator=generator) * 2 - 1) * bound * 0.1)
                    layer.bias.zero_()


def mixture_nats(net, inputs: torch.Tensor, own: torch.Tensor, base12: torch.Tensor,
                 target: torch.Tensor) -> torch.Tensor:
    """Nats (N, 3) of the targets under the mixture of COMPONENTS logistics."""
    out = net(inputs / spec.INPUT_UNITS, own / spec.INPUT_UNITS)
    first = base12 / spec.LOC_STEP + spec.LOC_GAIN * out[..., 0]
    terms, logits = [], [torch.zeros_like(first)]
    for k in range(COMPONENTS):
        loc = first if k == 0 else first + spec.LOC_GAIN * out[..., 3 * k - 1]
        scale = out[..., 1] if k == 0 else out[..., 3 * k]
        terms.append(-model.logistic_nats(target, loc, spec.SCALE_MID + spec.SCALE_GAIN * scale))
        if k:
            logits.append(out[..., 3 * k + 1])
    log_w = F.log_softmax(torch.stack(logits, -1), -1)
    return -torch.logsumexp(log_w + torch.stack(terms, -1), -1)


def main() -> None:
    global COMPONENTS
    if "--components" in sys.argv:
        at = sys.argv.index("--components")
        COMPONENTS = int(sys.argv[at + 1])
        del sys.argv[at:at + 2]
    train.PyramidNet = MixtureNet
    train.phase_nats = mixture_nats
    train_pyramid.main()


if __name__ == "__main__":
    main()
