"""The pyramid family's exact parts: order, contexts, the logistic coder, deltas, round trips."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from diffcode import kernels
from diffcode.errors import CorruptFileError
from diffcode.storage import container
from diffcode.families.pyramid import coding, deltas, engine, entropy, layout, spec
from diffcode.families.pyramid.model import PyramidNet, phase_nats
from diffcode.families.pyramid.network import ExactNet, input_integers, own_integers
from diffcode.families.pyramid.train import samples


@pytest.fixture(scope="module")
def arrays():
    return PyramidNet(generator=torch.Generator().manual_seed(3)).arrays()


def _image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.integers(-3, 4, (h, w, 3)), 0), 1)
    return np.clip(128 + smooth, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("order", list(layout.ORDERS.values()), ids=lambda o: f"order{o.code}")
def test_every_pixel_is_coded_exactly_once(order):
    for h, w in [(1, 1), (1, 9), (7, 1), (2, 2), (9, 13), (64, 1), (33, 17)]:
        count = np.zeros((h, w), int)
        sizes = layout.level_sizes(h, w)
        assert sizes[-1][0] * sizes[-1][1] <= layout.CORE_PIXELS
        count[::2 ** (len(sizes) - 1), ::2 ** (len(sizes) - 1)] += 1
        for level in range(len(sizes) - 1):
            step = 2 ** level
            for phase in range(len(order)):
                for rows, cols, _ in layout.targets(*sizes[level], phase, order):
                    count[rows * step, cols * step] += 1
        assert (count == 1).all(), (h, w)


@pytest.mark.parametrize("order", list(layout.ORDERS.values()), ids=lambda o: f"order{o.code}")
def test_contexts_read_only_known_pixels(order):
    """Changing pixels a phase may not see (not yet decoded: the coarser level's are known, then each
    phase's targets once the whole phase is done) leaves its contexts unchanged."""
    level = _image(11, 14).astype(np.int32)
    known = np.zeros(level.shape[:2], bool)
    known[::2, ::2] = True
    for phase in range(len(order)):
        noisy = level.copy()
        noisy[~known] = np.random.default_rng(phase).integers(0, 256, ((~known).sum(), 3))
        groups = zip(layout.group_contexts(level, phase, order), layout.group_contexts(noisy, phase, order))
        for (_, _, a), (_, _, b) in groups:
            assert np.array_equal(a.residuals, b.residuals) and np.array_equal(a.base12, b.base12)
        for rows, cols, _ in layout.targets(*level.shape[:2], phase, order):
            known[rows, cols] = True


@pytest.mark.slow  # the exact mpmath build of 220,000 entries (the quick loop checks the numpy build's pin)
def test_logistic_table_regenerated_with_mpmath_matches_pin():
    assert entropy.table.sha256_of(entropy.table.exact()) == entropy.PINNED_TABLE_SHA256


def test_logistic_table_is_pinned_and_cdf_valid():
    table = entropy.table()
    assert entropy.table.sha256_of(table) == entropy.PINNED_TABLE_SHA256 and not table.flags.writeable
    assert np.all(np.diff(table, axis=1) >= 0)
    rng = np.random.default_rng(0)
    n = 2000
    loc = rng.integers(spec.LOC_MIN, spec.LOC_MAX + 1, n)
    scale = rng.integers(0, entropy.FLAT + 1, n)
    freqs = np.stack([2.0 ** -entropy.bits(np.full(n, x, np.uint8), loc, scale) for x in range(256)])
    assert np.allclose(freqs.sum(0), 1.0) and freqs.min() > 0


def test_mixture_cdf_is_valid_and_reduces_to_a_logistic_at_the_ends():
    """Two logistics mixed by w / 256: a valid distribution for every w, the first logistic's own frequencies at
    w = 256 whatever the second, the second's at w = 0; a round trip of mixed parameters."""
    rng = np.random.default_rng(3)
    n = 3000
    locs = rng.integers(spec.LOC_MIN, spec.LOC_MAX + 1, (2, n))
    scales = rng.integers(0, spec.N_SCALES, (2, n))
    w = rng.integers(0, entropy.SINGLE + 1, n)
    mixed = (locs[0], scales[0], locs[1], scales[1], w)
    freqs = np.stack([2.0 ** -entropy.bits(np.full(n, x, np.uint8), *mixed) for x in range(256)])
    assert np.allclose(freqs.sum(0), 1.0) and freqs.min() > 0
    symbols = rng.integers(0, 256, n).astype(np.uint8)
    for weight, loc, scale in ((entropy.SINGLE, locs[0], scales[0]), (0, locs[1], scales[1])):
        ends = (locs[0], scales[0], locs[1], scales[1], np.full(n, weight))
        assert np.array_equal(entropy.bits(symbols, *ends), entropy.bits(symbols, loc, scale))
    data, bits = entropy.encode(symbols, *mixed)
    decoder = entropy.Decoder(data)
    assert np.array_equal(decoder.decode(*mixed), symbols)
    decoder.finish()
    assert 0 <= len(data) * 8 - bits <= 96
    for bad in ((locs[0], scales[0], locs[1], scales[1], w + 257),  # a weight beyond 256
                (locs[0], np.full(n, entropy.FLAT), locs[1], scales[1], np.full(n, 100))):  # a flat component
        with pytest.raises(ValueError):
            entropy.checked(*bad)


def test_weight_table_is_pinned_and_monotone():
    table = entropy.weight_table()
    assert entropy.weight_table.sha256_of(table) == entropy.WEIGHT_TABLE_SHA256 and not table.flags.writeable
    assert len(table) == 2 * entropy.WEIGHT_Q + 1 and np.all(np.diff(table) <= 0)
    assert (table[0], table[entropy.WEIGHT_Q], table[-1]) == (entropy.SINGLE, 128, 0)


def test_coder_round_trip_and_pinned_bytes():
    rng = np.random.default_rng(1)
    n = 5000
    symbols = rng.integers(0, 256, n).astype(np.uint8)
    loc = np.clip(symbols.astype(np.int64) * 12 + rng.integers(-60, 60, n), spec.LOC_MIN, spec.LOC_MAX)
    scale = rng.integers(0, entropy.FLAT + 1, n)
    data, bits = entropy.encode(symbols, loc, scale)
    assert 0 <= len(data) * 8 - bits <= 64 + 32  # the 64-bit flush and the last word
    decoder = entropy.Decoder(data)
    assert np.array_equal(np.concatenate([decoder.decode(loc[:1234], scale[:1234]),
                                          decoder.decode(loc[1234:], scale[1234:])]), symbols)
    decoder.finish()
    assert entropy.encode(np.array([0, 255, 7], np.uint8), np.array([0, 3060, 84]), np.array([5, 63, 64]))[0].hex() \
        == PINNED_SMALL_STREAM


PINNED_DELTAS_FILE = "ec22dd5070a65b4e"  # changes only with the format, the coder or the first shipped prior
FIRST_PRIOR = "ea6396d18181957995497ccdc0bf60c2e583382569322f1570e8b8161a3ce93a"
PRIOR_3 = "9e19951e4b9d01de0e70b5aa833e1590a505f14de539f7b3367672ecda76d334"
# sections of a 20x18 file with explicit deltas (test_model_2_weight_deltas_round_trip): change only with the format
PINNED_PRIOR_3_DELTAS = {"lowrank2": "a2a9484fef39455b", "gains": "11b28b559e42f655", "gains2": "e32767030b24a4a2"}
PINNED_SMALL_STREAM = "24010000d2a519f2"  # 3 symbols; changes only with the stream format or the table


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (6, 1), (2, 3), (9, 13), (31, 20)])
def test_round_trip(arrays, shape):
    image = _image(*shape, seed=shape[0])
    net = ExactNet(arrays)
    data, bits = coding.encode(image, net)
    decoded, decoded_bits = coding.decode(*shape, data, net)
    assert np.array_equal(decoded, image)
    assert decoded_bits == pytest.approx(bits, rel=1e-12)
    assert len(data) * 8 <= bits + 96


