"""Properties and exact bits of the interleaved rANS coder."""

import hashlib

import numpy as np
import pytest

from diffcode.cauchy import CauchyModel, bits_quantized
from diffcode.errors import CorruptFileError
from diffcode.storage.rans import TOTAL, decode, encode, num_lanes


class UniformModel:
    """params int64 (N, 1) = n; uniform over 0..n-1 (floor-spaced cdf)."""

    def n_symbols(self, params):
        return params[:, 0]

    def cdf(self, params, symbols):
        return symbols * TOTAL // params[:, 0]

    def cdf_table(self, params):
        return None  # the numpy coder


class TableModel:
    """params int64 (N, 1) = row of a fixed set of random frequency tables (variable support)."""

    def __init__(self, seed=0, rows=8):
        rng = np.random.default_rng(seed)
        sizes = [1, 2, 3, 256, 300, 5000, 17, 64][:rows]
        self.sizes = np.array(sizes, np.int64)
        self.cdfs = np.zeros((rows, max(sizes) + 1), np.int64)
        for r, n in enumerate(sizes):
            weights = rng.pareto(1.0, n) + 1e-3
            freq = 1 + np.floor(weights / weights.sum() * (TOTAL - n)).astype(np.int64)
            freq[np.argmax(freq)] += TOTAL - freq.sum()
            self.cdfs[r, 1:] = TOTAL
            self.cdfs[r, 1 : n + 1] = np.cumsum(freq)

    def n_symbols(self, params):
        return self.sizes[params[:, 0]]

    def cdf(self, params, symbols):
        return self.cdfs[params[:, 0], symbols]

    def cdf_table(self, params):
        return None

    def sample(self, params, rng):
        u = rng.integers(0, TOTAL, len(params))
        return np.array([np.searchsorted(self.cdfs[r], v, side="right") - 1 for r, v in zip(params[:, 0], u)])


def cauchy_data(n, seed=0):
    """Cauchy params (n, 2) and symbols drawn from roughly matching distributions."""
    rng = np.random.default_rng(seed)
    params = np.stack([rng.integers(-4, 1025, n), rng.integers(0, 96, n)], axis=1)
    sigma = 2.0 ** (-4.5 + params[:, 1] / 8)
    x = np.round(params[:, 0] / 4 + sigma * rng.standard_cauchy(n))
    return params, np.clip(x, 0, 255).astype(np.int64)


@pytest.mark.parametrize("n", [0, 1, 4097, 300_000])
def test_round_trip_uniform(n):
    rng = np.random.default_rng(n)
    params = rng.integers(1, 300, (n, 1))
    symbols = rng.integers(0, params[:, 0])
    data = encode(symbols, params, UniformModel())
    assert np.array_equal(decode(data, params, UniformModel()), symbols)


@pytest.mark.parametrize("n", [1, 5, 4097, 20_000])
def test_round_trip_random_tables(n):
    model, rng = TableModel(seed=n), np.random.default_rng(n)
    params = rng.integers(0, 8, (n, 1))
    symbols = model.sample(params, rng)
    assert np.array_equal(decode(encode(symbols, params, model), params, model), symbols)


@pytest.mark.parametrize("n", [1, 4097, 100_000])
def test_round_trip_cauchy(n):
    params, symbols = cauchy_data(n)
    data = encode(symbols, params, CauchyModel())
    assert np.array_equal(decode(data, params, CauchyModel()), symbols)


def test_empty_stream():
    params = np.zeros((0, 2), np.int64)
    assert encode(np.zeros(0, np.int64), params, CauchyModel()) == b""
    assert decode(b"", params, CauchyModel()).shape == (0,)
    with pytest.raises(CorruptFileError):
        decode(b"\0" * 8, params, CauchyModel())


def test_lane_count():
    assert [num_lanes(n) for n in (0, 1, 4096, 4097, 10**9)] == [0, 1, 1, 2, 256]


def test_golden_bytes():
    params, symbols = cauchy_data(10, seed=1)
    data = encode(symbols, params, CauchyModel())
    assert data.hex() == GOLDEN_HEX
    big_params, big_symbols = cauchy_data(50_000, seed=2)
    big = encode(big_symbols, big_params, CauchyModel())
    assert hashlib.sha256(big).hexdigest() == GOLDEN_SHA256


GOLDEN_HEX = "41fc84b5700000006c0163ff"
GOLDEN_SHA256 = "6b4fa678ea2c84c13b498a014471fd9c5c9c4e3a43d517985f9eac7b9e59a55b"


