"""diffcode.pinned: a table is accepted only by its pinned hash, with the exact build as fallback."""

import numpy as np
import pytest

from diffcode.pinned import PinnedTable, pinned_table

EXACT = np.arange(6, dtype=np.int64).reshape(2, 3)


def _counted(table):
    calls = []

    def build():
        calls.append(1)
        return table.copy()

    return build, calls


def test_the_fast_build_is_kept_when_it_matches_and_built_once():
    sha256 = PinnedTable(lambda: EXACT, "").sha256_of(EXACT)
    build, calls = _counted(EXACT)
    exact, exact_calls = _counted(EXACT)
    table = PinnedTable(build, sha256, exact)
    assert np.array_equal(table(), EXACT) and table() is table() and not table().flags.writeable
    assert (len(calls), len(exact_calls)) == (1, 0)


def test_a_fast_build_off_by_one_falls_back_to_the_exact_one():
    sha256 = PinnedTable(lambda: EXACT, "").sha256_of(EXACT)
    wrong = EXACT.copy()
    wrong[1, 2] += 1

    @pinned_table(sha256, exact=lambda: EXACT.copy())
    def table():
        """A docstring kept by the decorator."""
        return wrong.copy()

    assert np.array_equal(table(), EXACT) and table.__doc__ == "A docstring kept by the decorator."
    assert table.sha256_of(table.exact()) == sha256 != table.sha256_of(table.build())


def test_no_matching_build_is_an_error():
    table = PinnedTable(lambda: EXACT, "0" * 64, lambda: EXACT + 1)
    with pytest.raises(RuntimeError, match="pinned SHA-256"):
        table()


def test_the_hash_is_of_the_declared_dtype():
    as_int32 = PinnedTable(lambda: EXACT, "", dtype="<i4")
    assert as_int32.sha256_of(EXACT) == as_int32.sha256_of(EXACT.astype(np.int32))
    assert as_int32.sha256_of(EXACT) != PinnedTable(lambda: EXACT, "").sha256_of(EXACT)