def test_damage_is_detected(arrays):
    image = _image(12, 10)
    net = ExactNet(arrays)
    data, _ = coding.encode(image, net)
    for cut in range(0, len(data), 4):
        with pytest.raises(CorruptFileError):
            coding.decode(12, 10, data[:cut], net)
    detected = 0
    for i in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        try:
            out, _ = coding.decode(12, 10, bytes(flipped), net)
        except CorruptFileError:
            detected += 1
            continue
        assert out.shape == image.shape and out.dtype == np.uint8  # an image, never another error
    # the stream has no checksum of its own (the header's pixel hash rejects the rest: test_conformance),
    # but the coder's own checks (final state, every word read) must catch some flips
    assert detected > 0


@pytest.mark.parametrize("arithmetic", ["float64", "float32 engine", "float32 engine, mixture"])
def test_float_and_exact_models_agree(arrays, arithmetic):
    """The exact pass's bits (the first prior's float64 pass, or the float32 engine of later priors, with one
    logistic or a mixture of two per subpixel) are within 1 % of the float model's on the same contexts."""
    image = _image(40, 36)
    if "mixture" in arithmetic:
        net = PyramidNet(generator=torch.Generator().manual_seed(4), components=2)
        with torch.no_grad():  # the mixture's heads from the test arrays, its new outputs made to matter
            for name, p in net.named_parameters():
                if "heads2" not in name:
                    p.copy_(torch.from_numpy(arrays[name]))
                else:
                    p.mul_(10)
        arrays = net.arrays()
    if arithmetic == "float64":
        net = ExactNet(arrays)
    else:
        units = engine.calibrate(arrays, samples([_image(48, 40, 1)]))
        net = engine.Engine(arrays, engine.make_quant(arrays, units, 1))
    float_net = PyramidNet.from_arrays(arrays)
    levels = layout.pyramid(image)
    exact_bits = float_bits = 0.0
    for phase in range(layout.N_PHASES):
        for rows, cols, ctx in layout.group_contexts(levels[0], phase):
            target = levels[0][rows, cols]
            inputs, own = input_integers(ctx, 0), own_integers(target, ctx.base12)
            hidden = net.hidden(phase, inputs)
            for c in range(3):
                exact_bits += entropy.bits(target[:, c], net.channel(phase, c, hidden, own, ctx.base12)).sum()
            t = [torch.from_numpy(a.astype(np.float32)) for a in (inputs, own, ctx.base12, target)]
            float_bits += phase_nats(float_net.phases[phase], *t).sum().item() / np.log(2)
    assert abs(exact_bits - float_bits) < 0.01 * float_bits


