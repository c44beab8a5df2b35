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
           "decimal_milli", "mul_add", "mul_add_nullable", "bool_codes", "compact", "cell_sum", "others_sum")
_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    if name not in KERNELS:
        raise AttributeError(name)
    with _lock:
        g = globals()
        if name not in g:
            from numba import njit

            # the helper first: the kernels that call it are compiled lazily, by then it is compiled too
            g["_valid_at"] = njit(cache=True, nogil=True)(_valid_at)
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
