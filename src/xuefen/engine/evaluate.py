"""Evaluate one teacher under one policy version.

The pipeline, each stage implemented once per rule kind:

1. per record: attribute_year -> exclude -> conversion (first match) -> gate ->
   multiplier -> rounding to thousandths;
2. per year of the cycle, then for the cycle: caps (record level, in canonical
   order so input order never matters), share caps, transfers between
   categories, minimums;
3. verdicts and shortfalls.

Year caps carry into the cycle (a credit that does not count in its year does
not count at all); transfers are re-run per scope, because they exist to meet
that scope's minimums.  Every decision, including every rule that did not
apply, is written to the trace with its citation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from xuefen.errors import PolicyError
from xuefen.model import Record, Teacher
from xuefen.numbers import ZERO, dec, fmt, q, q_down, share
from xuefen.policy.schema import (
    AttributeYear,
    Cap,
    Cite,
    Completion,
    Conversion,
    Credits,
    Exclude,
    Gate,
    LeaveYear,
    Minimum,
    Multiplier,
    Ops,
    Output,
    PartialCycle,
    Penalty,
    Policy,
    RuleBase,
    Target,
    Transfer,
    Waive,
)

# ---------------------------------------------------------------- results


@dataclass(slots=True)
class Step:
    """One line of an explanation."""

    kind: str
    text: str
    applied: bool = True
    rule: str | None = None
    cite: str | None = None
    scope: str = "record"  # record / year / cycle / teacher
    year: int | None = None
    record: str | None = None

    def render(self) -> str:
        mark = "" if self.applied else "〔未适用〕"
        tail = f"（{self.cite}）" if self.cite else ""
        return f"{mark}{self.text}{tail}"


@dataclass(slots=True)
class Line:
    """One credited output of a record (a record may credit two categories)."""

    idx: int
    rec_index: int
    record: Record
    category: str
    theme: str | None
    credits: Decimal
    year: int
    counted_in_cycle: bool = True
    excluded: bool = False
    gate_passed: bool = True

    @property
    def sort_key(self) -> tuple[int, str, int]:
        return (self.year, self.record.id, self.idx)


@dataclass(slots=True)
class Requirement:
    rule: Minimum
    min: Decimal
    actual: Decimal = ZERO
    note: str = ""

    @property
    def met(self) -> bool:
        return self.actual >= self.min

    @property
    def missing(self) -> Decimal:
        return max(ZERO, self.min - self.actual)


@dataclass(slots=True)
class ScopeResult:
    scope: str
    year: int | None
    required: bool
    earned: dict[str, Decimal]
    counted: dict[str, Decimal]
    requirements: list[Requirement]
    amounts: dict[int, Decimal]

    @property
    def total(self) -> Decimal:
        return sum(self.counted.values(), ZERO)

    @property
    def passed(self) -> bool | None:
        if not self.required or not self.requirements:
            return None
        return all(r.met for r in self.requirements)


@dataclass(slots=True)
class RecordResult:
    id: str
    year: int
    credits: Decimal
    category: str | None
    lines: list[Line]
    steps: list[Step]
    gate_passed: bool = True

    @property
    def explanation(self) -> str:
        return "；".join(s.render() for s in self.steps if s.applied)


@dataclass
class Evaluation:
    policy: Policy
    teacher: Teacher
    as_of: dt.date
    options: dict[str, str]
    cycle_start: int
    cycle_end: int
    start_year: int
    records: list[RecordResult]
    years: dict[int, ScopeResult]
    cycle: ScopeResult
    passed: bool
    status: str
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return self.cycle.total

    def shortfalls(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        scopes: list[ScopeResult] = [self.cycle, *self.years.values()]
        for sc in scopes:
            if not sc.required:
                continue
            for req in sc.requirements:
                if req.met:
                    continue
                target = req.rule.target
                out.append(
                    {
                        "scope": sc.scope,
                        "year": sc.year,
                        "category": target.category if isinstance(target, Target) else None,
                        "theme": target.theme if isinstance(target, Target) else None,
                        "rule": req.rule.id,
                        "label": req.rule.label,
                        "measure": req.rule.measure,
                        "required": req.min,
                        "actual": req.actual,
                        "missing": req.missing,
                        "cite": cite_text(self.policy, req.rule.cites),
                    }
                )
        return out


# ---------------------------------------------------------------- helpers


def cite_text(policy: Policy, cites: Iterable[Cite]) -> str:
    parts = []
    for c in cites:
        section = f"{c.section}" if c.section else ""
        parts.append(f"{policy.short_name}·{section}{c.article}")
    return "；".join(parts)


_CITES: dict[tuple[int, int], tuple[RuleBase, str]] = {}


def _cite(policy: Policy, rule: RuleBase) -> str:
    # built once per rule: the text is the same for every record and teacher
    hit = _CITES.get((id(policy), id(rule)))
    if hit is None or hit[0] is not rule:
        hit = (rule, cite_text(policy, rule.cites))
        _CITES[(id(policy), id(rule))] = hit
    return hit[1]


@dataclass(frozen=True, slots=True)
class Context:
    policy: Policy
    teacher: Teacher
    cycle_start: int
    cycle_end: int

    def teacher_value(self, name: str) -> Any:
        t = self.teacher
        if name == "hired_in_cycle":
            return t.hired_year is not None and self.cycle_start <= t.hired_year <= self.cycle_end
        if name == "transferred_in_cycle":
            return (
                t.transfer_in_year is not None
                and self.cycle_start <= t.transfer_in_year <= self.cycle_end
            )
        return getattr(t, name)

    def record_value(self, record: Record, name: str) -> Any:
        value = record.get(name)
        if name == "category" and value is not None:
            cat = self.policy.category(value)
            return cat.id if cat else value
        return value


def _one(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Ops):
        if expected.present is not None and (actual is not None) != expected.present:
            return False
        if expected.in_ is not None and actual not in expected.in_:
            return False
        if expected.not_in is not None and actual in expected.not_in:
            return False
        for op in ("lt", "le", "gt", "ge"):
            bound = getattr(expected, op)
            if bound is None:
                continue
            if actual is None:
                return False
            value = Decimal(actual)
            if op == "lt" and not value < bound:
                return False
            if op == "le" and not value <= bound:
                return False
            if op == "gt" and not value > bound:
                return False
            if op == "ge" and not value >= bound:
                return False
        return True
    if isinstance(expected, list):
        return any(_one(actual, e) for e in expected)
    if expected is None:
        return actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    return bool(actual == expected)


Tester = Callable[[Any], bool]
Getter = Callable[["Context", "Record | None"], Any]

# Compiled matchers, keyed by the identity of the policy's match mapping.  The
# mapping itself is kept in the value, so its id cannot be reused while cached.
_COMPILED: dict[int, tuple[dict[str, Any], Callable[[Context, Record | None], bool]]] = {}


def _tester(expected: Any) -> Tester:
    if isinstance(expected, list) and expected and all(
        isinstance(e, (str, int, Decimal)) and not isinstance(e, bool) for e in expected
    ):
        allowed = frozenset(expected)
        return lambda actual: actual is not None and not isinstance(actual, bool) and actual in allowed
    if isinstance(expected, str):
        return lambda actual: actual == expected
    if expected is None:
        return lambda actual: actual is None
    return lambda actual: _one(actual, expected)


def _getter(key: str) -> Getter:
    if key.startswith("teacher."):
        name = key.removeprefix("teacher.")
        return lambda ctx, record: ctx.teacher_value(name)
    if key == "category":
        return lambda ctx, record: ctx.record_value(record, "category")  # type: ignore[arg-type]
    return lambda ctx, record: getattr(record, key)


def _compile(match: dict[str, Any]) -> Callable[[Context, Record | None], bool]:
    tests = [(_getter(key), _tester(expected)) for key, expected in match.items()]
    if len(tests) == 1:
        (get, test), = tests
        return lambda ctx, record: test(get(ctx, record))
    return lambda ctx, record: all(test(get(ctx, record)) for get, test in tests)


def _always(ctx: Context, record: Record | None) -> bool:
    return True


def compiled(match: dict[str, Any] | None) -> Callable[[Context, Record | None], bool]:
    """The match as a function, built once per mapping."""
    if not match:
        return _always
    hit = _COMPILED.get(id(match))
    if hit is None or hit[0] is not match:
        hit = (match, _compile(match))
        _COMPILED[id(match)] = hit
    return hit[1]


def matches(ctx: Context, match: dict[str, Any] | None, record: Record | None) -> bool:
    return compiled(match)(ctx, record)


def teacher_matches(ctx: Context, match: dict[str, Any]) -> bool:
    return all(_one(ctx.teacher_value(k.removeprefix("teacher.")), v) for k, v in match.items())


def _shown(value: Any) -> str:
    if value is True:
        return "是"
    if value is False:
        return "否"
    if value is None:
        return "未填写"
    return str(value)


def describe_match(match: dict[str, Any]) -> str:
    parts = []
    for key, value in match.items():
        if isinstance(value, list):
            shown = "/".join(_shown(v) for v in value)
        elif isinstance(value, Ops):
            ops = []
            for op, sym in (("lt", "<"), ("le", "≤"), ("gt", ">"), ("ge", "≥")):
                bound = getattr(value, op)
                if bound is not None:
                    ops.append(f"{sym}{bound}")
            if value.in_ is not None:
                ops.append("为" + "/".join(_shown(v) for v in value.in_))
            if value.not_in is not None:
                ops.append("不为" + "/".join(_shown(v) for v in value.not_in))
            if value.present is not None:
                ops.append("已填写" if value.present else "未填写")
            shown = "".join(ops)
        elif value is True:
            shown = "是"
        elif value is False:
            shown = "否"
        elif value is None:
            shown = "未填写"
        else:
            shown = str(value)
        parts.append(f"{FIELD_NAMES.get(key, key)}={shown}")
    return "，".join(parts)


FIELD_NAMES = {
    "stage": "学段",
    "post": "岗位",
    "teacher.stage": "学段",
    "teacher.post": "岗位",
    "hired_year": "首次任教年份",
    "teacher.hired_year": "首次任教年份",
    "transfer_in_year": "调入年份",
    "teacher.transfer_in_year": "调入年份",
    "hired_in_cycle": "本周期内新入职",
    "transferred_in_cycle": "本周期内调入",
    "normal_graduate": "师范类毕业",
    "teacher.normal_graduate": "师范类毕业",
    "level": "级别",
    "form": "形式",
    "location": "地点",
    "result": "考核结果",
    "role": "角色",
    "achievement": "成果类型",
    "program": "项目",
    "category": "学分类别",
    "theme": "主题",
    "approved": "经批准",
    "certificate": "取得证书",
    "subject_related": "所教学科相关",
    "education_system": "教育系统颁发",
    "year": "年度",
    "hours": "学时",
    "days": "天数",
    "words": "字数",
    "topics": "专题数",
    "credits": "认定学分",
    "completed_year": "结业年度",
    "makeup_for_year": "补修年度",
    "absent_hours": "缺勤学时",
}


def _target_text(target: Target | str) -> str:
    if isinstance(target, str):
        return "总学分"
    if target.category:
        return target.category
    if target.categories:
        return "+".join(target.categories)
    if target.theme:
        return f"主题“{target.theme}”"
    return f"[{describe_match(target.match or {})}]"


MEASURE_UNIT = {"credits": "学分", "earned_credits": "学分", "hours": "学时", "count": "次"}

# ---------------------------------------------------------------- conversion


def _convert(credits: Credits, record: Record) -> tuple[Decimal | None, str]:
    """Credits for one record by one method, with the arithmetic spelled out.
    None when a fact the method needs is missing."""
    hours = record.hours
    prefix = ""
    if hours is None and credits.day_hours is not None and record.days is not None:
        hours = record.days * credits.day_hours
        prefix = f"{fmt(record.days)}天 × {fmt(credits.day_hours)}学时/天 = {fmt(hours)}学时，"
    if credits.hours_per_credit is not None:
        if hours is None:
            return None, "缺少学时，无法换算"
        value = hours / credits.hours_per_credit
        return value, f"{prefix}{fmt(hours)}学时 ÷ {fmt(credits.hours_per_credit)}学时/学分 = {fmt(q(value))}学分"
    if credits.credits_per_hour is not None:
        if hours is None:
            return None, "缺少学时，无法换算"
        value = hours * credits.credits_per_hour
        return value, f"{prefix}{fmt(hours)}学时 × {fmt(credits.credits_per_hour)} = {fmt(q(value))}学分"
    if credits.fixed is not None:
        return credits.fixed, f"按项计 {fmt(credits.fixed)}学分"
    if credits.by is not None:
        key = record.get(credits.by.field)
        label = FIELD_NAMES.get(credits.by.field, credits.by.field)
        if key is None or str(key) not in credits.by.values:
            return None, f"{label}“{key if key is not None else '未填写'}”没有对应的学分标准"
        rate = credits.by.values[str(key)]
        if credits.by.per_hour:
            if hours is None:
                return None, "缺少学时，无法换算"
            value = hours * rate
            return value, f"{prefix}{key} {fmt(hours)}学时 × {fmt(rate)} = {fmt(q(value))}学分"
        return rate, f"{key}按项计 {fmt(rate)}学分"
    if credits.per_day is not None:
        if record.days is None:
            return None, "缺少天数，无法换算"
        value = record.days * credits.per_day
        return value, f"{fmt(record.days)}天 × {fmt(credits.per_day)}学分/天 = {fmt(q(value))}学分"
    if credits.per_topic is not None:
        if record.topics is None:
            return None, "缺少专题数，无法换算"
        value = Decimal(record.topics) * credits.per_topic
        return value, f"{record.topics}个专题 × {fmt(credits.per_topic)}学分 = {fmt(q(value))}学分"
    if credits.preset:
        if record.credits is None:
            return None, "须由认定机构填写学分（认定学分为空）"
        return record.credits, f"按认定机构确定的 {fmt(record.credits)}学分计"
    if credits.bands is not None:
        raw = record.get(credits.bands.field)
        label = FIELD_NAMES.get(credits.bands.field, credits.bands.field)
        if raw is None:
            return None, f"缺少{label}，无法确定学分档次"
        amount = Decimal(raw)
        for band in credits.bands.bands:
            if amount >= band.min and (band.max is None or amount < band.max):
                upper = f"–{fmt(band.max)}" if band.max is not None else "以上"
                return band.credits, f"{label} {fmt(amount)}，属 {fmt(band.min)}{upper} 档，计 {fmt(band.credits)}学分"
        return None, f"{label} {fmt(amount)} 不在任何学分档次内"
    raise AssertionError("schema guarantees one method")


# ---------------------------------------------------------------- evaluation


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
        self.transfers: list[Transfer] = kind(Transfer)
        self.minimums: list[Minimum] = kind(Minimum)
        self.partials: list[PartialCycle] = kind(PartialCycle)
        self.leaves: list[LeaveYear] = kind(LeaveYear)
        self.waives: list[Waive] = kind(Waive)
        self.completions: list[Completion] = kind(Completion)
        self.penalties: list[Penalty] = kind(Penalty)
        self.category_ids = [c.id for c in policy.categories]
        self.first_year = cycle_first_year(policy, self.options)
        self._has_hire_year_minimums = any(m.scope == "hire_year" for m in self.minimums)
        # the per-record hot path calls these directly
        self._conv_test = {c.id: compiled(c.when) for c in self.conversions}
        self._gate_tests = [(g, compiled(g.when), compiled(g.require) if g.require is not None else None,
                             share(g.max_absence_share) if g.max_absence_share else None) for g in self.gates]
        self._exclude_tests = [(e, compiled(e.when)) for e in self.excludes]
        self._multiplier_tests = [(m, compiled(m.when)) for m in self.multipliers]

    # -- cycle

    def cycle_for(self, year: int) -> tuple[int, int]:
        c = self.policy.cycle
        first = self.first_year
        start = first + ((year - first) // c.years) * c.years
        return start, start + c.years - 1

    # -- per record

    def _record(self, ctx: Context, index: int, record: Record, first_line: int) -> RecordResult:
        p = self.policy
        steps: list[Step] = []
        year = record.year
        for rule in self.attributions:
            target = record.get(rule.field)
            if target is None or not matches(ctx, rule.when, record):
                continue
            if rule.require_leave:
                kinds = {lv.kind for lv in ctx.teacher.leaves if lv.year == target and lv.approved}
                if not kinds & set(rule.require_leave):
                    steps.append(Step("attribute_year", f"补修记录未计入{target}年：该年无经批准的{'/'.join(rule.require_leave)}",
                                      applied=False, rule=rule.id, cite=_cite(p, rule), record=record.id))
                    continue
            steps.append(Step("attribute_year", f"计入{target}年（登记年度{record.year}年）：{rule.label}",
                              rule=rule.id, cite=_cite(p, rule), record=record.id))
            year = int(target)
            break
        failed_gate: Gate | None = None
        for gate, when, require, limit in self._gate_tests:
            if not when(ctx, record):
                continue
            ok = require(ctx, record) if require is not None else True
            if ok and limit is not None:
                absent = record.absent_hours or ZERO
                # absent / hours > limit, in exact decimals without building fractions
                if record.hours and absent * limit.denominator > record.hours * limit.numerator:
                    ok = False
            if not ok:
                failed_gate = gate
                break
        head = f"{year}年 {record.title or record.id}"
        key = ctx.record_value(record, self._dispatch_field) if self._dispatch_field else None
        candidates = self._dispatch.get(key, self._undispatched) if isinstance(key, str) else self._undispatched
        tests = self._conv_test
        conversion = next((c for c in candidates if tests[c.id](ctx, record)), None)
        if conversion is None:
            steps.append(Step("conversion", f"{head}：没有适用的换算规则，本记录不计学分", record=record.id))
            return RecordResult(record.id, year, ZERO, None, [], steps, gate_passed=failed_gate is None)
        excluded_by = next((e for e, test in self._exclude_tests if test(ctx, record)), None)
        lines: list[Line] = []
        for k, out in enumerate(self.outputs[conversion.id]):
            category = self._output_category(out, record)
            theme = record.theme if out.theme == "@record" else out.theme
            if category is None:
                why = f"{conversion.label}，但记录的学分类别“{record.category or '未填写'}”不属于本政策，不计学分"
                steps.append(Step("conversion", f"{head}：{why}",
                                  rule=conversion.id, cite=_cite(p, conversion), record=record.id))
                continue
            if failed_gate is not None:
                if failed_gate.otherwise == "preset" and record.credits is not None:
                    value: Decimal | None = record.credits
                    text = f"{head}：{failed_gate.reason}，按认定的 {fmt(record.credits)}学分计入{category}"
                else:
                    value = ZERO
                    text = f"{head}：{failed_gate.reason}，不计学分"
                steps.append(Step("gate", text, rule=failed_gate.id, cite=_cite(p, failed_gate), record=record.id))
                lines.append(Line(first_line + k, index, record, category, theme, q(value or ZERO), year, gate_passed=False))
                continue
            value, text = _convert(out.credits, record)
            if value is None:
                steps.append(Step("conversion", f"{head}：{conversion.label}，{text}，暂不计学分",
                                  rule=conversion.id, cite=_cite(p, conversion), record=record.id))
                lines.append(Line(first_line + k, index, record, category, theme, ZERO, year))
                continue
            steps.append(Step("conversion", f"{head} {conversion.label}：{text}，计入{category}{'·' + theme if theme else ''}",
                              rule=conversion.id, cite=_cite(p, conversion), record=record.id))
            for m, test in self._multiplier_tests:
                if test(ctx, record):
                    new = value * m.factor
                    steps.append(Step("multiplier", f"{m.label}：{fmt(q(value))} × {fmt(m.factor)} = {fmt(q(new))}学分",
                                      rule=m.id, cite=_cite(p, m), record=record.id))
                    value = new
            lines.append(Line(first_line + k, index, record, category, theme, q(value), year))
        if excluded_by is not None:
            for line in lines:
                line.excluded = True
            steps.append(Step("exclude", f"{excluded_by.reason}", rule=excluded_by.id,
                              cite=_cite(p, excluded_by), record=record.id))
        total = sum((ln.credits for ln in lines if not ln.excluded), ZERO)
        category_name = lines[0].category if lines else None
        return RecordResult(record.id, year, total, category_name, lines, steps, gate_passed=failed_gate is None)

    def _output_category(self, out: Output, record: Record) -> str | None:
        if out.category != "@record":
            return out.category
        if record.category is None:
            return None
        cat = self.policy.category(record.category)
        return cat.id if cat else None

    # -- requirements

    def _requirements(
        self, ctx: Context, scope: str, year: int | None, lines: list[Line], steps: list[Step],
        partial: tuple[PartialCycle, int] | None, hire_only: bool = False,
    ) -> list[Requirement]:
        p = self.policy
        t = ctx.teacher
        reqs: list[Requirement] = []
        waived: dict[str, Waive] = {}
        for w in self.waives:
            if teacher_matches(ctx, w.applies_to):
                for rid in w.rules:
                    waived[rid] = w
        leave_rule: LeaveYear | None = None
        if scope == "year" and year is not None:
            kinds = t.leave_kinds(year)
            leave_rule = next((lr for lr in self.leaves if kinds & set(lr.kinds)), None)
        if leave_rule is not None and year is not None and not hire_only:
            steps.append(Step("leave_year", f"{year}年为{'/'.join(sorted(t.leave_kinds(year)))}年度：{leave_rule.label}",
                              rule=leave_rule.id, cite=_cite(p, leave_rule), scope="year", year=year))
            for k, lm in enumerate(leave_rule.year_minimums):
                synthetic = Minimum(kind="minimum", id=f"{leave_rule.id}#{k + 1}", label=leave_rule.label,
                                    cite=leave_rule.cite, scope="year", target=lm.target, min=lm.min)
                reqs.append(Requirement(synthetic, lm.min))
            return reqs
        for m in self.minimums:
            scope_ok = m.scope == scope or (m.scope == "hire_year" and scope == "year" and year == t.hired_year)
            if hire_only and m.scope != "hire_year":
                continue
            if not scope_ok:
                continue
            where = f"{year}年" if year is not None else "本周期"
            if m.id in waived:
                w = waived[m.id]
                steps.append(Step("waive", f"{where}不考核“{m.label}”：{w.label}", rule=w.id, cite=_cite(p, w),
                                  scope=scope, year=year))
                continue
            if not teacher_matches(ctx, m.applies_to):
                self._once(steps, m, Step("minimum", f"“{m.label}”不适用：仅适用于{describe_match(m.applies_to)}",
                                          applied=False, rule=m.id, cite=_cite(p, m), scope="teacher"))
                continue
            value: Decimal | None = m.min
            note = ""
            if scope == "cycle":
                value, note = self._adjust_cycle_min(ctx, m, m.min, lines, partial, steps)
            if value is not None:
                reqs.append(Requirement(m, value, note=note))
        return reqs

    def _adjust_cycle_min(
        self, ctx: Context, m: Minimum, value: Decimal, lines: list[Line],
        partial: tuple[PartialCycle, int] | None, steps: list[Step],
    ) -> tuple[Decimal | None, str]:
        p = self.policy
        notes: list[str] = []
        # Structure minimums scale with the years owed; a programme's own minimum
        # (earned_credits, hours, count: 新任教师培训 ≥120) does not.
        credit_measure = m.measure == "credits"
        if partial is not None and credit_measure:
            rule, n = partial
            years = p.cycle.years
            if rule.structure == "total_only":
                if m.target != "total":
                    steps.append(Step("partial_cycle", f"“{m.label}”不单独考核：{rule.label}",
                                      rule=rule.id, cite=_cite(p, rule), scope="cycle"))
                    return None, ""
                assert rule.per_year is not None
                value = rule.per_year * n
                notes.append(f"{fmt(rule.per_year)} × {n}年 = {fmt(value)}")
            else:
                if m.target == "total" and rule.per_year is not None:
                    value = rule.per_year * n
                    notes.append(f"{fmt(rule.per_year)} × {n}年 = {fmt(value)}")
                else:
                    new = q(value * n / years)
                    notes.append(f"{fmt(value)} × {n}/{years} = {fmt(new)}")
                    value = new
        if credit_measure:
            key = "total" if m.target == "total" else (m.target.category if isinstance(m.target, Target) else None)
            if key is not None:
                for lr in self.leaves:
                    cut = lr.cycle_reduction.get(key)
                    if not cut:
                        continue
                    n_leave = len({lv.year for lv in ctx.teacher.leaves
                                   if lv.kind in lr.kinds and ctx.cycle_start <= lv.year <= ctx.cycle_end})
                    if n_leave:
                        new = max(ZERO, value - cut * n_leave)
                        notes.append(f"假期年度 {n_leave} 个，减 {fmt(cut * n_leave)}")
                        steps.append(Step("leave_year", f"“{m.label}”因{'/'.join(lr.kinds)}年度减为 {fmt(new)}",
                                          rule=lr.id, cite=_cite(p, lr), scope="cycle"))
                        value = new
        for pen in self.penalties:
            if pen.rule != m.id:
                continue
            count = sum(1 for r in self._cycle_records if matches(ctx, pen.when, r))
            if count:
                value = value + pen.amount * count
                notes.append(f"加修 {fmt(pen.amount * count)}")
                steps.append(Step("penalty", f"“{m.label}”提高 {fmt(pen.amount * count)}：{pen.label}",
                                  rule=pen.id, cite=_cite(p, pen), scope="cycle"))
        return value, "；".join(notes)

    def _once(self, steps: list[Step], rule: RuleBase, step: Step) -> None:
        """Teacher-level facts do not change between scopes: say it once."""
        if rule.id not in self._said:
            self._said.add(rule.id)
            steps.append(step)

    # -- scopes

    def _target_lines(self, ctx: Context, target: Target | str, lines: list[Line]) -> list[Line]:
        if isinstance(target, str):
            return [ln for ln in lines if not ln.excluded]
        if target.category is not None:
            return [ln for ln in lines if ln.category == target.category and not ln.excluded]
        if target.categories is not None:
            return [ln for ln in lines if ln.category in target.categories and not ln.excluded]
        if target.theme is not None:
            return [ln for ln in lines if ln.theme == target.theme and not ln.excluded]
        return [ln for ln in lines if matches(ctx, target.match, ln.record)]

    def _scope(
        self, ctx: Context, scope: str, year: int | None, lines: list[Line], amounts: dict[int, Decimal],
        required: bool, steps: list[Step], partial: tuple[PartialCycle, int] | None, hire_only: bool = False,
    ) -> ScopeResult:
        p = self.policy
        where = f"{year}年" if year is not None else "本周期"
        # "earned" is what the records converted to, before any cap or transfer
        earned: dict[str, Decimal] = {c: ZERO for c in self.category_ids}
        for ln in lines:
            if not ln.excluded:
                earned[ln.category] += ln.credits
        # caps: plain caps first, share-of-total caps last (they depend on the rest)
        caps = [c for c in self.caps if c.scope == scope]
        for cap in sorted(caps, key=lambda c: c.share_of_total is not None):
            group = sorted(self._target_lines(ctx, cap.target, lines), key=lambda ln: ln.sort_key)
            group = [ln for ln in group if not ln.excluded]
            before = sum((amounts[ln.idx] for ln in group), ZERO)
            if cap.highest_only and group:
                # group is in canonical order and max() keeps the first maximum:
                # among equal amounts the earliest record counts
                best = max(group, key=lambda ln: amounts[ln.idx])
                for ln in group:
                    if ln is not best and amounts[ln.idx] > 0:
                        steps.append(Step("cap", f"{where}{ln.record.title or ln.record.id} 不重复计分：{cap.label}",
                                          rule=cap.id, cite=_cite(p, cap), scope=scope, year=year, record=ln.record.id))
                        amounts[ln.idx] = ZERO
            limit = cap.max
            if cap.share_of_total is not None:
                s = share(cap.share_of_total)
                ids = {ln.idx for ln in group}
                others = sum((amounts[ln.idx] for ln in lines if ln.idx not in ids and not ln.excluded), ZERO)
                allowed = q_down(Decimal(others) * Decimal(s.numerator) / Decimal(s.denominator - s.numerator))
                limit = allowed if limit is None else min(limit, allowed)
            if limit is not None:
                running = ZERO
                for ln in group:
                    room = max(ZERO, limit - running)
                    if amounts[ln.idx] > room:
                        amounts[ln.idx] = room
                    running += amounts[ln.idx]
            after = sum((amounts[ln.idx] for ln in group), ZERO)
            target = _target_text(cap.target)
            if after < before:
                steps.append(Step("cap", f"{where}{target}共 {fmt(before)}学分，按上限计 {fmt(after)}学分：{cap.label}",
                                  rule=cap.id, cite=_cite(p, cap), scope=scope, year=year))
            elif group:
                steps.append(Step("cap", f"{where}{target}共 {fmt(before)}学分，未超过上限（{cap.label}）",
                                  applied=False, rule=cap.id, cite=_cite(p, cap), scope=scope, year=year))
        counted: dict[str, Decimal] = {c: ZERO for c in self.category_ids}
        for ln in lines:
            if not ln.excluded:
                counted[ln.category] += amounts[ln.idx]
        reqs = self._requirements(ctx, scope, year, lines, steps, partial, hire_only) if required else []
        mins = {r.rule.target.category: r.min for r in reqs
                if isinstance(r.rule.target, Target) and r.rule.target.category and r.rule.measure == "credits"}
        for tr in self.transfers:
            if tr.scope not in (scope, "both"):
                continue
            if not teacher_matches(ctx, tr.applies_to):
                self._once(steps, tr, Step("transfer", f"“{tr.label}”不适用：仅适用于{describe_match(tr.applies_to)}",
                                           applied=False, rule=tr.id, cite=_cite(p, tr), scope="teacher"))
                continue
            moved_any = False
            for src in tr.from_:
                reserve = tr.above if tr.above is not None else mins.get(src, ZERO)
                available = max(ZERO, counted[src] - reserve)
                if tr.mode == "overflow":
                    move = available
                else:
                    need = max(ZERO, mins.get(tr.to, ZERO) - counted[tr.to])
                    move = min(available, need)
                if move > 0:
                    counted[src] -= move
                    counted[tr.to] += move
                    moved_any = True
                    verb = "超出部分" if tr.mode == "overflow" else "补足不足部分"
                    steps.append(Step("transfer", f"{where}{src} {verb} {fmt(move)}学分计入{tr.to}：{tr.label}",
                                      rule=tr.id, cite=_cite(p, tr), scope=scope, year=year))
            if not moved_any:
                why = "没有超出部分" if tr.mode == "overflow" else "无不足或无可替换学分"
                steps.append(Step("transfer", f"{where}“{tr.label}”未发生：{why}", applied=False,
                                  rule=tr.id, cite=_cite(p, tr), scope=scope, year=year))
        result = ScopeResult(scope, year, required, earned, counted, reqs, dict(amounts))
        for req in reqs:
            req.actual = self._measure(ctx, req.rule, lines, amounts, counted)
            unit = MEASURE_UNIT[req.rule.measure]
            verdict = "达到" if req.met else f"未达到，尚缺 {fmt(req.missing)}{unit}"
            note = f"（{req.note}）" if req.note else ""
            text = f"{where}{req.rule.label}：要求 {fmt(req.min)}{unit}{note}，实得 {fmt(req.actual)}{unit}，{verdict}"
            steps.append(Step("minimum", text, rule=req.rule.id, cite=_cite(p, req.rule), scope=scope, year=year))
        return result

    def _measure(self, ctx: Context, rule: Minimum, lines: list[Line], amounts: dict[int, Decimal],
                 counted: dict[str, Decimal]) -> Decimal:
        target = rule.target
        if rule.measure == "credits":
            if target == "total":
                return sum(counted.values(), ZERO)
            assert isinstance(target, Target)
            if target.category is not None:
                return counted[target.category]
            if target.categories is not None:
                return sum((counted[c] for c in target.categories), ZERO)
            return sum((amounts[ln.idx] for ln in self._target_lines(ctx, target, lines) if not ln.excluded), ZERO)
        group = lines if target == "total" else self._target_lines(ctx, target, lines)
        if rule.measure == "earned_credits":
            return sum((ln.credits for ln in group if ln.gate_passed), ZERO)
        records = {ln.record.id: ln.record for ln in group if ln.gate_passed}
        if rule.measure == "hours":
            return sum((r.hours or ZERO for r in records.values()), ZERO)
        return Decimal(len(records))

    # -- whole teacher

    def _start(self, ctx: Context, steps: list[Step]) -> tuple[tuple[PartialCycle, int] | None, int]:
        """The partial cycle that applies to the teacher, if any, and the year
        her figures start."""
        p = self.policy
        teacher = ctx.teacher
        cycle_start, cycle_end = ctx.cycle_start, ctx.cycle_end
        partial: tuple[PartialCycle, int] | None = None
        start_year = cycle_start
        for pc in self.partials:
            if not teacher_matches(ctx, pc.applies_to):
                steps.append(Step("partial_cycle", f"“{pc.label}”不适用：仅适用于{describe_match(pc.applies_to)}",
                                  applied=False, rule=pc.id, cite=_cite(p, pc), scope="teacher"))
                continue
            base = teacher.transfer_in_year if pc.start == "transfer_in_year" else teacher.hired_year
            if base is None:
                if pc.exclusive:
                    break
                continue
            begin = base + 1 if pc.start == "hired_year_next" else base
            if begin <= cycle_start:
                steps.append(Step("partial_cycle", f"“{pc.label}”不缩短本周期：起算年 {begin} 不晚于周期起始年",
                                  applied=False, rule=pc.id, cite=_cite(p, pc), scope="teacher"))
                if pc.exclusive:
                    break  # this rule governs the teacher; later partial rules do not apply
                continue
            n = max(0, cycle_end - begin + 1)
            partial = (pc, n)
            start_year = begin
            steps.append(Step("partial_cycle", f"{pc.label}：自 {begin} 年起算，本周期计 {n} 年",
                              rule=pc.id, cite=_cite(p, pc), scope="teacher"))
            break
        if partial is None:
            for value in (teacher.hired_year, teacher.transfer_in_year):
                if value is not None and value > start_year:
                    start_year = value
        return partial, start_year

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
        cycle_start, cycle_end = self.cycle_for(as_of.year)
        ctx = Context(self.policy, teacher, cycle_start, cycle_end)
        partial, start_year = self._start(ctx, [])
        results, _ = self._records(ctx, records, as_of, partial, start_year)
        return results

    def evaluate(self, teacher: Teacher, records: list[Record], as_of: dt.date) -> Evaluation:
        p = self.policy
        cycle_start, cycle_end = self.cycle_for(as_of.year)
        ctx = Context(p, teacher, cycle_start, cycle_end)
        self._said: set[str] = set()
        steps: list[Step] = []
        warnings: list[str] = []
        _check_unique(records)
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
        self._cycle_records = [rec for rec, _ in cycle_pairs]
        completed_by: tuple[Completion, Record] | None = None
        for comp in self.completions:
            # completing the cycle needs a record that passed its gates (合格)
            hit = next((r for r, rr in cycle_pairs if rr.gate_passed and matches(ctx, comp.when, r)), None)
            if hit is not None:
                completed_by = (comp, hit)
                steps.append(Step("completion", f"记录 {hit.id}：{comp.label}，视为完成本周期",
                                  rule=comp.id, cite=_cite(p, comp), scope="cycle"))
                break
            steps.append(Step("completion", f"“{comp.label}”不适用：没有符合条件的记录", applied=False,
                              rule=comp.id, cite=_cite(p, comp), scope="cycle"))
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
        if completed_by is not None:
            passed = True
        else:
            passed = all(r.met for r in cycle.requirements)
            every = p.cycle.requires_every_year
            binding = [r for yr in years.values() if yr.required for r in yr.requirements
                       if (r.rule.binds_cycle if r.rule.binds_cycle is not None else every)]
            passed = passed and all(r.met for r in binding)
            binds_any = every or any(m.binds_cycle for m in self.minimums if m.scope != "cycle")
            if binds_any and as_of.year < cycle_end:
                passed = False  # years still to come must pass too
        if passed:
            status = "达标"
        elif as_of < dt.date(cycle_end, 12, 31):
            status = "进行中"
        else:
            status = "未达标"
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


__all__ = ["Evaluation", "Evaluator", "dec", "evaluate"]
