"""The policy format: a closed vocabulary of rule kinds.

Each kind is a strict pydantic model (unknown keys are errors) and is
implemented exactly once in :mod:`xuefen.engine.evaluate`.  A policy is data:
what a jurisdiction's articles say, each rule citing the article it encodes.
See docs/policy-format.md for the meaning of every key.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Cite(Strict):
    """Where a rule comes from: the seed file, an optional section (附件3,
    第三篇, 第四篇 ...) and the article (第N条, or the heading where articles are
    unnumbered), with a short description in our own words."""

    file: str | None = None  # defaults to the policy's source file
    section: str | None = None
    article: str
    note: str


Scalar = str | int | bool | Decimal


class Ops(Strict):
    """Comparison operators for numeric facts and membership tests."""

    lt: Decimal | None = None
    le: Decimal | None = None
    gt: Decimal | None = None
    ge: Decimal | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    not_in: list[Scalar] | None = None
    present: bool | None = None


MatchValue = Scalar | list[Scalar] | Ops | None
_MATCH_VALUE: TypeAdapter[Any] = TypeAdapter(MatchValue)
ANY_OF = "any_of"


def _match(value: Any) -> dict[str, Any]:
    """A condition: every key must hold; ``any_of`` holds when one of its
    conditions does (an OR across fields, 潍坊 第十二条 "或")."""
    if not isinstance(value, dict):
        raise ValueError("条件须为“字段: 取值”的映射")
    out: dict[str, Any] = {}
    for key, expected in value.items():
        if key == ANY_OF:
            if not isinstance(expected, list) or len(expected) < 2:
                raise ValueError("any_of 须列出至少两个条件")
            out[key] = [_match(m) for m in expected]
        else:
            out[str(key)] = _MATCH_VALUE.validate_python(expected)
    return out


# field -> expected value.  Record fields by name; teacher facts as
# "teacher.stage", "teacher.post" ...; a list means "any of"; None means
# "absent"; ``any_of: [condition, condition, ...]`` means "one of these".
Match = Annotated[dict[str, Any], BeforeValidator(_match)]


def match_items(match: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """Every (field, expected value) a condition tests, inside ``any_of`` too."""
    out: list[tuple[str, Any]] = []
    for key, expected in (match or {}).items():
        if key == ANY_OF:
            for sub in expected:
                out += match_items(sub)
        else:
            out.append((key, expected))
    return out


class RuleBase(Strict):
    id: str
    label: str  # one line in Chinese, shown in policy show and traces
    cite: Cite | list[Cite]
    # active only when every named option has the given value
    when_option: dict[str, str] = {}

    @property
    def cites(self) -> list[Cite]:
        return self.cite if isinstance(self.cite, list) else [self.cite]


class ByTable(Strict):
    field: str
    values: dict[str, Decimal]
    per_hour: bool = False  # values are credits per hour rather than fixed credits


class Band(Strict):
    min: Decimal  # inclusive
    max: Decimal | None = None  # exclusive
    credits: Decimal


class Bands(Strict):
    field: Literal["days", "hours", "words", "topics"]
    bands: list[Band]


class Credits(Strict):
    """How one record becomes credits.  Exactly one method key."""

    hours_per_credit: Decimal | None = None
    credits_per_hour: Decimal | None = None
    fixed: Decimal | None = None
    by: ByTable | None = None
    per_day: Decimal | None = None
    per_topic: Decimal | None = None
    preset: bool = False
    bands: Bands | None = None
    # days -> hours before an hour-based method, when the record has no hours
    day_hours: Decimal | None = None

    @model_validator(mode="after")
    def _one_method(self) -> Credits:
        methods = [
            self.hours_per_credit is not None,
            self.credits_per_hour is not None,
            self.fixed is not None,
            self.by is not None,
            self.per_day is not None,
            self.per_topic is not None,
            self.preset,
            self.bands is not None,
        ]
        if sum(methods) != 1:
            raise ValueError(
                "credits 必须恰好指定一种换算方法：hours_per_credit、credits_per_hour、"
                "fixed、by、per_day、per_topic、preset 或 bands"
            )
        if self.day_hours is not None and not (
            self.hours_per_credit is not None
            or self.credits_per_hour is not None
            or (self.by is not None and self.by.per_hour)
        ):
            raise ValueError("day_hours 只能与按学时换算的方法一起使用")
        return self

    @property
    def hour_based(self) -> bool:
        return (
            self.hours_per_credit is not None
            or self.credits_per_hour is not None
            or (self.by is not None and self.by.per_hour)
        )


class Output(Strict):
    category: str  # a policy category, or "@record" for the record's preset category
    theme: str | None = None  # a theme, or "@record"
    credits: Credits


class Conversion(RuleBase):
    kind: Literal["conversion"]
    when: Match = {}
    category: str | None = None
    theme: str | None = None
    credits: Credits | None = None
    outputs: list[Output] | None = None  # one record credited to several categories

    @model_validator(mode="after")
    def _shape(self) -> Conversion:
        single = self.category is not None and self.credits is not None
        if single == (self.outputs is not None):
            raise ValueError("conversion 须有 category+credits，或 outputs，二者取其一")
        if self.outputs is None and (self.category is None) != (self.credits is None):
            raise ValueError("conversion 的 category 与 credits 须同时给出")
        return self

    def all_outputs(self) -> list[Output]:
        if self.outputs is not None:
            return self.outputs
        assert self.category is not None and self.credits is not None
        return [Output(category=self.category, theme=self.theme, credits=self.credits)]


class Gate(RuleBase):
    """Records that match ``when`` earn nothing unless ``require`` holds and
    absence stays within ``max_absence_share``."""

    kind: Literal["gate"]
    when: Match = {}
    require: Match | None = None
    max_absence_share: str | None = None  # "1/4": absent_hours / hours above it fails
    # zero: no credits; preset: only credits an authority set on the record count
    otherwise: Literal["zero", "preset"] = "zero"
    reason: str

    @model_validator(mode="after")
    def _something(self) -> Gate:
        if self.require is None and self.max_absence_share is None:
            raise ValueError("gate 须有 require 或 max_absence_share")
        return self


class Exclude(RuleBase):
    """Recorded and converted, but not counted toward this policy's totals."""

    kind: Literal["exclude"]
    when: Match
    reason: str


