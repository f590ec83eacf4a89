"""Pyramid prior training stops and resumes exactly: two legs give the weights of one run, bit for bit (here of a
mixture of two logistics per subpixel)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffcode.errors import DiffcodeError
from diffcode.families.pyramid.train import load_checkpoint, samples, train

SETTINGS = {"steps": 6, "batch": 256, "lr": 3e-3, "width": 8, "head": 4, "seed": 5, "order": 1, "components": 2,
            "log_every": 2, "val_every": 4}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    smooth = np.cumsum(np.cumsum(rng.integers(-3, 4, (2, 24, 20, 3)), 1), 2)
    images = list(np.clip(128 + smooth, 0, 255).astype(np.uint8))
    return samples(images[:1]), {"a": samples(images[1:])}


def _run(data, **kwargs):
    torch.set_num_threads(1)
    return train(*data, **SETTINGS, **kwargs)


def test_two_legs_give_the_weights_of_one_run(data, tmp_path):
    straight, straight_log = _run(data)
    ckpt = tmp_path / "leg.pt"
    _run(data, checkpoint=ckpt, until=3, meta={"note": "leg 1"})
    state = load_checkpoint(ckpt)
    assert state["step"] == 3 and state["settings"] == SETTINGS and state["meta"] == {"note": "leg 1"}
    resumed, resumed_log = _run(data, resume=state)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in straight_log]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in resumed_log]
    assert [row["step"] for row in strip] == [2, 4, 6] and "val_a" in strip[1] and "val_bpsp" in strip[2]


def test_checkpoints_every_n_steps_and_refuses_other_settings(data, tmp_path):
    ckpt = tmp_path / "every.pt"
    _run(data, checkpoint=ckpt, checkpoint_every=2, until=5)
    assert load_checkpoint(ckpt)["step"] == 5
    with pytest.raises(DiffcodeError, match="other settings"):
        train(*data, **{**SETTINGS, "lr": 1e-3}, resume=load_checkpoint(ckpt))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DiffcodeError, match="not a readable"):
        load_checkpoint(tmp_path / "junk.pt")
