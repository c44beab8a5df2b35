"""engine/allocate.py: crossing caps allocated together give the largest total
the caps allow (checked against every allocation of small cases), within
every cap, and an odd ring of crossing caps is recognised."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from xuefen.engine.allocate import allocate, two_families

LINES = range(4)


@st.composite
def problems(draw: st.DrawFn) -> tuple[list[int], list[frozenset[int]], list[int]]:
    amounts = [draw(st.integers(0, 3)) for _ in LINES]
    groups = draw(st.lists(st.frozensets(st.sampled_from(list(LINES)), min_size=1), min_size=1, max_size=4))
    limits = [draw(st.integers(0, 4)) for _ in groups]
    return amounts, groups, limits


def best_total(amounts: list[int], groups: list[frozenset[int]], limits: list[int]) -> int:
    best = 0
    for xs in itertools.product(*(range(a + 1) for a in amounts)):
        if all(sum(xs[i] for i in g) <= c for g, c in zip(groups, limits, strict=True)):
            best = max(best, sum(xs))
    return best


@settings(max_examples=300, deadline=None)
@given(problem=problems())
def test_the_allocation_is_the_largest_the_caps_allow(problem: tuple[list[int], list[frozenset[int]], list[int]]) -> None:
    amounts, groups, limits = problem
    side = two_families(groups)
    if side is None:
        return
    got = {i: Decimal(a) for i, a in enumerate(amounts)}
    allocate(got, list(LINES), groups, [Decimal(c) for c in limits], side)
    assert all(0 <= got[i] <= amounts[i] for i in LINES)
    assert all(sum(got[i] for i in g) <= c for g, c in zip(groups, limits, strict=True))
    assert sum(got.values()) == best_total(amounts, groups, limits)


def test_two_crossing_caps_and_an_odd_ring() -> None:
    # 肃州: m (带教 only), z (中长期 only), a (both); 带教 ≤ 3, 中长期 ≤ 42
    mentor, long = frozenset({0, 2}), frozenset({1, 2})
    side = two_families([mentor, long])
    assert side is not None and side[0] != side[1]
    got = {0: Decimal(3), 1: Decimal(42), 2: Decimal(3)}
    allocate(got, [2, 0, 1], [mentor, long], [Decimal(3), Decimal(42)], side)
    assert got == {0: Decimal(3), 1: Decimal(42), 2: Decimal(0)}
    # nested groups may share a family; three caps each crossing the other two cannot be split
    assert two_families([frozenset({0}), frozenset({0, 1})]) == [0, 0]
    assert two_families([frozenset({0, 1}), frozenset({1, 2}), frozenset({2, 0})]) is None