def test_real_bits_close_to_ideal():
    params, symbols = cauchy_data(100_000, seed=3)
    ideal_bits = bits_quantized(symbols, params)
    real_bits = 8 * len(encode(symbols, params, CauchyModel()))
    lanes = num_lanes(len(symbols))
    assert ideal_bits - 64 * lanes <= real_bits <= ideal_bits * 1.002 + 64 * lanes


def test_single_symbol_support_costs_nothing():
    params = np.ones((5000, 1), np.int64)
    data = encode(np.zeros(5000, np.int64), params, UniformModel())
    assert len(data) == 8 * num_lanes(5000)
    assert np.array_equal(decode(data, params, UniformModel()), np.zeros(5000))


@pytest.mark.parametrize("position", [0, 3, 7, 8, 100, -1, -5])
def test_flipped_byte_is_detected(position):
    params, symbols = cauchy_data(1000, seed=4)
    data = bytearray(encode(symbols, params, CauchyModel()))
    data[position] ^= 0x10
    with pytest.raises(CorruptFileError, match="corrupt"):
        decode(bytes(data), params, CauchyModel())


@pytest.mark.parametrize("cut", [1, 4, 8, 200])
def test_truncated_or_extended_stream_is_detected(cut):
    params, symbols = cauchy_data(1000, seed=5)
    data = encode(symbols, params, CauchyModel())
    for bad in (data[:-cut], data + b"\0" * cut):
        with pytest.raises(CorruptFileError, match="corrupt"):
            decode(bad, params, CauchyModel())


def test_encoder_rejects_bad_input():
    params = np.full((3, 1), 4, np.int64)
    with pytest.raises(ValueError, match="outside its support"):
        encode(np.array([0, 4, 1]), params, UniformModel())
    with pytest.raises(ValueError, match="outside its support"):
        encode(np.array([0, -1, 1]), params, UniformModel())
    with pytest.raises(ValueError):
        encode(np.array([0, 1]), params, UniformModel())


