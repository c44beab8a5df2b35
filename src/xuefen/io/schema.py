"""The interchange format as JSON Schema (draft 2020-12), generated from the
same field tables and vocabulary the readers use, so the two cannot drift."""

from __future__ import annotations

from typing import Any

from xuefen import vocab
from xuefen.io.fields import FIELD_HELP
from xuefen.model import RECORD_FIELDS, TEACHER_FIELDS


def _prop(key: str, title: str, kind: str) -> dict[str, Any]:
    prop = _typed(key, kind)
    help_text = FIELD_HELP.get(title)
    out: dict[str, Any] = {"title": title}
    if help_text and "description" not in prop:
        out["description"] = help_text
    elif help_text:
        prop["description"] = f"{help_text}。{prop['description']}"
    out.update(prop)
    return out


def _typed(key: str, kind: str) -> dict[str, Any]:
    if kind == "enum":
        enum = {"kind": "leave_kind"}.get(key, key)
        values = [v for canon, variants in vocab.ENUMS[enum].items() for v in (canon, *variants)]
        return {"type": "string", "enum": values, "description": "规范取值：" + "、".join(vocab.allowed(enum))}
    if kind == "decimal":
        # exact decimals: a JSON number, or its text ("24.5"); never negative
        return {"type": ["number", "string"], "pattern": r"^[0-9]+(\.[0-9]+)?$", "minimum": 0}
    if kind == "year":
        return {"type": "integer", "minimum": 1950, "maximum": 2100}
    if kind == "int":
        return {"type": "integer", "minimum": 0}
    if kind == "bool":
        return {"type": "boolean"}
    if key == "id":
        return {"type": "string", "minLength": 1}
    return {"type": "string"}


def interchange_schema() -> dict[str, Any]:
    teacher = {key: _prop(key, zh, kind) for key, (zh, kind) in TEACHER_FIELDS.items()}
    teacher["leaves"] = {
        "title": "假期",
        "description": FIELD_HELP["假期"],
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["year", "kind"],
            "properties": {
                "year": _prop("year", "年份", "year"),
                "kind": _prop("kind", "类型", "enum"),
                "approved": _prop("approved", "经学校同意并备案", "bool"),
            },
        },
    }
    record = {key: _prop(key, zh, kind) for key, (zh, kind) in RECORD_FIELDS.items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://xuefen.example/schema/ledger.json",
        "title": "xuefen 教师学分记录交换格式",
        "type": "object",
        "additionalProperties": False,
        "required": ["teacher", "records"],
        "properties": {
            "teacher": {"type": "object", "additionalProperties": False, "required": ["id"],
                        "properties": teacher},
            "records": {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                                   "required": ["id", "year"], "properties": record}},
        },
    }