class Multiplier(RuleBase):
    kind: Literal["multiplier"]
    when: Match
    factor: Decimal


class AttributeYear(RuleBase):
    """Credit a record in another year than its registration year."""

    kind: Literal["attribute_year"]
    field: Literal["completed_year", "makeup_for_year"]
    when: Match = {}
    # makeup: only when the teacher had this kind of leave in the target year
    require_leave: list[str] | None = None


class Target(Strict):
    category: str | None = None
    categories: list[str] | None = None  # a sum of categories (北京 第四条 必修 = 公共必修 + 专业必修)
    theme: str | None = None
    themes: list[str] | None = None  # a sum of themes, as the lines are credited (not the record's words)
    match: Match | None = None

    @model_validator(mode="after")
    def _one(self) -> Target:
        given = (self.category, self.categories, self.theme, self.themes, self.match)
        if sum(x is not None for x in given) != 1:
            raise ValueError("target 须恰好指定 category、categories、theme、themes 或 match 之一")
        for name, several in (("categories", self.categories), ("themes", self.themes)):
            if several is not None and (len(several) < 2 or len(set(several)) != len(several)):
                raise ValueError(f"{name} 须列出至少两个互不相同的名称")
        return self


class Cap(RuleBase):
    kind: Literal["cap"]
    scope: Literal["year", "cycle"]
    target: Target
    max: Decimal | None = None
    share_of_total: str | None = None  # "1/3": at most this share of the scope's total
    highest_only: bool = False  # only the single highest record counts
    # a cycle cap read as a limit on registration (山东 第十八条 "累计登记不超过"):
    # the years use it up in order, and what is above it is not registered, so
    # the year it falls in does not count it either
    cumulative: bool = False

    @model_validator(mode="after")
    def _limit(self) -> Cap:
        if self.max is None and self.share_of_total is None and not self.highest_only:
            raise ValueError("cap 须有 max、share_of_total 或 highest_only")
        if self.cumulative and (self.scope != "cycle" or self.max is None or self.share_of_total is not None
                                or self.highest_only):
            raise ValueError("cumulative 只用于 scope: cycle 且只有 max 的上限")
        return self


