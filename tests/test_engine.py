"""The engine and the loader on small policies written inside the tests, so each
rule kind is checked on its own, independently of the shipped policies."""

from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from xuefen.engine.cases import cases_path, load_cases
from xuefen.engine.evaluate import Evaluator, evaluate
from xuefen.errors import PolicyError, Problem
from xuefen.model import Leave, Record, Teacher, parse_record, parse_teacher
from xuefen.policy.loader import (
    check_versions,
    default_policy_dir,
    default_registry,
    load_directory,
    load_policy_file,
)
from xuefen.policy.schema import Policy

HEAD = """\
id: {id}
name: 测试政策
short_name: 测试
jurisdiction: {{code: test, name: 测试县}}
source: {{file: 004_a8f479f50950c794.txt, document: 测试}}
effective: {{from: 2018-01-01{to}}}
cycle: {{years: {years}, first_year: 2018, requires_every_year: {every}, cite: {{article: 自2018年起, note: 周期}}}}
categories:
  - {{id: 集中, aliases: [集中研修]}}
  - {{id: 网络}}
  - {{id: 校本}}
rules:
"""

C = "cite: {article: 学时与学分转换, note: 测试}"

BASE_RULES = f"""\
  - {{id: c-central, kind: conversion, label: 集中, when: {{form: 集中}}, category: 集中,
     credits: {{credits_per_hour: 1.3}}, {C}}}
  - {{id: c-online, kind: conversion, label: 网络, when: {{form: 网络}}, category: 网络,
     credits: {{hours_per_credit: 10}}, {C}}}
  - {{id: c-school, kind: conversion, label: 校本, when: {{form: 校本}}, category: 校本,
     credits: {{credits_per_hour: 0.5}}, {C}}}
"""


def make_policy(tmp_path: Path, rules: str, *, pid: str = "t", years: int = 5, every: bool = False,
                to: str = "") -> Policy:
    text = HEAD.format(id=pid, years=years, every=str(every).lower(), to=f", to: {to}" if to else "")
    path = tmp_path / f"{pid}.yaml"
    extra = textwrap.dedent(rules)
    if extra and not extra.startswith("  "):
        extra = textwrap.indent(extra, "  ")
    path.write_text(text + BASE_RULES + extra, encoding="utf-8")
    return load_policy_file(path)


def rec(rid: str, year: int, form: str, hours: str, **kw: object) -> Record:
    return Record(id=rid, year=year, form=form, hours=Decimal(hours), **kw)  # type: ignore[arg-type]


T = Teacher(id="t1", stage="小学")
END = dt.date(2022, 12, 31)


def test_twenty_hours_at_one_point_three_is_exactly_26_and_64_passes_64(tmp_path: Path) -> None:
    p = make_policy(tmp_path, f"""\
      - {{id: m, kind: minimum, label: 总量, scope: cycle, target: total, min: 64, {C}}}
    """)
    ev = evaluate(p, T, [rec("a", 2020, "集中", "20"), rec("b", 2020, "网络", "380")], END)
    assert ev.records[0].credits == Decimal("26")
    assert ev.total == Decimal("64")
    assert ev.passed
    ev = evaluate(p, T, [rec("a", 2020, "集中", "20"), rec("b", 2020, "网络", "379.9")], END)
    assert ev.total == Decimal("63.99")
    assert not ev.passed


def test_per_record_rounding_is_half_up_to_thousandths(tmp_path: Path) -> None:
    p = make_policy(tmp_path, "")
    ev = evaluate(p, T, [rec("a", 2020, "集中", "0.0005")], END)
    assert ev.records[0].credits == Decimal("0.001")  # 0.00065 -> 0.001


