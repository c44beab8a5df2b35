"""Records in a policy's own words: a sub-type written as the category (朝阳
附件3 第八条 选修 = 专业选修/专题选修/自主选修/市级教科研活动), another spelling of
a theme, a category alias — each read as the category and theme the policy
means; and a category or theme the policy does not know, which is bad input
(file, row, field, the accepted values), never 0 credits and never some other
category."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from xuefen.errors import Problem
from xuefen.model import RECORD_FIELDS, Record
from xuefen.policy.schema import SUBTYPE_FACTS, Conversion, Ops, Policy, RuleBase


def has_words(policy: Policy) -> bool:
    """Does the policy rewrite any record (sub-types or theme aliases)?"""
    return any(cat.subtypes or cat.theme_aliases or cat.facts for cat in policy.categories)


def in_policy_words(policy: Policy, record: Record) -> Record:
    """The record with a sub-type category read as its category and theme,
    and a theme alias as the theme (unchanged when nothing applies)."""
    category, theme = record.category, record.theme
    facts: dict[str, str] = {}
    own = policy.category(category) if category is not None else None
    if own is not None and own.facts:
        facts = {k: v for k, v in own.facts.items() if record.get(k) is None}
    if category is not None and own is None:
        hit = policy.subtype(category)
        if hit is not None and (theme is None or theme == category or hit[0].theme_of(theme) == hit[1]):
            # a fact the record gives wins over what the sub-type's name says
            facts = {k: v for k, v in hit[0].subtype_facts(category).items() if record.get(k) is None}
            category, theme = hit[0].id, hit[1]
    if theme is not None:
        for cat in policy.categories:
            if theme in cat.theme_aliases:
                theme = cat.theme_aliases[theme]
                break
    if category == record.category and theme == record.theme and not facts:
        return record
    changes: dict[str, Any] = {"category": category, "theme": theme, **facts}
    return dataclasses.replace(record, **changes)


# the explanation names a filled fact by the column header a school sees
FIELD_WORDS = {name: f"{RECORD_FIELDS[name][0]}：" for name in SUBTYPE_FACTS}


def stated_facts(before: Record, after: Record) -> dict[str, str]:
    """The facts a sub-type's name filled in (for the explanation)."""
    out: dict[str, str] = {}
    for name in SUBTYPE_FACTS:
        value = after.get(name)
        if value is not None and before.get(name) is None:
            out[name] = value
    return out


def _rule_themes(rules: Iterable[RuleBase]) -> set[str]:
    """Theme values the rules' conditions name (a conversion may read a theme
    the categories do not list, e.g. 朝阳 专业选修 inside 专业选修与专题选修)."""
    out: set[str] = set()
    for rule in rules:
        when = getattr(rule, "when", None)
        expected = when.get("theme") if isinstance(when, dict) else None
        values = expected.in_ if isinstance(expected, Ops) else expected
        for v in values if isinstance(values, list) else [values]:
            if isinstance(v, str):
                out.add(v)
        if isinstance(rule, Conversion):
            out |= {o.theme for o in rule.all_outputs() if o.theme and o.theme != "@record"}
    return out


def accepted_categories(policy: Policy) -> list[str]:
    out: list[str] = []
    for cat in policy.categories:
        out += [cat.id, *cat.aliases, *cat.subtypes]
    return list(dict.fromkeys(out))


def accepted_themes(policy: Policy) -> list[str]:
    listed: list[str] = []
    for cat in policy.categories:
        listed += [*cat.themes, *cat.theme_aliases, *cat.subtypes]
    extra = sorted(_rule_themes(policy.rules) - set(listed))
    return list(dict.fromkeys(listed + extra))


def unknown_words(policy: Policy, records: Iterable[Record],
                  where: Callable[[Record, str, str], Problem]) -> list[Problem]:
    """A problem for every record whose category or theme the policy does not
    know, naming the accepted values.  A policy that names no theme at all
    reads none, so a theme is then not checked."""
    categories = accepted_categories(policy)
    themes = accepted_themes(policy)
    known_c, known_t = set(categories), set(themes)
    problems: list[Problem] = []
    for r in records:
        if r.category is not None and r.category not in known_c:
            shown = "、".join(categories)
            problems.append(where(r, "category", f"学分类别“{r.category}”不属于{policy.short_name}（可用：{shown}）"))
        sub = policy.subtype(r.category) if r.category is not None and policy.category(r.category) is None else None
        if sub is not None and r.theme is not None and r.theme != r.category and sub[0].theme_of(r.theme) != sub[1]:
            problems.append(where(r, "theme", f"主题“{r.theme}”与学分类别“{r.category}”（{sub[0].id}·{sub[1]}）不一致"))
        elif r.theme is not None and known_t and r.theme not in known_t:
            problems.append(where(r, "theme", f"主题“{r.theme}”不属于{policy.short_name}（可用：{'、'.join(themes)}）"))
    return problems
