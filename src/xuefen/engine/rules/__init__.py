"""The engine's rule kinds, one module each (its phases and its explanation
wording), and :data:`PIPELINE`, the one ordered table the evaluator runs them
from: within each phase (record, start, cycle records, requirements, minimum
adjustments, caps, moves, measure) the kinds that take part are called in
this order.  Each kind also states as data where the batch evaluator and the
SQL translation implement it, or that it is routed to the per-teacher engine
(``tests/test_rules.py`` checks that every kind of the schema is here)."""

from __future__ import annotations

from . import (
    attribute_year,
    cap,
    completion,
    conversion,
    exclude,
    gate,
    leave_year,
    minimum,
    multiplier,
    partial_cycle,
    penalty,
    transfer,
    waive,
)
from .base import ROUTED, RuleKind

PIPELINE: tuple[RuleKind, ...] = (
    # per record: the year it counts in, its lines, the gate's verdict on
    # them, factors, then whether it counts at all
    attribute_year.KIND,
    conversion.KIND,
    gate.KIND,
    multiplier.KIND,
    exclude.KIND,
    # per teacher
    partial_cycle.KIND,
    completion.KIND,
    # per scope: which minimums apply and how large, caps, moves, verdicts
    leave_year.KIND,
    waive.KIND,
    penalty.KIND,
    cap.KIND,
    transfer.KIND,
    minimum.KIND,
)

BY_KIND: dict[str, RuleKind] = {k.kind: k for k in PIPELINE}


def implementation_table() -> str:
    """The table of docs/policy-format.md that says where each kind lives:
    its engine module and phase, its batch form and its SQL form, in the
    pipeline's order (a test keeps the document equal to this)."""
    rows = ["| kind | engine (`engine/rules/`) | batch | SQL |", "|---|---|---|---|"]
    for k in PIPELINE:
        rows.append(f"| `{k.kind}` | `{k.kind}.py`: {k.engine} | {k.batch} | {k.sql} |")
    return "\n".join(rows) + "\n"

__all__ = ["BY_KIND", "PIPELINE", "ROUTED", "RuleKind", "implementation_table"]