def test_cap_is_independent_of_record_order(tmp_path: Path) -> None:
    p = make_policy(tmp_path, f"""\
      - {{id: cap, kind: cap, label: 校本上限, scope: year, target: {{category: 校本}}, max: 24, {C}}}
    """)
    recs = [rec("x", 2020, "校本", "30"), rec("y", 2020, "校本", "30"), rec("z", 2021, "校本", "10")]
    a = evaluate(p, T, recs, END)
    b = evaluate(p, T, list(reversed(recs)), END)
    assert a.total == b.total == Decimal("29")
    assert a.years[2020].counted["校本"] == Decimal("24")
    assert a.cycle.earned["校本"] == Decimal("35")


def test_overflow_moves_everything_above_the_threshold(tmp_path: Path) -> None:
    p = make_policy(tmp_path, f"""\
      - {{id: of, kind: transfer, label: 集中超出计入网络, mode: overflow, from: [集中], to: 网络, scope: cycle,
         above: 13, {C}}}
    """)
    ev = evaluate(p, T, [rec("a", 2020, "集中", "20")], END)
    assert ev.cycle.counted == {"集中": Decimal("13"), "网络": Decimal("13"), "校本": Decimal("0")}


def test_substitution_fills_only_the_deficit_and_keeps_the_source_minimum(tmp_path: Path) -> None:
    p = make_policy(tmp_path, f"""\
      - {{id: mc, kind: minimum, label: 集中≥30, scope: cycle, target: {{category: 集中}}, min: 30, {C}}}
      - {{id: mo, kind: minimum, label: 网络≥10, scope: cycle, target: {{category: 网络}}, min: 10, {C}}}
      - {{id: sub, kind: transfer, label: 网络补集中, mode: substitute, from: [网络], to: 集中, scope: cycle,
         applies_to: {{stage: 高中}}, {C}}}
    """)
    recs = [rec("a", 2020, "集中", "10"), rec("b", 2020, "网络", "250")]  # 13 and 25
    ev = evaluate(p, Teacher(id="h", stage="高中"), recs, END)
    assert ev.cycle.counted["集中"] == Decimal("28")  # 13 + (25 - 10)
    assert ev.cycle.counted["网络"] == Decimal("10")
    assert not ev.passed
    ev = evaluate(p, T, recs, END)  # 小学: the substitution does not apply
    assert ev.cycle.counted["集中"] == Decimal("13")
    assert any(not s.applied and s.rule == "sub" for s in ev.steps)


def test_gate_and_multiplier(tmp_path: Path) -> None:
    p = make_policy(tmp_path, f"""\
      - {{id: g, kind: gate, label: 合格, require: {{result: {{not_in: [不合格]}}}}, reason: 考核不合格, {C}}}
      - {{id: x, kind: multiplier, label: 优秀加20%, when: {{result: 优秀}}, factor: 1.2, {C}}}
      - {{id: ab, kind: gate, label: 缺勤, when: {{form: 集中}}, max_absence_share: "1/4", reason: 缺勤超过四分之一,
         {C}}}
    """)
    recs = [
        rec("ok", 2020, "网络", "10", result="优秀"),
        rec("bad", 2020, "网络", "10", result="不合格"),
        rec("quarter", 2020, "集中", "20", absent_hours=Decimal("5")),
        rec("over", 2020, "集中", "20", absent_hours=Decimal("5.1")),
    ]
    ev = evaluate(p, T, recs, END)
    got = {r.id: r.credits for r in ev.records}
    assert got == {"ok": Decimal("1.2"), "bad": 0, "quarter": Decimal("26"), "over": 0}
    assert "考核不合格" in ev.records[1].explanation


def test_share_of_total_cap(tmp_path: Path) -> None:
    p = make_policy(tmp_path, f"""\
      - {{id: s, kind: cap, label: 网络不超过三分之一, scope: cycle, target: {{category: 网络}},
         share_of_total: "1/3", {C}}}
    """)
    ev = evaluate(p, T, [rec("a", 2020, "集中", "100"), rec("b", 2020, "网络", "1000")], END)
    # 集中 130, so 网络 may be at most 65: 65 / (130 + 65) = 1/3 exactly
    assert ev.cycle.counted["网络"] == Decimal("65")
    assert ev.total == Decimal("195")


