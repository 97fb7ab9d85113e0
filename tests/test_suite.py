"""Standard suites: a fixed grid whose pinned digest proves everyone is asked the same prompts."""

from __future__ import annotations

import pytest

from hashhop.errors import HashHopError
from hashhop.suite import SUITE_DIGESTS, SUITES, grid_digest, suite_grid


@pytest.mark.parametrize("name", sorted(SUITES))
def test_a_regenerated_suite_matches_its_pinned_digest(name):
    assert grid_digest(suite_grid(name)) == SUITE_DIGESTS[name]


def test_suite_v1_is_the_documented_grid():
    grid = suite_grid("v1")
    assert (grid.unit, grid.sizes, grid.hops, grid.cot_modes) == (
        "chars", (3_000, 12_000, 48_000, 192_000), (1, 2, 3), (False, True)
    )
    assert (grid.samples, grid.queries, grid.suite) == (10, 1, "v1")


def test_an_unknown_suite_names_the_ones_there_are():
    with pytest.raises(HashHopError, match="choose one of: v1"):
        suite_grid("v0")
