"""Images too large for this machine's memory are refused up front, with a one-line error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffcode import codec, families, limits
from diffcode.errors import CorruptFileError, ImageError
from diffcode.storage import container

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def shipped():
    from diffcode.families.per_pixel.checkpoint import Checkpoint

    return Checkpoint.load()  # the golden files were made with the shipped decoder


def _with_header(data: bytes, **changes) -> bytes:
    header, sections = container.unpack(data)
    fields = dict(header.__dict__)
    fields.update(changes)
    return container.pack(container.Header(**fields), sections)


@pytest.mark.parametrize("variant", families.names())
def test_model_grows_with_pixels_and_bounds_largest(variant):
    memory = families.get(variant).memory
    small = limits.needed_mib("fit", 256, 256, memory)
    large = limits.needed_mib("fit", 2048, 2048, memory)
    assert 0 < small < large
    n = limits.largest_pixels("decode", 24 * 1024, memory)
    assert limits.needed_mib("decode", 1, n, memory) <= 24 * 1024 < limits.needed_mib("decode", 1, n + 10_000, memory)


def test_env_sets_the_limit(monkeypatch):
    monkeypatch.setenv(limits.ENV, "2.5")
    assert limits.available_mib() == 2.5 * 1024
    monkeypatch.setenv(limits.ENV, "lots")
    with pytest.raises(ImageError, match="not a number"):
        limits.available_mib()


@pytest.mark.parametrize("variant", families.names())
def test_fit_refused_before_any_work(monkeypatch, variant):
    from diffcode import api

    monkeypatch.setenv(limits.ENV, "0.01")
    image = np.zeros((8, 8, 3), np.uint8)
    family = families.get(variant)
    steps = 3 if family.fit_steps(family.presets[0], None) else None  # a family that fits nothing takes no steps
    with pytest.raises(ImageError, match=r"too large to fit here: it needs about .* GiB"):
        api.fit(image, variant=variant, steps=steps)


def test_decode_refused_before_allocation(monkeypatch, shipped):
    data = (GOLDEN / "per-pixel-dither-v2-6x5.dfc").read_bytes()
    monkeypatch.setenv(limits.ENV, "0.01")
    with pytest.raises(ImageError, match="too large to decode"):
        codec.load(data, shipped)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_crafted_huge_header_is_refused_by_size(shipped, device):
    """A tiny file that declares 65535x65535 pixels: refused from its header and section sizes (the
    family's check_sizes, before the memory check), no allocation, also when a GPU is named (the
    exact pass runs on the CPU whatever the device)."""
    data = _with_header((GOLDEN / "per-pixel-dither-v2-6x5.dfc").read_bytes(), height=65535, width=65535)
    with pytest.raises(CorruptFileError, match="a 65535x65535 image needs at least 2048"):
        codec.load(data, shipped, device=device)


@pytest.fixture
def no_cap_setting(monkeypatch):
    """No cap set by set_max_memory_gib or $DIFFCODE_MAX_MEMORY, before and after the test."""
    limits.set_max_memory_gib(None)
    monkeypatch.delenv(limits.CAP_ENV, raising=False)
    yield
    limits.set_max_memory_gib(None)


def test_default_cap_refuses_what_the_machine_could_hold(monkeypatch, no_cap_setting):
    """With 1000 GiB available, the 16 GiB default cap still refuses, and says how to raise it."""
    monkeypatch.setenv(limits.ENV, "1000")
    memory = families.get("weights").memory
    assert limits.memory_cap_gib() == limits.DEFAULT_CAP_GIB == 16
    limits.check("decode", 3000, 3000, memory)  # 11.9 GiB
    with pytest.raises(ImageError, match=r"^a 4000x4000 image is too large to decode here: it needs about 20.8 GiB, "
                       r"above the memory cap of 16 GiB .*raise the cap with --max-memory GIB \(or "
                       r"DIFFCODE_MAX_MEMORY\)") as error:
        limits.check("decode", 4000, 4000, memory)
    assert "\n" not in str(error.value)
    limits.check("decode", 4000, 4000, memory, max_memory_gib=24)  # the argument raises it for one call


def test_cap_from_the_environment_the_setting_and_the_argument(monkeypatch, no_cap_setting):
    monkeypatch.setenv(limits.ENV, "1000")
    memory = families.get("pyramid").memory
    monkeypatch.setenv(limits.CAP_ENV, "0.5")
    assert limits.memory_cap_gib() == 0.5
    with pytest.raises(ImageError, match="above the memory cap of 0.5 GiB"):
        limits.check("decode", 2000, 2000, memory)
    limits.set_max_memory_gib(2)  # what the CLI's --max-memory calls; exported for spawned workers
    assert limits.memory_cap_gib() == 2 and limits.os.environ[limits.CAP_ENV] == "2.0"
    limits.check("decode", 2000, 2000, memory)
    with pytest.raises(ImageError, match="above the memory cap of 0.25 GiB"):
        limits.check("decode", 2000, 2000, memory, max_memory_gib=0.25)
    limits.set_max_memory_gib(None)  # back to the environment as it was
    assert limits.memory_cap_gib() == 0.5 and limits.os.environ[limits.CAP_ENV] == "0.5"
    limits.set_max_memory_gib(float("inf"))  # no cap: only what is available limits
    limits.check("decode", 30000, 30000, memory)


def test_available_memory_below_the_cap_is_the_limit(monkeypatch, no_cap_setting):
    monkeypatch.setenv(limits.ENV, "1")
    assert limits.limit_mib() == (1024.0, False)
    with pytest.raises(ImageError, match=r"1.0 GiB are available .*set DIFFCODE_MEMORY_GIB"):
        limits.check("decode", 8000, 8000, families.get("pyramid").memory)


@pytest.mark.parametrize("value", [0, -1, float("nan"), "lots"])
def test_bad_caps_are_refused(monkeypatch, no_cap_setting, value):
    from diffcode.errors import UsageError

    with pytest.raises(UsageError, match="--max-memory"):
        limits.set_max_memory_gib(value)
    monkeypatch.setenv(limits.CAP_ENV, str(value))
    with pytest.raises(ImageError, match=limits.CAP_ENV):
        limits.memory_cap_gib()


def test_dither_file_with_a_budget_is_corrupt(shipped):
    data = _with_header((GOLDEN / "per-pixel-dither-v2-6x5.dfc").read_bytes(), segment_budget_cnats=800)
    with pytest.raises(CorruptFileError, match="no segment budget"):
        codec.load(data, shipped)


def test_cli_one_line_error(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import cli

    monkeypatch.setenv(limits.ENV, "0.01")
    out = tmp_path / "x.png"
    out.write_bytes((GOLDEN / "per-pixel-dither-v2-6x5.dfc").read_bytes())
    result = CliRunner().invoke(cli.app, ["decode", str(out), "-o", str(tmp_path / "y.png")])
    assert result.exit_code != 0
    assert "too large to decode" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "y.png").exists()


@pytest.mark.parametrize("variant", families.names())
def test_model_lies_above_every_measured_peak(variant):
    """The refusal model is an upper bound of the committed measurements (experiments/memory.py)."""
    import csv

    family = families.get(variant)
    if not family.memory_table:
        pytest.skip(f"the {variant} family's memory is not measured yet (experiments/memory.py)")
    path = Path(__file__).resolve().parent.parent / "experiments" / "results" / family.memory_table
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(line for line in f if not line.startswith("#")) if r["size"][0].isdigit()]
    assert {r["size"] for r in rows} >= {"256x256", "768x512", "2048x2048"}
    for r in rows:
        h, w = (int(v) for v in r["size"].split("x"))
        predicted = limits.needed_mib(r["phase"], h, w, family.memory)
        assert predicted >= float(r["peak_rss_mib"]), (r["size"], r["phase"])
        assert predicted <= 1.3 * float(r["peak_rss_mib"]) + 300, (r["size"], r["phase"])  # and not far above