def test_deltas_round_trip(arrays):
    names = deltas.adapted_names(arrays, "heads")
    sizes = [arrays[n].size for n in names]
    rng = np.random.default_rng(2)
    k = np.where(rng.random(sum(sizes)) < 0.1, rng.integers(-20, 21, sum(sizes)), 0).astype(np.int16)
    scales, stream, bits = deltas.encode(k, sizes)
    back, back_bits = deltas.decode(stream, scales, sizes)
    assert np.array_equal(back, k) and back_bits == pytest.approx(bits, rel=1e-12)
    applied = deltas.apply(arrays, "heads", k)
    changed = [n for n in arrays if not np.array_equal(applied[n], arrays[n].astype(np.float64))]
    assert set(changed) <= set(names) and changed


def test_a_file_names_its_prior():
    """Decoding picks the shipped prior the header names; a prior this package does not ship is refused."""
    from diffcode import api, codec
    from diffcode.errors import DecoderMismatchError
    from diffcode.families.pyramid import prior

    image = _image(9, 11)
    shipped = prior.load()
    other = prior.from_bytes(prior.to_bytes(PyramidNet(generator=torch.Generator().manual_seed(5)).arrays(), {}))
    data = api.compress(image, variant="pyramid", model=shipped, preset="instant")
    assert np.array_equal(codec.load(data, other), image)  # the header names the shipped prior
    foreign = api.compress(image, variant="pyramid", model=other, preset="instant")
    assert np.array_equal(codec.load(foreign, other), image)
    with pytest.raises(DecoderMismatchError):
        codec.load(foreign, shipped)


