"""The CNN weight-encodings variant (report 4.2): every weight of a per-image CNN is an encoding.

Data flow of one decode::

    side info --> preset, width level j of every group --> n = LEVELS[j] points per interval
    weight encodings (dithered, mixed radix) --> positions v in [0, 1) (uint32 fractions)
      --shared MLP (1, 40, 40, 1), relu, exact fixed point--> raw value m(v)
      --x 2^-shift of the tensor--> weights of the per-image CNN (2^-12 units)
    seed pixel (C, 1, 1)
      stage k (shared weights), repeated until the image size is reached:
        upsample x2 -> crop last row/col? -> zero-padded conv3x3 C->200, relu, ->100, relu, ->C
        -> + the upsampled input (residual)
      head: zero-padded conv3x3 C->100, relu, ->6
    -> per pixel and color: Cauchy location and log2 scale (diffcode.cauchy), rANS error table

Only the shared MLP is shipped (`diffcode/data/weights_mlp.npz`, hash pinned in `SHIPPED`);
the per-image CNN, including its seed pixel, is all encodings. The report's layer sizes are the
`report` preset; `default` is a smaller CNN that fits a 768x512 image in about half an hour on
2 CPU cores, `tiny` is for tests.

Choices the report leaves open, made here:

- Widths: a weight's interval has width 1/n with n = LEVELS[j], j in 0..23 (about half-bit
  steps from 1 to 4096 points). One j per *group*: an output channel of a conv weight, a whole
  bias, the whole seed. The js are the side information (``diffcode.families.weights.side_info``).
- Scale: the MLP gives values of order 1; a tensor's weights are m(v) * 2^-shift with
  shift = round(log2 sqrt(fan_in)) (+ `residual_shift` for the last conv of a stage, which feeds
  a residual: 1, and more for the report's wider layers, whose stack otherwise grows ~10x a stage),
  so that uniform positions give a He-like initialisation whatever the preset.
- Intervals stay inside [0, 1): the center is clamped to [w/2, 1 - w/2].
- The superresolver's weights are shared by all stages (as in 4.1), and a stage adds its
  input (residual); both keep a 10-stage CNN trainable from a single pixel.

Exactness (the same guarantee as the per-pixel path, see `diffcode.fixedpoint`): positions enter
the MLP as 24-bit integers, MLP weights are integers in 2^-12 units and biases in 2^-24, every
sum is an integer below 2^53 in float64, rescaled with `requantize`; convolutions are
`conv3x3_valid` on a zero-padded input. The float pass (`float_*`, used by the fit) uses the
same integer weights, so it differs only by rounding, which costs bits, never correctness.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ... import cauchy
from ...errors import DiffcodeError
from ..common import open_model_npz
from ..shipped import ShippedModels
from ...fixedpoint import ACT_LIMIT, FRAC_BITS, WEIGHT_LIMIT, padded_conv_stack, requantize, upsample2
from . import positions

NAME = "weights"
MLP_FILE = "weights_mlp.npz"
MLP_SHA256 = "e63d61035cbafd81da0ccda1c74a4c4c2e69b85ee1d48ff73c7e9841e71dd02d"  # the current shipped MLP (SHIPPED)
MLP_SIZES = (1, 40, 40, 1)
INPUT_BITS = 24  # positions enter the MLP as floor(v / 2^8), v the uint32 position
WEIGHTS_STAGE = 0x57454947  # b"WEIG": the dither offsets' key (diffcode.storage.dither.offsets)

LEVELS = positions.HALF_BIT_LEVELS  # n = LEVELS[j] grid points per interval: 1, 2, 3, 4, 6, 8, 11, ... 4096
N_LEVELS = len(LEVELS)


# ----------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    """Layer sizes of the per-image CNN and the fit's schedule (report 4.2)."""

    name: str
    code: int  # stored in the side-info section
    superres: tuple[int, ...]  # channels: input, hidden..., output (= input)
    head: tuple[int, ...]  # channels: input (= superres[0]), hidden..., 6
    center_steps: int  # phase 1: centers, error table only, widths fixed at init_entropy_bits
    width_steps: int  # phase 2: centers and widths against the total
    final_steps: int  # phase 3: widths fixed at their stored levels, centers against the total
    lr_centers: float = 0.003
    lr_widths: float = 0.05
    init_entropy_bits: float = 8.0
    residual_shift: int = 1  # extra 2^-shift of a stage's last conv (keeps the residual stack stable)
    conv_dtype: str = "float32"  # the fit's float convolutions (diffcode.layers.fit_dtype; not in the file)
    # phases 1 and 2 measure the error table on one random window of window x window pixels a step
    # (its cost scaled to the whole image); 0: on the whole image. Phase 3 always sees the whole image.
    window: int = 0
    # the error table's gradient where the head's outputs are clamped (`cauchy.inward_clamp`): True
    # lets it pull them back into the range; False is torch.clamp's 0, with which a fit whose outputs
    # all left the range within its first few steps stays frozen there
    inward_clamps: bool = False
    # with inward_clamps, only steps 0 .. inward_steps - 1 use them, then torch.clamp's gradient
    # (0: every step). Not in the file: the fit's gradient only.
    inward_steps: int = 0

    @property
    def steps(self) -> int:
        return self.center_steps + self.width_steps + self.final_steps

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "tiny": Preset("tiny", 1, (4, 8, 4), (4, 8, 6), 12, 8, 4, lr_centers=0.01),
    # the first default (files with preset code 2 still decode with it): its stages' last conv was
    # scaled by only 2^-1, so from uniform positions the activations grew about 4x a stage, and
    # beyond 64x64 pixels the head's outputs sat at the Cauchy clamps where no gradient flows
    # (kodim17 256x256: 9.73 bpsp after 5 steps and still after 180; experiments/results/
    # weights_schedule_*.md)
    "default-v1": Preset("default-v1", 2, (16, 32, 16), (16, 32, 6), 110, 50, 20, lr_centers=0.01),
    "report": Preset("report", 3, (40, 200, 100, 40), (40, 100, 6), 3500, 2000, 200, lr_centers=0.001,
                     residual_shift=5),
    # 2^-2 on each stage's last conv; bfloat16 convolutions where native (the same bits as float32 within
    # the fit's noise on two validation crops: experiments/results/fit_curve-w-val-crop256*.md); inward
    # clamp gradients (kodim15 5.738 bpsp instead of a fit frozen at 8.610, kodim09 5.939 against 5.809:
    # experiments/results/fit_curve-w-val-inward-*.md)
    "default": Preset("default", 4, (16, 32, 16), (16, 32, 6), 600, 280, 120, lr_centers=0.01, residual_shift=2,
                      conv_dtype="auto", inward_clamps=True),
}
PRESET_BY_CODE = {p.code: p for p in PRESETS.values()}


