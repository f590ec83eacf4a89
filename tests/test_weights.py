"""The weights variant (report 4.2) with the tiny preset: exact round trips, damage, determinism, side info."""

import numpy as np
import pytest
import torch

from diffcode import codec
from diffcode.errors import ChecksumError, CorruptFileError, DecoderMismatchError, DiffcodeError
from diffcode.families.weights import exact as weights_exact
from diffcode.families.weights.fit import fit_image
from diffcode.families.weights import side_info
from diffcode.storage import container
from diffcode.families.weights import spec as wv
from diffcode.families.weights import model as wm  # noqa: E402
from diffcode.damage import refresh_crcs
from tests.conftest import spoiled_replay

TINY = wv.PRESETS["tiny"]


@pytest.fixture(scope="module")
def mlp() -> wv.MLPCheckpoint:
    return wv.MLPCheckpoint.load()


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def stored(mlp) -> tuple[np.ndarray, bytes]:
    image = _image(8, 8)
    fit = fit_image(image, mlp, TINY, seed=3)
    data, _ = codec.store(fit, mlp)
    return image, data


def test_shipped_mlp_hash_is_pinned(mlp):
    assert mlp.hash == wv.MLP_SHA256


@pytest.mark.parametrize("hw", [(8, 8), (13, 7), (1, 1), (2, 5)])
def test_round_trip_is_bit_exact(hw, mlp):
    image = _image(*hw, seed=hw[0] * 31 + hw[1])
    fit = fit_image(image, mlp, TINY, seed=1)
    data, report = codec.store(fit, mlp)
    assert np.array_equal(codec.load(data), image)
    assert codec.info(data)["variant"] == "weights"
    d = report.as_dict()
    assert d["file_bytes"] == len(data)
    assert d["header_bytes"] + d["side_info_bytes"] + d["weight_encodings_bytes"] + d["error_table_bytes"] == len(data)
    # dithered storage pays sum log2 n up to the padding of the mixed-radix stream
    assert d["weight_encodings_bytes"] <= d["weight_encodings_theoretical_bytes"] * 1.01 + 2
    assert d["side_info_theoretical_bytes"] > 0
    assert codec.analyze(data).as_dict()["theoretical_bytes"] == pytest.approx(d["theoretical_bytes"])


def test_stored_widths_match_fit_levels(mlp):
    image = _image(6, 9, seed=5)
    fit = fit_image(image, mlp, TINY, seed=0)
    data, _ = codec.store(fit, mlp)
    assert np.array_equal(codec.decode_details(data, mlp).details, fit.arrays["level_index"])


def test_positions_lie_in_their_intervals():
    rng = np.random.default_rng(0)
    n = wv.LEVELS[rng.integers(0, wv.N_LEVELS, 500)]
    centers = (0.5 / n) + rng.random(500) * (1 - 1.0 / n)
    data, values = weights_exact.encode_positions(centers, n, seed=7)
    assert np.array_equal(weights_exact.decode_positions(data, n, seed=7), values)
    distance = np.abs(values / 2.0**32 - centers)
    assert np.all(distance <= 0.5 / n + 2.0**-32)


def test_fixed_pass_does_not_depend_on_thread_count(mlp):
    positions = np.random.default_rng(1).integers(0, 2**32, wv.layout(TINY)[-1].size * 0 + sum(
        s.size for s in wv.layout(TINY)), dtype=np.uint64).astype(np.uint32)
    from diffcode import parallel

    try:
        parallel.set_threads(1)
        one = wv.fixed_pass(mlp, TINY, positions, 17, 11)
        parallel.set_threads(2)
        two = wv.fixed_pass(mlp, TINY, positions, 17, 11)
    finally:
        parallel.set_threads(None)
    assert np.array_equal(one, two)


