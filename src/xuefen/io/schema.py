"""The interchange format as JSON Schema (draft 2020-12), generated from the
same field tables and vocabulary the readers use, so the two cannot drift."""

from __future__ import annotations

from typing import Any

from xuefen import vocab
from xuefen.model import RECORD_FIELDS, TEACHER_FIELDS


def _prop(key: str, title: str, kind: str) -> dict[str, Any]:
    if kind == "enum":
        enum = {"kind": "leave_kind"}.get(key, key)
        values = [v for canon, variants in vocab.ENUMS[enum].items() for v in (canon, *variants)]
        return {"title": title, "type": "string", "enum": values,
                "description": "规范取值：" + "、".join(vocab.allowed(enum))}
    if kind == "decimal":
        return {"title": title, "type": ["number", "string"], "pattern": r"^\d+(\.\d+)?$", "minimum": 0}
    if kind == "year":
        return {"title": title, "type": "integer", "minimum": 1950, "maximum": 2100}
    if kind == "int":
        return {"title": title, "type": "integer", "minimum": 0}
    if kind == "bool":
        return {"title": title, "type": "boolean"}
    return {"title": title, "type": "string"}


def interchange_schema() -> dict[str, Any]:
    teacher = {key: _prop(key, zh, kind) for key, (zh, kind) in TEACHER_FIELDS.items()}
    teacher["leaves"] = {
        "title": "假期",
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