def test_leave_year_replaces_year_minimums_and_reduces_the_cycle(tmp_path: Path) -> None:
    p = make_policy(tmp_path, f"""\
      - {{id: y, kind: minimum, label: 年度≥64, scope: year, target: total, min: 64, {C}}}
      - {{id: c, kind: minimum, label: 周期≥320, scope: cycle, target: total, min: 320, {C}}}
      - {{id: lv, kind: leave_year, label: 产假年度, kinds: [产假], cycle_reduction: {{total: 52}},
         year_minimums: [{{target: {{category: 校本}}, min: 12}}], {C}}}
    """, every=True)
    teacher = Teacher(id="m", leaves=(Leave(2020, "产假"),))
    recs = [rec(f"r{y}", y, "集中", "49.3") for y in (2018, 2019, 2021, 2022)]  # 64.09 each
    recs.append(rec("s", 2020, "校本", "24"))
    ev = evaluate(p, teacher, recs, END)
    assert ev.years[2020].passed is True
    assert ev.cycle.requirements[0].min == Decimal("268")
    assert ev.passed


def test_partial_cycle_total_only(tmp_path: Path) -> None:
    p = make_policy(tmp_path, f"""\
      - {{id: c, kind: minimum, label: 周期≥36, scope: cycle, target: total, min: 36, {C}}}
      - {{id: cc, kind: minimum, label: 集中≥18, scope: cycle, target: {{category: 集中}}, min: 18, {C}}}
      - {{id: p, kind: partial_cycle, label: 调入教师每年7.2, applies_to: {{transfer_in_year: {{ge: 2018}}}},
         start: transfer_in_year, per_year: 7.2, structure: total_only, pre_start_records: exclude, {C}}}
    """)
    teacher = Teacher(id="x", transfer_in_year=2020)
    recs = [rec("old", 2019, "网络", "500"), rec("new", 2021, "网络", "216")]
    ev = evaluate(p, teacher, recs, END)
    assert [r.min for r in ev.cycle.requirements] == [Decimal("21.6")]
    assert ev.total == Decimal("21.6")
    assert ev.passed
    assert "早于起算年" in ev.records[0].steps[-1].text