def test_float_and_fixed_mlp_agree(mlp):
    v = np.random.default_rng(2).integers(0, 2**32, 1000, dtype=np.uint64).astype(np.uint32)
    fixed = wv.fixed_mlp(mlp, v) / 2.0**12
    with torch.no_grad():
        flt = wm.mlp_of(mlp)(torch.from_numpy(v.astype(np.float64) / 2.0**32).float()).numpy()
    assert np.max(np.abs(fixed - flt)) < 0.01


@pytest.mark.parametrize("symbols", [[], [3], [0, 0, 0], list(range(24)) * 3, [23] * 50 + [5] * 7])
def test_side_info_round_trip(symbols):
    s = np.array(symbols, dtype=np.int64)
    data = side_info.encode(s, 24)
    assert np.array_equal(side_info.decode(data, len(s), 24), s)
    assert len(data) * 8 >= side_info.theoretical_bits(s, 24) - 8


def test_side_info_rejects_bad_counts():
    data = bytearray(side_info.encode(np.array([1, 2, 3]), 24))
    with pytest.raises(CorruptFileError):
        side_info.decode(bytes(data[:2]), 3, 24)
    data[0] ^= 0xFF
    with pytest.raises(DiffcodeError):
        side_info.decode(bytes(data), 3, 24)


