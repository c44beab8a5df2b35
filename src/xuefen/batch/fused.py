"""The compiled scope pass: from each record's combination code to every
teacher's counted credits and measured minimums, in one compiled loop.

The NumPy formulation (:func:`xuefen.batch.stage2.stage2` over the lines of
:mod:`xuefen.batch.columnar`) makes the piece's credited lines as a dozen
arrays, then runs every cap, transfer and minimum as its own series of passes
over all of them: about forty passes over a quarter of a million lines a
piece, each with its temporaries, and a Python list of every line's theme.
Here one compiled function walks the teachers once.  For each teacher it puts
her records of the cycle in canonical order (year, record id), writes her
lines into small buffers that stay in the processor's cache, and applies the
year scope's caps, transfers and minimums, then the cycle's, exactly as the
NumPy stage does them (the same order of rules, the same integer
arithmetic).  What depends only on the teacher (when her cycle starts, leave
and hire years, who a rule applies to, each minimum's required amount) is
still computed per teacher by :func:`~xuefen.batch.stage2.teacher_state`, and
the verdicts by :func:`~xuefen.batch.stage2.verdicts`, so both formulations
share them.

Every rule is given to the loop as numbers: a target is a table of which
(output slot, combination) lines it covers, a cap is its limit, share and
highest-only flag, a transfer its categories and mode, a minimum its measure
and target.  A policy with a target form this module does not know is not
compiled (:func:`program` returns None) and keeps the NumPy stage.
``tests/test_batch.py`` checks both formulations against the engine.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from xuefen.policy.schema import Cap, Minimum, Target

from .compile import CompiledPolicy, frac, milli_of
from .stage2 import Scope, TeacherState

CREDITS_M, EARNED_M, HOURS_M, COUNT_M = range(4)
TOTAL_T, CATEGORY_T, CATEGORIES_T, MASK_T = range(4)
MEASURES = {"credits": CREDITS_M, "earned_credits": EARNED_M, "hours": HOURS_M, "count": COUNT_M}


@dataclass
class Program:
    """A policy's caps, transfers and minimums as arrays for the compiled loop."""

    targets: list[tuple[str, Target]]  # rule id -> its target, in table order
    target_index: dict[str, int]
    caps: dict[str, np.ndarray]  # per scope: [n, 5] (target, max or -1, share num, share den or 0, highest_only)
    transfers: list[Any]
    tr_to: np.ndarray
    tr_mode: np.ndarray  # 0 overflow, 1 substitute
    tr_above: np.ndarray  # thousandths, or -1: the source's own minimum is reserved
    tr_from: np.ndarray  # [n, width], -1 padded
    tr_scope: np.ndarray  # bit 1 year, bit 2 cycle


def program(comp: CompiledPolicy) -> Program | None:
    """The policy's scope rules as numbers, built once per compiled policy."""
    if comp.fused_built:
        cached: Program | None = comp.fused_program
        return cached
    with _lock:
        if not comp.fused_built:
            comp.fused_program = _build(comp)
            comp.fused_built = True
    built: Program | None = comp.fused_program
    return built


_lock = threading.Lock()