@pytest.mark.parametrize("shape", [(2, 200), (1, 300), (300, 1), (16, 600)])
def test_thin_images_fit_and_round_trip(shape):
    """Levels one pixel high or wide, with more than the coarsest level's pixels, fit and decode."""
    from diffcode import api, codec

    image = _image(*shape)
    data = api.compress(image, variant="pyramid", preset="fast", steps=2)
    assert np.array_equal(codec.load(data), image)


def test_a_file_with_weight_deltas_decodes_to_pinned_bytes():
    """The weight-deltas path, pinned: an explicit k through the exact encoder, decoded back (the first shipped
    prior, which codes without online adaptation and so keeps any deltas it is given)."""
    from diffcode import codec
    from diffcode.families import Fit, get
    from diffcode.families.pyramid import prior

    model = prior.shipped(FIRST_PRIOR)
    image = _image(12, 14)
    names = deltas.adapted_names(model.arrays, "biases")
    k = np.zeros(sum(model.arrays[n].size for n in names), np.int16)
    k[::7] = np.arange(len(k[::7])) % 9 - 4
    fit = Fit("pyramid", image, {"deltas": k}, {"adapt": "biases"}, model.hash, "fast", 0)
    data, report = codec.store(fit, model)
    assert [s.kind for s in report.sections][:2] == [4, 6]  # side info, weight deltas
    assert np.array_equal(codec.load(data, model), image)
    assert hashlib.sha256(data).hexdigest()[:16] == PINNED_DELTAS_FILE


@pytest.mark.parametrize("adapt", ["lowrank2", "gains", "gains2"])
def test_model_2_weight_deltas_round_trip(adapt):
    """Model 2 (the float32 engine, chunked order, online adaptation) decodes a file with weight deltas, and
    with prior 3 its sections are pinned bytes (a change of how deltas are coded or applied would show)."""
    from diffcode.families.pyramid import exact, prior

    model = prior.shipped(PRIOR_3)
    assert "quant" in model.meta and model.meta["online"]
    image = _image(20, 18)
    sizes = [p.size for p in deltas.parts(model.arrays, adapt)]
    k = (np.arange(sum(sizes)) % 5 - 2).astype(np.int16)
    encoded = exact.encode_once(image, k, spec.PRESETS["default"], adapt, model)
    assert encoded.extras["n_weights"] == len(k)
    header = container.Header("pyramid", height=20, width=18, pixel_hash=bytes(16), **encoded.fields)
    decoded = exact.decode(header, [(s.kind, s.payload) for s in encoded.sections], model)
    assert np.array_equal(decoded.image, image)
    digest = hashlib.sha256(b"".join(s.payload for s in encoded.sections)).hexdigest()[:16]
    assert digest == PINNED_PRIOR_3_DELTAS[adapt]


def test_evaluate_cache_is_keyed_by_what_a_preset_stands_for(monkeypatch, tmp_path):
    """Changing a preset's definition must not reuse fits made with the old one."""
    from dataclasses import replace

    from diffcode import evaluate

    before = evaluate.cache_dir(tmp_path, "pyramid", "ab" * 32, None, 0, 0, "none", "fast")
    changed = dict(spec.PRESETS, fast=replace(spec.PRESETS["fast"], adapt="heads"))
    monkeypatch.setattr(spec, "PRESETS", changed)
    assert evaluate.cache_dir(tmp_path, "pyramid", "ab" * 32, None, 0, 0, "none", "fast") != before


@pytest.mark.parametrize("shape", [(61, 97), (129, 257)])
def test_odd_sizes_of_the_issue_round_trip(shape):
    """The odd sizes issue 12 names (97x61 and 257x129, width x height), through the codec."""
    from diffcode import api, codec

    image = _image(*shape, seed=7)
    data = api.compress(image, variant="pyramid", preset="instant")
    assert np.array_equal(codec.load(data), image)