def test_loader_names_file_and_line_for_unknown_key(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as err:
        make_policy(tmp_path, f"""\
          - {{id: m, kind: minimum, label: 总量, scope: cycle, target: total, min: 64, colour: red, {C}}}
        """)
    problem = err.value.problems[0]
    assert problem.file == "t.yaml"
    assert problem.line == 19  # the rule's own line
    assert "未知的键" in problem.message


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("  - {id: z, kind: ceiling, label: x, " + C + "}\n", "未知的规则类型"),
        ("  - {id: z, kind: minimum, label: x, scope: cycle, target: {category: 论文}, min: 1, " + C + "}\n",
         "未定义的学分类别"),
        ("  - {id: z, kind: minimum, label: x, scope: cycle, target: total, min: 1}\n", "缺少必填的键"),
        ("  - {id: z, kind: gate, label: x, require: {level: 县里}, reason: r, " + C + "}\n", "不是规范词汇"),
        ("  - {id: z, kind: gate, label: x, require: {colour: 1}, reason: r, " + C + "}\n", "未知的记录字段"),
        ("  - {id: c-central, kind: gate, label: x, require: {level: 省级}, reason: r, " + C + "}\n", "重复"),
    ],
)
def test_loader_rejects_bad_rules(tmp_path: Path, rule: str, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        make_policy(tmp_path, rule)
    assert message in str(err.value)
    assert all(p.file == "t.yaml" for p in err.value.problems)


def test_versions_must_tile_time(tmp_path: Path) -> None:
    a = make_policy(tmp_path, "", pid="a", to="2020-01-01")
    b = make_policy(tmp_path, "", pid="b")
    assert check_versions([a, b]) != []  # b starts 2018: overlap
    text = (tmp_path / "b.yaml").read_text(encoding="utf-8").replace("from: 2018-01-01", "from: 2020-02-01")
    (tmp_path / "b.yaml").write_text(text, encoding="utf-8")
    problems = check_versions([a, load_policy_file(tmp_path / "b.yaml")])
    assert problems and "空档" in problems[0].message
    (tmp_path / "b.yaml").write_text(text.replace("2020-02-01", "2020-01-01"), encoding="utf-8")
    assert check_versions([a, load_policy_file(tmp_path / "b.yaml")]) == []
    with pytest.raises(PolicyError):
        (tmp_path / "b.yaml").write_text(text.replace("2020-02-01", "2019-06-01"), encoding="utf-8")
        load_directory(tmp_path)


def test_sum_of_categories_and_binding_yearly_minimum(tmp_path: Path) -> None:
    p = make_policy(tmp_path, f"""\
      - {{id: both, kind: minimum, label: 集中+网络≥30, scope: cycle, target: {{categories: [集中, 网络]}},
         min: 30, {C}}}
      - {{id: y, kind: minimum, label: 每年网络≥1, scope: year, target: {{category: 网络}}, min: 1, binds_cycle: true, {C}}}
    """)
    recs = [rec(f"c{y}", y, "集中", "10") for y in range(2018, 2023)] + [rec("o", 2018, "网络", "100")]
    ev = evaluate(p, T, recs, END)
    assert ev.cycle.requirements[0].actual == Decimal("75")  # 5 × 13 + 10
    assert ev.years[2019].passed is False
    assert not ev.passed  # the yearly minimum binds the cycle
    recs += [rec(f"o{y}", y, "网络", "10") for y in range(2019, 2023)]
    assert evaluate(p, T, recs, END).passed
    assert not evaluate(p, T, recs, dt.date(2021, 12, 31)).passed  # 2022 still to come


def test_cycle_start_chosen_by_an_option(tmp_path: Path) -> None:
    text = HEAD.format(id="t", years=5, every="false", to="").replace(
        "first_year: 2018,", 'first_year: {by_option: anchor, values: {"2018": 2018, "2020": 2020}},')
    option = '  - {id: anchor, label: 起点, choices: {"2018": a, "2020": b}, default: "2018", ' + C + "}\n"
    text = text.replace("categories:\n", "options:\n" + option + "categories:\n", 1)
    path = tmp_path / "t.yaml"
    path.write_text(text + BASE_RULES, encoding="utf-8")
    p = load_policy_file(path)
    assert evaluate(p, T, [], END).cycle_start == 2018
    assert evaluate(p, T, [], END, {"anchor": "2020"}).cycle_start == 2020


def test_completion_and_penalty_see_records_without_credits(tmp_path: Path) -> None:
    p = make_policy(tmp_path, f"""\
      - {{id: g, kind: gate, label: 合格, require: {{result: {{not_in: [不合格, 未参加]}}}}, reason: 未合格, {C}}}
      - {{id: m, kind: minimum, label: 总量≥10, scope: cycle, target: total, min: 10, {C}}}
      - {{id: pen, kind: penalty, label: 无故缺训加修10, when: {{result: 未参加, approved: false}}, rule: m, amount: 10, {C}}}
      - {{id: done, kind: completion, label: 学历视为完成, when: {{form: 学历教育, certificate: true}}, {C}}}
    """)
    absent = Record(id="a", year=2020, form="集中", hours=Decimal(30), result="未参加", approved=False)
    ev = evaluate(p, T, [absent, rec("b", 2020, "网络", "100")], END)
    assert ev.cycle.requirements[0].min == Decimal("20")  # raised by the gated, uncredited record
    degree = Record(id="d", year=2021, form="学历教育", certificate=True, result="合格")
    ev = evaluate(p, T, [degree], END)  # no conversion for 学历教育, still completes
    assert ev.passed and ev.total == 0
    failed = Record(id="d", year=2021, form="学历教育", certificate=True, result="不合格")
    assert not evaluate(p, T, [failed], END).passed


def test_hire_year_minimum_is_checked_when_the_cycle_starts_the_next_year(tmp_path: Path) -> None:
    p = make_policy(tmp_path, f"""\
      - {{id: probation, kind: minimum, label: 试用期≥12, scope: hire_year, target: total, min: 12, {C}}}
      - {{id: c, kind: minimum, label: 周期≥36, scope: cycle, target: total, min: 36, {C}}}
      - {{id: p, kind: partial_cycle, label: 次年起折算, applies_to: {{hired_in_cycle: true}}, start: hired_year_next,
         structure: prorate, pre_start_records: exclude, exclusive: true, {C}}}
      - {{id: p2, kind: partial_cycle, label: 调入折算, applies_to: {{transferred_in_cycle: true}}, start: transfer_in_year,
         structure: prorate, {C}}}
    """)
    teacher = Teacher(id="n", hired_year=2020, transfer_in_year=2022)
    ev = evaluate(p, teacher, [rec("a", 2020, "网络", "110"), rec("b", 2021, "网络", "220")], END)
    assert ev.years[2020].passed is False  # 11 < 12 in the probation year
    assert ev.cycle.requirements[0].min == Decimal("14.4")  # 36 × 2/5: the exclusive rule decided
    assert ev.total == Decimal("22")  # the probation year's credits are not in the cycle



def test_price_is_the_per_record_part_of_evaluate_on_every_policy_case() -> None:
    """``Evaluator.price`` (pricing records as they are entered) gives each
    record exactly what a whole evaluation gives it — on every case of every
    shipped policy, with one evaluator per policy and options reused across
    teachers, as the platform does."""
    def where(key: str, message: str) -> Problem:
        return Problem(message, column=key)

    registry = default_registry()
    compared = 0
    for policy_id in sorted(registry.policies):
        policy = registry.get(policy_id)
        _, cases = load_cases(cases_path(default_policy_dir(), policy_id))
        evaluators: dict[str, Evaluator] = {}
        for case in cases:
            teacher, problems = parse_teacher(case.teacher, where)
            parsed = [parse_record(raw, where) for raw in case.records]
            records = [r for r, _ in parsed if r is not None]
            if teacher is None or problems or any(more for _, more in parsed) or case.expect.get("error"):
                continue
            key = repr(sorted(case.options.items()))
            if key not in evaluators:
                evaluators[key] = Evaluator(policy, case.options)
            ev = evaluators[key]
            whole = ev.evaluate(teacher, records, case.as_of).records
            alone = ev.price(teacher, records, case.as_of)
            assert [(r.id, r.year, r.credits, r.category, r.gate_passed, r.explanation) for r in alone] == \
                [(r.id, r.year, r.credits, r.category, r.gate_passed, r.explanation) for r in whole], case.name
            compared += len(records)
    assert compared > 100


def test_theme_lines_give_each_sub_type_its_figures_and_its_caps(tmp_path: Path) -> None:
    """A sub-type written as the category counts under its theme; the theme's
    line in the report shows what it earned, what the cycle kept, and what
    each cap on it took off (a yearly cap's cuts summed over the years)."""
    from xuefen.engine.report import as_dict, text_report

    text = HEAD.format(id="th", years=5, every="false", to="").replace(
        "  - {id: 网络}\n",
        "  - {id: 网络, themes: [讲座, 课题], subtypes: {专题讲座: 讲座, 课题研究: 课题}}\n")
    # the conversion keeps the record's theme, as a policy with themes does
    rules = BASE_RULES.replace("category: 网络,", "category: 网络, theme: '@record',") + f"""\
  - {{id: cap-lecture, kind: cap, label: 讲座每年至多2学分, scope: year, target: {{theme: 讲座}}, max: 2, {C}}}
  - {{id: cap-project, kind: cap, label: 课题至多5学分, scope: cycle, target: {{theme: 课题}}, max: 5, {C}}}
  - {{id: m-project, kind: minimum, label: 课题不少于1学分, scope: cycle, target: {{theme: 课题}}, min: 1, {C}}}
"""
    path = tmp_path / "th.yaml"
    path.write_text(text + rules, encoding="utf-8")
    p = load_policy_file(path)
    records = [rec("a", 2020, "网络", "30", category="专题讲座"), rec("b", 2021, "网络", "30", category="专题讲座"),
               rec("c", 2021, "网络", "40", theme="课题"), rec("d", 2022, "网络", "40", category="课题研究"),
               rec("e", 2022, "集中", "10")]
    ev = evaluate(p, T, records, END)
    data = as_dict(ev)
    assert set(data["themes"]) == {"网络"}  # only a category that lists themes has theme lines
    lecture, project = data["themes"]["网络"]["讲座"], data["themes"]["网络"]["课题"]
    # 3 + 3 earned, each year's 3 cut to 2
    assert (lecture["earned"], lecture["counted"], lecture["required"]) == (Decimal(6), Decimal(4), None)
    assert [(c["rule"], c["scope"], c["max"], c["cut"]) for c in lecture["caps"]] == \
        [("cap-lecture", "year", Decimal(2), Decimal(2))]
    # 4 + 4 earned, the cycle keeps 5
    assert (project["earned"], project["counted"], project["required"]) == (Decimal(8), Decimal(5), Decimal(1))
    assert [(c["rule"], c["cut"]) for c in project["caps"]] == [("cap-project", Decimal(3))]
    # the category's figures are what they were, and add up from the themes
    assert data["categories"]["网络"]["counted"] == Decimal(9) == lecture["counted"] + project["counted"]
    report = text_report(ev)
    assert "  ·讲座" in report and "每年上限 2学分，封顶扣除 2学分" in report
    assert "本周期上限 5学分，封顶扣除 3学分" in report


@pytest.mark.parametrize(
    ("subtypes", "message"),
    [
        ("{片区研修: {theme: 片区, facts: {level: 校级}}}", "不能给出 level"),
        ("{片区研修: {theme: 片区, facts: {form: 片区}}}", "取值“片区”不是规范词汇"),
        ("{片区研修: {theme: 学区}}", "指向未定义的主题“学区”"),
    ],
)
def test_loader_checks_what_a_sub_type_states(tmp_path: Path, subtypes: str, message: str) -> None:
    """A sub-type's facts are a record field it may fill (form, achievement,
    program, role) with the canonical term, so the conversions can read it."""
    text = HEAD.format(id="t", years=5, every="false", to="").replace(
        "  - {id: 校本}\n", f"  - {{id: 校本, themes: [片区], subtypes: {subtypes}}}\n")
    path = tmp_path / "t.yaml"
    path.write_text(text + BASE_RULES, encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy_file(path)
    assert message in str(err.value)


def test_a_fact_the_record_gives_wins_over_the_sub_types(tmp_path: Path) -> None:
    text = HEAD.format(id="t", years=5, every="false", to="").replace(
        "  - {id: 网络}\n", "  - {id: 网络, themes: [线上], subtypes: {线上学习: {theme: 线上, facts: {form: 网络}}}}\n")
    path = tmp_path / "t.yaml"
    path.write_text(text + BASE_RULES, encoding="utf-8")
    p = load_policy_file(path)
    written = Record(id="a", year=2020, category="线上学习", hours=Decimal(20))
    given = Record(id="b", year=2020, category="线上学习", form="集中", hours=Decimal(20))
    ev = evaluate(p, T, [written, given], END)
    # 网络 at 10 hours a credit for the one the sub-type's name prices; the
    # record that says 集中 is 集中 at 1.3 an hour
    assert [(r.id, r.credits) for r in ev.records] == [("a", Decimal(2)), ("b", Decimal(26))]
    assert "（形式：网络）" in ev.records[0].explanation and "形式" not in ev.records[1].explanation.split("；")[0]
