"""Turn a trained pyramid prior into the package's next shipped prior.

    python experiments/ship_pyramid_prior.py experiments/checkpoints/prior-m2.npz --order 3 --online 1 \
        --out diffcode/data/pyramid_prior_2.npz

The prior's network and quantization stay as trained (`experiments/train_pyramid.py` calibrates them); its meta
gets the coding order (`layout.ORDERS`: 3 codes order 1's phases in chunks) and the online adaptation
(`online.SETTINGS`) its files are coded with, or (--online-choices) the ones each file chooses from. Prints the SHA-256 to add to `prior.SHIPPED` (and CURRENT). An
existing output is never replaced: a shipped prior is never edited, only added.
"""

from __future__ import annotations

import argparse
import sys

from diffcode.errors import DiffcodeError
from diffcode.families.pyramid import prior
from diffcode.families.pyramid.layout import ORDERS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prior", help="a prior file written by train_pyramid.py")
    parser.add_argument("--order", type=int, required=True)
    parser.add_argument("--online", type=int, required=True)
    parser.add_argument("--online-choices", help="online codes each file chooses from, comma-separated (the first "
                        "wins ties), written in its side information (`exact.choices`)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    trained = prior.load(args.prior)
    if len(ORDERS[args.order]) != len(ORDERS[trained.order]) or \
            ORDERS[args.order].phases != ORDERS[trained.order].phases:
        sys.exit(f"order {args.order} has other phases than the order {trained.order} the prior was trained for")
    if "quant" not in trained.meta:
        sys.exit("the prior records no quantization: train it with this diffcode's train_pyramid.py")
    meta = {"online_choices": [int(c) for c in args.online_choices.split(",")]} if args.online_choices else {}
    shipped = prior.amended(trained, order=args.order, online=args.online, trained_order=trained.order, **meta)
    try:
        shipped.save(args.out)
    except DiffcodeError as exc:
        sys.exit(str(exc))
    prior.load(args.out)  # the checks a decoder makes
    print(f'"{shipped.sha256}": "data/{args.out.rsplit("/", 1)[-1]}",')


if __name__ == "__main__":
    main()
