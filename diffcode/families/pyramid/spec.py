"""The pyramid family's numbers, shared by the float model and the exact pass (numpy only).

The network, per phase (one trunk shared by every level, a one-hot of the level as input):

    inputs (72, in 1/384 units): 16x3 neighbour residuals, 16 mask bits, 8 level bits
      -> trunk: dense 72 -> WIDTH, relu, dense WIDTH -> WIDTH, relu              -> h
    per channel c in R, G, B:
      [h, residuals of the channels before c of the same pixel] -> dense -> HEAD, relu -> dense -> 2
      -> (o_loc, o_scale): location = base + LOC_GAIN * o_loc grey levels,
                           scale index = SCALE_MID + SCALE_GAIN * o_scale (clamped, rounded)

and the subpixel is coded under a logistic of that location and scale, discretized to 0..255
with its tails folded into 0 and 255.
"""

from __future__ import annotations

from dataclasses import dataclass

from .layout import BASE_UNITS, MAX_LEVELS, N_NEIGHBOURS

INPUT_UNITS = 384  # an input integer k means k / 384


def n_inputs(n_neighbours: int = N_NEIGHBOURS) -> int:
    """Network inputs: residuals (3 per neighbour), mask bits (1 per neighbour), level bits."""
    return n_neighbours * 3 + n_neighbours + MAX_LEVELS


N_INPUTS = n_inputs()  # of orders 1-4
LOC_GAIN = 8.0  # grey levels per unit of o_loc
LOC_STEP = BASE_UNITS  # locations are coded in 1/12 grey level
LOC_MIN, LOC_MAX = -32 * LOC_STEP, 287 * LOC_STEP  # clamp of the coded location (1/12 units)
N_SCALES = 64
SCALE_MIN = 0.15  # grey levels, scale index 0
SCALE_LOG_STEP = 0.11  # ln of the ratio between neighbouring scale indexes
SCALE_MID = 32.0
SCALE_GAIN = 8.0


NAME = "pyramid"
ERROR_MODEL = "logistic"
STORAGE = "none"


@dataclass(frozen=True)
class Preset:
    """How much a fit adapts the prior to one image. `code` is written in files: never reuse one."""

    name: str
    code: int
    steps: int  # Adam steps of the per-image fit (0: the prior alone, no per-image weights)
    adapt: str = "heads"  # which tensors get a delta (deltas.ADAPT)
    lr: float = 3e-3
    batch: int = 16384  # subpixel contexts per step
    tries: tuple[str, ...] = ()  # presets whose fits are made too (as they are: --steps sets the own fit's steps only);
    # the deltas of the smallest real file are kept


PRESETS = {p.name: p for p in (
    # adapt and lr chosen on validation images (experiments/results/pyramid_ablation-*-val4.md): deltas
    # of the biases cost 0.002 bpsp and save more than the heads' deltas, which cost 0.03; a gain per weight
    # row besides (adapt "gains", 0.009 bpsp in all) saves 0.85 % more at 300 steps, lr 1e-2, and 0.49 % at
    # 150 (pyramid_ablation-gains-val4.md, -fastgains-val4.md: smaller on each of the four images); a gain per
    # column too (gains2, 0.017 bpsp in all) 0.26 % more at 300 steps (pyramid_ablation-gains2cols-val4.md)
    # 500 steps of 16,384 subpixels (about 50 s on one core): half the batch cost 0.02 % at 300 steps and let 500
    # steps fit in the time of 300 (2.8633 against 2.8729 on kodim09/11/13/15; 600 steps 2.8609 in 60-67 s:
    # experiments/results/pyramid_ablation-batch-*-val4.md)
    Preset("default", 3, steps=500, adapt="gains2", lr=1e-2, batch=16384),
    # fast: 300 steps of 8,192 subpixels, about the work of 150 of 16,384: 2.8806 against 2.8929 on kodim09/11/13/15,
    # smaller on each (experiments/results/pyramid_ablation-fastbatch-{a,b}-val4.md)
    Preset("fast", 2, steps=300, adapt="gains", lr=1e-2, batch=8192),
    Preset("instant", 1, steps=0),
    # code 4 was a `max` preset (1,500 steps of rank-2 deltas, deltas.ADAPT lowrank2), never released: with model 2
    # it was worse than `default` on half the test images (experiments/results/kodak-pyramid2-test-max.md)
    # max: the default's fit for 1,000 steps, about 4 minutes a 768x512 image on one core: 2.8590 bpsp against 2.8732
    # at 300 steps and 2.8606 at 600 on kodim09/11/13/15 (experiments/results/pyramid_ablation-steps-gains2-val4.md)
    # with prior 5 that fit alone was larger than `default` on half the test images (kodak-pyramid5-test-max.md: the
    # fit does not see the online adaptation, and fits longer against it), so max also makes default's fit and keeps
    # whichever codes the image smaller: never larger than `default` (same seed)
    Preset("max", 5, steps=1000, adapt="gains2", lr=1e-2, batch=32768, tries=("default",)),
)}
PRESET_BY_CODE = {p.code: p for p in PRESETS.values()}
