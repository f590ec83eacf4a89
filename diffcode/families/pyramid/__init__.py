"""The pyramid family: a shared superresolving prior plus a short per-image fit, lossless.

    image x (H, W, 3) -> levels x[::2^l, ::2^l]; the coarsest (<= 64 pixels) coded flat
    level l from level l+1, two parallel phases (layout.py):
        (odd, odd) pixels, then (even, odd) and (odd, even) pixels, each seeing 16 known pixels
        (residuals to the mean of its 4 nearest known neighbours), R then G then B
    shared prior (diffcode/data/pyramid_prior.npz, trained on Kodak's training split and the
    training photos; prior.py) + per-image integer deltas of some tensors (fit.py, deltas.py)
    -> exact integer network (network.py) -> per subpixel a logistic location and scale
    -> one rANS stream of quantized discretized logistics (entropy.py)

It keeps the report's spirit (a superresolving network grows the image stage by stage; a shared
network and a per-image part fitted with Adam on the total bits) but every stage sees the exactly
decoded coarser image, the pixels of its level decoded before it and the pixel's earlier colours.
Presets (spec.PRESETS): `instant` (the prior alone), `fast`, `default`.
"""
