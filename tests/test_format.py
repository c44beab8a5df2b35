"""The policy format's conditions with OR (``any_of``), sums over several
themes (``target: {themes: [...]}``) and theme aliases: what they mean in the
engine, that the batch evaluator gives the same figures, and that a policy
file misusing them is refused with the reason."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from xuefen.batch import evaluate_frame
from xuefen.engine.evaluate import evaluate
from xuefen.engine.report import explain_text
from xuefen.errors import PolicyError
from xuefen.model import Record, Teacher
from xuefen.policy.loader import load_policy_file
from xuefen.policy.schema import Policy

C = "cite: {article: 学时与学分转换, note: 测试}"

POLICY = f"""\
id: t
name: 测试政策
short_name: 测试
jurisdiction: {{code: test, name: 测试县}}
source: {{file: 004_a8f479f50950c794.txt, document: 测试}}
effective: {{from: 2018-01-01}}
cycle: {{years: 5, first_year: 2018, cite: {{article: 自2018年起, note: 周期}}}}
categories:
  - {{id: 集中}}
  - {{id: 网络, themes: [师德, 安全, 心理], theme_aliases: {{师风: 师德}}}}
rules:
  - {{id: gate, kind: gate, label: 合格或经批准, require: {{any_of: [{{result: 合格}}, {{approved: true}}]}},
     reason: 既未合格也未经批准, {C}}}
  - {{id: c-online, kind: conversion, label: 网络或省级, when: {{any_of: [{{form: 网络}}, {{level: 省级, form: 校本}}]}},
     category: 网络, theme: "@record", credits: {{credits_per_hour: 1}}, {C}}}
  - {{id: c-central, kind: conversion, label: 集中, when: {{form: 集中}}, category: 集中,
     credits: {{credits_per_hour: 1}}, {C}}}
  - {{id: cap-care, kind: cap, label: 师德与安全合计至多10, scope: cycle, target: {{themes: [师德, 安全]}}, max: 10, {C}}}
  - {{id: min-care, kind: minimum, label: 师德与安全合计不少于6, scope: cycle, target: {{themes: [师德, 安全]}},
     min: 6, {C}}}
  - {{id: min-total, kind: minimum, label: 总量, scope: cycle, target: total, min: 20, {C}}}
