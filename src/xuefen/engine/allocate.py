"""Caps that cross: the most credits a set of caps lets count together.

Applied one after another, caps are exact when their groups nest and the
inner one goes first.  When a record falls in two groups that do not nest
(肃州: 带教 within 3, 中长期培训 within 42; 朝阳: a 工作室 record with a capped
theme), the first cap can give a record room that the second then takes
away, and adding a record could lower the total.  Here the groups are split
into two families, each of which nests, and the amounts are a maximum flow
from one family's tree through the records to the other's: the largest total
the caps allow, so one more record can only add to it.  Everything is exact
(Decimal) and the search visits groups and records in a fixed order, so the
outcome does not depend on the order the records were given in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from decimal import Decimal

ZERO = Decimal(0)


def crossing(first: frozenset[int], second: frozenset[int]) -> bool:
    """Two groups, the first applied first, that sequential caps get wrong:
    they share a record and the first is not inside the second."""
    return bool(first & second) and not first <= second


def two_families(groups: Sequence[frozenset[int]]) -> list[int] | None:
    """A side (0 or 1) per group such that no two groups of one side cross
    (each side then nests), or None when the crossings make an odd cycle."""
    n = len(groups)
    side = [-1] * n
    for start in range(n):
        if side[start] >= 0:
            continue
        side[start] = 0
        queue = deque([start])
        while queue:
            g = queue.popleft()
            for h in range(n):
                if h == g or not (groups[g] & groups[h]):
                    continue
                if groups[g] <= groups[h] or groups[h] <= groups[g]:
                    continue
                if side[h] < 0:
                    side[h] = 1 - side[g]
                    queue.append(h)
                elif side[h] == side[g]:
                    return None
    return side


class _Network:
    def __init__(self) -> None:
        self.head: list[list[int]] = []
        self.to: list[int] = []
        self.cap: list[Decimal] = []

    def node(self) -> int:
        self.head.append([])
        return len(self.head) - 1

    def edge(self, a: int, b: int, capacity: Decimal) -> int:
        for u, v, c in ((a, b, capacity), (b, a, ZERO)):
            self.head[u].append(len(self.to))
            self.to.append(v)
            self.cap.append(c)
        return len(self.to) - 2

    def max_flow(self, s: int, t: int) -> None:
        # shortest augmenting paths (Edmonds–Karp): terminates with exact
        # arithmetic whatever the capacities
        while True:
            came: list[int] = [-1] * len(self.head)
            came[s] = -2
            queue = deque([s])
            while queue and came[t] == -1:
                u = queue.popleft()
                for e in self.head[u]:
                    v = self.to[e]
                    if came[v] == -1 and self.cap[e] > 0:
                        came[v] = e
                        queue.append(v)
            if came[t] == -1:
                return
            push = None
            v = t
            while v != s:
                e = came[v]
                push = self.cap[e] if push is None else min(push, self.cap[e])
                v = self.to[e ^ 1]
            assert push is not None
            v = t
            while v != s:
                e = came[v]
                self.cap[e] -= push
                self.cap[e ^ 1] += push
                v = self.to[e ^ 1]


def _parents(groups: Sequence[frozenset[int]], members: list[int]) -> dict[int, int | None]:
    """Within one nesting family: each group's smallest enclosing group (equal
    groups are chained by their order)."""
    out: dict[int, int | None] = {}
    for g in members:
        best: int | None = None
        for h in members:
            if h == g or not groups[g] <= groups[h]:
                continue
            if groups[g] == groups[h] and h > g:
                continue  # of two equal groups the later one encloses the earlier
            if best is None or len(groups[h]) < len(groups[best]) or (
                    len(groups[h]) == len(groups[best]) and h > best):
                best = h
        out[g] = best
    return out


def allocate(amounts: dict[int, Decimal], order: Sequence[int], groups: Sequence[frozenset[int]],
             limits: Sequence[Decimal], side: Sequence[int]) -> None:
    """In place: the largest total of ``amounts`` (lines in ``order``, the
    canonical one) with each group's sum within its limit, for groups split by
    :func:`two_families`."""
    net = _Network()
    s, t = net.node(), net.node()
    node = [net.node() for _ in groups]
    for family in (0, 1):
        members = [g for g in range(len(groups)) if side[g] == family]
        parent = _parents(groups, members)
        for g in members:
            up = parent[g]
            if family == 0:  # source side: flow enters a group from its enclosing one
                net.edge(s if up is None else node[up], node[g], limits[g])
            else:  # sink side: flow leaves a group to its enclosing one
                net.edge(node[g], t if up is None else node[up], limits[g])
    edges: dict[int, int] = {}
    for idx in order:
        inside = [g for g in range(len(groups)) if idx in groups[g]]
        if not inside:
            continue
        ends = []
        for family, fallback in ((0, s), (1, t)):
            mine = [g for g in inside if side[g] == family]
            # the innermost group of the family: the one inside all the others
            ends.append(node[min(mine, key=lambda g: (len(groups[g]), -g))] if mine else fallback)
        edges[idx] = net.edge(ends[0], ends[1], amounts[idx])
    net.max_flow(s, t)
    for idx, e in edges.items():
        amounts[idx] = net.cap[e ^ 1]
