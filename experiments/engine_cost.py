"""What the float32 engine's quantization costs: the first prior's network coded by its float64 pass and by the engine.

    python experiments/engine_cost.py [--images kodim09,kodim13]

The first shipped prior records no quantization, so the engine's is calibrated here as `train_prior` does for
new priors (on centre crops of 4 training photos). Both codings run without online adaptation; bpsp of the
error-table stream. Writes experiments/results/engine_cost.md with the command and commit.
"""

from __future__ import annotations

import argparse
import sys

from diffcode.families.pyramid import coding, engine, prior
from diffcode.families.pyramid.network import ExactNet
from diffcode.families.pyramid.train import samples
from diffcode.image import read_image
from diffcode import report
from pyramid_ablation import PHOTOS, RESULTS, images

FIRST_PRIOR = "ea6396d18181957995497ccdc0bf60c2e583382569322f1570e8b8161a3ce93a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="kodim09,kodim13")
    args = parser.parse_args()
    model = prior.shipped(FIRST_PRIOR)
    calibration = [read_image(p)[:512, :512] for p in sorted((PHOTOS / "train").glob("*.png"))[:4]]
    quant = engine.make_quant(model.arrays, engine.calibrate(model.arrays, samples(calibration)), 1)
    nets = {"float64 pass": ExactNet(model.arrays), "float32 engine": engine.Engine(model.arrays, quant)}
    commit = report.git_commit()
    lines = ["# The float32 engine's quantization cost\n",
             f"Command: `python {' '.join(sys.argv)}` at commit {commit}; the first shipped prior ({FIRST_PRIOR[:16]}), "
             f"no online adaptation, activations 0..{engine.ACT_MAX}. bpsp of the error-table stream.\n",
             "| image | float64 pass | float32 engine | cost |", "|---|---|---|---|"]
    for name, image in images(args.images):
        bits = {label: 8 * len(coding.encode(image, net)[0]) / image.size for label, net in nets.items()}
        a, b = bits["float64 pass"], bits["float32 engine"]
        lines.append(f"| {name} | {a:.4f} | {b:.4f} | {100 * (b / a - 1):+.2f} % |")
        print(lines[-1], flush=True)
    (RESULTS / "engine_cost.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
