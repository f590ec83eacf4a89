"""Random-seed storage: exact round trips, values inside their arcs, overhead, corrupt streams."""

import numpy as np
import pytest

from diffcode.errors import CorruptFileError
from diffcode.families.per_pixel import randseed as rs
from diffcode.families.per_pixel.geometric import ESCAPE, GeometricModel, TryRows
from diffcode.storage import rans
from diffcode.storage.entropy_units import MAX_UNITS, arc_length


def _round_trip(e, seed=11, stage=2, centers=None):
    e = np.asarray(e, np.int64)
    if centers is None:
        centers = np.random.default_rng(len(e)).integers(0, 1 << 32, len(e), dtype=np.uint32)
    data, values = rs.encode_stage(centers, e, seed, stage)
    assert values.dtype == np.uint32 and values.shape == e.shape
    assert np.all(rs.in_arc(values.astype(np.uint64), centers.astype(np.uint64), arc_length(e)))
    assert np.array_equal(rs.decode_stage(data, e, seed, stage), values)
    return data, values


def _mix(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    near_zero = rng.integers(0, 4, n)
    two_nats = (rng.gamma(4.0, 0.5, n) * rs.UNITS_PER_NAT).astype(np.int64)
    return np.clip(np.where(rng.random(n) < 0.5, near_zero, two_nats), 0, MAX_UNITS)


def test_empty_stage():
    data, values = _round_trip([])
    assert data == b"" and values.shape == (0,)


def test_all_zero_entropies_cost_nothing():
    data, values = _round_trip(np.zeros(1000))
    assert data == b""
    assert len(np.unique(values)) > 990  # independent uniform draws


@pytest.mark.parametrize("e", [[1], [256], [0, 3000], [MAX_UNITS], [5, 0, 700, 2954, 2955, 2956]])
def test_tiny_stages(e):
    _round_trip(e)


def test_fifteen_bit_encoding_is_split():
    e = np.array([15 * 256, 0, 300])
    plan = rs.plan_stage(e)
    assert plan.seg_level.max() == 2  # 15 bits > 8 nats: two nested sub-draws
    _round_trip(e)


def test_mix_round_trip_and_overhead():
    e = _mix()
    data, _ = _round_trip(e)
    ideal = rs.theoretical_bits(e)
    # ~1.44 bits per ~11.5-bit segment, plus partly filled segments: measured +15.6 %
    assert ideal < len(data) * 8 < 1.22 * ideal


def test_decoder_depends_on_seed_and_stage():
    e = _mix(500)
    data, values = _round_trip(e, seed=3, stage=1)
    assert not np.array_equal(rs.decode_stage(data, e, 3, 2), values)


@pytest.mark.parametrize("cut", [1, 5, -1])
def test_truncated_stream_is_corrupt(cut):
    e = _mix(2000)
    data, _ = _round_trip(e)
    with pytest.raises(CorruptFileError):
        rs.decode_stage(data[:cut] if cut > 0 else data[:cut], e, 11, 2)


def test_trailing_and_garbage_bytes_are_corrupt():
    e = _mix(2000)
    data, _ = _round_trip(e)
    for bad in (data + b"\0", b"\xff" * len(data), data[:1] + bytes(len(data) - 1)):
        with pytest.raises(CorruptFileError):
            rs.decode_stage(bad, e, 11, 2)
    with pytest.raises(CorruptFileError):
        rs.decode_stage(b"\1", np.zeros(10, np.int64), 11, 2)


def test_bad_inputs_raise_value_error():
    with pytest.raises(ValueError):
        rs.encode_stage(np.zeros(2, np.uint32), np.array([0, MAX_UNITS + 1]), 0, 0)
    with pytest.raises(ValueError):
        rs.encode_stage(np.zeros(2, np.int64), np.array([0, 1]), 0, 0)
    with pytest.raises(ValueError):
        rs.decode_stage(b"", np.array([1]), 0, 0, budget_nats=50.0)


@pytest.mark.parametrize("p_fx", [16, 1000, 1 << 20, (1 << 31) + 1, (1 << 32) - 1, 1 << 32])
def test_geometric_rows_are_valid(p_fx):
    rows = TryRows(np.array([p_fx]))
    for params in (rows.digit_params, rows.escape_params):
        for row in params:
            n = row[0]
            cdf = row[1 : n + 2]
            assert cdf[0] == 0 and cdf[-1] == rans.TOTAL and np.all(np.diff(cdf) >= 1)


def test_tries_with_escapes_round_trip():
    p_fx = np.array([1 << 32, 1 << 31, 1 << 20, 5000, 1 << 31])
    tries = np.array([0, 40, 123456, 10**6, 3])  # 40 tries at p = 1/2 escapes twice
    data = rs.encode_tries(tries, p_fx)
    assert np.array_equal(rs.decode_tries(data, p_fx), tries)


def test_geometric_cost_near_ideal():
    rng = np.random.default_rng(5)
    p_fx = rng.integers(1 << 18, 1 << 21, 4000)
    tries = rng.geometric(p_fx / 2**32) - 1
    ideal = -np.sum(np.log2(p_fx / 2**32) + tries * np.log2(1 - p_fx / 2**32))
    data = rs.encode_tries(tries, p_fx)
    assert len(data) * 8 < ideal * 1.01 + 200
    assert GeometricModel().n_symbols(TryRows(p_fx).escape_params)[0] == ESCAPE + 1