TeacherMatch = dict[str, MatchValue]


class Transfer(RuleBase):
    """overflow: a source's credits above ``above`` move to the target.
    substitute: the target's deficit is filled from the sources' credits above
    their own minimum, in the order listed."""

    kind: Literal["transfer"]
    mode: Literal["overflow", "substitute"]
    from_: list[str] = Field(alias="from")
    to: str
    scope: Literal["year", "cycle", "both"]
    above: Decimal | None = None
    applies_to: TeacherMatch = {}


class Minimum(RuleBase):
    kind: Literal["minimum"]
    scope: Literal["year", "cycle", "hire_year"]
    target: Literal["total"] | Target
    measure: Literal["credits", "earned_credits", "hours", "count"] = "credits"
    min: Decimal
    applies_to: TeacherMatch = {}
    # a yearly minimum that the cycle verdict also needs in every required year;
    # unset = the cycle's requires_every_year
    binds_cycle: bool | None = None


class PartialCycle(RuleBase):
    """A teacher who joins during the cycle owes an average per remaining year."""

    kind: Literal["partial_cycle"]
    applies_to: TeacherMatch
    start: Literal["hired_year", "hired_year_next", "transfer_in_year"]
    per_year: Decimal | None = None
    structure: Literal["total_only", "prorate"]
    pre_start_records: Literal["count", "exclude"] = "count"
    # when this rule's applies_to matches, it alone decides (北京 第十四条: a new
    # teacher who also transferred follows 第十三条), even if it shortens nothing
    exclusive: bool = False

    @model_validator(mode="after")
    def _per_year(self) -> PartialCycle:
        if self.structure == "total_only" and self.per_year is None:
            raise ValueError("structure: total_only 须给出 per_year")
        return self


class LeaveMinimum(Strict):
    target: Literal["total"] | Target
    min: Decimal


class LeaveYear(RuleBase):
    """A year of the named leave: its yearly minimums are replaced, and the
    cycle minimums reduced by ``cycle_reduction`` per such year."""

    kind: Literal["leave_year"]
    kinds: list[str]
    year_minimums: list[LeaveMinimum]
    cycle_reduction: dict[str, Decimal] = {}  # "total" or a category id


class Waive(RuleBase):
    kind: Literal["waive"]
    applies_to: TeacherMatch
    rules: list[str]  # ids of minimum rules that do not apply to these teachers


class Completion(RuleBase):
    """A record matching ``when`` completes the whole cycle."""

    kind: Literal["completion"]
    when: Match


class Penalty(RuleBase):
    """Each matching record raises a cycle minimum."""

    kind: Literal["penalty"]
    when: Match
    rule: str  # id of the minimum rule raised
    amount: Decimal


Rule = Annotated[
    (
        Conversion
        | Gate
        | Exclude
        | Multiplier
        | AttributeYear
        | Cap
        | Transfer
        | Minimum
        | PartialCycle
        | LeaveYear
        | Waive
        | Completion
        | Penalty
    ),
    Field(discriminator="kind"),
]

RULE_KINDS = (
    "conversion",
    "gate",
    "exclude",
    "multiplier",
    "attribute_year",
    "cap",
    "transfer",
    "minimum",
    "partial_cycle",
    "leave_year",
    "waive",
    "completion",
    "penalty",
)


class SubType(Strict):
    """A sub-type whose name also states facts of the record: the policy's
    conversions price by form or achievement (永吉 学区研修 is a 学区 form at
    0.8, 潍坊 课题 an achievement), so a record that writes only the sub-type
    must read those facts to reach the sub-type's own rate."""

    theme: str
    # record field -> canonical value, filled only where the record leaves it empty
    facts: dict[str, str] = {}


