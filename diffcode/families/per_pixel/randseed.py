"""The report's random-seed storage of interval encodings (section 3.1.1), in segments.

An encoding is an arc of the circle: stored value v (uint32) is valid iff
``((v - c + L // 2) mod 2**32) < L`` with center c (encoder only) and width
``L = arc_length(e)`` from the decoder-known integer entropy e (1/256 bit units). Per stage::

    entropies e (N,) --plan (decoder-reproducible)--> segments of draws
        e == 0 : no search, v = random_u32(seed, stage, UNSEGMENTED, i, 0)
        0 < e <= budget : greedy segments in index order, sum of e <= budget
        e > budget : k = ceil(e / budget) nested sub-draws, one segment each
    encoder: per segment, the first try t with every draw in its arc  (search)
    tries t --geometric rows + rANS--> bytes          (decoder: bytes -> t -> values)

Candidates: draw i of segment s at try t uses ``u = random_u64(seed, stage, s, i, t)``; a uniform
draw is ``v = u >> 32``. Sub-draw j >= 2 of a split encoding is ``v = v_{j-1} + (u mod (2W+1)) - W``
with ``W = L_{j-1}``, the width of the previous sub-arc: all sub-arcs share the target's center,
e_j = floor(e j / k), A_j inside A_{j-1}, so the window around v_{j-1} always covers A_j and the
success probability is L_j / (2W+1): each split costs ~1 extra bit (window 2W+1 vs W).

A segment of success probability p needs geometric tries, P(t) = p (1-p)^t; p_fx = p * 2**32 is
``arc_length(sum of e)`` for a normal segment (the floors in L make the true p at most ~1e-4
lower), ``L_1`` for a first sub-draw and ``floor(L_j 2**32 / (2W+1))`` for later ones. The tries
are coded with :mod:`diffcode.families.per_pixel.geometric` rows and :mod:`diffcode.storage.rans`. Each segment
wastes about log2(e) = 1.44 bits on average (the geometric's excess over -log2 p), so the
overhead is ~1.44 bits / (segment entropy in bits): ~12.5 % for full 8-nat segments.

Stream: passes ``[uvarint length][rANS bytes]``; pass 1 codes every segment's digits and its
first ``a`` symbol, later passes only the segments whose previous ``a`` symbol was the escape.
No segments -> empty stream.

Search: for each level (split sub-draws depend on the previous sub-draw), all pending segments
at once: a block of B ~ 3/p tries per segment for its narrowest draw, survivors tested on the
next-narrowest draw, and so on; segments without a success get the next block.

Speed, 2-core dev machine, numpy 2.4:

- ``python -m diffcode.families.per_pixel.randseed`` (2.5 M encodings: 2.45 M of entropy 0, 50 k with
  gamma(2) nats, total 99,793 nats): encode 9.1 s, decode 1.21 s, 166,808 bits for 143,971
  ideal bits (+15.9 %), round trip exact.
- Same plus 500 k encodings of 1..7 units (1/256 bit) each: encode 15.4 s, decode 0.91 s,
  +15.6 %. Many tiny entropies cost search time (each try tests many nearly-sure draws).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ...errors import CorruptFileError, UsageError
from ...storage import rans
from ...storage.entropy_units import MAX_UNITS, UNITS_PER_BIT, arc_length
from ...storage.rng import fold_key, seed_state
from .geometric import BASE, ESCAPE, GeometricModel, TryRows

DEFAULT_BUDGET_NATS = 8.0
MIN_BUDGET_NATS = 2.0  # keeps every split window 2W+1 below the full circle
MAX_BUDGET_NATS = 16.0  # e^16 ~ 9e6 tries per segment: minutes per thousand segments
UNITS_PER_NAT = 369.3299304675746  # 256 / ln 2, written out so every platform rounds alike
UNSEGMENTED = (1 << 64) - 1  # segment key of the entropy-0 encodings
_MAX_PAIRS = 1 << 21  # candidates alive at once during the search
_MAX_BLOCK = 1 << 14
_M32 = np.uint64(0xFFFFFFFF)
_MODEL = GeometricModel()


@dataclasses.dataclass(frozen=True)
class Plan:
    """Decoder-reproducible layout of one stage's draws; draws are grouped by segment.

    Attributes:
        zero_index: int64 (Z,) encodings of entropy 0.
        draw_index: int64 (D,) encoding of each draw; draw_segment: int64 (D,) its segment.
        draw_width: uint64 (D,) arc width L the draw must land in (2**-32 circle units).
        draw_window: uint64 (D,) W of an offset draw (v_prev + [-W, W]), 0 for a uniform draw.
        seg_start: int64 (S+1,) draws of segment s are seg_start[s]:seg_start[s+1].
        seg_p_fx: int64 (S,) success probability * 2**32; seg_level: int64 (S,) 1 + sub-draw depth.
    """

    zero_index: np.ndarray
    draw_index: np.ndarray
    draw_segment: np.ndarray
    draw_width: np.ndarray
    draw_window: np.ndarray
    seg_start: np.ndarray
    seg_p_fx: np.ndarray
    seg_level: np.ndarray


def budget_units(budget_nats: float) -> int:
    """Segment budget in 1/256 bit units; ValueError outside [MIN_BUDGET_NATS, MAX_BUDGET_NATS]."""
    if not MIN_BUDGET_NATS <= float(budget_nats) <= MAX_BUDGET_NATS:
        raise UsageError(f"budget_nats must be in [{MIN_BUDGET_NATS}, {MAX_BUDGET_NATS}], got {budget_nats}")
    return int(round(float(budget_nats) * UNITS_PER_NAT))


def check_entropy_units(entropy_units: np.ndarray) -> np.ndarray:
    """entropy_units as int64 (N,); ValueError unless 1-d integers in [0, MAX_UNITS]."""
    e = np.asarray(entropy_units)
    if e.ndim != 1 or not np.issubdtype(e.dtype, np.integer):
        raise ValueError(f"entropy_units must be a 1-d integer array, got {e.dtype} {e.shape}")
    if e.size and (e.min() < 0 or e.max() > MAX_UNITS):
        raise ValueError(f"entropy_units must lie in [0, {MAX_UNITS}]")
    return e.astype(np.int64)


def theoretical_bits(entropy_units: np.ndarray) -> float:
    """Sum of the encodings' entropies in bits (entropy_units: integer array, 1/256 bit)."""
    return float(np.sum(check_entropy_units(np.ravel(entropy_units)))) / UNITS_PER_BIT


