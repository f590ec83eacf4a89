"""The training loop runs end to end on tiny crops and returns a usable checkpoint."""

import numpy as np

from diffcode import codec, kodak
from diffcode.families.per_pixel.fit import fit_image
from diffcode.families.per_pixel.train import TrainConfig, train
from tests.conftest import QUICK_FIT, kodak_dir_or_skip


def test_tiny_training_run_gives_a_working_checkpoint():
    kodak_dir_or_skip()
    config = TrainConfig(steps=3, crop=24, crops_per_image=2, batch=3, val_every=2, val_crop=24, val_fit_steps=2)
    logs = []
    ckpt = train(config, log=logs.append)
    assert np.isfinite(ckpt.meta["validation_bpsp"])
    assert [h["step"] for h in ckpt.meta["history"]] == [0, 2, 3]
    image = kodak.crop(kodak.load("kodim17"), (20, 20))
    fit = fit_image(image, ckpt, QUICK_FIT)
    data, _ = codec.store(fit, ckpt)
    assert np.array_equal(codec.load(data, ckpt), image)


def test_the_weights_mlp_trains_with_its_recipe(tmp_path):
    """`diffcode train --variant weights` once always refused; the recipe now lives in the family."""
    from diffcode import families
    from diffcode.families.weights.train import train_mlp

    mlp = train_mlp(crop=8, steps=3, quantile_steps=5, log=lambda message: None)
    mlp.save(tmp_path / "mlp.npz")
    loaded = families.get("weights").load_model(tmp_path / "mlp.npz")
    assert loaded.hash == mlp.hash and loaded.meta["crop"] == 8