SUBTYPE_FACTS = ("form", "achievement", "program", "role")


class Category(Strict):
    id: str
    name: str | None = None
    aliases: list[str] = []  # record.category values that mean this category
    themes: list[str] = []
    # a sub-type the policy names inside the category, as a school writes it
    # in the category column -> the theme it stands for (朝阳 附件3 第八条:
    # 选修 = 专业选修/专题选修/自主选修/市级教科研活动, each with its own rate),
    # or the theme and the facts the name states
    subtypes: dict[str, str | SubType] = {}
    # another spelling of a theme -> the theme
    theme_aliases: dict[str, str] = {}
    # what a record written with only this category states, where the policy
    # prices by form rather than by category (永吉: 校本研修 is the 校本 form);
    # filled only where the record leaves the field empty
    facts: dict[str, str] = {}

    def theme_of(self, written: str) -> str:
        return self.theme_aliases.get(written, written)

    def subtype_theme(self, name: str) -> str:
        sub = self.subtypes[name]
        return sub if isinstance(sub, str) else sub.theme

    def subtype_facts(self, name: str) -> dict[str, str]:
        sub = self.subtypes[name]
        return {} if isinstance(sub, str) else sub.facts


class Option(Strict):
    """A choice the policy text leaves open.  The shipped default is the
    reading we think the text supports best; the alternatives are a setting."""

    id: str
    label: str
    choices: dict[str, str]
    default: str
    cite: Cite | list[Cite]

    @model_validator(mode="after")
    def _default_is_choice(self) -> Option:
        if self.default not in self.choices:
            raise ValueError(f"default “{self.default}” 不在 choices 中")
        return self


class ByOption(Strict):
    """A value chosen by an option: ``{by_option: cycle_anchor, values: {"2009": 2009}}``."""

    by_option: str
    values: dict[str, int]


class Cycle(Strict):
    years: int = Field(ge=1, le=10)
    first_year: int | ByOption
    # the cycle verdict also needs every required year to pass
    requires_every_year: bool = False
    cite: Cite | list[Cite]


class Jurisdiction(Strict):
    code: str  # versions of one jurisdiction share it
    name: str


class Source(Strict):
    file: str
    document: str


class Effective(Strict):
    """Half-open: [from, to)."""

    from_: dt.date = Field(alias="from")
    to: dt.date | None = None

    @model_validator(mode="after")
    def _order(self) -> Effective:
        if self.to is not None and self.to <= self.from_:
            raise ValueError("effective.to 须晚于 effective.from")
        return self


class UnitThreshold(Strict):
    """A figure the policy sets on a unit, not on a teacher: 潍坊 第十九条 — a
    school whose teachers' 学分合格率 falls below 98% loses its awards.  It
    changes no teacher's credits or verdict; dashboards flag the unit."""

    id: str
    label: str
    scope: Literal["school"] = "school"
    min_pass_rate: Decimal  # a share of the unit's teachers, e.g. 0.98
    cite: Cite | list[Cite]


class Policy(Strict):
    id: str
    name: str
    short_name: str  # e.g. 永吉县方案, used in every explanation line
    jurisdiction: Jurisdiction
    # who it covers, when one jurisdiction has parallel policies (朝阳 附件8)
    applies_to: str = "全体教师"
    source: Source
    effective: Effective
    cycle: Cycle
    options: list[Option] = []
    categories: list[Category]
    rules: list[Rule]
    notes: list[str] = []
    unit_thresholds: list[UnitThreshold] = []

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"规则编号重复：{rule.id}")
            seen.add(rule.id)
        return rules

    def category(self, name: str) -> Category | None:
        for cat in self.categories:
            if name == cat.id or name in cat.aliases:
                return cat
        return None

    def subtype(self, name: str) -> tuple[Category, str] | None:
        """The category and theme a sub-type written as the category stands for."""
        for cat in self.categories:
            if name in cat.subtypes:
                return cat, cat.subtype_theme(name)
        return None

    def option(self, option_id: str) -> Option | None:
        for opt in self.options:
            if opt.id == option_id:
                return opt
        return None
