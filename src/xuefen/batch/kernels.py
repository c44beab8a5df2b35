"""Compiled loops for the batch evaluator's hottest per-row steps.

At a hundred million records the NumPy formulation of these steps spends
most of its time moving memory: every operation is one more pass over
arrays of a quarter of a million rows, and two worker processes on this
machine share one memory bus, so a step of ten NumPy passes costs about ten
times its arithmetic.  Each function here does one such step in a single
pass, compiled by Numba.  They compute exactly what the NumPy code they
replace computed (integers only), which ``tests/test_batch.py`` checks on
random ledgers for every policy; ``XUEFEN_BATCH_KERNELS=0`` switches them
off, for comparison.

Compiled code is cached beside this file (``cache=True``): the first run on
a machine compiles for a few seconds, later runs load it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

ENABLED = os.environ.get("XUEFEN_BATCH_KERNELS", "1") != "0"

# Compiled on first use, so that a process that evaluates nothing large
# (the CLI, the web platform, the Parquet driver's parent) does not pay for
# importing Numba (about half a second here).
KERNELS = ("count_lines", "credit_lines", "segments", "apply_cap", "group_sum", "first_line_sum", "fill_nulls",
           "decimal_milli", "mul_add", "mul_add_nullable", "bool_codes", "compact", "cell_sum", "others_sum",
           "scopes")
# compiled before the kernels, which call them
HELPERS = ("_valid_at", "_cap_lines", "_scope_pass")
_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    if name not in KERNELS:
        raise AttributeError(name)
    with _lock:
        g = globals()
        if name not in g:
            from numba import njit

            # the helpers first: the kernels that call them are compiled lazily, by then they are too
            for helper in HELPERS:
                g[helper] = njit(cache=True, nogil=True)(g[helper])
            for kernel in KERNELS:
                g[kernel] = njit(cache=True, nogil=True)(g[f"_k_{kernel}"])
        return g[name]


def load() -> None:
    """Import Numba and wrap the kernels now rather than at first use (each
    still loads its compiled code from the cache at its first call)."""
    __getattr__(KERNELS[0])


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """The NumPy formulation for the block: for a few small tables, where
    loading the compiled code would cost more than it saves."""
    global ENABLED
    before = ENABLED
    ENABLED = False
    try:
        yield
    finally:
        ENABLED = before

# quantity kinds, as in evaluate.py
CONST, HOURS, HOURS_OR_DAYS, DAYS, TOPICS, CREDITS = range(6)


def _k_count_lines(cidx: np.ndarray, cat_l: np.ndarray) -> int:  # pragma: no cover - compiled
    n = 0
    k_n = cat_l.shape[0]
    for i in range(cidx.shape[0]):
        c = cidx[i]
        for k in range(k_n):
            if cat_l[k, c] >= 0:
                n += 1
    return n


def _k_credit_lines(cidx: np.ndarray, t: np.ndarray, yr: np.ndarray, rec: np.ndarray, work: np.ndarray,
                 cat_l: np.ndarray, num_l: np.ndarray, den_l: np.ndarray, qk_l: np.ndarray,
                 dn_l: np.ndarray, dd_l: np.ndarray, failed_l: np.ndarray, excluded_l: np.ndarray,
                 preset_of: np.ndarray, targets_l: np.ndarray,
                 hours: np.ndarray, hours_null: np.ndarray, days: np.ndarray, credits: np.ndarray,
                 credits_null: np.ndarray, has_credits: bool, topics: np.ndarray, cycle_start: int,
                 o_t: np.ndarray, o_y: np.ndarray, o_cat: np.ndarray, o_milli: np.ndarray,
                 o_excluded: np.ndarray, o_passed: np.ndarray, o_hours: np.ndarray, o_rec: np.ndarray,
                 o_k: np.ndarray, o_c: np.ndarray, o_targets: np.ndarray) -> None:  # pragma: no cover - compiled
    """One line per record and conversion output, records in the given
    (canonical) order and a record's outputs in turn.  Per line:
    credits × 1000 = (2·q·num + den) // (2·den), rounded half up; a record
    that failed a gate earns 0, or its preset credits where that gate says
    so and the record has them."""
    j = 0
    k_n = cat_l.shape[0]
    m_n = targets_l.shape[0]
    for i in range(cidx.shape[0]):
        c = cidx[i]
        r = work[i]
        for k in range(k_n):
            cat = cat_l[k, c]
            if cat < 0:
                continue
            h = hours[r]
            num = num_l[k, c]
            den = den_l[k, c]
            kind = qk_l[k, c]
            if kind == HOURS:
                qty = h
            elif kind == CONST:
                qty = 1
            elif kind == HOURS_OR_DAYS:
                if hours_null[r]:
                    qty = days[r] * dn_l[k, c]
                    den = den * dd_l[k, c]
                else:
                    qty = h
            elif kind == DAYS:
                qty = days[r]
            elif kind == TOPICS:
                qty = topics[r] * 1000
            else:
                qty = credits[r]
            # (2·q·num + 1) // 2 == q·num: most conversions divide by one
            milli = qty * num if den == 1 else (qty * num * 2 + den) // (den * 2)
            failed = failed_l[c]
            passed = failed < 0
            if not passed:
                if has_credits and preset_of[failed] and not credits_null[r]:
                    milli = credits[r]
                else:
                    milli = 0
            o_t[j] = t[i]
            o_y[j] = yr[i] - cycle_start
            o_cat[j] = cat
            o_milli[j] = milli
            o_excluded[j] = excluded_l[c]
            o_passed[j] = passed
            o_hours[j] = h
            o_rec[j] = rec[i]
            o_k[j] = k
            o_c[j] = c
            for m in range(m_n):
                o_targets[m, j] = targets_l[m, c]
            j += 1


def _k_segments(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Group number per row and first row per group, for sorted keys."""
    n = keys.shape[0]
    gid = np.empty(n, dtype=np.int64)
    starts = np.empty(n, dtype=np.int64)
    g = -1
    for i in range(n):
        if i == 0 or keys[i] != keys[i - 1]:
            g += 1
            starts[g] = i
        gid[i] = g
    return gid, starts[:g + 1].copy()


