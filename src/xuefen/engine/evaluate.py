"""Evaluate one teacher under one policy version.

The pipeline, each rule kind implemented once, in its own module under
:mod:`xuefen.engine.rules`, and run from the one ordered table
:data:`xuefen.engine.rules.PIPELINE`:

1. per record: attribute_year -> conversion (first match) -> gate ->
   multiplier -> exclude -> rounding to thousandths;
2. per teacher: partial_cycle (when her figures start), completion;
3. per year of the cycle, then for the cycle: the requirements (leave_year,
   waive, minimum; cycle minimums adjusted by partial_cycle, leave_year,
   penalty), caps (record level, in canonical order so input order never
   matters; share caps last), transfers between categories, the minimums'
   verdicts;
4. verdicts and shortfalls.

Year caps carry into the cycle (a credit that does not count in its year does
not count at all); transfers are re-run per scope, because they exist to meet
that scope's minimums.  Every decision, including every rule that did not
apply, is written to the trace with its citation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from operator import attrgetter
from typing import Any

from xuefen.errors import PolicyError
from xuefen.model import Record, Teacher
from xuefen.numbers import ZERO, dec, q, share
from xuefen.policy.schema import (
    AttributeYear,
    Cap,
    Completion,
    Conversion,
    Exclude,
    Gate,
    LeaveYear,
    Minimum,
    Multiplier,
    PartialCycle,
    Penalty,
    Policy,
    RuleBase,
    Target,
    Transfer,
    Waive,
    match_items,
)

from .core import (
    EARLY,
    FIELD_NAMES,
    IN_PROGRESS,
    MEASURE_UNIT,
    Context,
    Evaluation,
    Line,
    RecordResult,
    Requirement,
    ScopeResult,
    Step,
    cite_of,
    cite_text,
    compiled,
    describe_match,
    matches,
    status_of,
    target_text,
)
from .rules import PIPELINE, RuleKind
from .rules.base import (
    CycleRecordsState,
    MinimumAdjustment,
    RecordState,
    RequirementState,
    ScopeState,
    StartState,
)
from .rules.cap import crossable_caps
from .rules.leave_year import year_minimums
from .words import FIELD_WORDS, has_words, in_policy_words, stated_facts


def _phase(name: str) -> list[Any]:
    """The hooks of one phase, in the table's order."""
    return [getattr(k, name) for k in PIPELINE if getattr(k, name) is not None]


RECORD_PHASE = _phase("record")
START_PHASE = _phase("start")
CYCLE_RECORDS_PHASE = _phase("cycle_records")
REQUIREMENTS_PHASE = _phase("requirements")
ADJUST_PHASE = _phase("adjust_minimum")
CAPS_PHASE = _phase("caps")
MOVES_PHASE = _phase("moves")
MEASURE_PHASE = _phase("measure")


