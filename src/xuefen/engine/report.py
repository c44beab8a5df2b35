"""Turning an :class:`Evaluation` into the stable JSON shape, a Chinese text
report, the full explanation trace, and a plan of what is still needed."""

from __future__ import annotations

import json
import unicodedata
from decimal import ROUND_CEILING, Decimal
from typing import Any

from xuefen.engine.core import Line
from xuefen.engine.evaluate import Evaluation, ScopeResult, Step, cite_text
from xuefen.numbers import ZERO, fmt
from xuefen.policy.schema import Cap, Conversion, Minimum, Target


def _num(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    return Decimal(fmt(value))


def _scope_shortfall(sc: ScopeResult) -> Decimal:
    """Credits still needed to pass a scope: the larger of the total's deficit
    and the sum of the categories' deficits."""
    total_missing = ZERO
    cat_missing = ZERO
    for req in sc.requirements:
        if req.met or req.rule.measure != "credits":
            continue
        if req.rule.target == "total":
            total_missing = max(total_missing, req.missing)
        else:
            cat_missing += req.missing
    return max(total_missing, cat_missing)


def _required(sc: ScopeResult, field: str, name: str) -> Decimal | None:
    """The credits minimum of the scope whose target is that category or theme."""
    for req in sc.requirements:
        t = req.rule.target
        if isinstance(t, Target) and getattr(t, field) == name and req.rule.measure == "credits":
            return req.min
    return None


def category_required(sc: ScopeResult, category: str) -> Decimal | None:
    return _required(sc, "category", category)


def theme_lines(ev: Evaluation) -> dict[str, dict[str, dict[str, Any]]]:
    """category -> theme -> the theme's own figures, for each category that
    lists themes: a sub-type (朝阳 附件3 第八条 专业选修 …) has its own rate and
    its own caps, which the category's sum hides.  Earned is before any cap,
    counted is what the cycle kept; each cap on the theme gives its amount and
    what it cut over the cycle (a yearly cap's cuts summed over the years)."""
    p = ev.policy
    # one pass over the lines and the rules, not one per theme (朝阳 lists 18)
    mine: dict[tuple[str, str | None], list[Line]] = {}
    for rr in ev.records:
        for ln in rr.lines:
            if ln.counted_in_cycle and not ln.excluded:
                mine.setdefault((ln.category, ln.theme), []).append(ln)
    scopes = [*ev.years.values(), ev.cycle]
    caps: dict[str, list[dict[str, Any]]] = {}
    for c in p.rules:
        if isinstance(c, Cap) and c.target.theme is not None \
                and all(ev.options.get(k) == v for k, v in c.when_option.items()):
            cut = sum((sc.cuts.get(c.id, ZERO) for sc in scopes if sc.scope == c.scope or c.cumulative), ZERO)
            caps.setdefault(c.target.theme, []).append(
                {"rule": c.id, "label": c.label, "scope": c.scope, "max": _num(c.max), "cut": _num(cut),
                 "cite": cite_text(p, c.cites)})
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for cat in p.categories:
        if not cat.themes:
            continue
        per_theme: dict[str, dict[str, Any]] = {}
        for theme in cat.themes:
            lines = mine.get((cat.id, theme), [])
            per_theme[theme] = {
                "earned": _num(sum((ln.credits for ln in lines), ZERO)),
                "counted": _num(sum((ev.cycle.amounts.get(ln.idx, ZERO) for ln in lines), ZERO)),
                "required": _num(_required(ev.cycle, "theme", theme)),
                "caps": caps.get(theme, []),
            }
        out[cat.id] = per_theme
    return out


def shown_themes(category: str, themes: dict[str, dict[str, Any]],
                 whole: tuple[Decimal | None, Decimal | None]) -> dict[str, dict[str, Any]]:
    """The theme lines worth showing under a category (text report, teacher's
    page): those that hold credits or carry a rule.  A theme with nothing in
    it and no rule on it would be noise, and one theme named as its category
    with the category's (earned, counted) ``whole`` (永吉 校本研修) repeats the
    category's line."""
    shown = {t: fig for t, fig in themes.items()
             if fig["earned"] or fig["required"] is not None or any(cap["cut"] for cap in fig["caps"])}
    only = shown.get(category)
    if len(shown) == 1 and only is not None and only["required"] is None \
            and not any(cap["cut"] for cap in only["caps"]) and (only["earned"], only["counted"]) == whole:
        return {}
    return shown


def as_dict(ev: Evaluation) -> dict[str, Any]:
    p = ev.policy
    categories: dict[str, Any] = {}
    for cat in p.categories:
        required = category_required(ev.cycle, cat.id)
        counted = ev.cycle.counted[cat.id]
        categories[cat.id] = {
            "earned": _num(ev.cycle.earned[cat.id]),
            "counted": _num(counted),
            "required": _num(required),
            "shortfall": _num(max(ZERO, required - counted)) if required is not None else _num(ZERO),
        }
    years: dict[str, Any] = {}
    for y, sc in ev.years.items():
        years[str(y)] = {
            "passed": sc.passed,
            "total": _num(sc.total),
            "categories": {c: _num(v) for c, v in sc.counted.items()},
            "shortfall": _num(_scope_shortfall(sc)),
        }
    records = [
        {
            "id": rr.id,
            "year": rr.year,
            "credits": _num(rr.credits),
            "category": rr.category,
            "counted_in_cycle": any(ln.counted_in_cycle and not ln.excluded for ln in rr.lines),
            "explanation": rr.explanation,
        }
        for rr in ev.records
    ]
    shortfalls = [
        {
            "scope": s["scope"],
            "year": s["year"],
            "category": s["category"],
            "theme": s["theme"],
            "rule": s["rule"],
            "measure": s["measure"],
            "missing": _num(s["missing"]),
            "cite": s["cite"],
        }
        for s in ev.shortfalls()
    ]
    return {
        "policy": {"id": p.id, "name": p.name, "jurisdiction": p.jurisdiction.name},
        "teacher": {"id": ev.teacher.id, "name": ev.teacher.name},
        "as_of": ev.as_of.isoformat(),
        "cycle": {"start": ev.cycle_start, "end": ev.cycle_end},
        "options": ev.options,
        "passed": ev.passed,
        "status": ev.status,
        "total": _num(ev.total),
        "categories": categories,
        # added beside "categories" so that a reader of category figures sees
        # the same keys as before
        "themes": theme_lines(ev),
        "years": years,
        "records": records,
        "shortfalls": shortfalls,
        "warnings": ev.warnings,
    }


def dumps(value: Any, indent: int = 2, _level: int = 0) -> str:
    """JSON with Decimals written as exact number literals (json cannot)."""
    pad = " " * (indent * (_level + 1))
    end = " " * (indent * _level)
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}{json.dumps(str(k), ensure_ascii=False)}: {dumps(v, indent, _level + 1)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        items = [pad + dumps(v, indent, _level + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    return json.dumps(value, ensure_ascii=False)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _ljust(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _rjust(text: str, width: int) -> str:
    return " " * max(0, width - _width(text)) + text


def _verdict(passed: bool | None) -> str:
    return {True: "达标", False: "未达标", None: "不考核"}[passed]


def text_report(ev: Evaluation) -> str:
    p = ev.policy
    t = ev.teacher
    lines = [
        f"{p.name}（{p.id}）",
        f"教师：{t.name or ''}（{t.id}）  周期：{ev.cycle_start}–{ev.cycle_end}年  评估日期：{ev.as_of.isoformat()}",
        f"周期结论：{ev.status}    周期计入学分：{fmt(ev.total)}",
        "",
    ]
    themes = {c: shown_themes(c, per, (_num(ev.cycle.earned[c]), _num(ev.cycle.counted[c])))
              for c, per in theme_lines(ev).items()}
    # a theme's name (专业选修与专题选修) is wider than a category's: the first
    # column takes the widest shown, so the figures stay in their columns
    first = max([14, *(_width(f"  ·{t}") + 2 for per in themes.values() for t in per)])
    lines.append(_ljust("类别", first) + "".join(_rjust(h, 9) for h in ("已获", "计入", "要求", "尚缺")))
    for cat in p.categories:
        req = category_required(ev.cycle, cat.id)
        counted = ev.cycle.counted[cat.id]
        cells = [fmt(ev.cycle.earned[cat.id]), fmt(counted),
                 fmt(req) if req is not None else "—",
                 fmt(max(ZERO, req - counted)) if req is not None else "—"]
        lines.append(_ljust(cat.id, first) + "".join(_rjust(c, 9) for c in cells))
        for theme, fig in themes.get(cat.id, {}).items():
            cells = [fmt(fig["earned"]), fmt(fig["counted"]),
                     fmt(fig["required"]) if fig["required"] is not None else "—",
                     fmt(max(ZERO, fig["required"] - fig["counted"])) if fig["required"] is not None else "—"]
            lines.append(_ljust(f"  ·{theme}", first) + "".join(_rjust(c, 9) for c in cells))
            for c in fig["caps"]:
                limit = f"上限 {fmt(c['max'])}学分" if c["max"] is not None else c["label"]
                scope = "每年" if c["scope"] == "year" else "本周期"
                lines.append(f"      {scope}{limit}，封顶扣除 {fmt(c['cut'])}学分（{c['cite']}）")
    if ev.years:
        lines += ["", "年度："]
        for y, sc in ev.years.items():
            parts = "，".join(f"{c} {fmt(v)}" for c, v in sc.counted.items())
            lines.append(f"  {y}年  合计 {fmt(sc.total)}（{parts}） {_verdict(sc.passed)}")
    shortfalls = ev.shortfalls()
    if shortfalls:
        lines += ["", "未达到的要求："]
        for s in shortfalls:
            where = f"{s['year']}年" if s["year"] else "本周期"
            unit = {"hours": "学时", "count": "次"}.get(s["measure"], "学分")
            lines.append(f"  {where} {s['label']}：要求 {fmt(s['required'])}{unit}，实得 {fmt(s['actual'])}{unit}，"
                         f"尚缺 {fmt(s['missing'])}{unit}（{s['cite']}）")
    lines += ["", "记录："]
    for rr in ev.records:
        lines.append(f"  [{rr.id}] {fmt(rr.credits)}学分  {rr.explanation}")
    for w in ev.warnings:
        lines.append(f"注意：{w}")
    return "\n".join(lines) + "\n"


def explain_text(ev: Evaluation) -> str:
    p = ev.policy
    out = [f"{p.name}（{p.id}）  教师 {ev.teacher.name or ''}（{ev.teacher.id}）", ""]

    def section(title: str, steps: list[Step]) -> None:
        if steps:
            out.append(title)
            out.extend(f"  {'·' if s.applied else '○'} {s.render()}" for s in steps)
            out.append("")

    teacher_steps = [s for s in ev.steps if s.scope == "teacher"]
    section("一、适用的设置与教师情况", teacher_steps)
    record_steps: list[Step] = []
    for rr in ev.records:
        record_steps.extend(rr.steps)
    section("二、逐条记录的学分换算", record_steps)
    for y in ev.years:
        section(f"三、{y}年度", [s for s in ev.steps if s.scope == "year" and s.year == y])
    section("四、本周期", [s for s in ev.steps if s.scope == "cycle"])
    inactive = ev.options and [r for r in p.rules if any(ev.options.get(k) != v for k, v in r.when_option.items())]
    if inactive:
        out.append("五、因设置而未启用的规则")
        for r in inactive:
            need = "，".join(f"{k}={v}" for k, v in r.when_option.items())
            out.append(f"  ○ {r.label}：需设置 {need}（{cite_text(p, r.cites)}）")
        out.append("")
    out.append(f"结论：{ev.status}（周期计入 {fmt(ev.total)} 学分）")
    return "\n".join(out) + "\n"


def plan(ev: Evaluation) -> dict[str, Any]:
    """What the teacher still needs, this year and this cycle, and what that
    means in hours of each kind of training her policy converts by the hour."""
    p = ev.policy
    this_year = ev.as_of.year
    needs: list[dict[str, Any]] = []
    for s in ev.shortfalls():
        if s["scope"] == "year" and s["year"] != this_year:
            continue  # past years cannot be repaired by new training
        if s["measure"] not in ("credits", "earned_credits"):
            needs.append({**s, "ways": []})
            continue
        needs.append({**s, "ways": _ways(ev, s["category"], s["missing"])})
    for need in needs:
        for key in ("required", "actual", "missing"):
            need[key] = _num(need[key])
    remaining_years = max(0, ev.cycle_end - this_year + 1)
    return {
        "policy": p.id,
        "teacher": ev.teacher.id,
        "as_of": ev.as_of.isoformat(),
        "status": ev.status,
        "remaining_years": remaining_years,
        "needs": needs,
        # records a conversion could not price: the fact to add
        "incomplete": [{"record": rr.id, "year": rr.year, "missing": fact}
                       for rr in ev.records for fact in dict.fromkeys(rr.missing)],
    }


def _ways(ev: Evaluation, category: str | None, missing: Decimal) -> list[dict[str, Any]]:
    p = ev.policy
    ways = []
    for rule in p.rules:
        if not isinstance(rule, Conversion):
            continue
        if any(ev.options.get(k) != v for k, v in rule.when_option.items()):
            continue
        for out in rule.all_outputs():
            if category is not None and out.category not in (category, "@record"):
                continue
            c = out.credits
            if c.hours_per_credit is not None:
                hours = missing * c.hours_per_credit
            elif c.credits_per_hour:
                hours = missing / c.credits_per_hour
            elif c.fixed:  # a way that earns 0 (a conversion that records without crediting) is no way
                items = (missing / c.fixed).to_integral_value(rounding=ROUND_CEILING)
                ways.append({"rule": rule.id, "label": rule.label, "category": out.category,
                             "items": int(items), "cite": cite_text(p, rule.cites)})
                continue
            else:
                continue
            whole = hours.to_integral_value(rounding=ROUND_CEILING)
            ways.append({"rule": rule.id, "label": rule.label, "category": out.category,
                         "hours": Decimal(fmt(hours.quantize(Decimal("0.01")))), "whole_hours": int(whole),
                         "cite": cite_text(p, rule.cites)})
    return ways


def plan_text(data: dict[str, Any]) -> str:
    lines = [f"截至 {data['as_of']}：{data['status']}；本周期还剩 {data['remaining_years']} 年（含本年）"]
    if not data["needs"]:
        lines.append("已无未达到的要求。")
    for need in data["needs"]:
        where = f"{need['year']}年" if need["year"] else "本周期"
        unit = {"hours": "学时", "count": "次"}.get(need["measure"], "学分")
        lines.append(f"· {where}{need['label']}：尚缺 {fmt(need['missing'])}{unit}（{need['cite']}）")
        for way in need["ways"][:8]:
            if "hours" in way:
                lines.append(f"    可参加“{way['label']}”约 {way['whole_hours']} 学时")
            else:
                lines.append(f"    或完成“{way['label']}” {way['items']} 项")
    for item in data.get("incomplete", []):
        lines.append(f"· 记录 {item['record']}（{item['year']}年）缺少{item['missing']}：补填后才能计算学分")
    return "\n".join(lines) + "\n"


__all__ = ["Minimum", "as_dict", "dumps", "explain_text", "plan", "plan_text", "text_report", "theme_lines"]