def _k_apply_cap(amount: np.ndarray, mask: np.ndarray, gid: np.ndarray, limits: np.ndarray,
              per_group: bool) -> None:  # pragma: no cover - compiled
    """In place, over the masked lines of each group in order: a line keeps
    what still fits under the group's limit (``limits[g]``, or ``limits[0]``
    for every group)."""
    run = 0
    previous = -1
    lim = limits[0]
    for i in range(amount.shape[0]):
        if not mask[i]:
            continue
        g = gid[i]
        if g != previous:
            run = 0
            previous = g
            if per_group:
                lim = limits[g]
        a = amount[i]
        before = run
        run += a
        after_c = min(max(run, 0), lim)
        before_c = min(max(before, 0), lim)
        amount[i] = after_c - before_c


def _k_group_sum(keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:  # pragma: no cover - compiled
    out = np.zeros(n, dtype=np.int64)
    for i in range(keys.shape[0]):
        out[keys[i]] += values[i]
    return out


def _k_first_line_sum(mask: np.ndarray, rec: np.ndarray, values: np.ndarray, constant: int, gid: np.ndarray,
                   n: int) -> np.ndarray:  # pragma: no cover - compiled
    """Per group, over the masked lines, the sum of ``values`` (or of
    ``constant`` where ``values`` is empty) at each record's first masked line:
    a record's lines are adjacent, so a record is counted once."""
    out = np.zeros(n, dtype=np.int64)
    previous = -1
    seen = False
    use_values = values.shape[0] > 0
    for i in range(mask.shape[0]):
        if not mask[i]:
            continue
        r = rec[i]
        if not seen or r != previous:
            out[gid[i]] += values[i] if use_values else constant
        previous = r
        seen = True
    return out


def _valid_at(bitmap: np.ndarray, i: int) -> bool:  # pragma: no cover - compiled
    valid: bool = (bitmap[i >> 3] >> (i & 7)) & 1 == 1
    return valid


def _k_fill_nulls(values: np.ndarray, bitmap: np.ndarray, offset: int, fill: int,
               out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out[i] = values[i]``, or ``fill`` where Arrow's validity bitmap
    (bit ``offset + i``) says the row is null."""
    for i in range(out.shape[0]):
        out[i] = values[i] if _valid_at(bitmap, offset + i) else fill


def _k_decimal_milli(words: np.ndarray, offset: int, n: int, factor: int, bitmap: np.ndarray, has_nulls: bool,
                  out: np.ndarray, null: np.ndarray) -> bool:  # pragma: no cover - compiled
    """Thousandths from Arrow decimal128 values (little-endian pairs of
    64-bit words), nulls as 0.  False if a valid value does not fit in its
    low word (the caller then reads the column another way)."""
    for i in range(n):
        valid = _valid_at(bitmap, offset + i) if has_nulls else True
        null[i] = not valid
        if valid:
            low = words[2 * (offset + i)]
            high = words[2 * (offset + i) + 1]
            if high != (low >> 63):
                return False
            out[i] = low * factor
        else:
            out[i] = 0
    return True


def _k_mul_add(r: np.ndarray, card: int, codes: np.ndarray) -> None:  # pragma: no cover - compiled
    for i in range(r.shape[0]):
        r[i] = r[i] * card + codes[i]


def _k_mul_add_nullable(r: np.ndarray, card: int, codes: np.ndarray, bitmap: np.ndarray, offset: int,
                        null_code: int) -> None:  # pragma: no cover - compiled
    """``mul_add`` with the code ``null_code`` where the validity bitmap
    (bit ``offset + i``) says the row is null."""
    for i in range(r.shape[0]):
        r[i] = r[i] * card + (codes[i] if _valid_at(bitmap, offset + i) else null_code)


def _k_bool_codes(data: np.ndarray, data_offset: int, bitmap: np.ndarray, offset: int, has_nulls: bool,
                  out: np.ndarray) -> None:  # pragma: no cover - compiled
    """A boolean column's codes from Arrow's bit-packed values: 0 null,
    1 false, 2 true."""
    for i in range(out.shape[0]):
        if has_nulls and not _valid_at(bitmap, offset + i):
            out[i] = 0
        else:
            out[i] = 2 if _valid_at(data, data_offset + i) else 1


def _k_compact(ids: np.ndarray, k: int) -> tuple[np.ndarray, int]:  # pragma: no cover - compiled
    """Ids in 0..k-1 renumbered 0..m-1 over the m values present, in order."""
    index = np.full(k, -1, dtype=np.int64)
    for i in range(ids.shape[0]):
        index[ids[i]] = 0
    m = 0
    for v in range(k):
        if index[v] == 0:
            index[v] = m
            m += 1
    out = np.empty(ids.shape[0], dtype=np.int64)
    for i in range(ids.shape[0]):
        out[i] = index[ids[i]]
    return out, m


def _k_cell_sum(gkey: np.ndarray, cat: np.ndarray, ncat: int, amount: np.ndarray, excluded: np.ndarray,
                n: int) -> np.ndarray:  # pragma: no cover - compiled
    """Counted credits per group and category: ``out[g·ncat + c]``, the
    excluded lines left out."""
    out = np.zeros(n * ncat, dtype=np.int64)
    for i in range(gkey.shape[0]):
        if not excluded[i]:
            out[gkey[i] * ncat + cat[i]] += amount[i]
    return out


def _k_others_sum(gid: np.ndarray, amount: np.ndarray, mask: np.ndarray, excluded: np.ndarray,
                  n: int) -> np.ndarray:  # pragma: no cover - compiled
    """Per group, what the lines a share cap does not cover add up to."""
    out = np.zeros(n, dtype=np.int64)
    for i in range(gid.shape[0]):
        if not mask[i] and not excluded[i]:
            out[gid[i]] += amount[i]
    return out


# ---------------------------------------------------------------- the scope pass (xuefen.batch.fused)

CREDITS_M, EARNED_M, HOURS_M, COUNT_M = range(4)
TOTAL_T, CATEGORY_T, CATEGORIES_T, MASK_T = range(4)


EXCL, PASS, INC = 1, 2, 4  # a line's flags


def _cap_lines(n: int, cycle: bool, rule: np.ndarray, n_g: int, l_y: np.ndarray, l_amt: np.ndarray,
               l_f: np.ndarray, l_bits: np.ndarray, others: np.ndarray, lim: np.ndarray, best_i: np.ndarray,
               best_v: np.ndarray, run: np.ndarray) -> None:  # pragma: no cover - compiled
    """One cap over one teacher's lines of a scope (groups: her years, or
    her cycle), as stage2's ``_scope`` and ``_apply_cap`` do it: the share
    of what the lines it does not cover add up to, then highest-only, then
    the running sum clipped at the limit, in canonical order."""
    bit = np.int64(1) << rule[0]
    limit, sn, sd, high = rule[1], rule[2], rule[3], rule[4]
    # a line the cap covers: in the scope, not excluded, in the target
    need = INC if cycle else 0
    for g in range(n_g):
        others[g] = 0
        lim[g] = limit
        best_i[g] = -1
        best_v[g] = -1
        run[g] = 0
    if sd > 0:
        for i in range(n):
            f = l_f[i]
            if (f & need) == need and not (f & EXCL) and not (l_bits[i] & bit):
                others[0 if cycle else l_y[i]] += l_amt[i]
        for g in range(n_g):
            allowed = (others[g] * sn) // (sd - sn)
            lim[g] = allowed if limit < 0 else min(allowed, limit)
    if high:
        for i in range(n):
            f = l_f[i]
            if (f & need) != need or (f & EXCL) or not (l_bits[i] & bit):
                continue
            g = 0 if cycle else l_y[i]
            if l_amt[i] > best_v[g]:
                best_v[g] = l_amt[i]
                best_i[g] = i
        for i in range(n):
            f = l_f[i]
            if (f & need) != need or (f & EXCL) or not (l_bits[i] & bit):
                continue
            if i != best_i[0 if cycle else l_y[i]]:
                l_amt[i] = 0
    if limit < 0 and sd == 0:
        return
    for i in range(n):
        f = l_f[i]
        if (f & need) != need or (f & EXCL) or not (l_bits[i] & bit):
            continue
        g = 0 if cycle else l_y[i]
        a = l_amt[i]
        before = run[g]
        run[g] += a
        lg = lim[g]
        l_amt[i] = min(max(run[g], 0), lg) - min(max(before, 0), lg)


def _scope_pass(n: int, cycle: bool, base: int, n_g: int, caps: np.ndarray, l_y: np.ndarray, l_cat: np.ndarray,
                l_milli: np.ndarray, l_amt: np.ndarray, l_f: np.ndarray, l_bits: np.ndarray, l_hours: np.ndarray,
                l_rec: np.ndarray, ncat: int, tr_to: np.ndarray, tr_mode: np.ndarray, tr_above: np.ndarray,
                tr_from: np.ndarray, tr_scope: np.ndarray, tr_on: np.ndarray, res: np.ndarray, rq: np.ndarray,
                cnt: np.ndarray, act: np.ndarray, others: np.ndarray, lim: np.ndarray, best_i: np.ndarray,
                best_v: np.ndarray, run: np.ndarray, prev: np.ndarray) -> None:  # pragma: no cover - compiled
    """Caps, counted credits, transfers and minimum measures of one scope for
    one teacher; her groups are rows ``base`` … ``base + n_g - 1`` of ``cnt``
    and of each ``act`` row."""
    for j in range(caps.shape[0]):
        # column 5: a cumulative cycle cap in the year scope, one running sum over the cycle's lines
        _cap_lines(n, cycle or caps[j, 5] == 1, caps[j], n_g, l_y, l_amt, l_f, l_bits, others, lim, best_i, best_v,
                   run)
    need = INC if cycle else 0
    for i in range(n):
        f = l_f[i]
        if (f & need) == need and not (f & EXCL):
            cnt[base + (0 if cycle else l_y[i]), l_cat[i]] += l_amt[i]
    bit = 2 if cycle else 1
    for j in range(tr_to.shape[0]):
        if not tr_scope[j] & bit:
            continue
        to = tr_to[j]
        for g in range(base, base + n_g):
            if not tr_on[j, g]:
                continue
            for k in range(tr_from.shape[1]):
                src = tr_from[j, k]
                if src < 0:
                    continue
                reserve = tr_above[j] if tr_above[j] >= 0 else res[src, g]
                move = max(0, cnt[g, src] - reserve)
                if tr_mode[j] == 1:
                    move = min(move, max(0, res[to, g] - cnt[g, to]))
                cnt[g, src] -= move
                cnt[g, to] += move
    for q in range(rq.shape[0]):
        measure, tkind, tcat, by_match = rq[q, 0], rq[q, 1], rq[q, 2], rq[q, 4]
        tbit = np.int64(1) << rq[q, 3] if rq[q, 3] >= 0 else np.int64(0)
        if measure == CREDITS_M and tkind != MASK_T:
            for g in range(base, base + n_g):
                if tkind == CATEGORY_T:
                    act[q, g] = cnt[g, tcat]
                else:
                    s = 0
                    for c in range(ncat):
                        if tkind == TOTAL_T or rq[q, 5 + c]:
                            s += cnt[g, c]
                    act[q, g] = s
            continue
        for g in range(n_g):
            prev[g] = -1
        for i in range(n):
            f = l_f[i]
            if (f & need) != need:
                continue
            if measure == CREDITS_M:
                if (f & EXCL) or not (l_bits[i] & tbit):
                    continue
                act[q, base + (0 if cycle else l_y[i])] += l_amt[i]
                continue
            if tkind != TOTAL_T:
                if not (l_bits[i] & tbit) or (not by_match and (f & EXCL)):
                    continue
            if not (f & PASS):
                continue
            g = 0 if cycle else l_y[i]
            if measure == EARNED_M:
                act[q, base + g] += l_milli[i]
            elif l_rec[i] != prev[g]:
                # a record's lines are adjacent: it counts once
                act[q, base + g] += l_hours[i] if measure == HOURS_M else 1000
                prev[g] = l_rec[i]


def _k_scopes(tstart: np.ndarray, slot: np.ndarray, cidx: np.ndarray, year: np.ndarray, rank: np.ndarray,
              hours: np.ndarray, hours_null: np.ndarray, days: np.ndarray, credits: np.ndarray,
              credits_null: np.ndarray, has_credits: bool, topics: np.ndarray,
              cat_l: np.ndarray, num_l: np.ndarray, den_l: np.ndarray, qk_l: np.ndarray, dn_l: np.ndarray,
              dd_l: np.ndarray, failed_l: np.ndarray, excluded_l: np.ndarray, preset_of: np.ndarray,
              bits_l: np.ndarray, cycle_start: int, last_year: int, n_y: int, ncat: int,
              excl_pre: np.ndarray, start: np.ndarray, hire_only: np.ndarray,
              caps_y: np.ndarray, caps_c: np.ndarray, tr_to: np.ndarray, tr_mode: np.ndarray, tr_above: np.ndarray,
              tr_from: np.ndarray, tr_scope: np.ndarray, tr_on_y: np.ndarray, tr_on_c: np.ndarray,
              res_y: np.ndarray, res_c: np.ndarray, rq_y: np.ndarray, rq_c: np.ndarray,
              cnt_y: np.ndarray, act_y: np.ndarray, cnt_c: np.ndarray,
              act_c: np.ndarray) -> None:  # pragma: no cover - compiled
    """Every teacher of a piece, one after another: her records of the cycle
    in canonical order (year, record id), her credited lines (as
    ``credit_lines``; ``bits_l[k, c]``: the targets a line of output slot
    ``k`` and combination ``c`` counts towards, one bit each), then the year
    scope and the cycle scope."""
    n_teachers = tstart.shape[0] - 1
    k_n = cat_l.shape[0]
    most = 1
    for ti in range(n_teachers):
        most = max(most, tstart[ti + 1] - tstart[ti])
    order = np.empty(most, dtype=np.int64)
    size = most * k_n
    l_y = np.empty(size, dtype=np.int64)
    l_cat = np.empty(size, dtype=np.int64)
    l_milli = np.empty(size, dtype=np.int64)
    l_amt = np.empty(size, dtype=np.int64)
    l_hours = np.empty(size, dtype=np.int64)
    l_rec = np.empty(size, dtype=np.int64)
    l_bits = np.empty(size, dtype=np.int64)
    l_f = np.empty(size, dtype=np.int64)
    g_n = max(n_y, 1)
    others = np.empty(g_n, dtype=np.int64)
    lim = np.empty(g_n, dtype=np.int64)
    best_i = np.empty(g_n, dtype=np.int64)
    best_v = np.empty(g_n, dtype=np.int64)
    run = np.empty(g_n, dtype=np.int64)
    prev = np.empty(g_n, dtype=np.int64)
    for ti in range(n_teachers):
        s = slot[ti]
        if s < 0:
            continue
        # her records of the cycle, insertion-sorted on (year, record id):
        # input in that order already costs one comparison a record
        m = 0
        for r in range(tstart[ti], tstart[ti + 1]):
            y = year[r]
            if y < cycle_start or y > last_year:
                continue
            j = m
            while j > 0:
                p = order[j - 1]
                if year[p] > y or (year[p] == y and rank[p] > rank[r]):
                    order[j] = p
                    j -= 1
                else:
                    break
            order[j] = r
            m += 1
        n = 0
        ex_pre = excl_pre[s]
        first_year = start[s]
        for i in range(m):
            r = order[i]
            c = cidx[r]
            yo = year[r] - cycle_start
            inc = not (ex_pre and year[r] < first_year)
            if not inc and not hire_only[s * n_y + yo]:
                continue  # in neither scope
            failed = failed_l[c]
            passed = failed < 0
            flags = (EXCL if excluded_l[c] else 0) | (PASS if passed else 0) | (INC if inc else 0)
            h = hours[r]
            for k in range(k_n):
                cat = cat_l[k, c]
                if cat < 0:
                    continue
                num = num_l[k, c]
                den = den_l[k, c]
                kind = qk_l[k, c]
                if kind == HOURS:
                    qty = h
                elif kind == CONST:
                    qty = 1
                elif kind == HOURS_OR_DAYS:
                    if hours_null[r]:
                        qty = days[r] * dn_l[k, c]
                        den = den * dd_l[k, c]
                    else:
                        qty = h
                elif kind == DAYS:
                    qty = days[r]
                elif kind == TOPICS:
                    qty = topics[r] * 1000
                else:
                    qty = credits[r]
                milli = qty * num if den == 1 else (qty * num * 2 + den) // (den * 2)
                if not passed:
                    if has_credits and preset_of[failed] and not credits_null[r]:
                        milli = credits[r]
                    else:
                        milli = 0
                l_y[n] = yo
                l_cat[n] = cat
                l_milli[n] = milli
                l_amt[n] = milli
                l_hours[n] = h
                l_rec[n] = i
                l_bits[n] = bits_l[k, c]
                l_f[n] = flags
                n += 1
        _scope_pass(n, False, s * n_y, n_y, caps_y, l_y, l_cat, l_milli, l_amt, l_f, l_bits, l_hours, l_rec,
                    ncat, tr_to, tr_mode, tr_above, tr_from, tr_scope, tr_on_y, res_y, rq_y, cnt_y, act_y,
                    others, lim, best_i, best_v, run, prev)
        _scope_pass(n, True, s, 1, caps_c, l_y, l_cat, l_milli, l_amt, l_f, l_bits, l_hours, l_rec,
                    ncat, tr_to, tr_mode, tr_above, tr_from, tr_scope, tr_on_c, res_c, rq_c, cnt_c, act_c,
                    others, lim, best_i, best_v, run, prev)