class FlatModel(UniformModel):
    """Violates the contract: symbol 1 has zero frequency."""

    def cdf(self, params, symbols):
        return np.minimum(np.maximum(symbols - 1, 0) * TOTAL // (params[:, 0] - 1), TOTAL)


def test_zero_frequency_rejected_by_encoder_and_decoder():
    params = np.full((3, 1), 4, np.int64)
    with pytest.raises(ValueError, match="frequency"):
        encode(np.array([0, 1, 2]), params, FlatModel())
    data = encode(np.array([3, 3, 3]), params, UniformModel())
    with pytest.raises(CorruptFileError):
        decode(data, params, FlatModel())


class WithoutTable:
    """A model seen through its n_symbols and cdf only: the coder's numpy path."""

    def __init__(self, model):
        self.model = model

    def n_symbols(self, params):
        return self.model.n_symbols(params)

    def cdf(self, params, symbols):
        return self.model.cdf(params, symbols)

    def cdf_table(self, params):
        return None


def counted_and_geometric_data(n, seed=0):
    """(model, params, symbols) of the side-info and random-seed models, which offer cdf tables."""
    from diffcode.families.per_pixel.geometric import GeometricModel, TryRows
    from diffcode.families.weights.side_info import CountedModel, frequencies

    rng = np.random.default_rng(seed)
    counted = CountedModel(frequencies(rng.integers(1, 50, 24)))
    rows = TryRows(rng.integers(1 << 8, 1 << 32, n))
    digits, a = rows.split(rng.geometric(0.001, n))
    return [(counted, np.zeros((n, 1), np.int64), rng.integers(0, 24, n)),
            (GeometricModel(), rows.digit_params, digits)]


def table_models(n, seed=0):
    params, symbols = cauchy_data(n, seed)
    return [(CauchyModel(), params, symbols)] + counted_and_geometric_data(n, seed)


@pytest.mark.parametrize("n", [1, 255, 4097, pytest.param(70_000, marks=pytest.mark.slow)])
def test_compiled_path_writes_and_reads_the_numpy_paths_bytes(n):
    for model, params, symbols in table_models(n, seed=n):
        data = encode(symbols, params, model)
        assert data == encode(symbols, params, WithoutTable(model))
        assert np.array_equal(decode(data, params, model), symbols)
        assert np.array_equal(decode(data, params, WithoutTable(model)), symbols)


def test_cdf_table_equals_cdf_everywhere():
    for model, params, _ in table_models(300, seed=7):
        form, n = model.cdf_table(params), model.n_symbols(params)
        for s in range(int(n.max()) + 1):
            s_col = np.minimum(np.full(len(params), s), n)
            inner = (s_col > 0) & (s_col < n)
            column = np.where(inner, np.asarray(form.offset) + form.stride * s_col, 0)
            from_table = np.where(inner, form.slope * s_col + np.asarray(form.table)[form.row, column],
                                  np.where(s_col == 0, 0, TOTAL))
            assert np.array_equal(from_table, np.asarray(model.cdf(params, s_col), np.int64))


class ShiftedTableCauchy(CauchyModel):
    """A model bug: its cdf table reaches past the table's end."""

    def cdf_table(self, params):
        form = super().cdf_table(params)
        return form._replace(offset=form.offset + 10)


def test_cdf_table_out_of_bounds_is_refused():
    params, symbols = cauchy_data(1000, seed=8)
    params[0] = (-4, 3)  # the row whose last column is the table's last
    with pytest.raises(ValueError, match="cover"):
        encode(symbols, params, ShiftedTableCauchy())
    data = encode(symbols, params, CauchyModel())
    with pytest.raises(CorruptFileError, match="invalid"):
        decode(data, params, ShiftedTableCauchy())


def test_compiled_decoder_detects_damage():
    params, symbols = cauchy_data(5000, seed=9)
    data = encode(symbols, params, CauchyModel())
    for bad in (data[:-4], data + b"\0" * 4, data[:20] + bytes([data[20] ^ 1]) + data[21:]):
        with pytest.raises(CorruptFileError, match="corrupt"):
            decode(bad, params, CauchyModel())


# ----------------------------------------------------------------------------- what a stream can hold


def test_min_symbol_bits_of_the_tables():
    """The bound of every table the codec uses, from its largest frequency (cauchy.max_frequency,
    pyramid entropy.MAX_FREQUENCY and the flat level), below the ideal bits of that frequency."""
    from diffcode import cauchy
    from diffcode.families.pyramid import entropy
    from diffcode.storage.rans import max_symbols, min_symbol_bits, stream_capacity_bits

    for freq, low, ideal in [(cauchy.max_frequency(), 0.0135, 0.013612), (entropy.FLAT_FREQUENCY, 7.988, 8.0),
                             (entropy.MAX_FREQUENCY, 2.17e-5, 2.193e-5)]:
        bits = min_symbol_bits(freq)
        assert low <= bits <= -np.log2(freq / TOTAL) <= ideal
    assert min_symbol_bits(TOTAL) == 0.0 and stream_capacity_bits(8) == pytest.approx(64.0225, abs=1e-4)
    assert max_symbols(1000, cauchy.max_frequency()) == 592_580


@pytest.mark.parametrize("n", [1, 5000, 300_000, 2_000_000])
def test_streams_of_the_most_probable_symbol_stay_within_the_bound(n):
    """The cheapest possible stream: n times the most probable symbol of the Cauchy table (symbol 0,
    loc at its lowest, the narrowest scale); max_symbols of its length is never below n, and above it
    by little more than what the 64 bits of each lane's final state could hold (the bound counts them all)."""
    from diffcode import cauchy
    from diffcode.storage.rans import max_symbols, min_symbol_bits

    params = np.tile(np.array([[cauchy.LOC_INDEX_MIN, 0]], np.int64), (n, 1))
    data = encode(np.zeros(n, np.int64), params, CauchyModel())
    slack = 64.1 * num_lanes(n) / min_symbol_bits(cauchy.max_frequency())
    assert n <= max_symbols(len(data), cauchy.max_frequency()) < 1.01 * n + slack
    assert np.array_equal(decode(data, params, CauchyModel()), np.zeros(n))


def test_pyramid_streams_of_the_most_probable_symbol_stay_within_the_bound():
    from diffcode.families.pyramid import entropy, spec

    for n, flat in [(50, 50), (3 * 64 + 400_000, 3 * 64)]:
        loc12 = np.full(n, spec.LOC_MIN, np.int64)
        scale = np.r_[np.full(flat, entropy.FLAT), np.zeros(n - flat, np.int64)]
        data, _ = entropy.encode(np.zeros(n, np.uint8), loc12, scale)
        assert n <= entropy.max_subpixels(len(data), flat)
