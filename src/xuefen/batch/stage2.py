"""Stage 2 of the batch evaluator, shared by the general and the columnar
path: per scope (NumPy over teacher-clustered arrays) ``cap`` (record by
record in the canonical order (year, record id) — a running sum clipped at
the limit), ``highest_only``, ``share_of_total``, ``transfer``, ``minimum``
(credits, earned credits, hours, count; ``applies_to``), ``waive``;
``partial_cycle``, ``leave_year`` and hire-year minimums as per-teacher
vectors; the verdicts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import polars as pl

from xuefen.engine.core import status_of
from xuefen.policy.schema import Cap, Minimum, Target

from . import kernels
from .compile import UNIT_COLUMNS, CompiledPolicy, frac, milli_of
from .stage1 import parse_leaves


def _group_sum(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Sum of integer ``values`` per key in 0..n-1, exactly (int64 throughout;
    NumPy's bincount would add in binary floating point)."""
    if kernels.ENABLED:
        result: np.ndarray = kernels.group_sum(keys.astype(np.int64, copy=False), values.astype(np.int64, copy=False), n)
        return result
    out = np.zeros(n, dtype=np.int64)
    np.add.at(out, keys, values.astype(np.int64, copy=False))
    return out


def _segments(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group id per row and group start per group, for sorted keys."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if kernels.ENABLED:
        pair: tuple[np.ndarray, np.ndarray] = kernels.segments(keys)
        return pair
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    gid = np.cumsum(np.r_[True, keys[1:] != keys[:-1]]) - 1
    return gid, starts


def _apply_cap(amount: np.ndarray, mask: np.ndarray, gid: np.ndarray, starts: np.ndarray,
               limit: np.ndarray | int | None, highest_only: bool) -> None:
    """In place: the engine's record-by-record cap over each group, in order."""
    if highest_only and len(amount):
        masked = np.where(mask, amount, -1)
        gmax = np.maximum.reduceat(masked, starts) if len(starts) else masked
        is_max = mask & (masked == gmax[gid])
        rows = np.flatnonzero(is_max)
        first = np.full(len(starts), -1, dtype=np.int64)
        if len(rows):
            _, idx = np.unique(gid[rows], return_index=True)
            first[gid[rows[idx]]] = rows[idx]
        keep = np.zeros(len(amount), dtype=bool)
        keep[first[first >= 0]] = True
        amount[mask & ~keep] = 0
    if limit is None:
        return
    if kernels.ENABLED:
        per_group = isinstance(limit, np.ndarray)
        limits = limit.astype(np.int64, copy=False) if isinstance(limit, np.ndarray) else np.array([limit], dtype=np.int64)
        kernels.apply_cap(amount, mask, gid, limits, per_group)
        return
    # only the lines the cap covers: a running sum within each group, clipped
    rows = np.flatnonzero(mask)
    if not len(rows):
        return
    a = amount[rows]
    g = gid[rows]
    s = np.cumsum(a)
    before = s - a
    first = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    base = np.repeat(before[first], np.diff(np.r_[first, len(rows)]))
    local = s - base
    lim = limit[g] if isinstance(limit, np.ndarray) else limit
    amount[rows] = np.clip(local, 0, lim) - np.clip(local - a, 0, lim)


@dataclass
class Scope:
    counted: np.ndarray  # [groups, categories]
    reqs: list[tuple[Any, np.ndarray, np.ndarray, np.ndarray]]  # (rule, applies[groups], min, actual)


Req = tuple[Any, np.ndarray, np.ndarray]  # (minimum rule, applies per group, required thousandths per group)


def _scope(comp: CompiledPolicy, scope: str, lines: dict[str, np.ndarray], amount: np.ndarray, gkey: np.ndarray,
           n_groups: int, reqs: list[Req], transfer_on: dict[str, np.ndarray],
           tmatch: dict[str, np.ndarray], in_cycle: np.ndarray | None = None) -> Scope:
    """Caps, transfers and minimums of one scope (years or the cycle) for all
    groups at once; ``amount`` is updated in place by the caps.  ``in_cycle``
    (year scope only; None = every line) marks the lines a cumulative cycle
    cap registers."""
    ev = comp.ev
    ncat = len(comp.categories)
    cat = lines["cat"]
    excluded = lines["excluded"]
    gid, starts = _segments(gkey)
    # the keys are dense group numbers for the scope: map to 0..n_groups-1
    group_index = gkey[starts] if len(starts) else np.zeros(0, dtype=np.int64)
    caps = [c for c in ev.caps if c.scope == scope]
    caps.sort(key=lambda c: c.share_of_total is not None)
    for cap in caps:
        mask = tmatch[cap.id] & ~excluded
        limit: np.ndarray | int | None = None
        if cap.max is not None:
            mx = frac(cap.max) * 1000
            limit = int(mx.numerator // mx.denominator)  # a cap is never exceeded: round down
        if cap.share_of_total is not None:
            s = Fraction(cap.share_of_total)
            if kernels.ENABLED:
                others = kernels.others_sum(gid, amount, tmatch[cap.id], excluded, len(starts))
            else:
                others = _group_sum(gid, np.where(~mask & ~excluded, amount, 0), len(starts))
            allowed = (others * s.numerator) // (s.denominator - s.numerator)
            limit = allowed if limit is None else np.minimum(allowed, limit)
        _apply_cap(amount, mask, gid, starts, limit, cap.highest_only)
    if scope == "year":
        # a cumulative cycle cap runs on through the teacher's years (the lines
        # are in canonical order, so a teacher's years follow one another)
        cumulative = [c for c in ev.caps if c.cumulative]
        if cumulative:
            t_gid, t_starts = _segments(lines["t"])
            for cap in cumulative:
                mask = tmatch[cap.id] & ~excluded
                if in_cycle is not None:
                    mask &= in_cycle
                assert cap.max is not None
                mx = frac(cap.max) * 1000
                _apply_cap(amount, mask, t_gid, t_starts, int(mx.numerator // mx.denominator), False)
    if kernels.ENABLED:
        # gkey is the group's number itself (group_index[gid] == gkey)
        counted = kernels.cell_sum(gkey, cat, ncat, amount, excluded, n_groups)
    else:
        keys = group_index[gid] * ncat + cat if len(cat) else np.zeros(0, dtype=np.int64)
        live = ~excluded
        if live.all():
            counted = _group_sum(keys, amount, n_groups * ncat)
        else:
            counted = _group_sum(keys[live], amount[live], n_groups * ncat)
    counted = counted.reshape(n_groups, ncat)
    # the engine's transfers reserve each category's minimum as it applies to the group
    mins: dict[str, np.ndarray] = {}
    for m, applies, req in reqs:
        if isinstance(m.target, Target) and m.target.category and m.measure == "credits":
            mins[m.target.category] = np.where(applies, req, mins.get(m.target.category, 0))
    for tr in ev.transfers:
        if tr.scope not in (scope, "both"):
            continue
        on = transfer_on[tr.id]
        to = comp.cat_index[tr.to]
        for src in tr.from_:
            si = comp.cat_index[src]
            reserve: Any = milli_of(tr.above) if tr.above is not None else mins.get(src, 0)
            available = np.maximum(0, counted[:, si] - reserve)
            if tr.mode == "overflow":
                move = available
            else:
                need = np.maximum(0, mins.get(tr.to, 0) - counted[:, to])
                move = np.minimum(available, need)
            move = np.where(on, move, 0)
            counted[:, si] -= move
            counted[:, to] += move
    out = []
    for m, applies, req in reqs:
        actual = _measure(comp, m, lines, amount, counted, gid, len(starts), group_index, n_groups, tmatch)
        out.append((m, applies, req, actual))
    return Scope(counted, out)


def _measure(comp: CompiledPolicy, m: Any, lines: dict[str, np.ndarray], amount: np.ndarray, counted: np.ndarray,
             gid: np.ndarray, n_local: int, group_index: np.ndarray, n_groups: int,
             tmatch: dict[str, np.ndarray]) -> np.ndarray:
    target = m.target
    excluded = lines["excluded"]
    if m.measure == "credits":
        if target == "total":
            total: np.ndarray = counted.sum(axis=1)
            return total
        if target.category is not None:
            one: np.ndarray = counted[:, comp.cat_index[target.category]].copy()
            return one
        if target.categories is not None:
            some: np.ndarray = counted[:, [comp.cat_index[c] for c in target.categories]].sum(axis=1)
            return some
        mask = tmatch[m.id] & ~excluded
        return _sum_by_group(np.where(mask, amount, 0), gid, n_local, group_index, n_groups)
    if target == "total":
        mask = np.ones(len(excluded), dtype=bool)
    elif target.match is not None:
        mask = tmatch[m.id]
    else:
        mask = tmatch[m.id] & ~excluded
    mask = mask & lines["passed"]
    if m.measure == "earned_credits":
        return _sum_by_group(np.where(mask, lines["milli"], 0), gid, n_local, group_index, n_groups)
    # hours / count: distinct records among the target lines
    rec = lines["rec"]
    if kernels.ENABLED:
        values = lines["hours"] if m.measure == "hours" else np.zeros(0, dtype=np.int64)
        local = kernels.first_line_sum(mask, rec, values, 1000, gid, n_local)
        out = np.zeros(n_groups, dtype=np.int64)
        out[group_index] = local
        return out
    first = np.zeros(len(rec), dtype=bool)
    if len(rec):
        rows = np.flatnonzero(mask)
        if len(rows):
            # a record's lines are adjacent (canonical order, outputs in turn),
            # so its first covered line is where ``rec`` changes
            r = rec[rows]
            first[rows[np.r_[True, r[1:] != r[:-1]]]] = True
    if m.measure == "hours":
        return _sum_by_group(np.where(first, lines["hours"], 0), gid, n_local, group_index, n_groups)
    return _sum_by_group(first.astype(np.int64) * 1000, gid, n_local, group_index, n_groups)


def _sum_by_group(values: np.ndarray, gid: np.ndarray, n_local: int, group_index: np.ndarray,
                  n_groups: int) -> np.ndarray:
    local = _group_sum(gid, values, n_local)
    out = np.zeros(n_groups, dtype=np.int64)
    out[group_index] = local
    return out


def target_mask_specs(comp: CompiledPolicy) -> list[tuple[str, dict[str, Any]]]:
    """Record-level masks the scope stage needs (match targets)."""
    out = []
    rules: list[Cap | Minimum] = [*comp.ev.caps, *comp.ev.minimums]
    for rule in rules:
        t = rule.target
        if isinstance(t, Target) and t.match is not None:
            out.append((f"__m:{rule.id}", t.match))
    return out


def _teacher_mask_exprs(comp: CompiledPolicy) -> list[pl.Expr]:
    # built once per policy: building them took a third of the masks' time
    if comp.teacher_mask_exprs is None:
        ev = comp.ev
        exprs = []
        for m in ev.minimums:
            exprs.append(comp.teacher_match(m.applies_to).alias(f"min:{m.id}"))
        for w in ev.waives:
            exprs.append(comp.teacher_match(w.applies_to).alias(f"waive:{w.id}"))
        for tr in ev.transfers:
            exprs.append(comp.teacher_match(tr.applies_to).alias(f"tr:{tr.id}"))
        for pc in ev.partials:
            exprs.append(comp.teacher_match(pc.applies_to).alias(f"pc:{pc.id}"))
        comp.teacher_mask_exprs = exprs
    return comp.teacher_mask_exprs


def _teacher_masks(comp: CompiledPolicy, teachers: pl.DataFrame) -> dict[str, np.ndarray]:
    exprs = _teacher_mask_exprs(comp)
    if not exprs:
        return {}
    # with_columns broadcasts a literal (an empty applies_to) to every teacher
    frame = teachers.with_columns(exprs)
    return {c: frame.get_column(c).to_numpy().astype(bool) for c in frame.columns[teachers.width:]}


def leave_table(teachers: pl.DataFrame) -> dict[int, list[tuple[int, str]]]:
    """teacher index -> [(year, kind)] for the few teachers with leave."""
    out: dict[int, list[tuple[int, str]]] = {}
    leaves = teachers.get_column("leaves").cast(pl.Utf8)
    rows = np.flatnonzero(leaves.is_not_null().to_numpy())
    for i, text in zip(rows.tolist(), leaves.gather(rows).to_list(), strict=True):
        if text:
            out[i] = [(lv.year, lv.kind) for lv in parse_leaves(text)]
    return out


def _pick(arrays: dict[str, np.ndarray], rows: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """The given rows of every array; no copy when that is every row."""
    if len(rows) == n:
        return arrays
    return {k: v[rows] for k, v in arrays.items()}

def no_lines() -> dict[str, np.ndarray]:
    lines = {k: np.zeros(0, dtype=np.int64) for k in ("t", "y", "cat", "milli", "hours", "rec")}
    lines["excluded"] = np.zeros(0, dtype=bool)
    lines["passed"] = np.zeros(0, dtype=bool)
    return lines


@dataclass
class TeacherState:
    """Per teacher (and per teacher-year, flattened ``t·n_y + y``): when her
    cycle starts, her leave and hire years, and every minimum's applicability
    and required thousandths.  Computed from the teacher frame alone, before
    any record is looked at; shared by the NumPy and the compiled scope stage."""

    n_t: int
    n_y: int
    years: np.ndarray
    start: np.ndarray  # first required year
    excl_pre: np.ndarray  # records before ``start`` left out of the cycle (partial_cycle)
    hire_only: np.ndarray  # [n_t, n_y]: the hire year before the required years (hire-year minimums)
    year_reqs: list[Req]
    cycle_reqs: list[Req]
    left: np.ndarray  # a year after the evaluation date has a yearly requirement the verdict needs
    synthetic: dict[int, list[Minimum]]
    year_on: dict[str, np.ndarray]  # transfer id -> applies, per teacher-year
    cycle_on: dict[str, np.ndarray]  # transfer id -> applies, per teacher


def teacher_state(comp: CompiledPolicy, teachers: pl.DataFrame) -> TeacherState:
    """Partial cycles, leave years, hire-year minimums, waives and each
    minimum's required amount, as per-teacher vectors."""
    ev = comp.ev
    n_t = teachers.height
    years = np.arange(comp.cycle_start, comp.last_year + 1, dtype=np.int64)
    n_y = len(years)
    ncs = comp.policy.cycle.years
    tmasks = _teacher_masks(comp, teachers)

    # --- per teacher: when her cycle starts (partial_cycle), leave years
    hired = teachers.get_column("hired_year").cast(pl.Int64).fill_null(-1).to_numpy()
    transfer = teachers.get_column("transfer_in_year").cast(pl.Int64).fill_null(-1).to_numpy()
    p_idx = np.full(n_t, -1, dtype=np.int64)
    begin = np.zeros(n_t, dtype=np.int64)
    decided = np.zeros(n_t, dtype=bool)
    for i, pc in enumerate(ev.partials):
        pm = tmasks[f"pc:{pc.id}"] & ~decided
        base = transfer if pc.start == "transfer_in_year" else hired
        b = base + 1 if pc.start == "hired_year_next" else base
        hit = pm & (base >= 0) & (b > comp.cycle_start)
        p_idx[hit] = i
        begin[hit] = b[hit]
        decided |= hit
        if pc.exclusive:
            decided |= pm
    partial = p_idx >= 0
    n_owed = np.where(partial, np.maximum(0, comp.cycle_end - begin + 1), 0)
    start = np.where(partial, begin, np.maximum(comp.cycle_start, np.maximum(hired, transfer)))
    excl_pre = partial & np.isin(p_idx, [i for i, pc in enumerate(ev.partials) if pc.pre_start_records == "exclude"])
    # Every year of the cycle, not only those up to the evaluation date: the
    # years still to come decide whether a pass is already certain (left).
    all_years = np.arange(comp.cycle_start, comp.cycle_end + 1, dtype=np.int64)
    n_all = len(all_years)
    leaves = leave_table(teachers)
    leave_idx = np.full((n_t, n_all), -1, dtype=np.int64)
    leave_years: dict[int, np.ndarray] = {}
    for li, lr in enumerate(ev.leaves):
        counts = np.zeros(n_t, dtype=np.int64)
        for t, items in leaves.items():
            counts[t] = len({y for y, k in items if k in lr.kinds and comp.cycle_start <= y <= comp.cycle_end})
            for y, k in items:
                if k in lr.kinds and comp.cycle_start <= y <= comp.cycle_end and leave_idx[t, y - comp.cycle_start] < 0:
                    leave_idx[t, y - comp.cycle_start] = li
        leave_years[li] = counts
    required = all_years[None, :] >= start[:, None]
    has_hire_minimums = any(m.scope == "hire_year" for m in ev.minimums)
    hire_all = ~required & (all_years[None, :] == hired[:, None]) & has_hire_minimums
    in_leave = (leave_idx >= 0) & required & ~hire_all
    synthetic = leave_minimums(comp)

    # --- years
    waived = _waived(comp, tmasks, n_t)
    year_reqs: list[Req] = []
    left = np.zeros(n_t, dtype=bool)

    def add(m: Minimum, applies: np.ndarray) -> None:
        nonlocal left
        now = applies[:, :n_y].reshape(-1)
        year_reqs.append((m, now, np.where(now, milli_of(m.min), 0)))
        if n_all > n_y and ev.binds(m):
            left |= applies[:, n_y:].any(axis=1)

    for m in ev.minimums:
        base = (tmasks[f"min:{m.id}"] & ~waived.get(m.id, np.zeros(n_t, dtype=bool)))[:, None]
        if m.scope == "year":
            add(m, base & required & ~in_leave & ~hire_all)
        elif m.scope == "hire_year":
            add(m, base & (all_years[None, :] == hired[:, None]) & (required | hire_all) & ~in_leave)
    for li, syns in synthetic.items():
        for syn in syns:
            add(syn, in_leave & (leave_idx == li))
    hire_only = hire_all[:, :n_y]
    t_of_year = np.repeat(np.arange(n_t), n_y)

    # --- cycle
    cycle_reqs: list[Req] = []
    for m in ev.minimums:
        if m.scope != "cycle":
            continue
        applies = tmasks[f"min:{m.id}"] & ~waived.get(m.id, np.zeros(n_t, dtype=bool))
        value = np.full(n_t, milli_of(m.min), dtype=np.int64)
        if m.measure == "credits":
            for i, pc in enumerate(ev.partials):
                sel = p_idx == i
                if not sel.any():
                    continue
                n = n_owed[sel]
                if pc.structure == "total_only":
                    if m.target == "total":
                        assert pc.per_year is not None
                        value[sel] = milli_of(pc.per_year) * n
                    else:
                        applies = applies & ~sel
                elif m.target == "total" and pc.per_year is not None:
                    value[sel] = milli_of(pc.per_year) * n
                else:
                    base_m = milli_of(m.min)
                    value[sel] = (2 * base_m * n + ncs) // (2 * ncs)
            key = "total" if m.target == "total" else (m.target.category if isinstance(m.target, Target) else None)
            if key is not None:
                for li, lr in enumerate(ev.leaves):
                    cut = lr.cycle_reduction.get(key)
                    if cut:
                        n_leave = leave_years[li]
                        value = np.where(n_leave > 0, np.maximum(0, value - milli_of(cut) * n_leave), value)
        cycle_reqs.append((m, applies, np.where(applies, value, 0)))
    return TeacherState(n_t, n_y, years, start, excl_pre, hire_only, year_reqs, cycle_reqs, left, synthetic,
                        {tr.id: tmasks[f"tr:{tr.id}"][t_of_year] for tr in ev.transfers},
                        {tr.id: tmasks[f"tr:{tr.id}"] for tr in ev.transfers})


def stage2(comp: CompiledPolicy, teachers: pl.DataFrame, lines: dict[str, np.ndarray], mcols: dict[str, np.ndarray],
            theme: Callable[[], pl.Series], with_years: bool = True) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per scope, from credited lines (NumPy arrays in canonical order, ``t``
    the teacher's row in ``teachers``, ``y`` the year's offset in the cycle):
    partial cycles, leave years, caps, transfers, minimums, verdicts."""
    st = teacher_state(comp, teachers)
    n_t, n_y = st.n_t, st.n_y
    tmatch = _line_targets(comp, lines, mcols, theme, st.synthetic)
    year_in_cycle: np.ndarray | None = None
    if st.excl_pre.any():
        in_cycle = ~(st.excl_pre[lines["t"]] & (lines["y"] + comp.cycle_start < st.start[lines["t"]]))
        year_pick = np.flatnonzero(in_cycle | st.hire_only[lines["t"], lines["y"]])
        cycle_pick = np.flatnonzero(in_cycle)
        year_in_cycle = in_cycle[year_pick]
    else:  # every line is in the cycle: no per-line gathers
        year_pick = cycle_pick = np.arange(len(lines["t"]))
    n_lines = len(lines["t"])
    year_lines = _pick(lines, year_pick, n_lines)
    year_amount = year_lines["milli"].copy()
    year_scope = _scope(comp, "year", year_lines, year_amount, year_lines["t"] * n_y + year_lines["y"], n_t * n_y,
                        st.year_reqs, st.year_on, _pick(tmatch, year_pick, n_lines), year_in_cycle)
    if len(year_pick) == n_lines:
        amount = year_amount  # year caps carry into the cycle
    else:
        amount = lines["milli"].copy()
        amount[year_pick] = year_amount
    cycle_lines = _pick(lines, cycle_pick, n_lines)
    cycle_scope = _scope(comp, "cycle", cycle_lines, amount[cycle_pick] if len(cycle_pick) < n_lines else amount,
                         cycle_lines["t"], n_t, st.cycle_reqs, st.cycle_on, _pick(tmatch, cycle_pick, n_lines))
    return verdicts(comp, teachers, st, year_scope, cycle_scope, with_years)


def verdicts(comp: CompiledPolicy, teachers: pl.DataFrame, st: TeacherState, year_scope: Scope,
             cycle_scope: Scope, with_years: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The teacher rows (and, with ``with_years``, the year rows) from the two
    scopes' counted credits and measured minimums."""
    ev = comp.ev
    n_t, n_y = st.n_t, st.n_y
    passed = np.ones(n_t, dtype=bool)
    for _m, applies, req, actual in cycle_scope.reqs:
        passed &= ~applies | (actual >= req)
    year_ok = np.ones(n_t * n_y, dtype=bool)
    year_has = np.zeros(n_t * n_y, dtype=bool)
    binding_ok = np.ones(n_t * n_y, dtype=bool)
    for m, applies, req, actual in year_scope.reqs:
        met = ~applies | (actual >= req)
        year_ok &= met
        year_has |= applies
        if ev.binds(m):
            binding_ok &= met
    passed &= binding_ok.reshape(n_t, n_y).all(axis=1) & ~st.left
    before_end = comp.as_of < dt.date(comp.cycle_end, 12, 31)
    # the status from the verdict in Polars: a NumPy array of strings was
    # slower to hand over than the rest of the row
    status = pl.when(pl.col("passed")).then(pl.lit(status_of(True, before_end))).otherwise(
        pl.lit(status_of(False, before_end)))
    out = teachers.select("teacher_id", *[c for c in UNIT_COLUMNS if c in teachers.columns]).with_columns(
        pl.Series("passed", passed)).with_columns(status.alias("status"),
        pl.Series("total_milli", cycle_scope.counted.sum(axis=1)), pl.lit(False).alias("routed"),
        *[pl.Series(f"cat:{c}", cycle_scope.counted[:, i]) for i, c in enumerate(comp.categories)],
    )
    if with_years and n_t:
        years_df = pl.DataFrame({
            "teacher_id": teachers.get_column("teacher_id").cast(pl.Utf8).gather(np.repeat(np.arange(n_t), n_y)),
            "year": np.tile(st.years, n_t),
            "__ok": year_ok, "__has": year_has,
            "total_milli": year_scope.counted.sum(axis=1),
        }).select("teacher_id", "year", pl.when(pl.col("__has")).then(pl.col("__ok")).otherwise(None).alias("passed"),
                  "total_milli")
    else:
        years_df = _NO_YEARS.clear()
    return out, years_df


_NO_YEARS = pl.DataFrame(schema={"teacher_id": pl.Utf8, "year": pl.Int64, "passed": pl.Boolean,
                                 "total_milli": pl.Int64})


def leave_minimums(comp: CompiledPolicy) -> dict[int, list[Minimum]]:
    """The engine's synthetic minimums of each leave_year rule (made once per
    policy: validating the rule objects showed in every piece)."""
    if comp.leave_minimums is None:
        out: dict[int, list[Minimum]] = {}
        for li, lr in enumerate(comp.ev.leaves):
            out[li] = [Minimum(kind="minimum", id=f"{lr.id}#{k + 1}", label=lr.label, cite=lr.cite, scope="year",
                               target=lm.target, min=lm.min) for k, lm in enumerate(lr.year_minimums)]
        comp.leave_minimums = out
    return comp.leave_minimums


def _waived(comp: CompiledPolicy, tmasks: dict[str, np.ndarray], n_t: int) -> dict[str, np.ndarray]:
    waived: dict[str, np.ndarray] = {}
    for w in comp.ev.waives:
        for rid in w.rules:
            waived[rid] = waived.get(rid, np.zeros(n_t, dtype=bool)) | tmasks[f"waive:{w.id}"]
    return waived


def _line_targets(comp: CompiledPolicy, lines: dict[str, np.ndarray], mcols: dict[str, np.ndarray],
                  theme: Callable[[], pl.Series],
                  synthetic: dict[int, list[Minimum]]) -> dict[str, np.ndarray]:
    """Per rule with a target: which lines it covers (before the excluded filter)."""
    tmatch: dict[str, np.ndarray] = {}
    rules: list[Cap | Minimum] = [*comp.ev.caps, *comp.ev.minimums, *(m for ms in synthetic.values() for m in ms)]
    for rule in rules:
        if isinstance(rule.target, Target):
            tmatch[rule.id] = target_mask(comp, rule.id, rule.target, lines, mcols, theme)
    return tmatch


def target_mask(comp: CompiledPolicy, rule_id: str, t: Target, lines: dict[str, np.ndarray],
                mcols: dict[str, np.ndarray], theme: Callable[[], pl.Series]) -> np.ndarray:
    """Which lines one rule's target covers (before the excluded filter)."""
    if t.match is not None:
        return mcols[f"__m:{rule_id}"]
    if t.theme is not None:
        return np.asarray((theme() == t.theme).fill_null(False).to_numpy(), dtype=bool)
    if t.themes is not None:
        return np.asarray(theme().is_in(t.themes).fill_null(False).to_numpy(), dtype=bool)
    if t.category is not None:
        return np.asarray(lines["cat"] == comp.cat_index[t.category])
    assert t.categories is not None
    return np.isin(lines["cat"], [comp.cat_index[c] for c in t.categories])


def crossing_teachers(comp: CompiledPolicy, lines: dict[str, np.ndarray], member: Callable[[Cap], np.ndarray],
                      n_t: int) -> np.ndarray:
    """Per teacher: has she a line in two caps that cross (they share a line
    and the one applied first has a line outside the other)?  The engine
    allocates such caps together, which no batch form does: these teachers go
    to the per-teacher engine.  Tested over every line of the cycle's years,
    a superset of the lines the engine looks at, so nobody it allocates
    together is missed."""
    out = np.zeros(n_t, dtype=bool)
    if not comp.cap_pairs or not len(lines["t"]):
        return out
    n_y = comp.last_year - comp.cycle_start + 1
    live = ~lines["excluded"]
    per_year = lines["t"] * n_y + lines["y"]
    masks: dict[str, np.ndarray] = {}
    for a, b in comp.cap_pairs:
        for cap in (a, b):
            if cap.id not in masks:
                masks[cap.id] = member(cap)
        first = masks[a.id] & live
        if not first.any():
            continue
        # a year cap's group is one teacher-year; the cycle's, the teacher
        key, n = (per_year, n_t * n_y) if a.scope == "year" else (lines["t"], n_t)
        both = np.bincount(key[first & masks[b.id]], minlength=n) > 0
        outside = np.bincount(key[first & ~masks[b.id]], minlength=n) > 0
        hit = both & outside
        out |= hit.reshape(n_t, n_y).any(axis=1) if a.scope == "year" else hit
    return out