def with_steps(p: Preset, steps: int) -> Preset:
    """The preset with its three phases rescaled to `steps` in total (each at least 1)."""
    from dataclasses import replace

    if steps < 3:
        raise DiffcodeError("the weights variant needs at least 3 steps (one per phase)")
    width = max(1, round(steps * p.width_steps / p.steps))
    final = max(1, round(steps * p.final_steps / p.steps))
    return replace(p, center_steps=max(1, steps - width - final), width_steps=width, final_steps=final)


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise DiffcodeError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of the per-image CNN: name, shape (im2col layout for conv weights), groups."""

    name: str
    shape: tuple[int, ...]
    groups: int  # widths are shared inside a group: rows (output channels) or the whole tensor
    shift: int  # value = m(v) * 2^-shift

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


def _conv_specs(block: str, sizes: tuple[int, ...], residual_shift: int) -> list[TensorSpec]:
    specs = []
    for i, (cin, cout) in enumerate(zip(sizes[:-1], sizes[1:])):
        shift = round(math.log2(math.sqrt(9 * cin))) + (residual_shift if i == len(sizes) - 2 else 0)
        specs.append(TensorSpec(f"{block}.{i}.weight", (cout, 9 * cin), cout, shift))
        specs.append(TensorSpec(f"{block}.{i}.bias", (cout,), 1, shift))
    return specs


def layout(p: Preset) -> list[TensorSpec]:
    """Every encoded tensor, in storage order: seed, superresolver convs, head convs."""
    if p.superres[0] != p.superres[-1] or p.head[0] != p.superres[0] or p.head[-1] != 6:
        raise ValueError(f"preset {p.name}: inconsistent channel counts")
    return ([TensorSpec("seed", (p.superres[0],), 1, 0)] + _conv_specs("stage", p.superres, p.residual_shift)
            + _conv_specs("head", p.head, 0))


def group_of_weight(specs: list[TensorSpec]) -> np.ndarray:
    """int64 (N,): the group of every encoded weight, groups numbered in storage order."""
    out, first = [], 0
    for s in specs:
        out.append(first + np.repeat(np.arange(s.groups), s.size // s.groups))
        first += s.groups
    return np.concatenate(out).astype(np.int64)


def n_groups(specs: list[TensorSpec]) -> int:
    return sum(s.groups for s in specs)


def size_schedule(height: int, width: int) -> list[tuple[int, int]]:
    """(crop_h, crop_w) of every stage, growing a 1x1 seed to height x width (x2, then crop)."""
    sizes = [(height, width)]
    while sizes[-1] != (1, 1):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    sizes.reverse()
    return [(2 * a[0] - b[0], 2 * a[1] - b[1]) for a, b in zip(sizes[:-1], sizes[1:])]


# ----------------------------------------------------------------------------- shared MLP


class MLPCheckpoint:
    """The shipped MLP's integer arrays; `hash` names it in every weights-variant file header."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict | None = None):
        self.arrays = {k: np.ascontiguousarray(v, dtype=np.int64) for k, v in arrays.items()}
        self.meta = meta or {}
        h = hashlib.sha256(f"mlp{MLP_SIZES}".encode())
        for name in sorted(self.arrays):
            h.update(f"{name}:{self.arrays[name].shape}".encode())
            h.update(self.arrays[name].astype("<i8").tobytes())
        self.hash = h.hexdigest()

    def save(self, path: str | Path, overwrite: bool = False) -> None:
        """Write the MLP atomically (temporary file, then rename); refuses an existing path."""
        from ...outputs import write_bytes_atomic

        buf = io.BytesIO()
        np.savez_compressed(buf, __meta__=np.frombuffer(json.dumps(self.meta).encode(), np.uint8),
                            **{k: v.astype(np.int64) for k, v in self.arrays.items()})
        write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)

    @classmethod
    def from_bytes(cls, data: bytes, name: str) -> MLPCheckpoint:
        """Parse an MLP file's bytes (an .npz: __meta__ and the integer arrays)."""
        with open_model_npz(data, name) as z:
            meta = json.loads(z["__meta__"].tobytes().decode())
            arrays = {k: z[k].astype(np.int64) for k in z.files if not k.startswith("__")}
        return cls(arrays, meta)

    @classmethod
    def load(cls, path: str | Path | None = None) -> MLPCheckpoint:
        """Load an MLP file; None loads the current shipped one and checks its pinned hash."""
        return SHIPPED.load(path)


