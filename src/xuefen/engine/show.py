"""``xuefen policy show``: a policy's rules in Chinese, each with its citation."""

from __future__ import annotations

from xuefen.engine.evaluate import cite_text, cycle_first_year, describe_match, resolve_options, target_text
from xuefen.numbers import fmt
from xuefen.policy.schema import (
    Cap,
    Conversion,
    Credits,
    Minimum,
    Policy,
    Transfer,
)

KIND_NAMES = {
    "conversion": "学分换算",
    "gate": "计分条件",
    "exclude": "登记但不计入",
    "multiplier": "加权",
    "attribute_year": "计入年度",
    "cap": "上限",
    "transfer": "类别间折抵",
    "minimum": "最低要求",
    "partial_cycle": "部分周期",
    "leave_year": "假期年度",
    "waive": "免于考核",
    "completion": "视为完成",
    "penalty": "加修",
}


def credits_text(c: Credits) -> str:
    if c.hours_per_credit is not None:
        text = f"{fmt(c.hours_per_credit)}学时折合1学分"
    elif c.credits_per_hour is not None:
        text = f"每学时 {fmt(c.credits_per_hour)} 学分"
    elif c.fixed is not None:
        text = f"每项 {fmt(c.fixed)} 学分"
    elif c.by is not None:
        unit = "每学时" if c.by.per_hour else "每项"
        values = "，".join(f"{k} {fmt(v)}" for k, v in c.by.values.items())
        text = f"按{c.by.field}{unit}：{values}"
    elif c.per_day is not None:
        text = f"每天 {fmt(c.per_day)} 学分"
    elif c.per_topic is not None:
        text = f"每个专题 {fmt(c.per_topic)} 学分"
    elif c.preset:
        text = "按认定机构填写的学分"
    else:
        assert c.bands is not None
        parts = []
        for b in c.bands.bands:
            upper = f"–{fmt(b.max)}" if b.max is not None else "以上"
            parts.append(f"{fmt(b.min)}{upper}：{fmt(b.credits)}")
        text = f"按{c.bands.field}分档（{'；'.join(parts)}）"
    if c.day_hours is not None:
        text = f"每天计 {fmt(c.day_hours)} 学时，" + text
    return text


def show_text(policy: Policy) -> str:
    p = policy
    eff = f"[{p.effective.from_}, {p.effective.to or '至今'})"
    out = [
        f"{p.name}（{p.id}）",
        f"辖区：{p.jurisdiction.name}（{p.jurisdiction.code}）  适用：{p.applies_to}",
        f"依据：{p.source.document}（{p.source.file}）",
        f"有效期：{eff}  周期：{p.cycle.years}年，始于{cycle_first_year(p, resolve_options(p, {}))}年"
        + ("，周期内每年均须达标" if p.cycle.requires_every_year else ""),
        "类别：" + "、".join(c.id + (f"（主题：{'、'.join(c.themes)}）" if c.themes else "") for c in p.categories),
        "",
    ]
    if p.options:
        out.append("可设置的选项（政策未明确之处）：")
        for o in p.options:
            out.append(f"  {o.id}：{o.label}（默认 {o.default}）")
            for k, v in o.choices.items():
                out.append(f"      {k}：{v}")
            out.append(f"      依据：{cite_text(p, o.cite if isinstance(o.cite, list) else [o.cite])}")
        out.append("")
    out.append("规则：")
    for r in p.rules:
        detail = ""
        if isinstance(r, Conversion):
            parts = [f"{o.category}：{credits_text(o.credits)}" for o in r.all_outputs()]
            cond = describe_match(r.when) or "所有记录"
            detail = f"条件 {cond} → {'；'.join(parts)}"
        elif isinstance(r, Minimum):
            unit = {"hours": "学时", "count": "次"}.get(r.measure, "学分")
            scope = {"year": "每年", "cycle": "每周期", "hire_year": "入职当年"}[r.scope]
            detail = f"{scope} {target_text(r.target)} ≥ {fmt(r.min)}{unit}"
        elif isinstance(r, Cap):
            scope = {"year": "每年", "cycle": "每周期"}[r.scope]
            limit = []
            if r.max is not None:
                limit.append(f"≤ {fmt(r.max)}")
            if r.share_of_total:
                limit.append(f"≤ 总量的 {r.share_of_total}")
            if r.highest_only:
                limit.append("只取最高一项")
            detail = f"{scope} {target_text(r.target)} {'，'.join(limit)}"
        elif isinstance(r, Transfer):
            detail = f"{'、'.join(r.from_)} → {r.to}（{'超出部分' if r.mode == 'overflow' else '补足不足'}）"
        option = ""
        if r.when_option:
            option = "  〔设置 " + "，".join(f"{k}={v}" for k, v in r.when_option.items()) + " 时启用〕"
        out.append(f"  [{KIND_NAMES[r.kind]}] {r.id}：{r.label}{option}")
        if detail:
            out.append(f"      {detail}")
        for c in r.cites:
            section = c.section or ""
            out.append(f"      出处：{c.file or p.source.file} {section}{c.article} —— {c.note}")
    for note in p.notes:
        out.append(f"注：{note}")
    return "\n".join(out) + "\n"