def test_truncated_files_are_refused(stored):
    _, data = stored
    for cut in (0, 3, 10, 60, len(data) // 2, len(data) - 1):
        with pytest.raises(CorruptFileError):
            codec.load(data[:cut])


def test_corrupt_payloads_are_refused(stored):
    """Flips in each section, with the CRCs recomputed so that the decoder itself must notice."""
    image, data = stored
    _, table, offset = container.unpack_header(data)
    refused = 0
    for i, (_, length, _) in enumerate(table):
        for byte in sorted({0, length // 2, length - 1}):
            for bit in (0, 5):
                damaged = bytearray(data)
                damaged[offset + byte] ^= 1 << bit
                try:
                    out = codec.load(refresh_crcs(bytes(damaged)))
                except DiffcodeError:
                    refused += 1
                    continue
                assert np.array_equal(out, image)  # a flip the format cannot see must not change pixels
        offset += length
    assert refused > 0
    flipped = bytearray(data)
    flipped[-1] ^= 1
    with pytest.raises(CorruptFileError, match="checksum"):
        codec.load(bytes(flipped))


def test_other_mlp_is_refused(stored):
    _, data = stored
    other = wm.checkpoint_of(wm.MLP())
    with pytest.raises(DecoderMismatchError):
        codec.load(data, other)


def test_presets_and_schedule():
    assert wv.PRESETS["report"].superres == (40, 200, 100, 40) and wv.PRESETS["report"].head == (40, 100, 6)
    assert (wv.PRESETS["report"].center_steps, wv.PRESETS["report"].width_steps) == (3500, 2000)
    assert len(wv.size_schedule(768, 512)) == 10 and wv.size_schedule(1, 1) == []
    p = wv.with_steps(wv.PRESETS["default"], 100)
    assert p.steps == 100


def test_cli_fit_store_decode(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    import cli
    from diffcode.image import read_image, write_png

    write_png(tmp_path / "img.png", _image(9, 6, seed=9))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args in (["fit", "img.png", "--variant", "weights", "--preset", "tiny"], ["store", "--json"],
                 ["decode", "img.weights.dfc", "-o", "out.png"]):
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 0, result.output
    assert np.array_equal(read_image(tmp_path / "out.png"), read_image(tmp_path / "img.png"))
    result = runner.invoke(cli.app, ["info", "img.weights.dfc", "--json"])
    info = json.loads(result.output.strip().splitlines()[-1])
    assert info["variant"] == "weights" and info["side_info_bytes"] > 0 and info["file_bytes"] == (tmp_path / "img.weights.dfc").stat().st_size
    (tmp_path / "bad.dfc").write_bytes((tmp_path / "img.weights.dfc").read_bytes()[:-3])
    result = runner.invoke(cli.app, ["decode", "bad.dfc", "-o", "bad.png"])
    assert result.exit_code == 1 and "error:" in result.output


def test_preset_codes_are_stable():
    """Files name their preset by code: a code, once used, keeps its CNN and scales for ever."""
    assert {c: p.name for c, p in wv.PRESET_BY_CODE.items()} == {1: "tiny", 2: "default-v1", 3: "report", 4: "default"}
    old = wv.PRESET_BY_CODE[2]
    assert (old.superres, old.head, old.residual_shift) == ((16, 32, 16), (16, 32, 6), 1)
    new = wv.PRESET_BY_CODE[4]
    assert (new.superres, new.head, new.residual_shift) == ((16, 32, 16), (16, 32, 6), 2)


def test_table_mlp_matches_the_mlp():
    """The fit's interpolated MLP is the MLP to far below a weight's fixed-point step (2^-12)."""
    import torch

    mlp = wm.mlp_of(wv.MLPCheckpoint.load())
    table = wm.TableMLP(mlp)
    u = torch.cat([torch.rand(20000, generator=torch.Generator().manual_seed(0)), torch.tensor([0.0, 1.0 - 2**-24])])
    with torch.no_grad():
        assert (mlp(u) - table(u)).abs().max().item() < 2**-16
    u.requires_grad_(True)
    table(u).sum().backward()
    assert torch.isfinite(u.grad).all() and u.grad.abs().max() > 0


@pytest.mark.parametrize("hw", [(37, 53), (64, 64), (2, 9), (1, 1)])
def test_windowed_pass_is_a_window_of_the_whole_pass(hw, mlp):
    """The fit's windowed pass runs every stage on the region the window depends on, plus a margin:
    its values are the whole pass's, at the corners, inside, and on thin images."""
    h, w = hw
    specs = wv.layout(TINY)
    positions = torch.rand(sum(s.size for s in specs), generator=torch.Generator().manual_seed(1))
    tensors = wm.float_values(wm.TableMLP(wm.mlp_of(mlp)), positions, specs)
    whole = wm.float_pass(tensors, TINY, h, w)
    windows = [(0, 0, min(h, 8), min(w, 8)), (h - min(h, 5), w - min(w, 7), min(h, 5), min(w, 7)),
               (h // 3, w // 4, max(1, h // 3), max(1, w // 2))]
    for top, left, rows, cols in windows:
        part = wm.float_pass(tensors, TINY, h, w, (top, left, rows, cols))
        torch.testing.assert_close(part, whole[..., top:top + rows, left:left + cols], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        wm.float_pass(tensors, TINY, h, w, (0, 0, h + 1, w))


def test_random_windows_cover_every_pixel_equally_and_draw_nothing_when_off():
    """Every pixel is inside a window with probability 1 / weight (so weight x a window's cost is
    unbiased), borders included; window=0 draws nothing, so the default fit's random stream (and its
    golden bytes) is unchanged."""
    from diffcode.families.weights.fit import random_window

    g = torch.Generator().manual_seed(0)
    assert random_window(30, 40, 0, g) is None and random_window(30, 40, 64, g) is None
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(0).get_state())
    h, w, side, n = 9, 13, 4, 20000
    hits = np.zeros((h, w))
    for _ in range(n):
        (top, left, rows, cols), weight = random_window(h, w, side, g)
        assert 0 <= top and 0 <= left and 1 <= rows <= side and 1 <= cols <= side and top + rows <= h and left + cols <= w
        hits[top:top + rows, left:left + cols] += 1
    assert weight == pytest.approx((h + side - 1) * (w + side - 1) / side**2)
    expected = n / weight
    assert np.abs(hits - expected).max() < 5 * np.sqrt(expected)  # corners as often as the centre


def test_windowed_fit_uses_windows_and_round_trips(mlp, monkeypatch):
    """Phases 1 and 2 run on windows, phase 3 on the whole image; the file decodes bit-exactly."""
    from dataclasses import replace

    windows = []
    whole_pass = wm.float_pass

    def recording(t, p, h, w, window=None):
        windows.append(window)
        return whole_pass(t, p, h, w, window)

    monkeypatch.setattr(wm, "float_pass", recording)
    image = _image(24, 20, seed=7)
    fit = fit_image(image, mlp, replace(TINY, window=8), seed=2)
    phases = [rec["phase"] for rec in fit.history]
    assert all((window is None) == (phase == 3) for window, phase in zip(windows, phases))
    assert len(windows) == TINY.steps and phases.count(3) == TINY.final_steps
    data, _ = codec.store(fit, mlp)
    assert np.array_equal(codec.load(data, mlp), image)


def test_store_checks_its_file_against_the_encoders_own_pass(mlp):
    """store's check reads the side info and positions back and decodes with the encoder's indexes:
    the same bytes as an unchecked store, and a loud failure when the positions read back wrong."""
    image = _image(9, 11, seed=4)
    fit = fit_image(image, mlp, TINY, seed=1)
    data, _ = codec.store(fit, mlp)
    assert data == codec.store(fit, mlp, verify=False)[0] and np.array_equal(codec.load(data, mlp), image)

    def wrong_positions(replay):
        replay.values = replay.values ^ np.uint32(1)

    def wrong_model(replay):  # the error table is really decoded, under the encoder's indexes
        replay.params = replay.params[::-1].copy()

    for spoil, error in ((wrong_positions, ChecksumError), (wrong_model, CorruptFileError)):
        with spoiled_replay(weights_exact, spoil), pytest.raises(error):
            codec.store(fit, mlp)


def test_inward_clamp_gradients_unfreeze_a_fit_whose_outputs_left_the_range(mlp):
    """The first default preset's activations blow up beyond 64x64 pixels: within a few steps every
    head output sits at the Cauchy clamps. With torch.clamp's zero gradient the fit then stays frozen
    (the kodim15 / kodim20 failure of the default preset); with inward clamp gradients it descends."""
    from dataclasses import replace

    from diffcode.families.weights.fit import fit_tensors

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:128, 0:128]
    image = np.clip(np.stack([x + y, 200 - x, 60 + y // 2], -1) + rng.integers(-8, 9, (128, 128, 3)), 0, 255)
    errors = {}
    for inward in (False, True):
        p = replace(wv.PRESETS["default-v1"], center_steps=16, width_steps=0, final_steps=0, inward_clamps=inward)
        _, _, history = fit_tensors(image.astype(np.uint8), wm.TableMLP(wm.mlp_of(mlp)), p, seed=0)
        errors[inward] = [rec["error_bpsp"] for rec in history]
    frozen = errors[False][-6:]  # frozen from step 6 of 16 on
    assert max(frozen) - min(frozen) < 1e-3  # no gradient left: the same bits step after step
    assert errors[True][-1] < frozen[-1] - 1.0



def test_inward_steps_limit_the_inward_gradients_to_the_first_steps(mlp, monkeypatch):
    """Preset.inward_steps: the error table gets inward clamp gradients on its first steps only."""
    from dataclasses import replace

    from diffcode.families.weights import fit as wf

    flags, error_table_nats = [], wm.error_table_nats
    monkeypatch.setattr(wm, "error_table_nats",
                        lambda target, out, inward=False: flags.append(inward) or error_table_nats(target, out, inward))
    for steps, expected in ((2, [True, True, False, False, False, False]), (0, [True] * 6)):
        flags.clear()
        p = replace(wv.PRESETS["tiny"], center_steps=3, width_steps=2, final_steps=1, inward_clamps=True,
                    inward_steps=steps)
        wf.fit_tensors(_image(16, 16), wm.TableMLP(wm.mlp_of(mlp)), p, seed=0)
        assert flags == expected