# SHA-256 (MLPCheckpoint.hash) -> package file; never remove one: files that name it keep decoding
SHIPPED = ShippedModels("the weights MLP", {MLP_SHA256: f"data/{MLP_FILE}"}, current=MLP_SHA256,
                        parse=MLPCheckpoint.from_bytes)


# ----------------------------------------------------------------------------- exact pass (coding)


def fixed_mlp(ckpt: MLPCheckpoint, positions: np.ndarray) -> np.ndarray:
    """Exact MLP of uint32 positions (N,): float64 (N,) integers in 2^-12 units."""
    a = {k: v.astype(np.float64) for k, v in ckpt.arrays.items()}
    u = (np.asarray(positions, dtype=np.uint32) >> np.uint32(32 - INPUT_BITS)).astype(np.float64)
    # layer 0: (2^-24 input) x (2^-12 weight) = 2^-36 units, bias 2^-24 -> x 2^12
    x = np.maximum(requantize(u[:, None] * a["0.weight"][:, 0][None, :] + a["0.bias"][None, :] * 2.0**FRAC_BITS,
                              INPUT_BITS), 0.0)
    n_layers = sum(1 for k in a if k.endswith(".weight"))
    for i in range(1, n_layers):
        x = requantize(x @ a[f"{i}.weight"].T + a[f"{i}.bias"][None, :])
        if i < n_layers - 1:
            x = np.maximum(x, 0.0)
    return x[:, 0]


def fixed_values(ckpt: MLPCheckpoint, positions: np.ndarray, specs: list[TensorSpec]) -> dict[str, np.ndarray]:
    """Exact CNN tensors: conv weights (O, 9C) in 2^-12, biases (O,) in 2^-24, seed (C,) in 2^-12 (float64)."""
    raw = fixed_mlp(ckpt, positions)
    out, start = {}, 0
    for s in specs:
        v = raw[start:start + s.size]
        if s.shift:
            v = requantize(v, s.shift)
        v = np.clip(v, -WEIGHT_LIMIT, WEIGHT_LIMIT)
        if s.name.endswith(".bias"):
            v = v * 2.0**FRAC_BITS
        out[s.name] = np.ascontiguousarray(v.reshape(s.shape))
        start += s.size
    return out


def fixed_pass(ckpt: MLPCheckpoint, p: Preset, positions: np.ndarray, height: int, width: int) -> np.ndarray:
    """Exact coding-time pass from stored positions uint32 (N,).

    Returns:
        int64 (3*H*W, 2) Cauchy table parameters (loc index, scale index) in C, H, W order.
    """
    t = fixed_values(ckpt, positions, layout(p))
    x = t["seed"].reshape(-1, 1, 1)
    for crop in size_schedule(height, width):
        x_up = upsample2(x, crop)
        x = x_up + padded_conv_stack(t, "stage", len(p.superres) - 1, x_up)
        np.clip(x, -ACT_LIMIT, ACT_LIMIT, out=x)
    out = padded_conv_stack(t, "head", len(p.head) - 1, x).astype(np.int64)
    return cauchy.params_from_fixed(out[:3].reshape(-1), out[3:].reshape(-1), FRAC_BITS)