"""

T = Teacher(id="t1", stage="小学")
AS_OF = dt.date(2022, 12, 31)


def write(tmp_path: Path, text: str = POLICY) -> Policy:
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    return load_policy_file(path)


def rec(rid: str, form: str, hours: str, **kw: object) -> Record:
    return Record(id=rid, year=2020, form=form, hours=Decimal(hours), **kw)  # type: ignore[arg-type]


def test_any_of_holds_when_one_alternative_does(tmp_path: Path) -> None:
    p = write(tmp_path)
    ev = evaluate(p, T, [rec("a", "集中", "4", result="合格"), rec("b", "集中", "4", approved=True),
                         rec("c", "集中", "4", result="不合格"), rec("d", "校本", "5", level="省级", result="合格"),
                         rec("e", "校本", "5", level="市级", result="合格")], AS_OF)
    credits = {r.id: r.credits for r in ev.records}
    assert credits == {"a": 4, "b": 4, "c": 0, "d": 5, "e": 0}
    text = explain_text(ev)
    assert "既未合格也未经批准" in text


def test_a_sum_of_themes_is_capped_and_required_together(tmp_path: Path) -> None:
    p = write(tmp_path)
    recs = [rec("m1", "网络", "4", theme="师德", result="合格"), rec("m2", "网络", "4", theme="安全", result="合格"),
            rec("m3", "网络", "4", theme="师德", result="合格"), rec("x", "网络", "5", theme="心理", result="合格"),
            rec("c1", "集中", "10", result="合格")]
    ev = evaluate(p, T, recs, AS_OF)
    # 师德 + 安全 = 12, capped at 10 (m3, last by id, keeps 2); 心理 is outside the sum
    assert ev.cycle.amounts[2] == Decimal(2)
    assert ev.total == Decimal(25)
    care = next(r for r in ev.cycle.requirements if r.rule.id == "min-care")
    assert (care.actual, care.met) == (Decimal(10), True)
    assert "主题“师德”+主题“安全”共 12学分，按上限计 10学分" in explain_text(ev)
    short = evaluate(p, T, [rec("m1", "网络", "4", theme="师德", result="合格"), rec("c1", "集中", "20", result="合格")],
                     AS_OF)
    assert [s["rule"] for s in short.shortfalls()] == ["min-care"]


def test_a_theme_alias_counts_as_its_theme(tmp_path: Path) -> None:
    p = write(tmp_path)
    ev = evaluate(p, T, [rec("m1", "网络", "6", theme="师风", result="合格"), rec("c1", "集中", "14", result="合格")],
                  AS_OF)
    care = next(r for r in ev.cycle.requirements if r.rule.id == "min-care")
    assert care.actual == Decimal(6) and ev.passed
    assert "记录 m1 的主题“师风”按本政策的说法读作" in explain_text(ev)


def test_the_batch_gives_the_engine_figures(tmp_path: Path) -> None:
    from tests.test_batch import compare

    p = write(tmp_path)
    year = 2026  # tests.test_batch.as_of_for: the policy has no end date
    population = [
        (Teacher(id="a", stage="小学"), [Record(id="m1", year=year, form="网络", hours=Decimal(7), theme="师德"),
                                       Record(id="m2", year=year, form="网络", hours=Decimal(7), theme="安全",
                                              approved=True),
                                       Record(id="x", year=year, form="校本", level="省级", hours=Decimal(3),
                                              result="合格")]),
        (Teacher(id="b", stage="初中"), [Record(id="m1", year=year, form="网络", hours=Decimal(4), theme="心理",
                                              result="合格"),
                                       Record(id="c", year=year, form="集中", hours=Decimal(30), result="不合格")]),
        (Teacher(id="c", stage="初中"), [Record(id="m1", year=year, form="网络", hours=Decimal(8), theme="师风",
                                              result="合格")]),
    ]
    compare(p, population)
    from tests.test_batch import flat_frame

    rows = {r["teacher_id"]: r for r in evaluate_frame(p, flat_frame(population), dt.date(year, 12, 31))
            .teachers.to_dicts()}
    assert rows["a"]["cat:网络"] == 10_000  # m1 neither passed nor approved: 7 + 3 and not rows["a"]["routed"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("target: {themes: [师德, 安全]}, max", "target: {themes: [师德]}, max", "至少两个"),
        ("target: {themes: [师德, 安全]}, max", "target: {themes: [师德, 未知]}, max", "未定义的主题“未知”"),
        ("target: {themes: [师德, 安全]}, max", "target: {theme: 师德, themes: [师德, 安全]}, max", "恰好指定"),
        ("any_of: [{result: 合格}, {approved: true}]", "any_of: [{result: 合格}]", "至少两个条件"),
        ("any_of: [{result: 合格}, {approved: true}]", "any_of: [{result: 合格}, {colour: 1}]", "未知的记录字段 colour"),
        ("any_of: [{result: 合格}, {approved: true}]", "any_of: {result: 合格}", "至少两个条件"),
        ("{form: 网络}, {level: 省级, form: 校本}", "{form: 网络}, {level: 省里}", "不是规范词汇"),
        ("theme_aliases: {师风: 师德}", "theme_aliases: {师风: 师道}", "指向未定义的主题“师道”"),
        ("theme_aliases: {师风: 师德}", "theme_alias: {师风: 师德}", "未知的键"),
    ],
)
def test_misuse_is_refused(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in POLICY
    with pytest.raises(PolicyError) as err:
        write(tmp_path, POLICY.replace(old, new))
    assert message in str(err.value)


def test_applies_to_has_no_any_of(tmp_path: Path) -> None:
    """Teacher conditions stay plain: an OR there is refused, not ignored."""
    text = POLICY.replace("target: total, min: 20,",
                          "target: total, min: 20, applies_to: {any_of: [{stage: 小学}, {stage: 初中}]},")
    with pytest.raises(PolicyError):
        write(tmp_path, text)
