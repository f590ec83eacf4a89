"""The pyramid's float32 engine: exact by its bound, close to the float model, and a bit-exact round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffcode import parallel
from diffcode.errors import CorruptFileError

from diffcode.families.pyramid import coding, engine, exact, layout, online, prior
from diffcode.families.pyramid.model import PyramidNet
from diffcode.families.pyramid.train import samples


def _image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(np.cumsum(rng.integers(-3, 4, (h, w, 3)), 0), 1)
    return np.clip(128 + smooth, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module", params=[(1, 1), (2, 1), (1, 2)], ids=["order1", "order2", "mixture"])
def model(request):
    order, components = request.param
    net = PyramidNet(generator=torch.Generator().manual_seed(3), order=order, components=components)
    with torch.no_grad():  # a trained network's outputs are not near zero: make the heads matter
        for phase in net.phases:
            for layer in phase.heads2:
                layer.weight.mul_(20)
    arrays = net.arrays()
    units = engine.calibrate(arrays, samples([_image(48, 40, 1)], order), order)
    return prior.from_bytes(prior.to_bytes(arrays, {"order": order, "quant": engine.make_quant(arrays, units, order)}))


def test_the_bound_is_checked_exactly():
    layer = engine.Dense(np.full((4, 2), 1000.0, np.float32), np.zeros(2, np.float32), np.ones(2))
    engine.check(layer, np.full(4, 2000.0))  # 4 * 1000 * 2000 = 8e6 < 2^24
    layer.weight[0, 1] = 6000.0  # 1.8e7 > 2^24: a partial sum could leave float32's exact integers
    with pytest.raises(ValueError):
        engine.check(layer, np.full(4, 2000.0))


def test_every_layer_keeps_its_bound(model):
    net = exact.exact_net(model, model.arrays)
    assert isinstance(net, engine.Engine)
    for layers in net.phases:
        for layer in [layers[0], layers[1], *layers[2], *layers[4]]:  # trunk, heads' first layers, heads
            assert np.array_equal(layer.weight, np.rint(layer.weight)) and np.array_equal(layer.bias, np.rint(layer.bias))
    assert net.phases[0][1].weight.dtype == np.float32


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    parallel.set_threads(request.param)
    yield request.param
    parallel.set_threads(None)


@pytest.mark.parametrize("which", ["shipped", "test model"])
def test_compiled_loops_give_the_numpy_formulas_integers(model, which, threads):
    """`hidden` and `channel` (compiled loops between the products, in blocks of ROWS, on one thread or two)
    against their numpy formulas over the inputs' whole range (activations clipped at both ends)."""
    source = prior.load() if which == "shipped" else model
    net = exact.exact_net(source, source.arrays)
    rng = np.random.default_rng(5)
    n = engine.Engine.ROWS + 77  # two blocks, the second partial
    for phase in range(len(net.phases)):
        n_inputs = net.phases[phase][0].weight.shape[0]
        inputs = rng.integers(-engine.RAW_MAX, engine.RAW_MAX + 1, (n, n_inputs)).astype(np.int16)
        inputs[: n // 2] //= 16  # small residuals, as most real ones are
        inputs[:, -layout.MAX_LEVELS:] = rng.choice([0, 384], (n, layout.MAX_LEVELS))
        hidden = net.hidden(phase, inputs)
        assert np.array_equal(hidden, net.hidden_reference(phase, inputs))
        assert hidden.min() == 0 and hidden.max() == engine.ACT_MAX
        own = rng.integers(-engine.RAW_MAX, engine.RAW_MAX + 1, (n, 3)).astype(np.int32)
        base12 = rng.integers(0, engine.RAW_MAX + 1, (n, 3)).astype(np.int32)
        for c in range(3):
            got, want = net.channel(phase, c, hidden, own, base12), net.channel_reference(phase, c, hidden, own, base12)
            assert got.shape == want.shape == (len(source.arrays["phases.0.heads2.0.bias"]), n)
            assert np.array_equal(got, want)


def test_a_mixture_prior_gives_mixed_weights(model):
    """The test mixture's heads give both components real weight somewhere (so the tests exercise the mix)."""
    if model.arrays["phases.0.heads2.0.bias"].shape != (5,):
        pytest.skip("a single logistic: no weights")
    net = exact.exact_net(model, model.arrays)
    params = np.concatenate([p for p in _channel_params(net, _image(40, 36, 7))], 1)
    w = params[4]
    assert np.mean((w > 0) & (w < 256)) > 0.3 and np.any(params[0] != params[2])


def _channel_params(net, image):
    from diffcode.families.pyramid.network import input_integers, own_integers

    level = layout.pyramid(image)[0]
    for phase in range(len(net.order)):
        for rows, cols, ctx in layout.group_contexts(level, phase, net.order):
            hidden = net.hidden(phase, input_integers(ctx, 0))
            own = own_integers(level[rows, cols], ctx.base12)
            for c in range(3):
                yield net.channel(phase, c, hidden, own, ctx.base12)


def test_round_trip_is_bit_exact(model):
    image = _image(37, 29, 2)
    net = exact.exact_net(model, model.arrays)
    stream, bits = coding.encode(image, net)
    decoded, decoded_bits = coding.decode(37, 29, stream, exact.exact_net(model, model.arrays))
    assert np.array_equal(decoded, image) and decoded_bits == pytest.approx(bits)


def test_deltas_that_break_the_bound_are_refused(model):
    arrays = dict(model.arrays)
    name = "phases.0.trunk2.weight"
    arrays[name] = arrays[name] * 4  # every column now reaches past its exponent's budget
    with pytest.raises(ValueError):
        exact.exact_net(model, arrays)



def test_online_adaptation_round_trips_and_learns(model):
    """With online adaptation the stream decodes to the same pixels, and on an image whose every subpixel sits
    3 grey levels above a smooth prediction, the corrections save bits."""
    image = np.clip(_image(40, 33, 4).astype(int) + 3, 0, 255).astype(np.uint8)
    net = exact.exact_net(model, model.arrays)
    plain, plain_bits = coding.encode(image, net)
    stream, bits = coding.encode(image, net, online=online.SETTINGS[1])
    decoded, decoded_bits = coding.decode(40, 33, stream, exact.exact_net(model, model.arrays), online=online.SETTINGS[1])
    assert np.array_equal(decoded, image) and decoded_bits == pytest.approx(bits)
    assert bits < plain_bits
    with pytest.raises(CorruptFileError):  # the plain decoder cannot read it (or reads other pixels: not here)
        out, _ = coding.decode(40, 33, stream, net)
        assert not np.array_equal(out, image)
        raise CorruptFileError("decoded other pixels")


def test_online_code_lengths_are_integers_close_to_minus_log2():
    assert online.COST_TABLE.dtype == np.int64 and online.COST_TABLE[0] == 0 and online.COST_TABLE[-1] == 256
    assert np.all(np.diff(online.COST_TABLE) >= 0)
    freqs = [1, 2, 2047, 2048, 4095, 4096, 4097, 123457, (1 << 24) - 255, 1 << 24]
    costs = np.array([online.code_length(np.int64(f), online.COST_TABLE) for f in freqs])
    exact = 256 * (24 - np.log2(np.array(freqs, np.float64)))
    assert np.all(np.abs(costs - exact) <= 1)  # 1/256 bit


def test_chunked_coding_round_trips(model):
    """An order whose groups are coded in chunks (here of 7 targets, to have many) decodes to the same pixels; with
    online adaptation the chunks change the coding order, so the stream differs from whole groups'."""
    from dataclasses import replace

    image = _image(23, 19, 5)
    whole = exact.exact_net(model, model.arrays)
    chunked = exact.exact_net(model, model.arrays)
    chunked.order = replace(chunked.order, chunk=7)
    settings = online.SETTINGS[1]
    stream, bits = coding.encode(image, chunked, settings)
    decoded, _ = coding.decode(23, 19, stream, chunked, settings)
    assert np.array_equal(decoded, image)
    assert stream != coding.encode(image, whole, settings)[0]
    assert layout.ORDERS[3].chunk and layout.ORDERS[3].phases == layout.ORDERS[1].phases


def test_chunks_are_the_targets_in_coding_order():
    """`layout.chunks` computes each chunk's positions on its own; together they are `targets`, in order."""
    from dataclasses import replace

    for order in layout.ORDERS.values():
        for height, width in ((1, 1), (1, 6), (5, 1), (12, 10), (23, 19)):
            for phase in range(len(order)):
                for chunk in (0, 7):
                    o = replace(order, chunk=chunk)
                    pieces = list(layout.chunks(height, width, phase, o))
                    assert chunk == 0 or all(len(rows) <= chunk for rows, _, _ in pieces)
                    for i in range(2):
                        assert np.array_equal(np.concatenate([p[i] for p in pieces]),
                                              np.concatenate([t[i] for t in layout.targets(height, width, phase, o)]))


def test_a_stream_in_segments_round_trips_and_checks_every_segment_end(model):
    """An order with `segment` codes the error table in rANS segments (here of about 300 subpixels, to have many):
    the same pixels and ideal bits as one stream, at most 8 bytes of flush per extra segment, and a decoder that finds a
    segment ending in the wrong state refuses the file."""
    from dataclasses import replace

    from diffcode.errors import CorruptFileError

    image = _image(23, 19, 5)
    settings = online.SETTINGS[1]
    whole = exact.exact_net(model, model.arrays)
    whole.order = replace(whole.order, chunk=7, segment=0)
    segmented = exact.exact_net(model, model.arrays)
    segmented.order = replace(segmented.order, chunk=7, segment=300)
    one, one_bits = coding.encode(image, whole, settings)
    stream, bits = coding.encode(image, segmented, settings)
    segments = -(-3 * 23 * 19 // 300)  # at most: a segment ends before a chunk once it holds 300 subpixels
    assert bits == pytest.approx(one_bits, rel=1e-12) and len(one) < len(stream) <= len(one) + 8 * segments
    decoded, decoded_bits = coding.decode(23, 19, stream, segmented, settings)
    assert np.array_equal(decoded, image) and decoded_bits == pytest.approx(bits, rel=1e-12)
    with pytest.raises(CorruptFileError):
        coding.decode(23, 19, stream, whole, settings)  # read as one stream, the first segment's end is no end
    with pytest.raises(CorruptFileError):
        coding.decode(23, 19, one, segmented, settings)
    assert layout.ORDERS[4].segment and layout.ORDERS[4].phases == layout.ORDERS[3].phases


def test_deltas_that_do_not_pay_under_online_adaptation_are_dropped(model):
    """With online adaptation the encoder codes the image with and without the fit's deltas and keeps the smaller."""
    from diffcode.families.pyramid import deltas, spec

    adapted = prior.amended(model, online=1)
    image = _image(30, 26, 6)
    sizes = [p.size for p in deltas.parts(adapted.arrays, "biases")]
    harmful = np.random.default_rng(0).integers(-30, 30, sum(sizes)).astype(np.int16)  # random bias deltas
    kept = exact.encode(image, harmful, spec.PRESETS["fast"], "biases", adapted)
    forced = exact.encode_once(image, harmful, spec.PRESETS["fast"], "biases", adapted)
    assert forced.extras["n_weights"] > 0  # within the engine's bound, so coded with them when forced
    assert kept.extras["n_weights"] == 0 and _payload_bytes(kept) < _payload_bytes(forced)


def _payload_bytes(encoded) -> int:
    return sum(len(section.payload) for section in encoded.sections)


def test_a_mixture_prior_needs_the_engine_and_two_components_at_most():
    """Five outputs per channel are coded by the float32 engine only (a prior without a quantization record runs
    the first prior's float64 pass, which has no mixture); other output counts are refused before any decoding."""
    from diffcode.errors import DiffcodeError

    for components, quant in ((2, False), (3, True)):
        arrays = PyramidNet(width=8, head=4, generator=torch.Generator().manual_seed(1), components=components).arrays()
        meta = {"order": 1}
        if quant:
            units = engine.calibrate(arrays, samples([_image(24, 20, 1)]), 1)
            meta["quant"] = engine.make_quant(arrays, units, 1)
        with pytest.raises(DiffcodeError, match="numbers per channel"):
            prior.parse(prior.to_bytes(arrays, meta))


def test_a_prior_with_online_choices_codes_each_file_with_its_smallest_stream(model):
    """A prior whose meta lists "online_choices" lets the encoder code the image under each (one walk of the
    network) and keep the smallest, whatever the choices' order; the side information names it, the decoder reads
    it back, and a code the prior does not offer, or no code at all, is a corrupt file."""
    from diffcode.families.pyramid import spec
    from diffcode.storage import container

    image = _image(31, 27, 8)
    image[:, :9] = 255  # a saturated band: the censored bias (3) differs from the plain one (1)
    net = exact.exact_net(model, model.arrays)
    sizes = {code: len(coding.encode(image, net, exact.settings(code))[0]) for code in (1, 0, 2, 3)}
    first, second = sorted(sizes.values())[:2]
    assert first < second  # a unique smallest, which each order below lists at another place
    for order in ([1, 0, 2, 3], [3, 2, 0, 1], [0, 3, 1, 2]):
        chooser = prior.amended(model, online=order[0], online_choices=order)
        encoded = exact.encode(image, np.zeros(0, np.int16), spec.PRESETS["instant"], None, chooser)
        side, table = encoded.sections[0].payload, encoded.sections[-1].payload
        assert len(side) == 3 and side[2] == min(sizes, key=sizes.get) and len(table) == min(sizes.values())
        header = container.Header("pyramid", height=31, width=27, pixel_hash=bytes(16), **encoded.fields)
        sections = [(s.kind, s.payload) for s in encoded.sections]
        assert np.array_equal(exact.decode(header, sections, chooser).image, image)
    for bad in (side[:2] + bytes([7]), side[:2]):  # a code the prior does not offer; no code at all
        with pytest.raises(CorruptFileError, match="online adaptation"):
            exact.decode(header, [(sections[0][0], bad)] + sections[1:], chooser)


def test_a_prior_with_odd_online_choices_is_refused(model):
    from diffcode.errors import DiffcodeError

    for meta in ({"online_choices": []}, {"online_choices": 3}, {"online_choices": [3.0, 2]},
                 {"online_choices": [True]}, {"online_choices": [3, 3]}, {"online_choices": [9]},
                 {"online": 2.0}, {"online_choices": None}):
        with pytest.raises(DiffcodeError, match="online adaptation"):
            prior.parse(prior.to_bytes(model.arrays, {**model.meta, **meta}))
    prior.parse(prior.to_bytes(model.arrays, {**model.meta, "online": 3, "online_choices": [3, 2, 0]}))


def test_scale_only_and_censored_online_adaptation_round_trip(model):
    """The settings without bias, and with censored values (0 and 255) left out of the bias, decode to the same
    pixels; on an image that sits at 255 the censored bias differs from the plain one."""
    image = _image(40, 33, 9)
    image[:, :16] = 255
    net = exact.exact_net(model, model.arrays)
    streams = {}
    for name, settings in (("base", online.SETTINGS[1]), ("scale", online.Settings(bias=False)),
                           ("censor", online.Settings(censor=True))):
        streams[name], _ = coding.encode(image, net, settings)
        decoded, _ = coding.decode(40, 33, streams[name], net, settings)
        assert np.array_equal(decoded, image), name
    assert streams["censor"] != streams["base"] and streams["scale"] != streams["base"]
