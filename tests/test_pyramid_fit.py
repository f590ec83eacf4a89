"""The pyramid fit's samples: every target of an image up to the fit's bound, a uniform subset above it that
stands for the whole image (issue 27: a 25 MP photo is fitted in bounded memory)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from diffcode.families.pyramid import fit, layout
from diffcode.families.pyramid.model import PyramidNet
from diffcode.families.pyramid.train import Samples, coded_targets, mean_bpsp, sampled_samples, samples

ORDERS = pytest.mark.parametrize("order", list(layout.ORDERS), ids=lambda o: f"order{o}")


def _image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.integers(-3, 4, (h, w, 3)), 0), 1)
    return np.clip(128 + smooth, 0, 255).astype(np.uint8)


def _fields(s: Samples) -> list[np.ndarray]:
    return [a for field in (s.inputs, s.own, s.base12, s.target) for a in field]


def _rows(s: Samples, phase: int) -> np.ndarray:
    """Each sample of a phase as one int32 row (inputs, own, base12, target)."""
    return np.concatenate([a[phase].astype(np.int32) for a in (s.inputs, s.own, s.base12, s.target)], 1)


def test_the_fit_keeps_every_target_of_the_images_it_has_always_seen():
    """Kodak (both ways), the photos (0.8-1.4 MP), 1024 x 1024 and 1920 x 1080 are within the fit's bound."""
    for shape in [(512, 768), (768, 512), (1024, 1024), (1436, 915), (1080, 1920)]:
        assert coded_targets(*shape) <= fit.MAX_TARGETS, shape
    assert coded_targets(4096, 6144) > 10 * fit.MAX_TARGETS  # a 25 MP photo is sampled


def test_coded_targets_counts_every_coded_pixel():
    for h, w in [(1, 1), (8, 8), (9, 13), (64, 1), (40, 36)]:
        counted = sum(len(rows) for level, size in enumerate(layout.level_sizes(h, w)[:-1])
                      for phase in range(2) for rows, _, _ in layout.targets(*size, phase))
        assert coded_targets(h, w) == counted, (h, w)


@ORDERS
def test_within_the_bound_the_fit_samples_every_target_as_before(order):
    """The fit's samples of a small image are today's full set, array for array (so its fit and file are too)."""
    image = _image(40, 36)
    full, bounded = samples([image], order), samples([image], order, max_targets=fit.MAX_TARGETS)
    assert bounded.image_targets is None and bounded.scale == 1.0 and bounded.subpixels == full.subpixels
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(_fields(full), _fields(bounded)))
    exact = samples([image], order, max_targets=coded_targets(40, 36))  # the bound itself: still every target
    assert exact.image_targets is None and all(np.array_equal(a, b) for a, b in zip(_fields(full), _fields(exact)))


@ORDERS
def test_sampling_every_target_gathers_the_same_contexts(order):
    """The sampling path with a share of 1 (in small chunks, over several images, thin ones among them) gives
    `samples` exactly: it reads the same targets in the same order."""
    images = [_image(37, 30, 1), _image(20, 45, 2), _image(1, 70, 3), _image(9, 1, 4)]
    full = samples(images, order)
    drawn = sampled_samples(images, order, Fraction(1), np.random.default_rng(0), chunk=100)
    assert drawn.core_subpixels == full.core_subpixels and drawn.subpixels == full.subpixels and drawn.scale == 1
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(_fields(full), _fields(drawn)))


@ORDERS
def test_above_the_bound_a_uniform_subset_stands_for_the_image(order):
    image = _image(96, 80, 2)
    full = samples([image], order)
    s = samples([image], order, max_targets=1000)
    groups = sum(len(layout.ORDERS[order].phases[p].groups) for p in range(len(layout.ORDERS[order])))
    levels = len(layout.level_sizes(96, 80)) - 1
    assert 1000 - groups * levels <= s.targets <= 1000
    assert s.image_targets == full.targets == coded_targets(96, 80) and s.subpixels == full.subpixels
    assert s.scale == pytest.approx(full.targets / s.targets)
    for phase in range(len(s.target)):  # each phase in proportion to its targets, every sample one of the image's
        assert len(s.target[phase]) == pytest.approx(len(full.target[phase]) / s.scale, abs=groups * levels)
        assert len(np.unique(_rows(s, phase), axis=0)) == len(s.target[phase])
        known = {row.tobytes() for row in _rows(full, phase)}
        assert all(row.tobytes() in known for row in _rows(s, phase))
    again, other = samples([image], order, max_targets=1000), samples([image], order, max_targets=1000, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(_fields(s), _fields(again)))
    assert not all(np.array_equal(a, b) for a, b in zip(_fields(s), _fields(other)))
    net = PyramidNet(generator=torch.Generator().manual_seed(3), order=order)
    assert mean_bpsp(net, s) == pytest.approx(mean_bpsp(net, full), rel=0.02)  # scaled to the whole image


def test_the_fit_runs_on_a_sampled_image(monkeypatch):
    """Above the bound the fit trains and decides whether its deltas pay on the subset, deterministically."""
    arrays = PyramidNet(generator=torch.Generator().manual_seed(3)).arrays()
    monkeypatch.setattr(fit, "MAX_TARGETS", 500)

    def run():
        return fit.fit_deltas(_image(64, 48, 3), arrays, steps=3, adapt="biases", lr=1e-2, batch=256,
                              generator=torch.Generator().manual_seed(0))

    (k, history), (k_again, history_again) = run(), run()
    assert len(history) == 3 and np.array_equal(k, k_again)
    assert [h["bpsp"] for h in history] == [h["bpsp"] for h in history_again]


def test_the_deltas_are_weighed_on_a_subset_that_stands_for_the_image():
    """`_pays` measures before and after on at most PAYS_TARGETS targets: a uniform subset of each phase, scaled
    to the whole image (its mean bits within 2 % of the full set's), and the samples themselves below the bound."""
    image = _image(96, 80, 2)
    full = samples([image], 1)
    assert fit._subset(full, full.targets, 0) is full
    s = fit._subset(full, 1000, 0)
    assert abs(s.targets - 1000) <= len(s.target) and s.image_targets == full.targets
    assert s.subpixels == full.subpixels and s.scale == pytest.approx(full.targets / s.targets)
    for phase in range(len(s.target)):
        assert len(s.target[phase]) == pytest.approx(len(full.target[phase]) * 1000 / full.targets, abs=1)
        known = {row.tobytes() for row in _rows(full, phase)}
        assert all(row.tobytes() in known for row in _rows(s, phase))
    net = PyramidNet(generator=torch.Generator().manual_seed(3))
    assert mean_bpsp(net, s) == pytest.approx(mean_bpsp(net, full), rel=0.02)
