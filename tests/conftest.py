"""Shared fixtures: a small random decoder checkpoint (fast) and small test images."""

import contextlib
import os

import numpy as np
import pytest
import torch

from diffcode.families.per_pixel.checkpoint import Checkpoint
from diffcode.families.per_pixel import model as per_pixel_model
from diffcode.families.per_pixel.model import DecoderWeights
from diffcode.families.per_pixel.fit import FitConfig
from diffcode.families.per_pixel.superres import DecoderConfig

# Tests run torch and the exact convolutions on one thread unless a test sets more (the thread tests
# set 1 and 2; $OMP_NUM_THREADS, if set, wins). On a 2-core machine shared with another job, idle
# worker threads spin against it: a 6-step fit of a 24x20 image took 2-5 s on two threads, 0.1-0.2 s
# on one. The CLI tests' subprocesses inherit the variable.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# few steps, every piece of the fitting schedule exercised (maximize, entropy off/on, freezing)
QUICK_FIT = FitConfig(steps=6, maximize_steps=1, entropy_on_fraction=0.5, freeze_fraction=0.5)


@pytest.fixture(scope="session")
def checkpoint() -> Checkpoint:
    """A randomly initialised decoder: fast, and as good as any for exactness tests.

    The same checkpoint whatever ran before: nn.Conv2d initialises from torch's global generator,
    so that generator is seeded here (inside fork_rng, leaving the caller's state untouched).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(0)
        weights = DecoderWeights(DecoderConfig(), g)
        with torch.no_grad():
            for p in weights.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=g))
            for block in ("stage", "head"):  # mostly narrow-entropy encodings, like a trained decoder
                weights.conv(block, "pre2").bias[:5] -= 4.0
    return per_pixel_model.checkpoint_of(weights)


@pytest.fixture(scope="session")
def other_checkpoint() -> Checkpoint:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        return per_pixel_model.checkpoint_of(DecoderWeights(DecoderConfig(), torch.Generator().manual_seed(1)))


def small_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 40).astype(np.uint8)
    return {
        "noise": rng.integers(0, 256, (24, 20, 3), dtype=np.uint8),
        "gradient": np.stack([np.broadcast_to(ramp[None, :], (30, 40))] * 3, axis=-1).copy(),
        "flat": np.full((16, 16, 3), 77, np.uint8),
        "odd 37x23": rng.integers(90, 110, (23, 37, 3), dtype=np.uint8),
        "1x1": np.array([[[1, 2, 3]]], np.uint8),
    }


def per_pixel_unless_named(args: list) -> list:
    """CLI arguments with `--variant per-pixel` added to fit, compress and evaluate when no variant is
    named: the tests written for the report's per-pixel family keep testing it now that the
    default variant is pyramid (tests/test_pyramid.py tests the default)."""
    args = [str(a) for a in args]
    if args and args[0] in ("fit", "compress", "evaluate") and "--variant" not in args:
        args = [args[0], "--variant", "per-pixel", *args[1:]]
    return args


@contextlib.contextmanager
def spoiled_replay(module, spoil):
    """Within the block, `module.encode` (a family's exact encoder) hands `codec.store` a replay
    changed by spoil(replay): the store's check of its own file must then fail loudly."""
    original = module.encode

    def encode(*args, **kwargs):
        encoded = original(*args, **kwargs)
        spoil(encoded.replay)
        return encoded

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "encode", encode)
        yield


def kodak_dir_or_skip():
    """The Kodak folder; without it, a skip that says why, or a failure when $CI is set (.ci/run sets
    it), so that a broken path in CI cannot pass the tests that need the images vacuously."""
    import os

    from diffcode import kodak
    from diffcode.errors import ImageError

    try:
        return kodak.find_kodak_dir()
    except ImageError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Kodak images not found in CI ({exc})")
        pytest.skip(f"Kodak images not available: {exc}")


def image_folder(tmp_path, checkpoint, monkeypatch, images: dict):
    """tmp_path as the working folder, holding the test decoder (decoder.npz) and imgs/NAME.png of
    `images` (name -> uint8 array): the CLI tests' batch inputs."""
    from diffcode.image import write_png

    checkpoint.save(tmp_path / "decoder.npz")
    (tmp_path / "imgs").mkdir()
    for name, array in images.items():
        write_png(tmp_path / "imgs" / f"{name}.png", array)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIFFCODE_PROGRESS", raising=False)  # bars follow the (test runner's) stderr
    return tmp_path