class Evaluator:
    def __init__(self, policy: Policy, options: dict[str, str] | None = None) -> None:
        self.policy = policy
        self.options = resolve_options(policy, options or {})
        active = [r for r in policy.rules if all(self.options.get(k) == v for k, v in r.when_option.items())]
        self.inactive = [r for r in policy.rules if r not in active]
        self.rules = active

        def kind(cls: type) -> list[Any]:
            return [r for r in active if isinstance(r, cls)]

        self.conversions: list[Conversion] = kind(Conversion)
        # built once: all_outputs() constructs models, too slow per record
        self.outputs = {c.id: c.all_outputs() for c in self.conversions}
        self._dispatch_field, self._dispatch, self._undispatched = _dispatch_table(self.conversions)
        self.gates: list[Gate] = kind(Gate)
        self.excludes: list[Exclude] = kind(Exclude)
        self.multipliers: list[Multiplier] = kind(Multiplier)
        self.attributions: list[AttributeYear] = kind(AttributeYear)
        self.caps: list[Cap] = kind(Cap)
        self.crossable = crossable_caps(self.caps)
        self.transfers: list[Transfer] = kind(Transfer)
        self.minimums: list[Minimum] = kind(Minimum)
        self.partials: list[PartialCycle] = kind(PartialCycle)
        self.leaves: list[LeaveYear] = kind(LeaveYear)
        self.waives: list[Waive] = kind(Waive)
        self.completions: list[Completion] = kind(Completion)
        self.penalties: list[Penalty] = kind(Penalty)
        # a leave year's own minimums, built once (validating models per year showed)
        self.leave_minimums: dict[str, list[Minimum]] = {lr.id: year_minimums(lr) for lr in self.leaves}
        self.category_ids = [c.id for c in policy.categories]
        self.first_year = cycle_first_year(policy, self.options)
        self._has_hire_year_minimums = any(m.scope == "hire_year" for m in self.minimums)
        # the per-record hot path calls these directly
        self._conv_test = {c.id: compiled(c.when) for c in self.conversions}
        self.gate_tests = [(g, compiled(g.when), compiled(g.require) if g.require is not None else None,
                            share(g.max_absence_share) if g.max_absence_share else None) for g in self.gates]
        self.exclude_tests = [(e, compiled(e.when)) for e in self.excludes]
        self.multiplier_tests = [(m, compiled(m.when)) for m in self.multipliers]
        self.cycle_records: list[Record] = []
        self._said: set[str] = set()
        # cumulative cycle caps: what the years so far have registered, per cap
        self.registered: dict[str, Decimal] = {}
        # a year's caps crossed: the cycle allocates all caps together too
        self.caps_crossed = False
        self._chosen: dict[str, str] = {}
        self._rewrites = has_words(policy)
        self._read_as: dict[str, str] = {}
        # The per-record decisions (which conversion, which gate fails, which
        # factors, whether excluded) read only the facts the conditions name:
        # decided once per combination of those facts, not once per record.
        record_keys: set[str] = set()
        teacher_keys: set[str] = set()
        conditions: list[dict[str, Any] | None] = [c.when for c in self.conversions]
        conditions += [g.when for g in self.gates] + [g.require for g in self.gates]
        conditions += [m.when for m in self.multipliers] + [e.when for e in self.excludes]
        for match in conditions:
            for key, _ in match_items(match):
                (teacher_keys if key.startswith("teacher.") else record_keys).add(key.removeprefix("teacher."))
        if self._dispatch_field:
            record_keys.add(self._dispatch_field)
        if any(g.max_absence_share for g in self.gates):
            record_keys |= {"hours", "absent_hours"}
        fields = sorted(record_keys)
        # one attrgetter call reads every field (a tuple when there are several)
        self._read_facts: Callable[[Record], Any] = attrgetter(*fields) if fields else (lambda record: None)
        self._teacher_fields = tuple(sorted(teacher_keys))
        self._decisions: dict[tuple[Any, ...], Any] = {}

    # -- cycle

    def cycle_for(self, year: int) -> tuple[int, int]:
        c = self.policy.cycle
        first = self.first_year
        start = first + ((year - first) // c.years) * c.years
        return start, start + c.years - 1

    def in_policy_words(self, records: list[Record]) -> list[Record]:
        """Records as the policy means them: a sub-type written as the
        category is that category with the sub-type's theme; a theme alias is
        the theme (:mod:`xuefen.engine.words`)."""
        self._read_as = {}
        if not self._rewrites:
            return records
        out = []
        for r in records:
            read = in_policy_words(self.policy, r)
            if read is not r:
                said = [f"学分类别“{r.category}”" if read.category != r.category else "",
                        f"主题“{r.theme}”" if read.theme != r.theme and r.theme is not None else ""]
                stated = stated_facts(r, read)
                shown = "，".join(f"{FIELD_WORDS.get(k, k)}{v}" for k, v in stated.items())
                whose = "的" + "".join(s for s in said if s) if any(said) else ""
                self._read_as[r.id] = (f"记录 {r.id} {whose}按本政策的说法读作"
                                       f"{read.category}{'·' + read.theme if read.theme else ''}"
                                       f"{f'（{shown}）' if shown else ''}")
            out.append(read)
        return out

    # -- what the rule kinds ask of the evaluator

    def facts(self, ctx: Context, record: Record) -> tuple[Any, ...]:
        """The facts every per-record condition reads, as a key (the cycle
        is in it: ``hired_in_cycle`` depends on it)."""
        if self._teacher_fields:
            return (ctx.cycle_start, self._read_facts(record), *(ctx.teacher_value(f) for f in self._teacher_fields))
        return (ctx.cycle_start, self._read_facts(record))

    def decided(self, kind: str, facts: tuple[Any, ...], decide: Callable[[], Any]) -> Any:
        """A per-record decision of one rule kind, made once per combination of facts."""
        key = (kind, facts)
        try:
            return self._decisions[key]
        except KeyError:
            if len(self._decisions) > 20_000:  # numeric facts in conditions: keep the memo bounded
                self._decisions.clear()
            value = self._decisions[key] = decide()
            return value

    def conversion_for(self, ctx: Context, record: Record) -> Conversion | None:
        """The first conversion that matches, looking only at those that could."""
        key = ctx.record_value(record, self._dispatch_field) if self._dispatch_field else None
        candidates = self._dispatch.get(key, self._undispatched) if isinstance(key, str) else self._undispatched
        tests = self._conv_test
        return next((c for c in candidates if tests[c.id](ctx, record)), None)

    def minimums_in(self, scope: str, year: int | None, ctx: Context, hire_only: bool) -> list[Minimum]:
        """The minimum rules of one scope (a year includes the hire year's own)."""
        hired = ctx.teacher.hired_year
        out = []
        for m in self.minimums:
            if hire_only and m.scope != "hire_year":
                continue
            if m.scope == scope or (m.scope == "hire_year" and scope == "year" and year == hired):
                out.append(m)
        return out

    def adjust_cycle_minimum(self, ctx: Context, m: Minimum, lines: list[Line],
                             partial: tuple[PartialCycle, int] | None, steps: list[Step]) -> MinimumAdjustment:
        adj = MinimumAdjustment(m, m.min, lines, partial, steps)
        for hook in ADJUST_PHASE:
            hook(self, ctx, adj)
            if adj.dropped:
                break
        return adj

    def chosen_by(self, rule: RuleBase) -> str:
        """The options that made a rule active, for its own explanation lines:
        where a text reads two ways, the reader sees which reading was used."""
        said = self._chosen.get(rule.id)
        if said is None:
            parts = []
            for key, value in rule.when_option.items():
                opt = self.policy.option(key)
                if opt is not None:
                    parts.append(f"按选项“{opt.label}”取“{opt.choices[value]}”"
                                 f"{'（默认）' if value == opt.default else '（非默认设置）'}")
            said = self._chosen[rule.id] = f"；{'；'.join(parts)}" if parts else ""
        return said

    def binds(self, rule: Minimum) -> bool:
        """Does the cycle verdict need this yearly minimum met?"""
        return rule.binds_cycle if rule.binds_cycle is not None else self.policy.cycle.requires_every_year

    def _years_left(self, ctx: Context, last: int, start_year: int,
                    partial: tuple[PartialCycle, int] | None) -> dict[int, list[Requirement]]:
        """The years after the evaluation date's with a yearly requirement
        the cycle verdict needs, and those requirements: while one is left a
        pass is not yet certain, whatever the cycle figures say.  Found by the
        same requirement phase as a year that has records, so a waiver, a
        leave year or a hire-year-only minimum counts here as it will then."""
        out: dict[int, list[Requirement]] = {}
        scratch: list[Step] = []  # a year without records explains nothing
        for y in range(last + 1, ctx.cycle_end + 1):
            required = start_year <= y
            hire_only = not required and y == ctx.teacher.hired_year and self._has_hire_year_minimums
            if not (required or hire_only):
                continue
            reqs = [r for r in self._requirements(ctx, "year", y, [], scratch, partial, hire_only)
                    if self.binds(r.rule)]
            if reqs:
                out[y] = reqs
        return out

    def _early_step(self, left: dict[int, list[Requirement]], last: int, cycle_end: int) -> Step:
        """Why a teacher who meets every requirement so far is, or is not yet,
        reported as having completed the cycle ahead of time."""
        if not left:
            after = f"{last + 1}–{cycle_end} 年没有须达到的年度要求" if last < cycle_end else "本年为周期最后一年"
            return Step("verdict", f"周期要求与已考核年度的要求均已达到，{after}：{EARLY}", scope="cycle")
        first = min(left)
        labels = "、".join(dict.fromkeys(r.rule.label for reqs in left.values() for r in reqs))
        years = "、".join(f"{y}年" for y in left)
        return Step("verdict", f"周期要求与已考核年度的要求均已达到，但{years}仍须达到年度要求（{labels}），"
                               f"周期结束前为{IN_PROGRESS}", cite=cite_of(self.policy, left[first][0].rule),
                    scope="cycle")

    def once(self, steps: list[Step], rule: RuleBase, step: Step) -> None:
        """Teacher-level facts do not change between scopes: say it once."""
        if rule.id not in self._said:
            self._said.add(rule.id)
            steps.append(step)

    def target_lines(self, ctx: Context, target: Target | str, lines: list[Line]) -> list[Line]:
        if isinstance(target, str):
            return [ln for ln in lines if not ln.excluded]
        if target.category is not None:
            return [ln for ln in lines if ln.category == target.category and not ln.excluded]
        if target.categories is not None:
            return [ln for ln in lines if ln.category in target.categories and not ln.excluded]
        if target.theme is not None:
            return [ln for ln in lines if ln.theme == target.theme and not ln.excluded]
        if target.themes is not None:
            return [ln for ln in lines if ln.theme in target.themes and not ln.excluded]
        return [ln for ln in lines if matches(ctx, target.match, ln.record)]

    # -- per record

    def _record(self, ctx: Context, index: int, record: Record, first_line: int) -> RecordResult:
        st = RecordState(index, record, first_line, record.year, self.facts(ctx, record))
        if record.id in self._read_as:
            st.steps.append(Step("words", self._read_as[record.id], record=record.id))
        for hook in RECORD_PHASE:
            hook(self, ctx, st)
        if st.raw:
            for ln in st.lines:
                value = st.raw.get(ln.idx)
                if value is not None:
                    ln.credits = q(value)
        total = sum((ln.credits for ln in st.lines if not ln.excluded), ZERO)
        category_name = st.lines[0].category if st.lines else None
        return RecordResult(record.id, st.year, total, category_name, st.lines, st.steps,
                            gate_passed=st.failed_gate is None, missing=st.missing)

    # -- scopes

    def _requirements(
        self, ctx: Context, scope: str, year: int | None, lines: list[Line], steps: list[Step],
        partial: tuple[PartialCycle, int] | None, hire_only: bool = False,
    ) -> list[Requirement]:
        rq = RequirementState(scope, year, lines, steps, partial, hire_only)
        for hook in REQUIREMENTS_PHASE:
            hook(self, ctx, rq)
        return rq.reqs

    def _scope(
        self, ctx: Context, scope: str, year: int | None, lines: list[Line], amounts: dict[int, Decimal],
        required: bool, steps: list[Step], partial: tuple[PartialCycle, int] | None, hire_only: bool = False,
    ) -> ScopeResult:
        # "earned" is what the records converted to, before any cap or transfer
        earned: dict[str, Decimal] = {c: ZERO for c in self.category_ids}
        for ln in lines:
            if not ln.excluded:
                earned[ln.category] += ln.credits
        sc = ScopeState(scope, year, lines, amounts, steps)
        for hook in CAPS_PHASE:
            hook(self, ctx, sc)
        counted: dict[str, Decimal] = {c: ZERO for c in self.category_ids}
        for ln in lines:
            if not ln.excluded:
                counted[ln.category] += amounts[ln.idx]
        sc.counted = counted
        sc.reqs = self._requirements(ctx, scope, year, lines, steps, partial, hire_only) if required else []
        for hook in MOVES_PHASE:
            hook(self, ctx, sc)
        result = ScopeResult(scope, year, required, earned, counted, sc.reqs, dict(amounts), dict(sc.cuts))
        for hook in MEASURE_PHASE:
            hook(self, ctx, sc)
        return result

    # -- whole teacher

    def _start(self, ctx: Context, steps: list[Step]) -> tuple[tuple[PartialCycle, int] | None, int]:
        st = StartState(steps, start_year=ctx.cycle_start)
        for hook in START_PHASE:
            hook(self, ctx, st)
        return st.partial, st.start_year

    def _records(self, ctx: Context, records: list[Record], as_of: dt.date, partial: tuple[PartialCycle, int] | None,
                 start_year: int) -> tuple[list[RecordResult], list[Line]]:
        """Every record through the per-record stage, each line marked as
        counted in the cycle or not, with the reason when none is."""
        cycle_start, cycle_end = ctx.cycle_start, ctx.cycle_end
        results: list[RecordResult] = []
        lines: list[Line] = []
        for i, rec in enumerate(records):
            rr = self._record(ctx, i, rec, len(lines))
            for ln in rr.lines:
                ln.counted_in_cycle = cycle_start <= ln.year <= cycle_end and ln.year <= as_of.year
                if ln.counted_in_cycle and partial is not None and partial[0].pre_start_records == "exclude" \
                        and ln.year < start_year:
                    ln.counted_in_cycle = False
            if rr.lines and not any(ln.counted_in_cycle for ln in rr.lines):
                if rr.year > as_of.year:
                    why = f"{rr.year}年晚于评估日期"
                elif cycle_start <= rr.year <= cycle_end:
                    why = f"{rr.year}年早于起算年 {start_year} 年（{partial[0].label if partial else ''}）"
                else:
                    why = f"{rr.year}年不在本周期 {cycle_start}–{cycle_end} 年内"
                rr.steps.append(Step("cycle", f"不计入本周期：{why}", record=rec.id))
            lines.extend(rr.lines)
            results.append(rr)
        return results, lines

    def price(self, teacher: Teacher, records: list[Record], as_of: dt.date) -> list[RecordResult]:
        """What each record is worth on its own: exactly the ``records`` of
        :meth:`evaluate`, without the years, the cycle and the verdict (a
        fraction of the work, for pricing records as they are entered)."""
        _check_unique(records)
        records = self.in_policy_words(records)
        cycle_start, cycle_end = self.cycle_for(as_of.year)
        ctx = Context(self.policy, teacher, cycle_start, cycle_end)
        partial, start_year = self._start(ctx, [])
        results, _ = self._records(ctx, records, as_of, partial, start_year)
        return results

    def evaluate(self, teacher: Teacher, records: list[Record], as_of: dt.date) -> Evaluation:
        p = self.policy
        cycle_start, cycle_end = self.cycle_for(as_of.year)
        ctx = Context(p, teacher, cycle_start, cycle_end)
        self._said = set()
        self.registered = {}
        self.caps_crossed = False
        steps: list[Step] = []
        warnings: list[str] = []
        _check_unique(records)
        records = self.in_policy_words(records)
        for opt in p.options:
            chosen = self.options[opt.id]
            steps.append(Step("option", f"选项“{opt.label}”取“{opt.choices[chosen]}”"
                                        f"{'（默认）' if chosen == opt.default else '（非默认设置）'}",
                              cite=cite_text(p, opt.cite if isinstance(opt.cite, list) else [opt.cite]),
                              scope="teacher"))
        steps.append(Step("cycle", f"培训周期 {cycle_start}–{cycle_end} 年，评估截至 {as_of.isoformat()}",
                          cite=cite_text(p, p.cycle.cite if isinstance(p.cycle.cite, list) else [p.cycle.cite]),
                          scope="teacher"))
        partial, start_year = self._start(ctx, steps)
        results, lines = self._records(ctx, records, as_of, partial, start_year)
        in_cycle = [ln for ln in lines if ln.counted_in_cycle]
        # The cycle's records, converted or not: a completion or a penalty
        # depends on what happened, not on credits.
        cycle_pairs = sorted(
            ((rec, rr) for rec, rr in zip(records, results, strict=True)
             if cycle_start <= rr.year <= min(cycle_end, as_of.year)
             and not (partial is not None and partial[0].pre_start_records == "exclude" and rr.year < start_year)),
            key=lambda pair: (pair[1].year, pair[0].id))
        self.cycle_records = [rec for rec, _ in cycle_pairs]
        cr = CycleRecordsState(list(cycle_pairs), steps)
        for hook in CYCLE_RECORDS_PHASE:
            hook(self, ctx, cr)
        completed_by = cr.completed_by
        # years
        amounts: dict[int, Decimal] = {ln.idx: (ZERO if ln.excluded else ln.credits) for ln in in_cycle}
        last = min(cycle_end, as_of.year)
        year_list = sorted({*range(cycle_start, last + 1), *(ln.year for ln in in_cycle)})
        years: dict[int, ScopeResult] = {}
        for y in year_list:
            year_lines = [ln for ln in in_cycle if ln.year == y]
            year_amounts = {ln.idx: amounts[ln.idx] for ln in year_lines}
            required = start_year <= y
            hire_only = not required and y == teacher.hired_year and self._has_hire_year_minimums
            if hire_only:
                # the hire year's own requirement (潍坊 第十三条 试用期) counts that year's
                # records even when the cycle figures start later
                year_lines = [ln for ln in lines if ln.year == y]
                year_amounts = {ln.idx: (ZERO if ln.excluded else ln.credits) for ln in year_lines}
            if not required:
                what = "只考核入职当年的要求" if hire_only else "不考核年度学分"
                steps.append(Step("minimum", f"{y}年{what}：早于起算年 {start_year} 年", applied=False,
                                  scope="year", year=y))
            res = self._scope(ctx, "year", y, year_lines, year_amounts, required or hire_only, steps, partial,
                              hire_only=hire_only)
            for ln in year_lines:
                if ln.idx in amounts:
                    amounts[ln.idx] = res.amounts[ln.idx]
            years[y] = res
        cycle = self._scope(ctx, "cycle", None, in_cycle, dict(amounts), True, steps, partial)
        # verdict
        before_end = as_of < dt.date(cycle_end, 12, 31)
        if completed_by is not None:
            passed = True
        else:
            passed = all(r.met for r in cycle.requirements)
            binding = [r for yr in years.values() if yr.required for r in yr.requirements if self.binds(r.rule)]
            passed = passed and all(r.met for r in binding)
            if passed and before_end:
                left = self._years_left(ctx, last, start_year, partial)
                steps.append(self._early_step(left, last, cycle_end))
                if left:
                    passed = False  # a year still to come can fail the cycle
        status = status_of(passed, before_end)
        if not any(isinstance(r, Minimum) for r in self.rules):
            warnings.append("本政策没有任何最低要求规则")
        return Evaluation(p, teacher, as_of, dict(self.options), cycle_start, cycle_end, start_year,
                          results, years, cycle, passed, status, steps, warnings)



def _check_unique(records: list[Record]) -> None:
    seen: set[str] = set()
    for r in records:
        if r.id in seen:
            raise_dup(r.id)
        seen.add(r.id)


def raise_dup(record_id: str) -> None:
    from xuefen.errors import InputError, Problem

    raise InputError(Problem(f"记录编号 {record_id} 重复", column="id"))


def _dispatch_table(conversions: list[Conversion]) -> tuple[str | None, dict[str, list[Conversion]], list[Conversion]]:
    """Index the conversions by the record field most of them test for equality
    (usually ``form``), so a record is matched only against the conversions
    that could apply to it — in their declared order, so the first match is
    the same as scanning them all."""
    counts: dict[str, int] = {}
    for c in conversions:
        for key, expected in c.when.items():
            if not key.startswith("teacher.") and _plain_strings(expected):
                counts[key] = counts.get(key, 0) + 1
    if not counts:
        return None, {}, list(conversions)
    field = max(counts, key=lambda k: counts[k])

    def wanted(c: Conversion) -> list[str] | None:
        expected: Any = c.when.get(field)
        if not _plain_strings(expected):
            return None
        return [str(v) for v in (expected if isinstance(expected, list) else [expected])]

    values = sorted({v for c in conversions for v in (wanted(c) or [])})
    undispatched = [c for c in conversions if wanted(c) is None]
    table: dict[str, list[Conversion]] = {
        value: [c for c in conversions if wanted(c) is None or value in (wanted(c) or [])] for value in values
    }
    return field, table, undispatched


def _plain_strings(expected: Any) -> bool:
    if isinstance(expected, str):
        return True
    return isinstance(expected, list) and bool(expected) and all(isinstance(v, str) for v in expected)


def cycle_first_year(policy: Policy, options: dict[str, str]) -> int:
    first = policy.cycle.first_year
    if isinstance(first, int):
        return first
    choice = options.get(first.by_option)
    if choice is None or choice not in first.values:
        raise PolicyError(f"政策 {policy.id} 的周期起始年取决于选项 {first.by_option}，但该选项取值“{choice}”没有对应年份")
    return first.values[choice]


def resolve_options(policy: Policy, chosen: dict[str, str]) -> dict[str, str]:
    out = {o.id: o.default for o in policy.options}
    for key, value in chosen.items():
        opt = policy.option(key)
        if opt is None:
            known = "、".join(o.id for o in policy.options) or "（无）"
            raise PolicyError(f"政策 {policy.id} 没有选项 {key}（可用：{known}）")
        if value not in opt.choices:
            raise PolicyError(f"选项 {key} 没有取值 {value}（可用：{'、'.join(opt.choices)}）")
        out[key] = value
    return out


def evaluate(
    policy: Policy,
    teacher: Teacher,
    records: list[Record],
    as_of: dt.date,
    options: dict[str, str] | None = None,
) -> Evaluation:
    return Evaluator(policy, options).evaluate(teacher, records, as_of)


__all__ = [
    "FIELD_NAMES",
    "MEASURE_UNIT",
    "Evaluation",
    "Evaluator",
    "RuleKind",
    "ScopeResult",
    "Step",
    "cite_text",
    "dec",
    "describe_match",
    "evaluate",
    "target_text",
]
