"""What every rule kind of the engine shares: the results and the trace
(``Step``, ``Line``, ``Requirement``, ``ScopeResult``, ``RecordResult``,
``Evaluation``), the teacher's context, compiled conditions, and the wording
of facts, targets and citations.  The rule kinds themselves are
:mod:`xuefen.engine.rules`; the pipeline that runs them is
:mod:`xuefen.engine.evaluate`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from xuefen.model import Record, Teacher
from xuefen.numbers import ZERO
from xuefen.policy.schema import ANY_OF, Cite, Minimum, Ops, Policy, RuleBase, Target

# ---------------------------------------------------------------- results

# A teacher's cycle status.  EARLY is a pass before the cycle's last day: every
# requirement is met and no year still to come has a requirement the verdict
# needs, so nothing left in the cycle can undo it (docs/policy-format.md,
# "Verdict and status").
PASSED, EARLY, IN_PROGRESS, FAILED = "达标", "已达标（提前完成）", "进行中", "未达标"
STATUSES = (PASSED, EARLY, IN_PROGRESS, FAILED)


def status_of(passed: bool, before_end: bool) -> str:
    """The status from the verdict and whether the cycle is still running."""
    if passed:
        return EARLY if before_end else PASSED
    return IN_PROGRESS if before_end else FAILED



@dataclass(slots=True)
class Step:
    """One line of an explanation.  The wording may be given as a function:
    it is then written only when someone reads it (most evaluations are for
    figures, and formatting every record's arithmetic was a third of the
    per-record time)."""

    kind: str
    wording: str | Callable[[], str]
    applied: bool = True
    rule: str | None = None
    cite: str | None = None
    scope: str = "record"  # record / year / cycle / teacher
    year: int | None = None
    record: str | None = None

    @property
    def text(self) -> str:
        if not isinstance(self.wording, str):
            self.wording = self.wording()
        return self.wording

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
    cuts: dict[str, Decimal] = field(default_factory=dict)  # cap id -> credits it took off here

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
    # the facts a conversion needed and the record lacks (学时, 天数, 认定学分 …)
    missing: list[str] = field(default_factory=list)

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


def cite_of(policy: Policy, rule: RuleBase) -> str:
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


def _any_of(subs: list[dict[str, Any]]) -> Tester:
    compiled_subs = [_compile(m) for m in subs]
    # the getter hands over (ctx, record) whole: each alternative reads its own fields
    return lambda pair: any(test(*pair) for test in compiled_subs)


def _compile(match: dict[str, Any]) -> Callable[[Context, Record | None], bool]:
    tests = [(_getter(key), _tester(expected)) if key != ANY_OF else (_pair, _any_of(expected))
             for key, expected in match.items()]
    if len(tests) == 1:
        (get, test), = tests
        return lambda ctx, record: test(get(ctx, record))
    return lambda ctx, record: all(test(get(ctx, record)) for get, test in tests)


def _pair(ctx: Context, record: Record | None) -> tuple[Context, Record | None]:
    return ctx, record


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
        if key == ANY_OF:
            parts.append("或".join(f"（{describe_match(m)}）" for m in value))
            continue
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


def target_text(target: Target | str) -> str:
    if isinstance(target, str):
        return "总学分"
    if target.category:
        return target.category
    if target.categories:
        return "+".join(target.categories)
    if target.theme:
        return f"主题“{target.theme}”"
    if target.themes:
        return "+".join(f"主题“{t}”" for t in target.themes)
    return f"[{describe_match(target.match or {})}]"


MEASURE_UNIT = {"credits": "学分", "earned_credits": "学分", "hours": "学时", "count": "次"}

