"""The contract of a rule kind: what the engine calls at each phase of an
evaluation, and where the same kind lives in the batch evaluator and in the
SQL translation (or that it is routed to the per-teacher engine)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from xuefen.model import Record
from xuefen.policy.schema import Completion, Conversion, Gate, Minimum, PartialCycle, RuleBase, Waive

from ..core import Context, Line, Requirement, Step

if TYPE_CHECKING:
    from ..evaluate import Evaluator

# The batch or SQL form of a kind that has none: the teachers it concerns are
# evaluated by the per-teacher engine (batch/routing.py lists them).
ROUTED = "routed to the per-teacher engine"


@dataclass(slots=True)
class RecordState:
    """One record going through the per-record phase."""

    index: int
    record: Record
    first_line: int
    year: int
    facts: tuple[Any, ...]  # what the per-record conditions read: the key of the evaluator's decisions
    steps: list[Step] = field(default_factory=list)
    conversion: Conversion | None = None
    lines: list[Line] = field(default_factory=list)
    # converted lines before rounding (line idx -> exact credits) and the
    # explanation step each line was stated in
    raw: dict[int, Decimal] = field(default_factory=dict)
    anchors: dict[int, Step] = field(default_factory=dict)
    failed_gate: Gate | None = None
    missing: list[str] = field(default_factory=list)  # facts a conversion needed and the record lacks


@dataclass(slots=True)
class StartState:
    """When the teacher's figures start: the partial cycle that applies."""

    steps: list[Step]
    partial: tuple[PartialCycle, int] | None = None
    start_year: int = 0


@dataclass(slots=True)
class CycleRecordsState:
    """The cycle's records (converted or not) with their per-record results."""

    pairs: list[tuple[Record, Any]]
    steps: list[Step]
    completed_by: tuple[Completion, Record] | None = None


@dataclass(slots=True)
class RequirementState:
    """The minimums one scope (a year or the cycle) requires of the teacher."""

    scope: str
    year: int | None
    lines: list[Line]
    steps: list[Step]
    partial: tuple[PartialCycle, int] | None
    hire_only: bool
    reqs: list[Requirement] = field(default_factory=list)
    waived: dict[str, Waive] = field(default_factory=dict)
    done: bool = False  # the scope's requirements are settled (a leave year replaces them)


@dataclass(slots=True)
class MinimumAdjustment:
    """A cycle minimum's required amount while the kinds adjust it."""

    rule: Minimum
    value: Decimal
    lines: list[Line]
    partial: tuple[PartialCycle, int] | None
    steps: list[Step]
    notes: list[str] = field(default_factory=list)
    dropped: bool = False  # not assessed on its own (a partial cycle's total-only structure)


@dataclass(slots=True)
class ScopeState:
    scope: str
    year: int | None
    lines: list[Line]
    amounts: dict[int, Decimal]
    steps: list[Step]
    counted: dict[str, Decimal] = field(default_factory=dict)
    reqs: list[Requirement] = field(default_factory=list)
    # cap id -> credits it took off in this scope; the report's theme lines
    # show a cap's cut, which the amounts alone cannot tell apart from a gate's
    cuts: dict[str, Decimal] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.year}年" if self.year is not None else "本周期"


RecordHook = Callable[["Evaluator", Context, RecordState], None]
StartHook = Callable[["Evaluator", Context, StartState], None]
CycleRecordsHook = Callable[["Evaluator", Context, CycleRecordsState], None]
RequirementHook = Callable[["Evaluator", Context, RequirementState], None]
AdjustHook = Callable[["Evaluator", Context, MinimumAdjustment], None]
ScopeHook = Callable[["Evaluator", Context, ScopeState], None]


@dataclass(frozen=True)
class RuleKind:
    """One rule kind: its schema model, its engine phases (each hook is
    called in the order of :data:`xuefen.engine.rules.PIPELINE`), and as data
    where the batch evaluator and the SQL translation implement it."""

    kind: str
    model: type[RuleBase]
    engine: str  # what the engine does with it, one line
    batch: str  # where the batch evaluator implements it, or ROUTED
    sql: str  # where the SQL translation implements it, or ROUTED
    record: RecordHook | None = None  # per record
    start: StartHook | None = None  # per teacher, before the records
    cycle_records: CycleRecordsHook | None = None  # per teacher, over the cycle's records
    requirements: RequirementHook | None = None  # per scope: which minimums apply
    adjust_minimum: AdjustHook | None = None  # per cycle minimum: its required amount
    caps: ScopeHook | None = None  # per scope, before the counted figures
    moves: ScopeHook | None = None  # per scope, after the requirements are known
    measure: ScopeHook | None = None  # per scope, last: the verdict on each requirement

    @property
    def routed_in_batch(self) -> bool:
        return self.batch == ROUTED
