"""Loading policy files: YAML -> strict schema -> cross-checks.

Every error names the file and the line.  YAML numbers are read as
``Decimal`` from their text, so a rate such as 0.7 is exact from the start.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from xuefen import vocab
from xuefen.errors import PolicyError, Problem
from xuefen.model import RECORD_FIELDS, TEACHER_FIELDS
from xuefen.policy.schema import (
    ANY_OF,
    SUBTYPE_FACTS,
    AttributeYear,
    Cap,
    Cite,
    Conversion,
    Gate,
    LeaveYear,
    Minimum,
    Ops,
    Penalty,
    Policy,
    Target,
    Transfer,
    Waive,
)


class _Map(dict[Any, Any]):
    """A mapping that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class _List(list[Any]):
    line: int = 0
    item_lines: list[int]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # libyaml when built with it: 5× faster
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    result = _Map()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.MarkedYAMLError(
                problem=f"重复的键 “{key}”", problem_mark=key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _List:
    result = _List(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


def _construct_decimal(loader: _Loader, node: yaml.ScalarNode) -> Decimal:
    return Decimal(str(loader.construct_scalar(node)).replace("_", ""))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise PolicyError(
            Problem(f"YAML 语法错误：{exc.problem}", file=path.name, line=line)
        ) from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(Problem("不是 UTF-8 编码的文本", file=path.name)) from exc


def _line_of(data: Any, loc: Iterable[Any]) -> int | None:
    """The line of the deepest node on a pydantic error path."""
    line: int | None = getattr(data, "line", None)
    node = data
    for part in loc:
        if isinstance(node, _Map) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, _Map) and part == "from_" and "from" in node:
            line = node.key_lines.get("from", line)
            node = node["from"]
        elif isinstance(node, _List) and isinstance(part, int) and part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            continue
    return line


_MESSAGES = {
    "extra_forbidden": "未知的键",
    "missing": "缺少必填的键",
    "union_tag_invalid": "未知的规则类型",
    "literal_error": "取值不在允许范围内",
}


def _validation_problems(exc: ValidationError, data: Any, file: str) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = [p for p in err["loc"]]
        path = ".".join(str(p) for p in loc)
        message = _MESSAGES.get(err["type"], err["msg"])
        if err["type"] == "union_tag_invalid":
            message += f"（可用：{err.get('ctx', {}).get('expected_tags', '')}）"
        problems.append(
            Problem(f"{path}：{message}", file=file, line=_line_of(data, loc))
        )
    return problems


def _merge_parent(data: _Map, directory: Path, file: str, depth: int = 0) -> Any:
    """``extends: ID`` copies the parent policy; the child's top-level keys
    replace the parent's, its rules replace same-id rules or are appended, and
    ``remove_rules`` drops parent rules."""
    parent_id = data.pop("extends", None)
    remove = data.pop("remove_rules", [])
    if parent_id is None:
        if remove:
            raise PolicyError(Problem("remove_rules 只能与 extends 一起使用", file=file))
        return data
    if depth > 3:
        raise PolicyError(Problem("extends 嵌套过深", file=file))
    parent_path = directory / f"{parent_id}.yaml"
    if not parent_path.exists():
        raise PolicyError(Problem(f"extends 引用的政策 {parent_id} 不存在", file=file))
    parent = _merge_parent(read_yaml(parent_path), directory, parent_path.name, depth + 1)
    merged = _Map(parent)
    merged.line = data.line
    merged.key_lines = {**parent.key_lines, **data.key_lines}
    for key, value in data.items():
        if key != "rules":
            merged[key] = value
    rules = _List(r for r in parent.get("rules", []) if r.get("id") not in set(remove))
    rules.line = parent.get("rules", _List()).line if "rules" in parent else 0
    rules.item_lines = [0] * len(rules)
    index = {r.get("id"): i for i, r in enumerate(rules)}
    missing = set(remove) - {r.get("id") for r in parent.get("rules", [])}
    if missing:
        raise PolicyError(
            Problem(f"remove_rules 中的规则不存在：{'、'.join(sorted(missing))}", file=file)
        )
    for rule, line in zip(data.get("rules", []), getattr(data.get("rules"), "item_lines", []), strict=True):
        if rule.get("id") in index:
            rules[index[rule["id"]]] = rule
            rules.item_lines[index[rule["id"]]] = line
        else:
            rules.append(rule)
            rules.item_lines.append(line)
    merged["rules"] = rules
    return merged


def _check_match(
    match: dict[str, Any] | None,
    policy: Policy,
    where: str,
    problems: list[str],
    teacher_only: bool = False,
) -> None:
    if not match:
        return
    for key, expected in match.items():
        if key == ANY_OF and not teacher_only:
            for sub in expected:
                _check_match(sub, policy, where, problems)
            continue
        is_teacher = teacher_only or key.startswith("teacher.")
        name = key.removeprefix("teacher.")
        if is_teacher and name not in TEACHER_FIELDS and name not in _TEACHER_DERIVED:
            problems.append(f"{where}：未知的教师字段 {key}")
            continue
        if not is_teacher and key not in RECORD_FIELDS:
            problems.append(f"{where}：未知的记录字段 {key}")
            continue
        enum = name if vocab.is_enum(name) else None
        values: list[Any]
        if isinstance(expected, Ops):
            values = list(expected.in_ or []) + list(expected.not_in or [])
        elif isinstance(expected, list):
            values = expected
        else:
            values = [expected]
        for value in values:
            if enum and isinstance(value, str) and vocab.canonical(enum, value) != value:
                problems.append(
                    f"{where}：{key} 的取值“{value}”不是规范词汇（可选：{'、'.join(vocab.allowed(enum))}）"
                )
            if key == "category" and isinstance(value, str) and policy.category(value) is None:
                problems.append(f"{where}：未定义的学分类别“{value}”")


# Teacher predicates computed by the engine rather than read from input.
_TEACHER_DERIVED = {"hired_in_cycle", "transferred_in_cycle"}


def _check_category(name: str | None, policy: Policy, where: str, problems: list[str]) -> None:
    if name is None or name == "@record":
        return
    if policy.category(name) is None:
        problems.append(f"{where}：未定义的学分类别“{name}”")


def _check_words(policy: Policy, problems: list[str]) -> None:
    """Sub-types and theme aliases name themes of their category, and a
    sub-type is not also a category's name."""
    for cat in policy.categories:
        for name in cat.subtypes:
            theme = cat.subtype_theme(name)
            if theme not in cat.themes:
                problems.append(f"类别 {cat.id} 的子类“{name}”指向未定义的主题“{theme}”")
            if policy.category(name) is not None:
                problems.append(f"类别 {cat.id} 的子类“{name}”与学分类别同名")
            for field_name, value in cat.subtype_facts(name).items():
                if field_name not in SUBTYPE_FACTS:
                    problems.append(f"类别 {cat.id} 的子类“{name}”不能给出 {field_name}"
                                    f"（可给出：{'、'.join(SUBTYPE_FACTS)}）")
                elif vocab.is_enum(field_name) and vocab.canonical(field_name, value) != value:
                    problems.append(f"类别 {cat.id} 的子类“{name}”的 {field_name} 取值“{value}”不是规范词汇"
                                    f"（可选：{'、'.join(vocab.allowed(field_name))}）")
        for field_name, value in cat.facts.items():
            if field_name not in SUBTYPE_FACTS:
                problems.append(f"类别 {cat.id} 不能给出 {field_name}（可给出：{'、'.join(SUBTYPE_FACTS)}）")
            elif vocab.is_enum(field_name) and vocab.canonical(field_name, value) != value:
                problems.append(f"类别 {cat.id} 的 {field_name} 取值“{value}”不是规范词汇"
                                f"（可选：{'、'.join(vocab.allowed(field_name))}）")
        for alias, theme in cat.theme_aliases.items():
            if theme not in cat.themes:
                problems.append(f"类别 {cat.id} 的主题别名“{alias}”指向未定义的主题“{theme}”")


def _check_theme(theme: str | None, policy: Policy, where: str, problems: list[str]) -> None:
    if theme is None or theme == "@record":
        return
    if not any(theme in cat.themes for cat in policy.categories):
        problems.append(f"{where}：未定义的主题“{theme}”")


def _check_target(target: Any, policy: Policy, where: str, problems: list[str]) -> None:
    if isinstance(target, Target):
        _check_category(target.category, policy, where, problems)
        for name in target.categories or []:
            _check_category(name, policy, where, problems)
        _check_theme(target.theme, policy, where, problems)
        for name in target.themes or []:
            _check_theme(name, policy, where, problems)
        _check_match(target.match, policy, where, problems)


def _cross_check(policy: Policy, data: Any, file: str) -> list[Problem]:
    rule_lines = getattr(data.get("rules"), "item_lines", [])
    problems: list[Problem] = []
    minimum_ids = {r.id for r in policy.rules if isinstance(r, Minimum)}
    option_ids = {o.id: o for o in policy.options}
    first = policy.cycle.first_year
    if not isinstance(first, int):
        opt = option_ids.get(first.by_option)
        if opt is None:
            problems.append(Problem(f"cycle.first_year 引用了未定义的选项 {first.by_option}", file=file))
        elif set(opt.choices) != set(first.values):
            problems.append(Problem(f"cycle.first_year 须为选项 {first.by_option} 的每个取值给出年份", file=file))
    words: list[str] = []
    _check_words(policy, words)
    problems += [Problem(w, file=file) for w in words]
    for index, rule in enumerate(policy.rules):
        found: list[str] = []
        where = f"规则 {rule.id}"
        for key, value in rule.when_option.items():
            opt = option_ids.get(key)
            if opt is None:
                found.append(f"{where}：未定义的选项 {key}")
            elif value not in opt.choices:
                found.append(f"{where}：选项 {key} 没有取值“{value}”")
        for cite in rule.cites:
            if not cite.note.strip():
                found.append(f"{where}：引用缺少说明（note）")
        if hasattr(rule, "when"):
            _check_match(rule.when, policy, where, found)
        if hasattr(rule, "applies_to"):
            _check_match(rule.applies_to, policy, where, found, teacher_only=True)
        if isinstance(rule, Conversion):
            for out in rule.all_outputs():
                _check_category(out.category, policy, where, found)
                _check_theme(out.theme, policy, where, found)
                if out.credits.by is not None:
                    field = out.credits.by.field
                    if field not in RECORD_FIELDS:
                        found.append(f"{where}：by.field 未知的记录字段 {field}")
                    elif vocab.is_enum(field):
                        for key in out.credits.by.values:
                            if vocab.canonical(field, key) != key:
                                found.append(f"{where}：{field} 的取值“{key}”不是规范词汇")
        if isinstance(rule, Gate):
            _check_match(rule.require, policy, where, found)
        if isinstance(rule, (Cap, Minimum)):
            _check_target(rule.target, policy, where, found)
        if isinstance(rule, Transfer):
            for name in [*rule.from_, rule.to]:
                _check_category(name, policy, where, found)
        if isinstance(rule, LeaveYear):
            for kind in rule.kinds:
                if vocab.canonical("leave_kind", kind) != kind:
                    found.append(f"{where}：未知的假期类型“{kind}”")
            for lm in rule.year_minimums:
                _check_target(lm.target, policy, where, found)
            for key in rule.cycle_reduction:
                if key != "total":
                    _check_category(key, policy, where, found)
        if isinstance(rule, AttributeYear) and rule.require_leave:
            for kind in rule.require_leave:
                if vocab.canonical("leave_kind", kind) != kind:
                    found.append(f"{where}：未知的假期类型“{kind}”")
        if isinstance(rule, Waive):
            for ref in rule.rules:
                if ref not in minimum_ids:
                    found.append(f"{where}：引用的最低要求规则 {ref} 不存在")
        if isinstance(rule, Penalty) and rule.rule not in minimum_ids:
            found.append(f"{where}：引用的最低要求规则 {rule.rule} 不存在")
        line = rule_lines[index] if index < len(rule_lines) else None
        problems.extend(Problem(msg, file=file, line=line or None) for msg in found)
    return problems


def load_policy_file(path: Path) -> Policy:
    data = read_yaml(path)
    if not isinstance(data, _Map):
        raise PolicyError(Problem("政策文件须为 YAML 映射", file=path.name))
    data = _merge_parent(data, path.parent, path.name)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_validation_problems(exc, data, path.name)) from exc
    if policy.id != path.stem:
        raise PolicyError(
            Problem(f"政策编号 {policy.id} 须与文件名 {path.stem} 一致", file=path.name, line=1)
        )
    problems = _cross_check(policy, data, path.name)
    if problems:
        raise PolicyError(problems)
    return policy


