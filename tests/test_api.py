"""The Python API dispatches on the variant: fit, store and decompress work the same for both."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import QUICK_FIT
from diffcode import api
from diffcode.errors import DecoderMismatchError, DiffcodeError
from diffcode.families import Fit
from diffcode.families.per_pixel.config import FitConfig
from diffcode.image import ColorMode


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(3).integers(60, 200, (9, 11, 3), dtype=np.uint8)


def test_per_pixel_fit_store_decompress(image, checkpoint):
    result = api.fit(image, variant="per-pixel", config=QUICK_FIT, model=checkpoint, storage="randseed", seed=5)
    assert isinstance(result, Fit) and result.family == "per-pixel"
    assert result.meta["config"]["storage"] == "randseed" and result.seed == 5
    data, report = api.store(result, model=checkpoint)
    assert report.storage == "randseed"  # the scheme the fit prepared for
    assert np.array_equal(api.decompress(data, model=checkpoint), image)


def test_weights_fit_store_decompress(image, checkpoint):
    result = api.fit(image, variant="weights", preset="tiny", steps=6, color=ColorMode())
    assert isinstance(result, Fit) and result.family == "weights" and len(result.history) == 6
    data, report = api.store(result)
    assert report.as_dict()["file_bytes"] == len(data)
    assert np.array_equal(api.decompress(data), image)
    with pytest.raises(DecoderMismatchError):  # a per-pixel decoder is not this file's model
        api.decompress(data, model=checkpoint)
    assert np.array_equal(api.decompress(api.compress(image, variant="weights", preset="tiny", steps=3)), image)


def test_store_refuses_a_fit_from_another_decoder(image, checkpoint, other_checkpoint):
    result = api.fit(image, variant="per-pixel", config=QUICK_FIT, model=checkpoint)
    with pytest.raises(DecoderMismatchError, match="the loaded one is"):
        api.store(result, model=other_checkpoint)


def test_bad_arguments_are_refused(image):
    with pytest.raises(DiffcodeError, match="unknown variant"):
        api.fit(image, variant="jpeg")
    for seed in (-1, 2**32):
        with pytest.raises(DiffcodeError, match="seed"):
            api.fit(image, variant="per-pixel", seed=seed)
    with pytest.raises(DiffcodeError, match="takes storage dither"):
        api.fit(image, variant="weights", preset="tiny", storage="randseed")
    with pytest.raises(DiffcodeError, match="takes preset"):
        api.fit(image, variant="weights", preset="huge")
    with pytest.raises(DiffcodeError, match="takes no budget_nats"):
        api.store(api.fit(image, variant="weights", preset="tiny", steps=3), budget_nats=8.0)


def test_public_names_are_not_shadowed_by_submodules():
    """`diffcode.fit(...)` from the README works after any API call (issue 14, defect 3)."""
    import pkgutil

    import diffcode
    from diffcode import api as api_module  # imports the per-pixel fitter, which once was `diffcode.fit`

    assert not set(diffcode.__all__) & {m.name for m in pkgutil.iter_modules(diffcode.__path__)}
    for name in diffcode.__all__:
        assert getattr(diffcode, name) is getattr(api_module, name)


def test_steps_below_the_maximize_phase_change_the_fit(image, checkpoint):
    """`--steps 20` or less once left every step in the entropy-maximizing phase, whose loss does not
    reach the head's encodings, so such fits stored the same file (issue 14, defect 4)."""
    heads = {}
    for steps in (1, 4, 12):
        result = api.fit(image, variant="per-pixel", steps=steps, model=checkpoint)
        config = FitConfig(**result.meta["config"])
        assert config.steps == steps and len(result.history) == steps
        assert config.maximize_steps < steps or steps == 1
        heads[steps] = result.arrays[f"centers_{len(result.arrays) - 1}"].tobytes()
    assert len(set(heads.values())) == 3
    assert [FitConfig().with_steps(n).maximize_steps for n in (1, 20, 200, 400)] == [0, 2, 20, 40]
    with pytest.raises(ValueError, match="at least 1 step"):
        FitConfig().with_steps(0)
