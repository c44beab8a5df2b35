"""What a record's columns can hold, read from the model in one place, so
the declaration form, the API and the import check refuse exactly what the
database would (issue 19 items 1–2): text longer than the column, numbers
outside ``models.RECORD_RANGES`` (the same bounds as the CHECK constraints),
decimals with more places than the ledger keeps (credits are exact: a value
is refused, never rounded on the way in).

Keys are the model's field names; :func:`record_problems` takes an engine
record (whose ``id`` is the model's ``uid`` and ``credits`` its
``preset_credits``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models

from xuefen.model import Record as EngineRecord
from xuefen.numbers import fmt
from xuefen.web.models import IMPORT_RANGES, RECORD_RANGES, ImportBatch, Record

RANGES: dict[str, tuple[Any, Any]] = RECORD_RANGES
_RANGES_OF: dict[type[models.Model], dict[str, tuple[Any, Any]]] = {Record: RECORD_RANGES, ImportBatch: IMPORT_RANGES}
# engine record attribute -> model field
ENGINE_TO_MODEL = {"id": "uid", "credits": "preset_credits"}


def _label(field: models.Field[Any, Any]) -> str:
    return str(field.verbose_name)


def _shown(value: Any) -> str:
    text = fmt(value) if isinstance(value, Decimal) else str(value)
    return text if len(text) <= 24 else f"{text[:20]}…（{len(text)} 位）"


def field_problem(name: str, value: Any, model: type[models.Model] = Record) -> str | None:
    """Why ``value`` cannot be stored in ``model.name``, in Chinese; None when it can."""
    if value is None or value == "":
        return None
    field = model._meta.get_field(name)
    label = _label(field)  # type: ignore[arg-type]
    if isinstance(field, models.CharField) and field.max_length is not None:
        if len(str(value)) > field.max_length:
            return f"{label}不能超过 {field.max_length} 个字符（现有 {len(str(value))} 个）"
        return None
    if isinstance(field, models.DecimalField) and isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > field.decimal_places:
            return f"{label}最多 {field.decimal_places} 位小数（收到 {_shown(value)}）"
    ranges = _RANGES_OF.get(model, {})
    if name in ranges and isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        lo, hi = ranges[name]
        if not lo <= value <= hi:
            return f"{label}须在 {_shown(lo)}–{_shown(hi)} 之间（收到 {_shown(value)}）"
    return None


def problems(values: Mapping[str, Any], model: type[models.Model] = Record) -> list[tuple[str, str]]:
    """(field, reason) for every value of ``values`` the model cannot store."""
    out = []
    for name, value in values.items():
        reason = field_problem(name, value, model)
        if reason:
            out.append((name, reason))
    return out


def record_problems(rec: EngineRecord) -> list[tuple[str, str]]:
    """(engine attribute, reason) for an engine record read from a file."""
    out = []
    for f in dataclasses.fields(rec):
        attr = f.name
        name = ENGINE_TO_MODEL.get(attr, attr)
        try:
            Record._meta.get_field(name)
        except FieldDoesNotExist:  # an engine attribute the ledger does not store
            continue
        reason = field_problem(name, getattr(rec, attr))
        if reason:
            out.append((attr, reason))
    return out