def default_policy_dir() -> Path:
    return Path(str(resources.files("xuefen") / "policies"))


@dataclass(frozen=True)
class Registry:
    policies: dict[str, Policy]

    def get(self, policy_id: str) -> Policy:
        try:
            return self.policies[policy_id]
        except KeyError:
            known = "、".join(sorted(self.policies))
            raise PolicyError(f"没有编号为 {policy_id} 的政策（可用：{known}）") from None

    def family(self, code: str) -> list[Policy]:
        return sorted(
            (p for p in self.policies.values() if p.jurisdiction.code == code),
            key=lambda p: p.effective.from_,
        )

    def resolve(self, name: str, as_of: dt.date | None) -> Policy:
        """A policy id, or a jurisdiction code whose version in force on
        ``as_of`` is picked.  A name that is both (山东: the code ``shandong``
        and the current version's id) gives the version in force."""
        if name in self.policies:
            policy = self.policies[name]
            if as_of is None or in_force(policy, as_of):
                return policy
            others = [p for p in self.family(name) if in_force(p, as_of)]
            return others[0] if len(others) == 1 else policy
        versions = [p for p in self.family(name) if as_of is None or in_force(p, as_of)]
        if not versions:
            raise PolicyError(f"没有编号或辖区代码为 {name} 且在 {as_of} 有效的政策")
        if len(versions) > 1:
            ids = "、".join(p.id for p in versions)
            raise PolicyError(f"辖区 {name} 有多个政策在该日期有效（{ids}），请指定政策编号")
        return versions[0]


