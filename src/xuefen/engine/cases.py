"""Test cases as data, beside each policy (policies/cases/ID.yaml).

A case is a teacher and her records in the interchange format, an evaluation
date, optional option settings, and the figures and verdicts expected.  The
same runner backs the test suite and ``xuefen policy test``.  Coverage is
derived from the evaluations themselves, not declared: every minimum must be
met in one case and missed in another, every other rule must apply in one
case and not apply in another (conversions: apply at least once).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from xuefen.engine.evaluate import Evaluation, Evaluator
from xuefen.engine.report import as_dict, explain_text
from xuefen.engine.words import unknown_words
from xuefen.errors import PolicyError, Problem
from xuefen.model import Record, parse_record, parse_teacher
from xuefen.numbers import dec, fmt
from xuefen.policy.loader import read_yaml
from xuefen.policy.schema import Conversion, LeaveYear, Minimum, Policy


@dataclass
class Case:
    name: str
    line: int
    as_of: dt.date
    options: dict[str, str]
    teacher: dict[str, Any]
    records: list[dict[str, Any]]
    expect: dict[str, Any]


@dataclass
class Outcome:
    case: Case
    evaluation: Evaluation | None
    mismatches: list[str] = field(default_factory=list)


_CASE_KEYS = {"name", "as_of", "options", "teacher", "records", "expect"}
_EXPECT_KEYS = {"passed", "status", "total", "categories", "themes", "years", "records", "failing",
                "applied", "not_applied", "explanation_contains", "error"}


def load_cases(path: Path) -> tuple[str, list[Case]]:
    data = read_yaml(path)
    problems: list[Problem] = []
    if not isinstance(data, dict) or "policy" not in data or "cases" not in data:
        raise PolicyError(Problem("用例文件须有 policy 与 cases 两个键", file=path.name))
    cases = []
    for i, raw in enumerate(data["cases"]):
        line = data["cases"].item_lines[i]
        unknown = set(raw) - _CASE_KEYS
        if unknown:
            problems.append(Problem(f"用例含未知的键：{'、'.join(sorted(unknown))}", file=path.name, line=line))
        unknown = set(raw.get("expect", {})) - _EXPECT_KEYS
        if unknown:
            problems.append(Problem(f"expect 含未知的键：{'、'.join(sorted(unknown))}", file=path.name, line=line))
        for key in ("name", "as_of", "teacher", "expect"):
            if key not in raw:
                problems.append(Problem(f"用例缺少 {key}", file=path.name, line=line))
        if problems:
            continue
        cases.append(Case(raw["name"], line, raw["as_of"], dict(raw.get("options") or {}),
                          dict(raw["teacher"]), list(raw.get("records") or []), dict(raw["expect"])))
    if problems:
        raise PolicyError(problems)
    return str(data["policy"]), cases


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, (int, Decimal)) and not isinstance(expected, bool):
        return actual is not None and not isinstance(actual, bool) and dec(actual) == dec(expected)
    return bool(actual == expected)


def _show(value: Any) -> str:
    return fmt(value) if isinstance(value, Decimal) else repr(value)


def _compare(path: str, actual: Any, expected: Any, out: list[str]) -> None:
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            out.append(f"{path}：期望对象，实际 {_show(actual)}")
            return
        for key, value in expected.items():
            if str(key) not in actual:
                out.append(f"{path}.{key}：结果中没有该项")
                continue
            _compare(f"{path}.{key}", actual[str(key)], value, out)
        return
    if isinstance(expected, list) and any(isinstance(e, dict) for e in expected):
        # a list of objects (a theme's caps) matches item by item, each on the
        # keys the case names, so a case need not copy labels and citations
        if not isinstance(actual, list) or len(actual) != len(expected):
            out.append(f"{path}：期望 {len(expected)} 项，实际 {_show(actual)}")
            return
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _compare(f"{path}[{i}]", a, e, out)
        return
    if not _same(actual, expected):
        out.append(f"{path}：期望 {_show(expected)}，实际 {_show(actual)}")


def rule_outcomes(ev: Evaluation) -> dict[str, set[str]]:
    """rule id -> outcomes seen in one evaluation: applied / not_applied /
    met / missed."""
    seen: dict[str, set[str]] = {}
    steps = list(ev.steps)
    for rr in ev.records:
        steps.extend(rr.steps)
    for s in steps:
        if s.rule:
            seen.setdefault(s.rule.split("#")[0], set()).add("applied" if s.applied else "not_applied")
    for sc in [ev.cycle, *ev.years.values()]:
        for req in sc.requirements:
            rid = req.rule.id.split("#")[0]
            seen.setdefault(rid, set()).add("met" if req.met else "missed")
    return seen


def run_case(policy: Policy, case: Case, file: str = "") -> Outcome:
    def where(key: str, message: str) -> Problem:
        return Problem(message, file=file, line=case.line, column=key)

    teacher, problems = parse_teacher(case.teacher, where)
    records: list[Record] = []
    for raw in case.records:
        rec, more = parse_record(raw, where)
        problems += more
        if rec is not None:
            records.append(rec)
    # a category or theme the policy does not know is bad input, as in the readers
    problems += unknown_words(policy, records, lambda r, key, message: where(f"{r.id}.{key}", message))
    expected_error = case.expect.get("error")
    if problems or teacher is None:
        if expected_error and any(expected_error in str(p) for p in problems):
            return Outcome(case, None)
        return Outcome(case, None, [f"输入无效：{p}" for p in problems])
    try:
        ev = Evaluator(policy, case.options).evaluate(teacher, records, case.as_of)
    except PolicyError as exc:
        if expected_error and expected_error in str(exc):
            return Outcome(case, None)
        return Outcome(case, None, [f"评估出错：{exc}"])
    out: list[str] = []
    if expected_error:
        out.append(f"期望出错“{expected_error}”，实际评估成功")
    result = as_dict(ev)
    exp = case.expect
    for key in ("passed", "status", "total", "categories", "themes"):
        if key in exp:
            _compare(key, result[key], exp[key], out)
    if "years" in exp:
        _compare("years", result["years"], {str(k): v for k, v in exp["years"].items()}, out)
    if "records" in exp:
        by_id = {r["id"]: r["credits"] for r in result["records"]}
        for rid, credits in exp["records"].items():
            _compare(f"records.{rid}", by_id.get(str(rid)), credits, out)
    outcomes = rule_outcomes(ev)
    if "failing" in exp:
        failing = {s["rule"].split("#")[0] for s in result["shortfalls"]}
        if failing != set(exp["failing"]):
            out.append(f"failing：期望 {sorted(exp['failing'])}，实际 {sorted(failing)}")
    for rid in exp.get("applied", []):
        if "applied" not in outcomes.get(rid, set()):
            out.append(f"applied：规则 {rid} 未被适用")
    for rid in exp.get("not_applied", []):
        if "applied" in outcomes.get(rid, set()):
            out.append(f"not_applied：规则 {rid} 被适用了")
    if "explanation_contains" in exp:
        text = explain_text(ev)
        for needle in exp["explanation_contains"]:
            if needle not in text:
                out.append(f"explanation_contains：解释中没有“{needle}”")
    return Outcome(case, ev, out)


def coverage_gaps(policy: Policy, outcomes: list[Outcome]) -> list[str]:
    """Rules that the cases never exercise both ways."""
    seen: dict[str, set[str]] = {}
    inactive_ok: dict[str, bool] = {}
    for oc in outcomes:
        if oc.evaluation is None:
            continue
        for rid, kinds in rule_outcomes(oc.evaluation).items():
            seen.setdefault(rid, set()).update(kinds)
        options = oc.evaluation.options
        for rule in policy.rules:
            active = all(options.get(k) == v for k, v in rule.when_option.items())
            if not active or "applied" not in rule_outcomes(oc.evaluation).get(rule.id, set()):
                inactive_ok[rule.id] = True
    gaps = []
    for rule in policy.rules:
        got = seen.get(rule.id, set())
        if isinstance(rule, Minimum):
            if "met" not in got:
                gaps.append(f"{rule.id}：没有达到该要求的用例")
            if "missed" not in got:
                gaps.append(f"{rule.id}：没有未达到该要求的用例")
        elif isinstance(rule, Conversion):
            if "applied" not in got:
                gaps.append(f"{rule.id}：没有用例用到该换算规则")
        else:
            if "applied" not in got:
                gaps.append(f"{rule.id}：没有适用该规则的用例")
            if not inactive_ok.get(rule.id) and "not_applied" not in got:
                gaps.append(f"{rule.id}：没有不适用该规则的用例")
        if isinstance(rule, LeaveYear) and "met" not in got and "missed" not in got:
            gaps.append(f"{rule.id}：假期年度的最低要求没有被检验")
    return gaps


def cases_path(policy_dir: Path, policy_id: str) -> Path:
    return policy_dir / "cases" / f"{policy_id}.yaml"
