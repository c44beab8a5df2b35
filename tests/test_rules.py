"""The rule-kind registry: every kind of the policy format is in the one
ordered table the engine runs, declares its batch and SQL forms, and the
document says the same; the batch evaluator's modules share only public names."""

from __future__ import annotations

import ast
import datetime as dt
import typing
from pathlib import Path

from xuefen.batch.compile import CompiledPolicy
from xuefen.engine.rules import BY_KIND, PIPELINE, ROUTED, implementation_table
from xuefen.policy.loader import default_registry
from xuefen.policy.schema import RULE_KINDS, Rule

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ("record", "start", "cycle_records", "requirements", "adjust_minimum", "caps", "moves", "measure")


def _schema_models() -> dict[str, type]:
    union = typing.get_args(typing.get_args(Rule)[0])
    return {typing.get_args(m.model_fields["kind"].annotation)[0]: m for m in union}


def test_every_kind_of_the_schema_is_in_the_pipeline_once() -> None:
    kinds = [k.kind for k in PIPELINE]
    assert len(kinds) == len(set(kinds)), "a kind appears twice in PIPELINE"
    assert set(kinds) == set(RULE_KINDS), f"missing: {set(RULE_KINDS) - set(kinds)}, unknown: {set(kinds) - set(RULE_KINDS)}"
    models = _schema_models()
    assert set(models) == set(RULE_KINDS)
    for kind, model in models.items():
        assert BY_KIND[kind].model is model


def test_every_kind_has_an_engine_phase_and_declares_batch_and_sql() -> None:
    for k in PIPELINE:
        assert any(getattr(k, h) is not None for h in HOOKS), f"{k.kind}: no engine phase"
        assert k.engine and k.batch and k.sql, f"{k.kind}: batch and SQL forms must be declared"
        module = ROOT / "src" / "xuefen" / "engine" / "rules" / f"{k.kind}.py"
        assert module.exists(), f"{k.kind}: its module {module.name} is missing"


def test_policy_format_lists_the_table() -> None:
    doc = (ROOT / "docs" / "policy-format.md").read_text(encoding="utf-8")
    begin = doc.index("<!-- rule-kinds:begin")
    start = doc.index("\n", begin) + 1
    end = doc.index("<!-- rule-kinds:end -->")
    assert doc[start:end] == implementation_table(), "docs/policy-format.md: regenerate the table from implementation_table()"


def test_routed_kinds_are_routed_by_the_batch_evaluator() -> None:
    """A kind declared routed has its rules' conditions in the batch routing,
    for every shipped policy that uses it."""
    registry = default_registry()
    routed = {k.kind for k in PIPELINE if k.batch == ROUTED}
    assert routed, "the table declares no routed kind: then this test needs another check"
    seen = 0
    for policy in registry.policies.values():
        comp = CompiledPolicy(policy, None, dt.date(policy.effective.from_.year, 12, 31))
        for rule in comp.ev.rules:
            if rule.kind in routed:
                seen += 1
                assert getattr(rule, "when") in comp.route_matches, f"{policy.id} {rule.id} is not routed"  # noqa: B009
    assert seen, "no shipped policy uses a routed kind"


def test_no_private_name_crosses_modules_in_batch() -> None:
    offenders = []
    for path in sorted((ROOT / "src" / "xuefen" / "batch").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("xuefen")):
                offenders += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")]
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                base = node.value
                if not (isinstance(base, ast.Name) and base.id in ("self", "cls")):
                    offenders.append(f"{path.name}:{node.lineno}: .{node.attr}")
    assert not offenders, offenders
