"""An online readout on top of the pyramid coder's online adaptation: what it would add (issue 21, a lever measured
before it is built).

    python experiments/online_readout.py [--images kodim09,kodim13] [--mu 0.02,0.04] [--name NAME]

The coder's online adaptation (`online.py`) corrects each subpixel's location by a per-context bias and its scale
by a per-context shift. This measures one more correction, learned while coding: a linear readout of the trunk's
128 output activations (the features every head reads; the same for the pixel's three channels), one weight
vector per (level class, phase, channel), fitted by normalised LMS on each coded subpixel's error after the other
corrections:

    location += round(w . f),   f = activations / 64
    after coding x:  w += mu * clip(12 x - location, -96, 96) * f / (1 + |f|^2)

It runs in float64 in a simulation of the coder (the network's integer locations and scales, the online
adaptation's own kernels, code lengths from its integer table), not in the file format: a prototype's ceiling,
not a codec. Each image is measured twice: with the prior's network alone (the `instant` file's network) and with
the network after `default`'s per-image fit (its deltas as the file would hold them). Rows give the error table's
bits per subpixel under the integer model, mu 0 being today's coder. Writes experiments/results/NAME.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ["DIFFCODE_KERNELS"] = "jit"  # the simulation calls the online kernels from numba

import numba  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffcode import kernels  # noqa: E402
from diffcode.families.pyramid import coding, deltas, engine, entropy, exact, layout, online, prior, spec  # noqa: E402
from diffcode import report
from pyramid_ablation import images  # noqa: E402

RESULTS = ROOT / "experiments" / "results"
FEATURE_UNIT = 64.0
ERROR_CLIP = 96  # 8 grey levels, in 1/12


@numba.njit
def _simulate(symbols, loc12, scale, ctx, features, bias_sum, count, cost, tab, table, params, weights, cls, mu):
    """Ideal bits of one channel pass in coding order, with today's online adaptation plus the readout (mu 0: none);
    updates the statistics and the readout's weights."""
    total = 0.0
    for i in range(symbols.shape[0]):
        k = ctx[i]
        loc, sc, _, _ = online._corrected(k, loc12[i], scale[i], loc12[i], scale[i], bias_sum, count, cost, params)
        shift, norm = 0.0, 1.0
        if mu > 0:
            for j in range(features.shape[1]):
                shift += weights[cls, j] * features[i, j]
                norm += features[i, j] * features[i, j]
        final = min(max(loc + int(np.floor(shift + 0.5)), spec.LOC_MIN), spec.LOC_MAX)
        x = np.int64(symbols[i])
        total += online.code_length(entropy.frequency(x, final, sc, final, sc, entropy.SINGLE, tab), table) / 256.0
        online._update(k, x, loc12[i], scale[i], scale[i], entropy.SINGLE, loc, loc, bias_sum, count, cost, tab, table,
                       params)
        if mu > 0:
            g = mu * min(max(12 * x - final, -ERROR_CLIP), ERROR_CLIP) / norm
            for j in range(features.shape[1]):
                weights[cls, j] += g * features[i, j]
    return total


def passes(image: np.ndarray, net) -> list[tuple]:
    """Every channel pass of the coder, in coding order: (symbols, loc12, scale, context ids, features, class)."""
    levels, out, state = layout.pyramid(image), [], online.Online(online.SETTINGS[1])
    hidden_of = net.hidden
    current = {}

    def hidden(phase, inputs):
        activations = hidden_of(phase, inputs)
        current["features"] = activations.astype(np.float64) / FEATURE_UNIT
        return activations

    net.hidden = hidden  # the walk's trunk activations, kept for the readout

    def code(params, ids, where):  # of single-logistic priors: params holds (loc12, scale)
        (loc12, scale), (level, rows, cols, c) = params[:2], where
        symbols = levels[level].reshape(-1) if rows is None else levels[level][rows, cols, c]
        if ids is not None:
            cls = (min(level, 1) * online.MAX_PHASES + current["phase"]) * 3 + c
            out.append((np.ascontiguousarray(symbols, np.uint8), loc12.astype(np.int64), scale.astype(np.int64),
                        ids.astype(np.int64), current["features"], cls))
        return symbols

    contexts = state.contexts

    def contexts_with_phase(level, phase, c, *args):
        current["phase"] = phase
        return contexts(level, phase, c, *args)

    state.contexts = contexts_with_phase
    try:
        coding._walk(image.shape[0], image.shape[1], net, code, state, lambda: None)
    finally:
        net.hidden = hidden_of
    return out


def bits(recorded: list[tuple], mu: float) -> float:
    state = online.Online(online.SETTINGS[1])
    weights = np.zeros((2 * online.MAX_PHASES * 3, recorded[0][4].shape[1]))
    return sum(_simulate(s, loc, sc, ids, np.ascontiguousarray(f), state.bias_sum, state.count, state.cost,
                         entropy.coding_table(), online.COST_TABLE, state.params, weights, cls, mu)
               for s, loc, sc, ids, f, cls in recorded)


def fitted_net(image: np.ndarray, model):
    import torch

    from diffcode.families.pyramid.fit import fit_deltas

    p = spec.PRESETS["default"]
    k, _ = fit_deltas(image, model.arrays, steps=p.steps, adapt=p.adapt, lr=p.lr, batch=p.batch,
                      generator=torch.Generator().manual_seed(0), order=model.order)
    k = exact.within_bound(model, p.adapt, k)
    return exact.exact_net(model, deltas.apply(model.arrays, p.adapt, k) if len(k) else model.arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="kodim09,kodim13")
    parser.add_argument("--mu", default="0.01,0.02,0.04")
    parser.add_argument("--name", default="online_readout")
    args = parser.parse_args()
    kernels.bind(jit_only=True)
    model = prior.load()
    mus = [0.0] + [float(m) for m in args.mu.split(",")]
    rows = []
    for name, image in images(args.images):
        for network in ("instant", "default fit"):
            start = time.perf_counter()
            net = exact.exact_net(model, model.arrays) if network == "instant" else fitted_net(image, model)
            recorded = passes(image, net)
            values = [bits(recorded, mu) / image.size for mu in mus]
            rows.append((name, network, values))
            print(name, network, [round(v, 4) for v in values], f"{time.perf_counter() - start:.0f} s", flush=True)
    commit = report.git_commit()
    lines = ["# An online readout of the trunk's activations on top of the online adaptation (prototype)\n",
             f"Command: `python {' '.join(sys.argv)}` at commit {commit}; prior {model.sha256[:16]}. Error-table "
             "bpsp under the integer model (ideal bits, not file bytes), simulated in float64 as the script's "
             "docstring says; mu 0 is today's coder. `default fit`: the network with `default`'s per-image deltas "
             "(their own bits not counted: they are the same in every column).\n",
             "| image | network | " + " | ".join(f"mu {m:g}" for m in mus) + " | best vs mu 0 |",
             "|---|---|" + "---|" * (len(mus) + 1)]
    for network in ("instant", "default fit"):
        chosen = [r for r in rows if r[1] == network]
        for name, _, values in chosen + [("mean", network, list(np.mean([r[2] for r in chosen], 0)))]:
            best = min(values[1:]) / values[0] - 1
            lines.append(f"| {name} | {network} | " + " | ".join(f"{v:.4f}" for v in values) + f" | {100 * best:+.2f} % |")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