# ----------------------------------------------------------------------------- plan


def _greedy_walk(e_pos: np.ndarray, split: np.ndarray, budget: int) -> np.ndarray:
    """Start positions (into e_pos) of the walk's events: greedy segments and split encodings.

    Args:
        e_pos: int64 (P,) positive entropies in index order; split: bool (P,) e_pos > budget.

    Returns:
        int64 (events+1,) boundaries; an event is one split encoding or one greedy segment.
    """
    cum = np.cumsum(e_pos)
    greedy_end = np.searchsorted(cum, cum - e_pos + budget, side="right")
    split_pos = np.flatnonzero(split)
    next_split = np.append(split_pos, len(e_pos))[np.searchsorted(split_pos, np.arange(len(e_pos)))]
    end = np.where(split, np.arange(len(e_pos)) + 1, np.minimum(greedy_end, next_split)).tolist()
    starts, s = [0], 0
    while s < len(e_pos):
        s = end[s]
        starts.append(s)
    return np.array(starts, np.int64)


def _split_draws(index: np.ndarray, e: np.ndarray, budget: int) -> dict[str, np.ndarray]:
    """Sub-draws of split encodings (index, e int64 (M,)), in order; keys as in Plan, per draw."""
    k = -(-e // budget)
    owner = np.repeat(np.arange(len(e)), k)
    j = np.arange(len(owner)) - np.repeat(np.cumsum(k) - k, k) + 1  # 1..k
    width = arc_length(e[owner] * j // k[owner])
    prev = arc_length(e[owner] * (j - 1) // k[owner])
    window = np.where(j == 1, np.uint64(0), prev)
    p_fx = np.where(j == 1, width, (width << np.uint64(32)) // (2 * window + np.uint64(1)))
    return {"index": index[owner], "width": width, "window": window, "p_fx": p_fx.astype(np.int64),
            "level": j, "owner": owner}


def plan_stage(entropy_units: np.ndarray, budget_nats: float = DEFAULT_BUDGET_NATS) -> Plan:
    """Segment a stage's encodings (int64 (N,) entropies); encoder and decoder both call this."""
    e, budget = check_entropy_units(entropy_units), budget_units(budget_nats)
    pos = np.flatnonzero(e > 0)
    split = e[pos] > budget
    bounds = _greedy_walk(e[pos], split, budget)
    event_split = split[bounds[:-1]]
    subs = _split_draws(pos[split], e[pos[split]], budget)
    n_seg = np.where(event_split, 0, 1)
    n_seg[event_split] = np.bincount(subs["owner"], minlength=int(event_split.sum()))
    first_seg = np.cumsum(n_seg) - n_seg
    normal = ~split
    normal_seg = np.repeat(first_seg[~event_split], np.diff(bounds)[~event_split])
    split_seg = np.repeat(first_seg[event_split], n_seg[event_split]) + subs["level"] - 1
    return _assemble(e, pos, normal, normal_seg, subs, split_seg, int(n_seg.sum()))


def _assemble(e, pos, normal, normal_seg, subs, split_seg, n_segments) -> Plan:
    """Concatenate normal and split draws, group them by segment and compute segment p_fx."""
    seg = np.concatenate([normal_seg, split_seg]).astype(np.int64)
    order = np.argsort(seg, kind="stable")
    units = np.bincount(normal_seg, weights=e[pos[normal]], minlength=n_segments).astype(np.int64)
    p_fx = arc_length(units).astype(np.int64)
    level = np.ones(n_segments, np.int64)
    p_fx[split_seg], level[split_seg] = subs["p_fx"], subs["level"]
    return Plan(
        zero_index=np.flatnonzero(e == 0),
        draw_index=np.concatenate([pos[normal], subs["index"]])[order],
        draw_segment=seg[order],
        draw_width=np.concatenate([arc_length(e[pos[normal]]), subs["width"]])[order],
        draw_window=np.concatenate([np.zeros(int(normal.sum()), np.uint64), subs["window"]])[order],
        seg_start=np.searchsorted(seg[order], np.arange(n_segments + 1)),
        seg_p_fx=p_fx,
        seg_level=level,
    )


# ----------------------------------------------------------------------------- candidates


def draw_keys(plan: Plan, seed: int, stage: int) -> np.ndarray:
    """uint64 (D,): the hash of (seed, stage, segment, encoding index) of every draw."""
    h = fold_key(seed_state(seed), int(stage))
    return fold_key(fold_key(h, plan.draw_segment), plan.draw_index)


def candidate(key: np.ndarray, tries: np.ndarray, window: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Candidate values uint64 (n,) in [0, 2**32) of draws at tries (all arrays (n,)).

    key: uint64 draw keys; tries: int64; window: uint64 W (0 = uniform draw); previous: uint64
    value of the previous sub-draw (ignored for uniform draws).
    """
    u = fold_key(key, tries)
    offset = u % (np.uint64(2) * window + np.uint64(1))
    nested = (previous + offset + np.uint64(1 << 32) - window) & _M32
    return np.where(window == 0, u >> np.uint64(32), nested)


def in_arc(values: np.ndarray, centers: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """bool: ((v - c + L // 2) mod 2**32) < L for uint64 values, centers and widths L."""
    return ((values + np.uint64(1 << 32) - centers + (widths >> np.uint64(1))) & _M32) < widths


def draw_values(plan: Plan, keys: np.ndarray, seg_tries: np.ndarray, values: np.ndarray, level: int) -> None:
    """Write the values of every draw of ``level`` at its segment's try into values (uint64 (N,))."""
    d = np.flatnonzero(plan.seg_level[plan.draw_segment] == level)
    idx = plan.draw_index[d]
    values[idx] = candidate(keys[d], seg_tries[plan.draw_segment[d]], plan.draw_window[d], values[idx])


def zero_values(plan: Plan, seed: int, stage: int) -> np.ndarray:
    """uint64 (Z,): the values of the entropy-0 encodings, random_u32(seed, stage, UNSEGMENTED, i, 0)."""
    h = fold_key(fold_key(seed_state(seed), int(stage)), UNSEGMENTED)
    return fold_key(fold_key(h, plan.zero_index), 0) >> np.uint64(32)


# ----------------------------------------------------------------------------- search


def _narrowest_first(plan: Plan, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draws of the given segments, each segment's draws sorted by width ascending.

    Returns:
        draws int64 (d,), local_start int64 (len(segments)+1,) into draws, lengths int64.
    """
    lengths = plan.seg_start[segments + 1] - plan.seg_start[segments]
    local_start = np.concatenate([[0], np.cumsum(lengths)])
    draws = np.repeat(plan.seg_start[segments] - local_start[:-1], lengths) + np.arange(local_start[-1])
    order = np.lexsort((plan.draw_width[draws], np.repeat(np.arange(len(segments)), lengths)))
    return draws[order], local_start, lengths


def _block_sizes(p_fx: np.ndarray) -> np.ndarray:
    """Tries per search block, int64: ~3 / p (success within a block ~95 %), 16..2**14."""
    return np.clip(3 * (1 << 32) // p_fx, 16, _MAX_BLOCK)


def _search_chunk(ctx: dict, segs: np.ndarray, t0: np.ndarray, block: np.ndarray) -> np.ndarray:
    """First successful try of each segment (local ids segs) in [t0, t0+block), or -1 (int64)."""
    pair_seg = np.repeat(segs, block)
    pair_t = np.repeat(t0 - (np.cumsum(block) - block), block) + np.arange(int(block.sum()))
    pos = np.zeros(len(pair_seg), np.int64)
    found = np.full(len(segs), -1, np.int64)
    slot = np.full(int(segs.max(initial=-1)) + 1, -1, np.int64)
    slot[segs] = np.arange(len(segs))
    while len(pair_seg):
        d = ctx["draws"][ctx["local_start"][pair_seg] + pos]
        v = candidate(ctx["keys"][d], pair_t, ctx["window"][d], ctx["previous"][d])
        ok = in_arc(v, ctx["center"][d], ctx["width"][d])
        pair_seg, pair_t, pos = pair_seg[ok], pair_t[ok], pos[ok] + 1
        done = pos == ctx["lengths"][pair_seg]
        first = np.unique(pair_seg[done], return_index=True)
        found[slot[first[0]]] = pair_t[done][first[1]]
        pair_seg, pair_t, pos = pair_seg[~done], pair_t[~done], pos[~done]
    return found


def _search_level(ctx: dict, p_fx: np.ndarray) -> np.ndarray:
    """int64 (S,) first successful try of every segment of one level (p_fx int64 (S,))."""
    tries = np.full(len(p_fx), -1, np.int64)
    t0 = np.zeros(len(p_fx), np.int64)
    block = _block_sizes(p_fx)
    pending = np.arange(len(p_fx))
    while len(pending):
        for chunk in _chunks(pending, block[pending]):
            tries[chunk] = _search_chunk(ctx, chunk, t0[chunk], block[chunk])
        t0[pending] += block[pending]
        pending = pending[tries[pending] < 0]
    return tries


def _chunks(segs: np.ndarray, block: np.ndarray) -> list[np.ndarray]:
    """Split segs into consecutive groups whose blocks sum to about _MAX_PAIRS."""
    group = (np.cumsum(block) - block) // _MAX_PAIRS
    cuts = np.flatnonzero(np.diff(group)) + 1
    return np.split(segs, cuts)


def _level_context(plan: Plan, level_segs: np.ndarray, keys, centers, values) -> dict:
    """Arrays the search needs for one level's segments (draws in narrowest-first order)."""
    draws, local_start, lengths = _narrowest_first(plan, level_segs)
    idx = plan.draw_index
    return {"draws": draws, "local_start": local_start[:-1], "lengths": lengths, "keys": keys,
            "window": plan.draw_window, "width": plan.draw_width,
            "center": centers.astype(np.uint64)[idx], "previous": values[idx]}


def search_tries(plan: Plan, centers: np.ndarray, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """int64 (S,) tries of every segment; fills values (uint64 (N,)) with the stored draws."""
    tries = np.zeros(len(plan.seg_p_fx), np.int64)
    for level in range(1, int(plan.seg_level.max(initial=0)) + 1):
        segs = np.flatnonzero(plan.seg_level == level)
        ctx = _level_context(plan, segs, keys, centers, values)
        tries[segs] = _search_level(ctx, plan.seg_p_fx[segs])
        draw_values(plan, keys, tries, values, level)
    return tries


# ----------------------------------------------------------------------------- stream


def _uvarint(n: int) -> bytes:
    """LEB128 unsigned varint of n >= 0."""
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position); CorruptFileError if truncated or longer than 10 bytes."""
    value = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise CorruptFileError("random-seed stream truncated inside a length field")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise CorruptFileError("random-seed stream has an overlong length field")


def encode_tries(tries: np.ndarray, p_fx: np.ndarray) -> bytes:
    """Code tries (int64 (S,)) of segments with success probabilities p_fx (int64 (S,))."""
    if len(tries) == 0:
        return b""
    rows = TryRows(p_fx)
    digits, a = rows.split(tries)
    symbols = np.concatenate([digits, np.minimum(a, ESCAPE)])
    params = np.concatenate([rows.digit_params, rows.escape_params])
    out, escape_params = [], rows.escape_params
    while len(symbols):
        chunk = rans.encode(symbols, params, _MODEL)
        out += [_uvarint(len(chunk)), chunk]
        keep = a >= ESCAPE
        escape_params = escape_params[keep]
        a, params = a[keep] - BASE, escape_params
        symbols = np.minimum(a, ESCAPE)
    return b"".join(out)


def decode_tries(data: bytes, p_fx: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_tries`: int64 (S,); CorruptFileError on a bad stream."""
    if len(p_fx) == 0:
        if data:
            raise CorruptFileError(f"random-seed stream: {len(data)} bytes for a stage without segments")
        return np.zeros(0, np.int64)
    rows = TryRows(p_fx)
    n_digits = len(rows.digit_params)
    symbols, pos = _read_pass(data, 0, np.concatenate([rows.digit_params, rows.escape_params]))
    digits, a = symbols[:n_digits], symbols[n_digits:].copy()
    going = np.flatnonzero(a == ESCAPE)
    while len(going):
        more, pos = _read_pass(data, pos, rows.escape_params[going])
        a[going] += more
        going = going[more == ESCAPE]
    if pos != len(data):
        raise CorruptFileError(f"random-seed stream has {len(data) - pos} trailing bytes")
    return rows.join(digits, a)


def _read_pass(data: bytes, pos: int, params: np.ndarray) -> tuple[np.ndarray, int]:
    """Decode one pass at data[pos:]: (symbols int64, position after it)."""
    length, pos = _read_uvarint(data, pos)
    if pos + length > len(data):
        raise CorruptFileError("random-seed stream truncated inside a pass")
    return rans.decode(data[pos : pos + length], params, _MODEL), pos + length


# ----------------------------------------------------------------------------- public API


def _check_seed_stage(seed: int, stage: int) -> None:
    """ValueError unless 0 <= seed < 2**64 and 0 <= stage < 2**32."""
    if not 0 <= int(seed) < 1 << 64 or not 0 <= int(stage) < 1 << 32:
        raise ValueError(f"seed must be in [0, 2**64) and stage in [0, 2**32), got {seed}, {stage}")


def encode_stage(centers: np.ndarray, entropy_units: np.ndarray, seed: int, stage: int,
                 budget_nats: float = DEFAULT_BUDGET_NATS) -> tuple[bytes, np.ndarray]:
    """Store one stage's encodings by the random-seed scheme.

    Args:
        centers: uint32 (N,) fitted arc centers.
        entropy_units: int64 (N,) decoder-known entropies, 1/256 bit, in [0, MAX_UNITS].
        seed: shared seed in [0, 2**64); stage: stage number in [0, 2**32).
        budget_nats: segment budget, in [MIN_BUDGET_NATS, MAX_BUDGET_NATS].

    Returns:
        (coded tries, stored values uint32 (N,)); every value lies in its arc.
    """
    centers = np.asarray(centers)
    e = check_entropy_units(entropy_units)
    if centers.shape != e.shape or centers.dtype != np.uint32:
        raise ValueError(f"centers must be uint32 {e.shape}, got {centers.dtype} {centers.shape}")
    _check_seed_stage(seed, stage)
    plan = plan_stage(e, budget_nats)
    values = np.zeros(len(e), np.uint64)
    values[plan.zero_index] = zero_values(plan, seed, stage)
    tries = search_tries(plan, centers, draw_keys(plan, seed, stage), values)
    if not np.all(in_arc(values, centers.astype(np.uint64), arc_length(e))):
        raise RuntimeError("random-seed search produced a value outside its arc (bug)")
    return encode_tries(tries, plan.seg_p_fx), values.astype(np.uint32)


def decode_stage(data: bytes, entropy_units: np.ndarray, seed: int, stage: int,
                 budget_nats: float = DEFAULT_BUDGET_NATS) -> np.ndarray:
    """Stored values uint32 (N,) of one stage from :func:`encode_stage`'s bytes.

    Args: as :func:`encode_stage`, with ``data`` its bytes instead of the centers.

    Raises:
        CorruptFileError: the bytes are truncated, have trailing data or are not a valid stream.
    """
    e = check_entropy_units(entropy_units)
    _check_seed_stage(seed, stage)
    plan = plan_stage(e, budget_nats)
    tries = decode_tries(bytes(data), plan.seg_p_fx)
    values = np.zeros(len(e), np.uint64)
    values[plan.zero_index] = zero_values(plan, seed, stage)
    keys = draw_keys(plan, seed, stage)
    for level in range(1, int(plan.seg_level.max(initial=0)) + 1):
        draw_values(plan, keys, tries, values, level)
    return values.astype(np.uint32)


def _benchmark(n: int = 2_500_000, n_active: int = 50_000) -> None:
    """Print plan/encode/decode seconds and overhead for a large synthetic stage."""
    import time

    rng = np.random.default_rng(0)
    e = np.zeros(n, np.int64)
    active = rng.choice(n, n_active, replace=False)
    e[active] = np.clip(rng.gamma(2.0, 1.0, n_active) * UNITS_PER_NAT, 1, MAX_UNITS).astype(np.int64)
    centers = rng.integers(0, 1 << 32, n, dtype=np.uint32)
    t0 = time.perf_counter()
    data, values = encode_stage(centers, e, 1234, 0)
    t1 = time.perf_counter()
    decoded = decode_stage(data, e, 1234, 0)
    t2 = time.perf_counter()
    ideal = theoretical_bits(e)
    print(f"N={n}, {int((e > 0).sum())} nonzero, {ideal / np.log2(np.e):.0f} nats: encode {t1 - t0:.1f} s, "
          f"decode {t2 - t1:.2f} s, {len(data) * 8} bits vs {ideal:.0f} ({len(data) * 8 / ideal - 1:+.1%}), "
          f"round trip {'ok' if np.array_equal(decoded, values) else 'FAILED'}")


if __name__ == "__main__":
    _benchmark()