def _build(comp: CompiledPolicy) -> Program | None:
    from .stage2 import leave_minimums

    ev = comp.ev
    targets: list[tuple[str, Target]] = []
    rules: list[Cap | Minimum] = [*ev.caps, *ev.minimums, *(m for ms in leave_minimums(comp).values() for m in ms)]
    for rule in rules:
        t = rule.target
        if isinstance(t, Target):
            if sum(x is not None for x in (t.category, t.categories, t.theme, t.match)) != 1:
                return None
            targets.append((rule.id, t))
        elif t != "total":
            return None  # a target form added after this module: the NumPy stage
    index = {rid: i for i, (rid, _) in enumerate(targets)}
    caps: dict[str, np.ndarray] = {}
    for scope in ("year", "cycle"):
        chosen = sorted((c for c in ev.caps if c.scope == scope), key=lambda c: c.share_of_total is not None)
        rows = []
        for cap in chosen:
            limit = -1
            if cap.max is not None:
                mx = frac(cap.max) * 1000
                limit = int(mx.numerator // mx.denominator)
            sn, sd = 0, 0
            if cap.share_of_total is not None:
                s = Fraction(cap.share_of_total)
                sn, sd = s.numerator, s.denominator
            rows.append([index[cap.id], limit, sn, sd, int(cap.highest_only), 0])
        if scope == "year":
            # a cumulative cycle cap (山东 第十八条) runs on through the teacher's
            # years after each year's own caps, over her lines in the cycle, as
            # stage2's year scope applies it (column 5: one group for all years)
            for cap in ev.caps:
                if cap.cumulative:
                    assert cap.max is not None
                    mx = frac(cap.max) * 1000
                    rows.append([index[cap.id], int(mx.numerator // mx.denominator), 0, 0, 0, 1])
        caps[scope] = np.array(rows, dtype=np.int64).reshape(len(rows), 6)
    trs = list(ev.transfers)
    width = max((len(tr.from_) for tr in trs), default=1)
    tr_from = np.full((len(trs), width), -1, dtype=np.int64)
    for i, tr in enumerate(trs):
        for j, src in enumerate(tr.from_):
            tr_from[i, j] = comp.cat_index[src]
    return Program(
        targets, index, caps, trs,
        np.array([comp.cat_index[tr.to] for tr in trs], dtype=np.int64),
        np.array([0 if tr.mode == "overflow" else 1 for tr in trs], dtype=np.int64),
        np.array([milli_of(tr.above) if tr.above is not None else -1 for tr in trs], dtype=np.int64),
        tr_from,
        np.array([(1 if tr.scope in ("year", "both") else 0) | (2 if tr.scope in ("cycle", "both") else 0)
                  for tr in trs], dtype=np.int64),
    )


def target_table(comp: CompiledPolicy, prog: Program, lut: dict[str, np.ndarray], k_n: int,
                 n_c: int) -> np.ndarray | None:
    """[slot, combination]: the targets that line counts towards, bit ``i``
    for the program's target ``i``.  None when a theme target meets a theme
    taken from the record and the record's theme is not part of the
    combination, or the policy has more targets than bits."""
    if len(prog.targets) > 62:
        return None
    out = np.zeros((len(prog.targets), max(k_n, 1), n_c), dtype=np.bool_)
    for i, (rid, t) in enumerate(prog.targets):
        for k in range(k_n):
            cat = lut.get(f"cat{k}")
            if cat is None:
                continue
            if t.match is not None:
                out[i, k] = lut[f"__m:{rid}"]
            elif t.category is not None:
                out[i, k] = cat == comp.cat_index[t.category]
            elif t.categories is not None:
                out[i, k] = np.isin(cat, [comp.cat_index[c] for c in t.categories])
            else:
                fixed = lut[f"theme{k}"] == t.theme
                from_record = lut[f"theme_rec{k}"]
                if from_record.any():
                    rec = lut.get("rec_theme")
                    if rec is None:
                        return None
                    fixed = np.where(from_record, rec == t.theme, fixed)
                out[i, k] = fixed
    bits = np.zeros((max(k_n, 1), n_c), dtype=np.int64)
    for i in range(len(prog.targets)):
        bits |= out[i].astype(np.int64) << i
    return bits


def _req_table(comp: CompiledPolicy, prog: Program, reqs: list[Any]) -> np.ndarray:
    """[n, 5 + categories]: measure, target kind, category, target table row,
    match flag, then the categories of a sum of categories."""
    ncat = len(comp.categories)
    out = np.zeros((len(reqs), 5 + ncat), dtype=np.int64)
    for i, (m, _applies, _req) in enumerate(reqs):
        t = m.target
        out[i, 0] = MEASURES[m.measure]
        out[i, 3] = prog.target_index.get(m.id, -1)
        if t == "total":
            out[i, 1] = TOTAL_T
        elif t.category is not None:
            out[i, 1] = CATEGORY_T
            out[i, 2] = comp.cat_index[t.category]
        elif t.categories is not None:
            out[i, 1] = CATEGORIES_T
            for c in t.categories:
                out[i, 5 + comp.cat_index[c]] = 1
        else:
            out[i, 1] = MASK_T
        out[i, 4] = int(isinstance(t, Target) and t.match is not None)
    return out


def _reserves(comp: CompiledPolicy, reqs: list[Any], n_groups: int) -> np.ndarray:
    """[category, group]: the minimum a transfer leaves in each category (the
    last credits minimum on it that applies to the group), as the NumPy stage."""
    out = np.zeros((len(comp.categories), n_groups), dtype=np.int64)
    for m, applies, req in reqs:
        if isinstance(m.target, Target) and m.target.category and m.measure == "credits":
            ci = comp.cat_index[m.target.category]
            out[ci] = np.where(applies, req, out[ci])
    return out


def scopes(comp: CompiledPolicy, prog: Program, st: TeacherState, tm: np.ndarray, lut: dict[str, np.ndarray],
           k_n: int, preset_of: np.ndarray, tstart: np.ndarray, slot: np.ndarray, cidx: np.ndarray,
           year: np.ndarray, rank: np.ndarray, hours: tuple[np.ndarray, np.ndarray],
           days: tuple[np.ndarray, np.ndarray] | None, credits: tuple[np.ndarray, np.ndarray] | None,
           topics: tuple[np.ndarray, np.ndarray] | None) -> tuple[Scope, Scope]:
    """Both scopes of every teacher whose ``slot`` is not -1 (her row in
    ``st``); rows are clustered by teacher, ``tstart`` where each begins."""
    from . import kernels

    n_t, n_y, ncat = st.n_t, st.n_y, len(comp.categories)
    n_c = len(lut["failed"])

    def stack(prefix: str, fill: int) -> np.ndarray:
        out = np.full((max(k_n, 1), n_c), fill, dtype=np.int64)
        for k in range(k_n):
            if f"{prefix}{k}" in lut:
                out[k] = lut[f"{prefix}{k}"]
        return out

    n_tr = len(prog.transfers)
    tr_on_y = np.zeros((n_tr, n_t * n_y), dtype=np.bool_)
    tr_on_c = np.zeros((n_tr, n_t), dtype=np.bool_)
    for i, tr in enumerate(prog.transfers):
        tr_on_y[i] = st.year_on[tr.id]
        tr_on_c[i] = st.cycle_on[tr.id]
    empty_i = np.zeros(0, dtype=np.int64)
    empty_b = np.zeros(0, dtype=np.bool_)
    cnt_y = np.zeros((n_t * n_y, ncat), dtype=np.int64)
    cnt_c = np.zeros((n_t, ncat), dtype=np.int64)
    act_y = np.zeros((len(st.year_reqs), n_t * n_y), dtype=np.int64)
    act_c = np.zeros((len(st.cycle_reqs), n_t), dtype=np.int64)
    kernels.scopes(
        tstart.astype(np.int64, copy=False), slot, cidx.astype(np.int64, copy=False),
        year.astype(np.int64, copy=False), rank.astype(np.int64, copy=False),
        hours[0], hours[1], days[0] if days is not None else empty_i,
        credits[0] if credits is not None else empty_i, credits[1] if credits is not None else empty_b,
        credits is not None, topics[0].astype(np.int64, copy=False) if topics is not None else empty_i,
        stack("cat", -1), stack("num", 0), stack("den", 1), stack("qk", 0), stack("dn", 0), stack("dd", 1),
        lut["failed"].astype(np.int64, copy=False), lut["excluded"].astype(np.bool_, copy=False), preset_of, tm,
        comp.cycle_start, comp.last_year, n_y, ncat,
        st.excl_pre.astype(np.bool_, copy=False), st.start.astype(np.int64, copy=False),
        st.hire_only.reshape(-1).astype(np.bool_, copy=False),
        prog.caps["year"], prog.caps["cycle"],
        prog.tr_to, prog.tr_mode, prog.tr_above, prog.tr_from, prog.tr_scope, tr_on_y, tr_on_c,
        _reserves(comp, st.year_reqs, n_t * n_y), _reserves(comp, st.cycle_reqs, n_t),
        _req_table(comp, prog, st.year_reqs), _req_table(comp, prog, st.cycle_reqs),
        cnt_y, act_y, cnt_c, act_c)
    year_scope = Scope(cnt_y, [(m, a, r, act_y[i]) for i, (m, a, r) in enumerate(st.year_reqs)])
    cycle_scope = Scope(cnt_c, [(m, a, r, act_c[i]) for i, (m, a, r) in enumerate(st.cycle_reqs)])
    return year_scope, cycle_scope
