"""The batch evaluator's fast path: Arrow columns straight to NumPy arrays.

The Polars path of :mod:`xuefen.batch.evaluate` joins a frame of rule decisions
back onto every record and filters and sorts frames of strings; at a hundred
million records that is most of its time.  This path keeps each record as a
handful of small integers instead:

* every categorical column the policy's conditions read becomes a code per
  row (the Parquet dictionary's index, or the value's offset for a year);
  the codes of one record combine into one integer, its *combination*;
* the rules (gates, conversion, multipliers, exclusion, year attribution,
  match targets, routing) are evaluated by the very Polars expressions of the
  general path, once per combination present — a few hundred in a province —
  and become lookup tables indexed by combination;
* per record only integer arithmetic remains: a gather from the tables and
  ``credits × 1000 = round_half_up(quantity × numerator / denominator)``;
* decimals are read as their unscaled integers (thousandths), never as floats.

The lines it produces are the same arrays the general path hands to
``stage2`` (caps, transfers, minimums, verdicts), which both paths share.
Where a chunk needs something this path does not do — numeric conditions,
decimals finer than thousandths, record ids missing, teachers not contiguous —
it returns ``None`` and the caller uses the general path for that chunk;
teachers that need the per-teacher engine (completion, penalty, duplicate
record ids, leave minimums on themes) are handed to the general path, which
routes them.  ``tests/test_batch.py`` compares both paths with the engine.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from xuefen import vocab
from xuefen.errors import InputError, Problem
from xuefen.policy.schema import Ops, Target, match_items

from . import kernels
from .compile import (
    CONST,
    CREDITS,
    DAYS,
    DECIMAL_FIELDS,
    HOURS,
    HOURS_OR_DAYS,
    NUMERIC_FACTS,
    TEACHER_COLUMNS,
    TOPICS,
    UNIT_COLUMNS,
    CompiledPolicy,
    fact_column,
    kind_of,
)
from .evaluate import evaluate_chunk
from .stage1 import canonicalise, coefficient, max_outputs, parse_leaves, record_exprs, record_matches, slot_exprs
from .stage2 import crossing_teachers, stage2, target_mask, target_mask_specs, teacher_state, verdicts

# Combination ids are renumbered over the combinations present whenever the
# next column would take their range past this many; each renumbering costs
# a pass over the rows and one over the range, and a range of a few million
# (the earlier limit) cost more than the extra passes.
DENSE_LIMIT = 1 << 16


@dataclass
class Codes:
    codes: np.ndarray  # a small integer per row (any integer dtype)
    values: list[Any]  # the value each code stands for (None for null)
    dtype: Any  # Polars dtype of the values, for the combination frame
    # Where set, ``codes`` is a dictionary column's raw indices and the rows
    # this Arrow validity bitmap marks null (bit ``offset + i``) have the code
    # ``null_code`` instead: the compiled combination pass reads the bitmap
    # itself rather than have a filled copy of the column written first.
    bitmap: np.ndarray | None = None
    offset: int = 0
    null_code: int = 0

    def filled(self) -> np.ndarray:
        """The code of every row."""
        if self.bitmap is None:
            return self.codes
        out = np.empty(len(self.codes), dtype=np.int64 if self.null_code >= np.iinfo(self.codes.dtype).max
                       else self.codes.dtype)
        kernels.fill_nulls(self.codes, self.bitmap, self.offset, self.null_code, out)
        self.codes, self.bitmap = out, None
        return out

    def at(self, rows: np.ndarray) -> np.ndarray:
        """The codes of the given rows."""
        if self.bitmap is None:
            some: np.ndarray = self.codes[rows]
            return some
        bits = self.bitmap[(rows + self.offset) >> 3] >> ((rows + self.offset) & 7) & 1
        picked: np.ndarray = np.where(bits == 1, self.codes[rows].astype(np.int64), self.null_code)
        return picked


def _thresholds(expected: Any, scale: int, out: set[Fraction]) -> None:
    """Every number a condition compares a numeric fact with, in the units
    the condition sees (thousandths for decimals)."""
    if isinstance(expected, Ops):
        for v in [*(expected.in_ or []), *(expected.not_in or [])]:
            _thresholds(v, scale, out)
        for bound in (expected.lt, expected.le, expected.gt, expected.ge):
            if bound is not None:
                out.add(Fraction(bound) * scale)
    elif isinstance(expected, list):
        for v in expected:
            _thresholds(v, scale, out)
    elif expected is not None and not isinstance(expected, (bool, str)):
        out.add(Fraction(expected) * scale)
    elif isinstance(expected, str):
        try:
            out.add(Fraction(expected) * scale)
        except ValueError:
            pass


def match_columns(match: dict[str, Any] | None) -> set[str]:
    """The input columns a teacher condition (``applies_to``) reads."""
    cols = {fact_column(key) for key, _ in match_items(match)}
    return {"category" if c == "__category_id" else c for c in cols if c is not None}


class Plan:
    """What the fast path needs of one compiled policy: the columns its
    conditions read and the quantities its conversions use."""

    def __init__(self, comp: CompiledPolicy) -> None:
        self.comp = comp
        ev = comp.ev
        self.targets = target_mask_specs(comp)
        # numeric facts become codes too: the interval they fall in between the
        # numbers the policy compares them with (see _numeric_codes)
        cols: set[str] = set()
        self.numeric_keys: dict[str, set[Fraction]] = {}
        numeric = any(g.max_absence_share for g in ev.gates)  # a ratio of two facts: the general path
        route_matches = comp.route_matches
        matches = [*record_matches(comp, self.targets), *route_matches, *(a.when for a in ev.attributions)]
        for m in matches:
            for key, expected in match_items(m):
                col = fact_column(key)
                if col is None:
                    name = key.removeprefix("teacher.")
                    _thresholds(expected, 1000 if name in DECIMAL_FIELDS else 1,
                                self.numeric_keys.setdefault(name, set()))
                else:
                    cols.add(col)
        for c in ev.conversions:
            for out in ev.outputs[c.id]:
                if out.category == "@record":
                    cols.add("__category_id")
                cr = out.credits
                if cr.bands is not None:
                    numeric = True
                if cr.by is not None:
                    if cr.by.field in NUMERIC_FACTS:
                        scale = 1000 if cr.by.field in DECIMAL_FIELDS else 1
                        keys = self.numeric_keys.setdefault(cr.by.field, set())
                        for key in cr.by.values:
                            keys.add(Fraction(key) * scale)
                    else:
                        cols.add(cr.by.field)
        # a theme target over lines whose theme is the record's: the compiled
        # scope pass reads the record's theme from the combination
        themed = [t for r in [*ev.caps, *ev.minimums] if isinstance(t := getattr(r, "target", None), Target)
                  and (t.theme or t.themes)]
        if themed and any(out.theme == "@record" for c in ev.conversions for out in ev.outputs[c.id]):
            cols.add("theme")
        self.key_cols = sorted(cols)
        self.numeric = numeric
        self.numeric_cols = sorted(self.numeric_keys)
        self.route_matches = route_matches
        self.max_outputs = max_outputs(comp)
        kinds: set[int] = set()
        for c in ev.conversions:
            for out in ev.outputs[c.id]:
                if out.credits.bands is None:  # bands are numeric: the general path
                    kinds.add(coefficient(comp, out.credits)[0])
        self.kinds = kinds
        self.needs_credits = CREDITS in kinds or any(g.otherwise == "preset" for g in ev.gates)
        # leave minimums on themes or record matches are routed, as in the general path
        self.route_leaves = any(
            not (lm.target == "total" or (isinstance(lm.target, Target) and lm.target.category))
            for lr in ev.leaves for lm in lr.year_minimums)
        self.preset_of = np.array([g.otherwise == "preset" for g in ev.gates] + [False], dtype=bool)
        self._known: dict[tuple[Any, ...], int] = {}
        self._codings: dict[tuple[Any, ...], dict[int, int]] = {}
        self._all: dict[str, np.ndarray] = {}
        self._size = 0
        self._lock = threading.Lock()

    def tables(self, names: list[str], cols: list[Codes], present: np.ndarray,
               strides: list[int]) -> dict[str, np.ndarray]:
        """The rule tables for the present combinations of one chunk.  Each
        combination of values is evaluated once per run, whichever chunk
        (and whichever dictionary coding) it first appears in; chunks coded
        with the same dictionaries (one row group's) share a map from their
        combination ids to table rows."""
        coding = tuple(tuple(col.values) for col in cols)
        with self._lock:
            rows_of = self._codings.get(coding)
            if rows_of is None:
                rows_of = {}
                self._codings[coding] = rows_of
            rows = np.fromiter((rows_of.get(c, -1) for c in present.tolist()), dtype=np.int64, count=len(present))
            missing = np.flatnonzero(rows < 0)
            if len(missing):
                decoded = [(present[missing] // stride) % len(col.values) for col, stride in
                           zip(cols, strides, strict=True)]
                keys = list(zip(*(np.asarray(col.values, dtype=object)[code].tolist()
                                  for col, code in zip(cols, decoded, strict=True)), strict=True)) if cols else \
                    [()] * len(missing)
                new = [i for i, key in enumerate(keys) if key not in self._known]
                if new:
                    fresh = decision_tables(self, names, cols, present[missing[np.asarray(new, dtype=np.int64)]], strides)
                    for j, i in enumerate(new):
                        self._known[keys[i]] = self._size + j
                    self._size += len(new)
                    self._all = fresh if not self._all else {
                        k: np.concatenate([self._all[k], fresh[k]]) for k in self._all}
                for m, key in zip(missing.tolist(), keys, strict=True):
                    rows[m] = self._known[key]
                    rows_of[int(present[m])] = rows[m]
            everything = self._all
        return {k: v[rows] for k, v in everything.items()}

    def columns(self, available: list[str]) -> list[str]:
        """The input columns to read."""
        # teacher facts repeat on every row: read only those a rule looks at
        ev = self.comp.ev
        want = {"teacher_id", "record_id", "year", "hired_year", "transfer_in_year", *UNIT_COLUMNS, "hours"}
        if ev.leaves or self.route_leaves or any(a.require_leave for a in ev.attributions):
            want.add("leaves")
        applies: list[Any] = [*ev.minimums, *ev.waives, *ev.transfers, *ev.partials]
        for rule in applies:
            want |= match_columns(rule.applies_to)
        want |= {"category" if c == "__category_id" else c for c in self.key_cols}
        want |= set(self.numeric_cols)
        want |= {a.field for a in self.comp.ev.attributions}
        if self.kinds & {HOURS_OR_DAYS, DAYS}:
            want.add("days")
        if TOPICS in self.kinds:
            want.add("topics")
        if self.needs_credits:
            want.add("credits")
        return [c for c in available if c in want]


# ---------------------------------------------------------------- columns


_ENUM_MAPS: dict[str, dict[str, str]] = {}


def _enum_map(name: str) -> dict[str, str]:
    if name not in _ENUM_MAPS:
        _ENUM_MAPS[name] = {variant: canon for canon, variants in vocab.ENUMS[name].items()
                            for variant in (canon, *variants)}
    return _ENUM_MAPS[name]


def _canonical_terms(column: str, raw: list[Any]) -> tuple[list[str | None], list[int]]:
    """A dictionary's values as canonical vocabulary terms, and the codes of
    the values that are not in the vocabulary."""
    mapping = _enum_map(column)
    terms: list[str | None] = []
    unknown = []
    for code, value in enumerate(raw):
        term = mapping.get(value.strip()) if isinstance(value, str) else None
        if term is None and value is not None:
            unknown.append(code)
        terms.append(term)
    return terms, unknown


def _column(table: pa.Table, name: str) -> pa.Array:
    """One column as one array.  ``combine_chunks`` copies even a single
    chunk, and a piece of a read batch is a single chunk (with the Parquet
    driver no longer joining read batches, about 4 % of the time here)."""
    col = table.column(name)
    if col.num_chunks == 1:
        return col.chunk(0)
    return col.combine_chunks()


def _dictionary(arr: pa.Array) -> pa.DictionaryArray:
    if pa.types.is_dictionary(arr.type):
        return arr
    return pc.dictionary_encode(arr)


def _raw_indices(arr: pa.DictionaryArray) -> np.ndarray:
    """The Arrow buffer of dictionary indices itself (null rows: any value)."""
    idx = arr.indices
    width = idx.type.bit_width // 8
    dtype = np.dtype(f"{'i' if pa.types.is_signed_integer(idx.type) else 'u'}{width}")
    raw: np.ndarray = np.frombuffer(idx.buffers()[1], dtype=dtype, count=idx.offset + len(idx))[idx.offset:]
    return raw


def _nullable_codes(arr: pa.DictionaryArray, values: list[Any], dtype: Any) -> Codes:
    """Codes that read the null rows off the validity bitmap when used."""
    return Codes(_raw_indices(arr), values, dtype, np.frombuffer(arr.buffers()[0], dtype=np.uint8), arr.offset,
                  len(arr.dictionary))


def _indices(arr: pa.DictionaryArray) -> np.ndarray:
    """The dictionary index of each row, without a copy where possible (the
    Arrow buffer itself); a null row gets the index ``len(dictionary)``."""
    out = _raw_indices(arr)
    if arr.null_count:
        if kernels.ENABLED:
            return _nullable_codes(arr, [], None).filled()
        wide = len(arr.dictionary) >= np.iinfo(out.dtype).max
        out = out.astype(np.int64) if wide else out.copy()
        np.copyto(out, len(arr.dictionary), where=~_valid(arr))
    return out


def _valid(arr: pa.Array) -> np.ndarray:
    """Arrow's validity bitmap as one bool per row."""
    bitmap = arr.buffers()[0]
    if bitmap is None:
        return np.ones(len(arr), dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    valid: np.ndarray = bits[arr.offset:arr.offset + len(arr)].view(bool)
    return valid


def _codes(table: pa.Table, name: str, comp: CompiledPolicy, problems: list[Problem],
           row_offset: int | None = None) -> Codes | None:
    source = "category" if name == "__category_id" else name
    n = table.num_rows
    if source not in table.column_names:
        kind = kind_of(source)
        dtype = pl.Int64 if kind == "int" else pl.Boolean if kind == "bool" else pl.Utf8
        return Codes(np.zeros(n, dtype=np.int64), [None], dtype)
    arr = _column(table, source)
    kind = kind_of(source)
    if pa.types.is_null(arr.type):
        return Codes(np.zeros(n, dtype=np.int64), [None], pl.Boolean if kind == "bool" else
                      pl.Int64 if kind == "int" else pl.Utf8)
    if kind == "bool":
        if not pa.types.is_boolean(arr.type):
            return None
        if kernels.ENABLED:
            codes = np.empty(n, dtype=np.int8)
            has_nulls = arr.null_count > 0
            validity = np.frombuffer(arr.buffers()[0], dtype=np.uint8) if has_nulls else np.zeros(1, dtype=np.uint8)
            kernels.bool_codes(np.frombuffer(arr.buffers()[1], dtype=np.uint8), arr.offset, validity, arr.offset,
                               has_nulls, codes)
            return Codes(codes, [None, False, True], pl.Boolean)
        values = arr.fill_null(False).to_numpy(zero_copy_only=False).astype(np.int64) + 1
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        return Codes(np.where(valid, values, 0), [None, False, True], pl.Boolean)
    if kind == "int":
        if not pa.types.is_integer(arr.type):
            return None
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        v = arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        if not valid.any():
            return Codes(np.zeros(n, dtype=np.int64), [None], pl.Int64)
        lo, hi = int(v[valid].min()), int(v[valid].max())
        if hi - lo > 10_000:
            return None
        return Codes(np.where(valid, v - lo + 1, 0), [None, *range(lo, hi + 1)], pl.Int64)
    if not (pa.types.is_dictionary(arr.type) or pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return None
    d = _dictionary(arr)
    raw = d.dictionary.to_pylist()
    out = _nullable_codes(d, [], pl.Utf8) if kernels.ENABLED and d.null_count else Codes(_indices(d), [], pl.Utf8)
    if source in vocab.ENUMS:
        mapped, unknown = _canonical_terms(source, raw)
        if unknown:
            # a dictionary may hold values no row uses: only used ones are errors
            codes = out.filled()
            used = np.bincount(codes, minlength=len(raw) + 1)
            for code in unknown:
                if used[code] and len(problems) < 20:
                    first = int(np.flatnonzero(codes == code)[0])
                    problems.append(Problem(f"“{raw[code]}”不是可识别的取值（共 {int(used[code])} 行）",
                                            row=row_offset + first + 1 if row_offset is not None else None,
                                            column=source))
        raw = mapped
    elif name == "__category_id":
        raw = [comp.alias.get(v, v) if v is not None else None for v in raw]
    out.values = [*raw, None]
    return out


def _milli(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(thousandths with nulls as 0, null mask) of a decimal or integer column;
    None when the column cannot be read exactly in thousandths here."""
    n = table.num_rows
    if name not in table.column_names:
        return np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    arr = _column(table, name)
    t = arr.type
    if pa.types.is_null(t):
        return np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    if pa.types.is_integer(t):
        values = arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) * 1000
    elif pa.types.is_decimal128(t) and t.scale <= 3 and t.scale >= 0:
        # the unscaled integer is the low 64-bit word of each 128-bit value
        words = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=2 * (arr.offset + n))
        if kernels.ENABLED:
            out = np.empty(n, dtype=np.int64)
            null_out = np.empty(n, dtype=np.bool_)
            bitmap_buf = arr.buffers()[0]
            has_nulls = bitmap_buf is not None and arr.null_count > 0
            bitmap = np.frombuffer(bitmap_buf, dtype=np.uint8) if has_nulls else np.zeros(1, dtype=np.uint8)
            if not kernels.decimal_milli(words, arr.offset, n, 10 ** (3 - t.scale), bitmap, has_nulls, out, null_out):
                return None
            return out, null_out
        low = words[2 * arr.offset::2]
        if t.precision > 18:
            high = words[2 * arr.offset + 1::2]
            valid_rows = arr.is_valid().to_numpy(zero_copy_only=False)
            if np.any(valid_rows & (high != (low >> 63))):
                return None
        values = low * (10 ** (3 - t.scale))
    else:
        return None
    null = ~arr.is_valid().to_numpy(zero_copy_only=False)
    if null.any():
        values = np.where(null, 0, values)
    return values, null


def _ints(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    n = table.num_rows
    if name not in table.column_names:
        return np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    arr = _column(table, name)
    if pa.types.is_null(arr.type):
        return np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    return (arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64),
            ~arr.is_valid().to_numpy(zero_copy_only=False))



def _numeric_codes(table: pa.Table, name: str, thresholds: set[Fraction]) -> Codes | None:
    """A numeric fact as the interval it falls in.  Candidates: around every
    threshold t, the integers floor(t)-1 … ceil(t)+1; a value's code is the
    largest candidate not above it.  No threshold lies strictly between a
    candidate and the next one, nor equals a value strictly between them, so
    every comparison the policy makes gives the same answer for the value as
    for the candidate, which stands in for it in the rule tables."""
    decimal = name in DECIMAL_FIELDS
    if decimal:
        read = _milli(table, name)
        if read is None:
            return None
        values, null = read
    else:
        values, null = _ints(table, name)
    if not thresholds:  # only presence is tested: present or not
        return Codes(np.where(null, 0, 1).astype(np.int64), [None, 0], pl.Int64)
    cand: set[int] = {0}
    for t in thresholds:
        lo, hi = math.floor(t), math.ceil(t)
        cand.update((lo - 1, lo, lo + 1, hi, hi + 1))
    points = np.array(sorted(cand), dtype=np.int64)
    codes = np.searchsorted(points, values, side="right") + 1  # 1: below every candidate
    codes[null] = 0
    stand_in = [None, int(points[0]) - 1, *(int(p) for p in points)]
    return Codes(codes.astype(np.int64), stand_in, pl.Int64)

# ---------------------------------------------------------------- lookup tables


def _combinations(cols: list[Codes]) -> tuple[np.ndarray, np.ndarray, list[int]] | None:
    """(combination index per row, present combination ids, strides)."""
    cards = [len(c.values) for c in cols]
    total = math.prod(cards)
    if total >= 1 << 62:
        return None
    strides = []
    s = 1
    for card in cards:
        strides.append(s)
        s *= card
    n = len(cols[0].codes) if cols else 0
    # A running combination id over the columns so far, compacted to the
    # combinations actually present whenever the next column would make its
    # range too large for a dense table: no sort, only small tables.
    r = np.zeros(n, dtype=np.int64)
    k = 1
    for c in cols:
        card = len(c.values)
        if card == 1:
            continue
        if k * card > DENSE_LIMIT:
            r, k = _compact(r, k)
        if kernels.ENABLED and c.bitmap is not None:
            kernels.mul_add_nullable(r, card, c.codes, c.bitmap, c.offset, c.null_code)
        elif kernels.ENABLED:
            kernels.mul_add(r, card, c.codes)
        else:
            r *= card
            r += c.filled()
        k *= card
    cidx, n_present = _compact(r, k)
    rep = np.empty(n_present, dtype=np.int64)
    rep[cidx] = np.arange(n)  # one row of each combination
    present = np.zeros(n_present, dtype=np.int64)
    for c, stride in zip(cols, strides, strict=True):
        present += c.at(rep).astype(np.int64) * stride
    return cidx, present, strides


def _compact(ids: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Ids in 0..k-1 renumbered 0..m-1 over the m values present."""
    if kernels.ENABLED:
        pair: tuple[np.ndarray, int] = kernels.compact(ids, k)
        return pair
    seen = np.zeros(k, dtype=bool)
    seen[ids] = True
    values = np.flatnonzero(seen)
    index = np.zeros(k, dtype=np.int64)
    index[values] = np.arange(len(values))
    return index[ids], len(values)

def decision_tables(plan: Plan, names: list[str], cols: list[Codes], present: np.ndarray,
            strides: list[int]) -> dict[str, np.ndarray]:
    """The rule decisions per present combination, as NumPy lookup tables."""
    comp = plan.comp
    data = {}
    for name, col, stride in zip(names, cols, strides, strict=True):
        code = (present // stride) % len(col.values)
        data[name] = pl.Series(name, [col.values[c] for c in code.tolist()], dtype=col.dtype)
    frame = pl.DataFrame(data) if data else pl.DataFrame({"__dummy": np.zeros(len(present))})
    frame = frame.with_columns(record_exprs(comp, plan.targets)).with_columns(slot_exprs(comp))
    extra = []
    if plan.route_matches:
        extra.append(pl.any_horizontal([comp.match(m) for m in plan.route_matches]).alias("__route"))
    for i, a in enumerate(comp.ev.attributions):
        extra.append(comp.match(a.when).alias(f"__attr{i}"))
    if extra:
        frame = frame.with_columns(extra)

    def arr(col: str, fill: Any = 0, dtype: Any = np.int64) -> np.ndarray:
        s = frame.get_column(col)
        return np.asarray(s.fill_null(fill).to_numpy(), dtype=dtype)

    out = {
        "failed": arr("__failed", -1), "excluded": arr("__excluded", False, bool),
        "mnum": arr("__mnum", 1), "mden": arr("__mden", 1),
        "route": arr("__route", False, bool) if plan.route_matches else np.zeros(len(present), dtype=bool),
    }
    for name, _ in plan.targets:
        out[name] = arr(name, False, bool)
    for i in range(len(comp.ev.attributions)):
        out[f"attr{i}"] = arr(f"__attr{i}", False, bool)
    for k in range(plan.max_outputs):
        if f"__cat{k}" not in frame.columns:
            continue
        cats = frame.get_column(f"__cat{k}").cast(pl.Utf8)
        out[f"cat{k}"] = np.asarray(cats.replace_strict(comp.cat_index, default=-1, return_dtype=pl.Int64)
                                    .fill_null(-1).to_numpy(), dtype=np.int64)
        out[f"qk{k}"] = arr(f"__qk{k}", CONST)
        out[f"num{k}"] = arr(f"__cn{k}", 0) * out["mnum"]
        out[f"den{k}"] = arr(f"__cd{k}", 1) * out["mden"]
        out[f"dn{k}"] = arr(f"__dn{k}", 0)
        out[f"dd{k}"] = arr(f"__dd{k}", 1)
        out[f"theme_rec{k}"] = arr(f"__theme_rec{k}", False, bool)
        out[f"theme{k}"] = np.asarray(frame.get_column(f"__theme{k}").cast(pl.Utf8).to_list(), dtype=object)
    if "theme" in frame.columns:
        out["rec_theme"] = np.asarray(frame.get_column("theme").cast(pl.Utf8).to_list(), dtype=object)
    return out


# ---------------------------------------------------------------- one chunk


def evaluate_table(plan: Plan, table: pa.Table, with_years: bool = True,
                   row_offset: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """Evaluate one teacher-clustered Arrow table; None if this path does not
    apply to it (the caller then uses the general path).  ``row_offset``: the
    table's first row's place in its file, for error messages."""
    comp = plan.comp
    if plan.numeric or table.num_rows == 0:
        return None
    n = table.num_rows
    for col in ("teacher_id", "record_id"):
        if col not in table.column_names or table.column(col).null_count:
            return None
    tid = _indices(_dictionary(_column(table, "teacher_id")))
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(tid[1:], tid[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    if np.bincount(tid[starts]).max(initial=0) > 1:
        return None  # a teacher's rows are not contiguous
    t = np.cumsum(change) - 1
    n_t = len(starts)

    problems: list[Problem] = []
    cols: list[Codes] = []
    for name in plan.key_cols:
        c = _codes(table, name, comp, problems, row_offset)
        if c is None:
            return None
        cols.append(c)
    for name in plan.numeric_cols:
        c = _numeric_codes(table, name, plan.numeric_keys[name])
        if c is None:
            return None
        cols.append(c)
    names = [*plan.key_cols, *(f"__{c}_m" if c in DECIMAL_FIELDS else c for c in plan.numeric_cols)]
    if problems:
        raise InputError(problems)
    hours = _milli(table, "hours")
    days = _milli(table, "days") if plan.kinds & {HOURS_OR_DAYS, DAYS} else None
    credits = _milli(table, "credits") if plan.needs_credits else None
    if hours is None or (plan.kinds & {HOURS_OR_DAYS, DAYS} and days is None) or (plan.needs_credits and credits is None):
        return None
    topics = _ints(table, "topics") if TOPICS in plan.kinds else None
    combos = _combinations(cols)
    if combos is None:
        return None
    cidx, present, strides = combos
    lut = plan.tables(names, cols, present, strides)

    # teachers: one row each, first row's facts (as the general path)
    teachers = _teacher_frame(table, starts, row_offset)

    # routing: per teacher, as the general path's _route_mask
    route_t = np.zeros(n_t, dtype=bool)
    if plan.route_matches:
        np.logical_or.at(route_t, t, lut["route"][cidx])
    if plan.route_leaves:
        route_t |= teachers.get_column("leaves").is_not_null().to_numpy()
    rid = _dictionary(_column(table, "record_id"))
    rank_of = np.empty(len(rid.dictionary), dtype=np.int64)
    rank_of[np.asarray(pc.sort_indices(rid.dictionary).to_numpy(zero_copy_only=False))] = np.arange(len(rid.dictionary))
    rank = rank_of[_indices(rid)]
    same_t = ~change[1:]
    if np.any(same_t & (rank[1:] <= rank[:-1])):
        # record ids not increasing within each teacher: look for duplicates
        key = t * (len(rank_of) + 1) + rank
        order = np.argsort(key, kind="stable")
        sk = key[order]
        dup = np.flatnonzero(sk[1:] == sk[:-1])
        route_t[t[order[dup]]] = True

    # the year each record counts in (attribute_year: first applicable rule)
    year, year_null = _ints(table, "year")
    if year_null.any():
        return None
    attributed = year.copy()
    decided = np.zeros(n, dtype=bool)
    for i, a in enumerate(comp.ev.attributions):
        value, null = _ints(table, a.field)
        applies = lut[f"attr{i}"][cidx] & ~null & ~decided
        if a.require_leave and applies.any():
            approved = []
            leave_text = teachers.get_column("leaves")
            with_leave = np.flatnonzero(leave_text.is_not_null().to_numpy())
            for ti, text in zip(with_leave.tolist(), leave_text.gather(with_leave).to_list(), strict=True):
                if text:
                    for lv in parse_leaves(text):
                        if lv.approved and lv.kind in a.require_leave:
                            approved.append(ti * 100_000 + lv.year)
            cand = np.flatnonzero(applies)
            applies[cand] = np.isin(t[cand] * 100_000 + value[cand], np.array(approved, dtype=np.int64))
        attributed = np.where(applies, value, attributed)
        decided |= applies

    if kernels.ENABLED and (done := _fused(plan, lut, table, teachers, route_t, starts, cidx, attributed, rank,
                                           hours, days, credits, topics, with_years)) is not None:
        return done
    if route_t.any():
        keep_t = ~route_t
        rows = np.flatnonzero(keep_t[t])
        routed_rows = np.flatnonzero(route_t[t])
        routed = evaluate_chunk(comp, canonicalise(_as_polars(table.take(pa.array(routed_rows)))))
        renumber = np.cumsum(keep_t) - 1
        t = renumber[t[rows]]
        cidx, attributed, rank = cidx[rows], attributed[rows], rank[rows]
        hours = (hours[0][rows], hours[1][rows])
        days = (days[0][rows], days[1][rows]) if days is not None else None
        credits = (credits[0][rows], credits[1][rows]) if credits is not None else None
        topics = (topics[0][rows], topics[1][rows]) if topics is not None else None
        teachers = teachers.filter(pl.Series(keep_t))
        orig = rows
    else:
        routed = None
        orig = np.arange(n)

    # records of the cycle, in canonical order (teacher, year, record id)
    keep = np.flatnonzero((attributed >= comp.cycle_start) & (attributed <= comp.last_year))
    t, cidx, yr, rank = t[keep], cidx[keep], attributed[keep], rank[keep]
    rec = orig[keep]  # a line's record: its row in the table
    work = keep  # its row in the working arrays (hours, days, ...)
    # one integer per record orders it canonically: teacher, year, record id
    key = t * (comp.last_year - comp.cycle_start + 1)
    key += yr
    key -= comp.cycle_start
    key *= int(rank.max(initial=0)) + 1
    key += rank
    if len(key) > 1 and not bool(np.all(key[1:] > key[:-1])):
        # nearly sorted (a few records attributed to another year): a stable
        # sort of one integer key is adaptive, unlike lexsort
        order = np.argsort(key, kind="stable")
        # most records stay where they are: move only the others (the arrays
        # are this function's own, fresh from the selection above)
        moved = np.flatnonzero(order != np.arange(len(order)))
        source = order[moved]
        for column in (t, cidx, yr, rec, work):
            column[moved] = column[source]

    def record_theme(rows: np.ndarray) -> np.ndarray:
        if "theme" not in table.column_names:
            return np.full(len(rows), None, dtype=object)
        return np.asarray(table.column("theme").take(pa.array(rows)).cast(pa.string()).to_pylist(), dtype=object)

    lines, mcols, themes = _credit_lines(plan, lut, t, cidx, yr, rec, work, hours, days, credits, topics,
                                         record_theme)

    def theme() -> pl.Series:
        return pl.Series("__theme", themes(), dtype=pl.Utf8)

    out, years_df = stage2(comp, teachers, lines, mcols, theme, with_years)
    if comp.cap_pairs:
        crossed = crossing_teachers(
            comp, lines, lambda cap: target_mask(comp, cap.id, cap.target, lines, mcols, theme), teachers.height)
        if crossed.any():
            # their caps are allocated together: the general path sends them to the engine
            ids = teachers.get_column("teacher_id").cast(pl.Utf8).filter(pl.Series(crossed)).to_list()
            out = out.filter(~pl.col("teacher_id").is_in(ids))
            years_df = years_df.filter(~pl.col("teacher_id").is_in(ids))
            wanted = pc.is_in(table.column("teacher_id").cast(pa.string()), value_set=pa.array(ids))
            more = evaluate_chunk(comp, canonicalise(_as_polars(table.filter(wanted))))
            routed = more if routed is None else (pl.concat([routed[0], more[0]], how="vertical_relaxed"),
                                                  pl.concat([routed[1], more[1]], how="vertical_relaxed"))
    if routed is not None:
        out = pl.concat([out, routed[0].select(out.columns)], how="vertical_relaxed")
        years_df = pl.concat([years_df, routed[1]], how="vertical_relaxed")
    return out, years_df


def _fused(plan: Plan, lut: dict[str, np.ndarray], table: pa.Table, teachers: pl.DataFrame, route_t: np.ndarray,
           starts: np.ndarray, cidx: np.ndarray, attributed: np.ndarray, rank: np.ndarray, hours: Pair,
           days: Pair | None, credits: Pair | None, topics: Pair | None,
           with_years: bool) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """The piece through the compiled scope pass (:mod:`xuefen.batch.fused`);
    None where the policy has a rule that pass does not take."""
    from . import fused

    comp = plan.comp
    prog = fused.program(comp)
    if prog is None:
        return None
    k_n = max((k + 1 for k in range(plan.max_outputs) if f"cat{k}" in lut), default=0)
    tm = fused.target_table(comp, prog, lut, k_n, len(lut["failed"]))
    if tm is None:
        return None
    if comp.cap_pairs:
        route_t = route_t | _crossing(plan, lut, tm, prog.target_index, k_n, starts, table.num_rows, cidx, attributed)
    routed = None
    if route_t.any():
        rows = np.flatnonzero(np.repeat(route_t, np.diff(np.append(starts, table.num_rows))))
        routed = evaluate_chunk(comp, canonicalise(_as_polars(table.take(pa.array(rows)))))
        keep_t = ~route_t
        teachers = teachers.filter(pl.Series(keep_t))
        slot = np.where(keep_t, np.cumsum(keep_t) - 1, -1)
    else:
        slot = np.arange(len(starts), dtype=np.int64)
    st = teacher_state(comp, teachers)
    year_scope, cycle_scope = fused.scopes(comp, prog, st, tm, lut, k_n, plan.preset_of,
                                           np.append(starts, table.num_rows), slot, cidx, attributed, rank, hours,
                                           days, credits, topics)
    out, years_df = verdicts(comp, teachers, st, year_scope, cycle_scope, with_years)
    if routed is not None:
        out = pl.concat([out, routed[0].select(out.columns)], how="vertical_relaxed")
        years_df = pl.concat([years_df, routed[1]], how="vertical_relaxed")
    return out, years_df


def _crossing(plan: Plan, lut: dict[str, np.ndarray], tm: np.ndarray, target_index: dict[str, int], k_n: int,
              starts: np.ndarray, n_rows: int, cidx: np.ndarray, attributed: np.ndarray) -> np.ndarray:
    """The teachers with a line in two caps that cross (stage2.crossing_teachers),
    from the target bits of each record's combination and output slot."""
    comp = plan.comp
    n_t = len(starts)
    t_row = np.repeat(np.arange(n_t, dtype=np.int64), np.diff(np.append(starts, n_rows)))
    rows = np.flatnonzero((attributed >= comp.cycle_start) & (attributed <= comp.last_year))
    parts: dict[str, list[np.ndarray]] = {"t": [], "y": [], "excluded": [], "bits": []}
    for k in range(k_n):
        cat = lut.get(f"cat{k}")
        if cat is None:
            continue
        on = rows[cat[cidx[rows]] >= 0]
        c = cidx[on]
        parts["t"].append(t_row[on])
        parts["y"].append(attributed[on] - comp.cycle_start)
        parts["excluded"].append(lut["excluded"][c].astype(bool))
        parts["bits"].append(tm[k][c])
    if not parts["t"]:
        return np.zeros(n_t, dtype=bool)
    lines = {key: np.concatenate(v) for key, v in parts.items()}
    bits = lines["bits"]
    return crossing_teachers(comp, lines, lambda cap: ((bits >> target_index[cap.id]) & 1).astype(bool), n_t)


def _teacher_frame(table: pa.Table, starts: np.ndarray, row_offset: int | None) -> pl.DataFrame:
    """One row per teacher from the rows ``starts``: the columns and canonical
    terms ``canonicalise`` gives the general path, built in Arrow and handed
    to Polars once (several Polars calls per column cost more here than the
    rest of a piece's teacher work)."""
    idx = pa.array(starts)
    names = ["teacher_id", *TEACHER_COLUMNS, "leaves", *[c for c in UNIT_COLUMNS if c in table.column_names]]
    arrays: list[pa.Array] = []
    problems: list[Problem] = []
    for col in names:
        kind = kind_of(col)
        if col not in table.column_names or pa.types.is_null(table.schema.field(col).type):
            arrays.append(pa.nulls(len(starts), pa.int64() if kind == "int" else pa.bool_() if kind == "bool"
                                   else pa.string()))
            continue
        arr = _column(table, col).take(idx)
        if col in vocab.ENUMS and col not in UNIT_COLUMNS:
            d = _dictionary(arr)
            raw = d.dictionary.to_pylist()
            canon, unknown = _canonical_terms(col, raw)
            for code in unknown:
                rows = np.flatnonzero(np.asarray(d.indices.fill_null(-1)) == code)
                if len(rows) and len(problems) < 20:
                    at = int(starts[rows[0]])
                    problems.append(Problem(f"“{raw[code]}”不是可识别的取值", column=col,
                                            row=row_offset + at + 1 if row_offset is not None else None))
            arr = pa.array(canon, pa.string()).take(d.indices)
        elif col in ("teacher_id", "leaves", "name"):
            arr = arr.cast(pa.string())
        arrays.append(arr)
    if problems:
        raise InputError(problems)
    frame = pl.from_arrow(pa.Table.from_arrays(arrays, names=names))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _is_identity(rows: np.ndarray) -> bool:
    """Is ``rows`` 0, 1, 2, … (the working rows all kept, in order)?"""
    return len(rows) == 0 or (rows[0] == 0 and rows[-1] == len(rows) - 1 and bool(np.all(np.diff(rows) == 1)))


def _as_polars(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


Pair = tuple[np.ndarray, np.ndarray]


def _credit_lines(plan: Plan, lut: dict[str, np.ndarray], t: np.ndarray, cidx: np.ndarray, yr: np.ndarray,
                  rec: np.ndarray, work: np.ndarray, hours: Pair, days: Pair | None, credits: Pair | None,
                  topics: Pair | None, record_theme: Callable[[np.ndarray], np.ndarray],
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Callable[[], list[Any]]]:
    """Credited lines (one per record and conversion output), as the general
    path's ``_lines`` + ``_finish_lines`` make them."""
    comp = plan.comp
    if kernels.ENABLED:
        return _credit_lines_compiled(plan, lut, t, cidx, yr, rec, work, hours, days, credits, topics, record_theme)
    parts: list[dict[str, np.ndarray]] = []
    theme_parts: list[tuple[int, np.ndarray, np.ndarray]] = []
    n = len(cidx)
    # the tables hold only combinations present in this chunk, so a property
    # of every table entry is a property of every record
    any_failed = bool(np.any(lut["failed"] >= 0))
    any_excluded = bool(np.any(lut["excluded"]))
    for k in range(plan.max_outputs):
        if f"cat{k}" not in lut:
            continue
        cat_lut = lut[f"cat{k}"]
        valid = cat_lut >= 0
        if not valid.any():
            continue
        sel: np.ndarray | None
        if valid.all():
            sel, c, r = None, cidx, work
            cat = cat_lut[cidx]
        else:
            cat = cat_lut[cidx]
            sel = np.flatnonzero(cat >= 0)
            if not len(sel):
                continue
            c, r, cat = cidx[sel], work[sel], cat[sel]
        h = hours[0][r] if len(r) != len(hours[0]) or not _is_identity(r) else hours[0]
        num = lut[f"num{k}"][c]
        den = lut[f"den{k}"][c]
        qk_lut = lut[f"qk{k}"]
        kinds = set(np.unique(qk_lut[valid]).tolist())
        if kinds == {HOURS}:
            qty = h
        else:
            qk = qk_lut[c]
            h_null = hours[1][r]
            qty = np.zeros(len(c), dtype=np.int64)
            for kind in kinds:
                m = qk == kind
                if kind == CONST:
                    np.copyto(qty, 1, where=m)
                elif kind == HOURS:
                    np.copyto(qty, h, where=m)
                elif kind == HOURS_OR_DAYS:
                    assert days is not None
                    from_days = m & h_null
                    np.copyto(qty, h, where=m)
                    np.copyto(qty, days[0][r] * lut[f"dn{k}"][c], where=from_days)
                    den = np.where(from_days, den * lut[f"dd{k}"][c], den)
                elif kind == DAYS:
                    assert days is not None
                    np.copyto(qty, days[0][r], where=m)
                elif kind == TOPICS:
                    assert topics is not None
                    np.copyto(qty, topics[0][r] * 1000, where=m)
                else:
                    assert credits is not None
                    np.copyto(qty, credits[0][r], where=m)
        # credits × 1000 rounded half up: (2·q·num + den) // (2·den)
        milli = qty * num
        milli *= 2
        milli += den
        den2 = den * 2
        milli //= den2
        if any_failed:
            failed = lut["failed"][c]
            passed = failed < 0
            preset = plan.preset_of[failed] & ~passed
            if credits is not None:
                preset &= ~credits[1][r]
                milli = np.where(passed, milli, np.where(preset, credits[0][r], 0))
            else:
                milli = np.where(passed, milli, 0)
        else:
            passed = np.ones(len(c), dtype=bool)
        part = {
            "t": t if sel is None else t[sel], "y": (yr if sel is None else yr[sel]) - comp.cycle_start, "cat": cat,
            "milli": milli, "excluded": lut["excluded"][c] if any_excluded else np.zeros(len(c), dtype=bool),
            "passed": passed, "hours": h, "rec": rec if sel is None else rec[sel],
        }
        if plan.max_outputs > 1:
            part["k"] = np.full(len(c), k, dtype=np.int64)
            part["pos"] = np.arange(n) if sel is None else sel
        for name, _ in plan.targets:
            part[name] = lut[name][c]
        parts.append(part)
        theme_parts.append((k, c, part["rec"]))
    if not parts:
        empty = {k: np.zeros(0, dtype=np.int64) for k in ("t", "y", "cat", "milli", "hours", "rec")}
        empty["excluded"] = np.zeros(0, dtype=bool)
        empty["passed"] = np.zeros(0, dtype=bool)
        return empty, {name: np.zeros(0, dtype=bool) for name, _ in plan.targets}, list
    if len(parts) == 1:
        merged = parts[0]
        order = None
    else:
        merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        # a record's lines stay together, in output order, where the record stands
        order = np.lexsort((merged["k"], merged["pos"]))
        merged = {key: v[order] for key, v in merged.items()}
    lines = {key: merged[key] for key in ("t", "y", "cat", "milli", "excluded", "passed", "hours", "rec")}
    mcols = {name: merged[name] for name, _ in plan.targets}

    def themes() -> list[Any]:
        values: list[Any] = []
        for k, c, rows in theme_parts:
            fixed = lut[f"theme{k}"][c]
            from_record = lut[f"theme_rec{k}"][c]
            values.extend(np.where(from_record, record_theme(rows), fixed).tolist() if from_record.any()
                          else fixed.tolist())
        if order is not None:
            return [values[i] for i in order.tolist()]
        return values

    return lines, mcols, themes



def _credit_lines_compiled(plan: Plan, lut: dict[str, np.ndarray], t: np.ndarray, cidx: np.ndarray, yr: np.ndarray,
                           rec: np.ndarray, work: np.ndarray, hours: Pair, days: Pair | None, credits: Pair | None,
                           topics: Pair | None, record_theme: Callable[[np.ndarray], np.ndarray],
                           ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Callable[[], list[Any]]]:
    """``_credit_lines`` in one compiled pass (``kernels.credit_lines``)."""
    comp = plan.comp
    n_c = len(lut["failed"])
    ks = [k for k in range(plan.max_outputs) if f"cat{k}" in lut]
    k_n = max(ks, default=-1) + 1

    def stack(prefix: str, fill: int) -> np.ndarray:
        out = np.full((k_n, n_c), fill, dtype=np.int64)
        for k in ks:
            out[k] = lut[f"{prefix}{k}"]
        return out

    cat_l = stack("cat", -1)
    targets = [name for name, _ in plan.targets]
    targets_l = np.zeros((len(targets), n_c), dtype=np.bool_)
    for m, name in enumerate(targets):
        targets_l[m] = lut[name]
    cidx64 = cidx.astype(np.int64, copy=False)
    n_lines = kernels.count_lines(cidx64, cat_l)
    empty_i = np.zeros(0, dtype=np.int64)
    empty_b = np.zeros(0, dtype=np.bool_)
    o = {key: np.empty(n_lines, dtype=np.int64) for key in ("t", "y", "cat", "milli", "hours", "rec", "k", "c")}
    o["excluded"] = np.empty(n_lines, dtype=np.bool_)
    o["passed"] = np.empty(n_lines, dtype=np.bool_)
    o_targets = np.empty((len(targets), n_lines), dtype=np.bool_)
    kernels.credit_lines(
        cidx64, t.astype(np.int64, copy=False), yr.astype(np.int64, copy=False), rec.astype(np.int64, copy=False),
        work.astype(np.int64, copy=False), cat_l, stack("num", 0), stack("den", 1), stack("qk", CONST),
        stack("dn", 0), stack("dd", 1), lut["failed"].astype(np.int64, copy=False),
        lut["excluded"].astype(np.bool_, copy=False), plan.preset_of, targets_l,
        hours[0], hours[1], days[0] if days is not None else empty_i,
        credits[0] if credits is not None else empty_i, credits[1] if credits is not None else empty_b,
        credits is not None, topics[0].astype(np.int64, copy=False) if topics is not None else empty_i,
        comp.cycle_start, o["t"], o["y"], o["cat"], o["milli"], o["excluded"], o["passed"], o["hours"], o["rec"],
        o["k"], o["c"], o_targets)
    lines = {key: o[key] for key in ("t", "y", "cat", "milli", "excluded", "passed", "hours", "rec")}
    mcols = {name: o_targets[m] for m, name in enumerate(targets)}
    line_k, line_c, line_rec = o["k"], o["c"], o["rec"]

    def themes() -> list[Any]:
        values = np.empty(n_lines, dtype=object)
        for k in ks:
            sel = np.flatnonzero(line_k == k)
            if not len(sel):
                continue
            c = line_c[sel]
            fixed = lut[f"theme{k}"][c]
            from_record = lut[f"theme_rec{k}"][c]
            values[sel] = np.where(from_record, record_theme(line_rec[sel]), fixed) if from_record.any() else fixed
        listed: list[Any] = values.tolist()
        return listed

    return lines, mcols, themes
