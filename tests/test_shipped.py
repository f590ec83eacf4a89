"""Shipped models (diffcode.families.shipped): pinned by SHA-256, listed by hash, named in headers."""

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from diffcode import api, codec
from diffcode.errors import DecoderMismatchError, DiffcodeError
from diffcode.families.per_pixel import checkpoint as per_pixel_checkpoint
from diffcode.families.shipped import ShippedModels, header_hash
from diffcode.families.weights import model as weights_model
from diffcode.families.weights import spec as weights_spec

GOLDEN = json.loads((Path(__file__).resolve().parent / "golden" / "manifest.json").read_text())["files"]
PACKAGE_FILES = ("data/weights_mlp.npz", "data/per_pixel_default.npz")


def _by_file_hash() -> ShippedModels:
    """Two package files as two shipped 'models' whose hash is their file's SHA-256."""
    from importlib import resources

    def parse(data, name):
        return SimpleNamespace(hash=hashlib.sha256(data).hexdigest(), name=name)

    files = {hashlib.sha256(resources.files("diffcode").joinpath(f).read_bytes()).hexdigest(): f
             for f in PACKAGE_FILES}
    return ShippedModels("test model", files, current=next(iter(files)), parse=parse)


@pytest.mark.parametrize("models, variant", [(per_pixel_checkpoint.SHIPPED, "per-pixel"),
                                             (weights_spec.SHIPPED, "weights")])
def test_the_shipped_models_are_pinned_and_name_the_golden_files(models, variant):
    model = models.load()
    assert model.hash == models.current and models.files[models.current].startswith("data/")
    assert {e["decoder"] for e in GOLDEN if e["variant"] == variant} == {header_hash(model).hex()}


def test_a_shipped_file_that_is_not_its_pin_is_a_damaged_package():
    models = _by_file_hash()
    wrong = ShippedModels("test model", {"0" * 64: PACKAGE_FILES[0]}, current="0" * 64, parse=models.parse)
    with pytest.raises(DecoderMismatchError, match="damaged"):
        wrong.load()
    with pytest.raises(ValueError):
        ShippedModels("test model", {"0" * 64: PACKAGE_FILES[0]}, current="1" * 64, parse=models.parse)


def test_find_and_named_look_models_up_by_their_header_hash():
    models = _by_file_hash()
    current, older = (models.shipped(sha256) for sha256 in models.files)
    assert models.find(header_hash(older)).hash == older.hash and models.find(b"\0" * 16) is None
    assert models.named(header_hash(current), current) is current
    assert models.named(header_hash(older), current).hash == older.hash  # the default stands in for the list
    foreign = SimpleNamespace(hash="f" * 64)
    assert models.named(header_hash(older), foreign) is None  # a model the caller chose is not replaced
    assert models.named(header_hash(foreign), foreign) is foreign


def test_an_unreadable_model_file_is_a_clear_error(tmp_path):
    (tmp_path / "m.npz").write_bytes(b"not a model")
    for path in (tmp_path / "m.npz", tmp_path / "missing.npz"):
        with pytest.raises(DiffcodeError, match=path.name):
            per_pixel_checkpoint.Checkpoint.load(path)


def test_a_file_of_an_earlier_shipped_mlp_decodes_with_the_default(monkeypatch):
    """A weights file names its MLP; with a second MLP on the shipped list (a stand-in for an
    earlier one), the default decode finds it, and a model chosen by the caller is not replaced."""
    image = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    earlier = weights_model.checkpoint_of(weights_model.MLP())
    data = api.compress(image, variant="weights", preset="tiny", steps=3, model=earlier)
    current = weights_spec.SHIPPED

    def parse(data, name):
        return earlier if name == "per_pixel_default.npz" else current.parse(data, name)

    shipped = ShippedModels("the weights MLP", {current.current: current.files[current.current],
                                                earlier.hash: "data/per_pixel_default.npz"},
                            current=current.current, parse=parse)
    with pytest.raises(DecoderMismatchError):
        codec.load(data)  # only the current MLP is shipped
    monkeypatch.setattr(weights_spec, "SHIPPED", shipped)
    assert np.array_equal(codec.load(data), image)
    other = weights_model.checkpoint_of(weights_model.MLP())
    with pytest.raises(DecoderMismatchError):
        codec.load(data, other)