def test_instant_compress_and_decode_never_import_torch(tmp_path):
    """The pyramid family codes with numpy and numba only: no torch import (seconds of start-up)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    code = ("import sys, numpy as np; from diffcode import api, codec; "
            "image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8); "
            "data = api.compress(image, variant='pyramid', preset='instant'); "
            "assert np.array_equal(codec.load(data), image); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_compress_chooses_and_fit_defaults_to_the_pyramid(tmp_path):
    """fit uses the pyramid family unless a variant is named; compress (CLI and API) keeps the smaller
    of the pyramid's and the classic family's files (issue 26's mode decision)."""
    import inspect

    from typer.testing import CliRunner

    from diffcode import api, cli, codec, image as image_io

    assert inspect.signature(api.compress).parameters["variant"].default == "auto"
    assert inspect.signature(api.fit).parameters["variant"].default == "pyramid"
    image = _image(10, 12)
    source = tmp_path / "img.png"
    image_io.write_png(source, image)
    result = CliRunner().invoke(cli.app, ["compress", str(source), "-o", str(tmp_path / "img.dfc"), "--preset", "instant"])
    assert result.exit_code == 0, result.output
    data = (tmp_path / "img.dfc").read_bytes()
    pyramid = api.compress(image, variant="pyramid", preset="instant")
    classic = api.compress(image, variant="classic")
    assert data == min(pyramid, classic, key=len) and np.array_equal(codec.load(data), image)


def test_store_checks_its_file_against_the_encoders_own_coding():
    """store's check reads the deltas and the error table back under the encoder's model and compares
    the image the encoder's walk rebuilt: the same bytes as an unchecked store, and loud failures
    when any of them differs."""
    from diffcode import codec
    from diffcode.errors import ChecksumError
    from diffcode.families import Fit
    from diffcode.families.pyramid import exact, prior
    from tests.conftest import spoiled_replay

    model = prior.shipped(FIRST_PRIOR)  # it keeps any deltas it is given (model 2 drops deltas that do not pay)
    image = _image(12, 14, seed=3)
    names = deltas.adapted_names(model.arrays, "biases")
    k = np.zeros(sum(model.arrays[n].size for n in names), np.int16)
    k[::5] = 2
    fit = Fit("pyramid", image, {"deltas": k}, {"adapt": "biases"}, model.hash, "fast", 0)
    data, _ = codec.store(fit, model)
    assert data == codec.store(fit, model, verify=False)[0] and np.array_equal(codec.load(data, model), image)
    assert np.array_equal(exact.encode(image, k, spec.PRESETS["fast"], "biases", model).replay.image, image)

    def wrong_deltas(replay):
        replay.deltas = replay.deltas + 1

    def wrong_symbols(replay):  # the file's error table is not the stream the encoder read back
        replay.table = replay.table[:-4] + bytes(4)

    def wrong_walk(replay):  # the walk rebuilt other pixels than the input's: the check compares them
        replay.image = replay.image ^ np.uint8(1)

    for spoil in (wrong_deltas, wrong_symbols, wrong_walk):
        with spoiled_replay(exact, spoil), pytest.raises(ChecksumError, match="read|decode"):
            codec.store(fit, model)


def test_gains_scale_each_row_exactly():
    """The `gains` adapt set: biases get deltas k * STEP, each weight row the factor 1 + k * GAIN_STEP (exact)."""
    arrays = {"l.bias": np.array([0.5, -1.0], np.float32), "l.weight": np.array([[1.0, -3.0, 0.1], [2.0, 0.25, 7.0]],
                                                                                np.float32)}
    assert [(p.name, p.shape) for p in deltas.parts(arrays, "gains")] == [("l.bias", (2,)), ("l.weight:g", (2,))]
    out = deltas.apply(arrays, "gains", np.array([3, -1, 64, -128 + 1], np.int16))
    assert np.array_equal(out["l.bias"], arrays["l.bias"].astype(np.float64) + np.array([3, -1]) * deltas.STEP)
    w = arrays["l.weight"].astype(np.float64)
    assert np.array_equal(out["l.weight"], np.stack([w[0] * 1.25, w[1] * (1 - 127 / 256)]))


def test_gains2_scale_rows_then_columns_exactly():
    """`gains2`: a gain per row, then one per column (1 + k/256 each): both products exact in float64."""
    arrays = {"l.bias": np.zeros(2, np.float32), "l.weight": np.array([[1.0, -3.0, 0.1], [2.0, 0.25, 7.0]], np.float32)}
    parts = [(p.name, p.shape) for p in deltas.parts(arrays, "gains2")]
    assert parts == [("l.bias", (2,)), ("l.weight:g", (2,)), ("l.weight:c", (3,))]
    out = deltas.apply(arrays, "gains2", np.array([0, 0, 64, -127, 3, 0, -128 + 1], np.int16))
    w = arrays["l.weight"].astype(np.float64) * np.array([[1.25], [1 - 127 / 256]])
    assert np.array_equal(out["l.weight"], w * np.array([1 + 3 / 256, 1, 1 - 127 / 256]))


def test_deltas_beyond_the_exactness_bound_are_shrunk_not_dropped():
    """Gains of 1 + 127/256 on every row and column reach 2.24x a weight, beyond the 2x the prior's exponents
    leave: the encoder shrinks them until the engine accepts the network, and the file decodes."""
    from diffcode.families.pyramid import exact, prior

    model = prior.shipped(PRIOR_3)
    k = np.full(sum(p.size for p in deltas.parts(model.arrays, "gains2")), 127, np.int16)
    with pytest.raises(ValueError):
        exact.exact_net(model, deltas.apply(model.arrays, "gains2", k))
    shrunk = exact.within_bound(model, "gains2", k)
    assert np.all((shrunk > 0) & (shrunk < 127))
    exact.exact_net(model, deltas.apply(model.arrays, "gains2", shrunk))  # accepted
    image = _image(20, 18)
    encoded = exact.encode_once(image, shrunk, spec.PRESETS["default"], "gains2", model)
    header = container.Header("pyramid", height=20, width=18, pixel_hash=bytes(16), **encoded.fields)
    assert encoded.extras["n_nonzero_weights"] == len(k)
    assert np.array_equal(exact.decode(header, [(s.kind, s.payload) for s in encoded.sections], model).image, image)


def test_the_symbol_search_reads_only_table_entries_it_may(monkeypatch):
    """`decode_symbol` run as Python over the kernels' table (numpy checks every index): a single logistic whose
    unused second scale is FLAT (`checked` accepts it) must not read that column; every slot of a few mixtures
    decodes to the symbol whose interval holds it."""
    import types

    cases = [(spec.LOC_MIN, 5, spec.LOC_MIN, entropy.FLAT, entropy.SINGLE), (spec.LOC_MAX, 0, spec.LOC_MIN, 63, 0),
             (1500, 20, 1600, 40, 77), (spec.LOC_MIN, 63, spec.LOC_MAX, 0, 200)]
    intervals = []  # each symbol's (start, frequency), from the compiled coder (which binds the kernels first)
    for params in cases:
        bits = entropy.bits(np.arange(256, dtype=np.uint8), *[np.full(256, v) for v in params])
        freqs = np.rint(2.0 ** (entropy.PRECISION - bits)).astype(np.int64)
        intervals.append((np.concatenate([[0], np.cumsum(freqs)[:-1]]), freqs))
    python = {f.__name__: f for f in kernels.python_functions() if f.__module__ == entropy.__name__}
    monkeypatch.setattr(entropy, "_mixed", python["_mixed"])
    monkeypatch.setattr(entropy, "rans", types.SimpleNamespace(pop=lambda state, start, freq, slot, words, pos: (state, pos)))
    table = entropy.coding_table()
    for params, (starts, freqs) in zip(cases, intervals):
        for x in (0, 1, 100, 254, 255):
            for slot in (starts[x], starts[x] + freqs[x] - 1):
                symbol, _, _ = python["decode_symbol"](None, 0, np.uint64(slot), *params, table)
                assert symbol == x, (params, x, slot)


def test_a_preset_that_tries_another_keeps_the_fit_of_the_smaller_file(monkeypatch):
    """`max` also makes `default`'s fit and keeps the deltas whose real file is smaller (`spec.Preset.tries`); its
    step count includes the tried fit's. The fits are stubbed: harmful random deltas from one, none from the other,
    under the first prior (no online adaptation, so the encoder keeps any deltas it is given)."""
    from dataclasses import replace

    from diffcode.families import get
    from diffcode.families.pyramid import fit as fitting, prior

    model, image = prior.shipped(FIRST_PRIOR), _image(24, 20)
    presets = dict(spec.PRESETS, max=replace(spec.PRESETS["max"], tries=("fast",)))
    monkeypatch.setattr(spec, "PRESETS", presets)
    family = get("pyramid")
    assert family.fit_steps("max", None) == 1000 + 300 and family.fit_steps("max", 2) == 302
    assert family.fit_steps("max", 0) == 0 and family.fit_steps("default", None) == 500
    for harmful in ("gains2", "gains"):  # the adapt set of the fit whose deltas are large random ones

        def fake(image, arrays, *, steps, adapt, progress, **_):
            n = sum(p.size for p in deltas.parts(arrays, adapt))
            size = 40 if adapt == harmful else 1  # both fits give deltas; the small ones make the smaller file
            k = np.random.default_rng(0).integers(-size, size + 1, n).astype(np.int16)
            return k, [{"step": steps}]

        monkeypatch.setattr(fitting, "fit_deltas", fake)
        fit = family.fit(image, model, preset="max", steps=2)
        kept = "gains" if harmful == "gains2" else "gains2"
        assert fit.meta["adapt"] == kept and fit.history == [{"step": 300 if kept == "gains" else 2}]
        n = sum(p.size for p in deltas.parts(model.arrays, kept))
        assert len(fit.arrays["deltas"]) == n and np.abs(fit.arrays["deltas"]).max() == 1


PRIOR_6 = "29638dfa453d5c3952003b290fcb2ad26390825162115dec5442e9c99906d044"
# each online setting's stream of a 40x48 image with 0s and 255s, and a file with gains2 deltas: change only with the
# format
PINNED_PRIOR_6 = {3: "22dc923011f1ddab", 2: "4adf4fd636fc4d0e", 0: "17c18cbecf56a395", "file": "a3770513244dbf4a"}


def _saturated(h, w):
    image = _image(h, w, seed=5)
    image[: h // 2, : w // 2] = 255  # a saturated corner, where the censored bias differs
    image[h // 2:, w // 2:, 2] = 0
    return image


def test_prior_6_online_settings_and_side_information_are_pinned():
    """Prior 6's files take paths its golden files (no deltas, no saturated values) do not: each online setting a
    file may name, on an image with 0s and 255s, and a file with deltas, whose side information holds the online
    code between the adapt code and the scales. Pinned, so a change to either shows even when encoder and decoder
    change alike."""
    from diffcode.families.pyramid import exact, prior

    model = prior.shipped(PRIOR_6)
    assert exact.choices(model) == (3, 2, 0)
    image = _saturated(40, 48)
    net = exact.exact_net(model, model.arrays)
    digests = {}
    assert len({coding.encode(image, net, exact.settings(code))[0] for code in (1, 3)}) == 2  # censoring matters
    for code in exact.choices(model):
        stream, _ = coding.encode(image, net, exact.settings(code))
        assert np.array_equal(coding.decode(40, 48, stream, net, exact.settings(code))[0], image)
        digests[code] = hashlib.sha256(stream).hexdigest()[:16]
    sizes = [p.size for p in deltas.parts(model.arrays, "gains2")]
    k = (np.arange(sum(sizes)) % 5 - 2).astype(np.int16)
    encoded = exact.encode_once(image, k, spec.PRESETS["default"], "gains2", model)
    side = encoded.sections[0].payload
    assert side[:2] == bytes([3, 8]) and side[2] in (3, 2, 0) and len(side) == 3 + len(sizes)
    header = container.Header("pyramid", height=40, width=48, pixel_hash=bytes(16), **encoded.fields)
    assert np.array_equal(exact.decode(header, [(s.kind, s.payload) for s in encoded.sections], model).image, image)
    digests["file"] = hashlib.sha256(b"".join(s.payload for s in encoded.sections)).hexdigest()[:16]
    assert digests == PINNED_PRIOR_6