def pick(registry: Registry, name: str, as_of: dt.date | None, today: dt.date | None = None) -> tuple[Policy, dt.date]:
    """The policy named (id or jurisdiction code) and the date to evaluate at.

    Without ``as_of``, today — except that a policy whose period is over is
    evaluated as of its last day.  An explicit date outside the version's
    period is an error that names the version in force then."""
    today = today or dt.date.today()
    policy = registry.resolve(name, as_of or today)
    if as_of is None:
        as_of = today
        end = policy.effective.to
        if end is not None and as_of >= end:
            as_of = end - dt.timedelta(days=1)
        elif as_of < policy.effective.from_:
            as_of = policy.effective.from_
        return policy, as_of
    if not in_force(policy, as_of):
        others = [p.id for p in registry.family(policy.jurisdiction.code) if in_force(p, as_of)]
        hint = f"；该日期有效的版本：{'、'.join(others)}" if others else ""
        eff = policy.effective
        raise PolicyError(f"政策 {policy.id} 的有效期为 [{eff.from_}, {eff.to or '至今'})，不含 {as_of}{hint}")
    return policy, as_of


def in_force(policy: Policy, day: dt.date) -> bool:
    eff = policy.effective
    return eff.from_ <= day and (eff.to is None or day < eff.to)


def check_versions(policies: Iterable[Policy]) -> list[Problem]:
    """Versions of one jurisdiction and audience must not overlap or leave a
    gap: every day is governed by exactly one of them, from the first."""
    groups: dict[tuple[str, str], list[Policy]] = {}
    for p in policies:
        groups.setdefault((p.jurisdiction.code, p.applies_to), []).append(p)
    problems = []
    for (code, audience), group in groups.items():
        group.sort(key=lambda p: p.effective.from_)
        for before, after in itertools.pairwise(group):
            end = before.effective.to
            if end is None or end > after.effective.from_:
                problems.append(
                    Problem(f"辖区 {code}（{audience}）的版本 {before.id} 与 {after.id} 有效期重叠",
                            file=f"{after.id}.yaml")
                )
            elif end < after.effective.from_:
                problems.append(
                    Problem(f"辖区 {code}（{audience}）的版本 {before.id} 与 {after.id} 之间有空档"
                            f"（{end} 至 {after.effective.from_}）", file=f"{after.id}.yaml")
                )
    return problems


def load_directory(directory: Path) -> Registry:
    problems: list[Problem] = []
    policies: dict[str, Policy] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            policy = load_policy_file(path)
        except PolicyError as exc:
            problems.extend(exc.problems)
            continue
        policies[policy.id] = policy
    problems.extend(check_versions(policies.values()))
    if problems:
        raise PolicyError(problems)
    return Registry(policies)


@functools.cache
def default_registry() -> Registry:
    return load_directory(default_policy_dir())


def cite_file(policy: Policy, cite: Cite) -> str:
    return cite.file or policy.source.file
