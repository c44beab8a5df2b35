"""Inserting many new rows at once (an import's records, their teachers'
results), for less than ``bulk_create`` costs.

``bulk_create`` writes a batch as one statement with a placeholder per value,
assembles that text afresh for every batch and sends each value through its
field one by one: for an import of 100,000 records that was a third of the
write.  :func:`insert` prepares the values through the same field methods
(``pre_save`` — so ``auto_now`` stamps each object as ``save`` would — then
``get_db_prep_save``), but prepares a repeated plain value once per column,
and hands all rows to the driver in one call: ``COPY`` on PostgreSQL,
``executemany`` elsewhere.  It runs in the caller's transaction, raises
Django's ``IntegrityError`` like any write, and sends no signals (as
``bulk_create`` does not).  The objects get no primary keys back: a caller
that needs them uses ``bulk_create``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Field, Model

# Values whose prepared form depends on the value alone (not on the object):
# prepared once per distinct value and column.  A Decimal is keyed by its
# text, so 24 and 24.0 stay what they were.
_PLAIN = (str, int, bool, type(None))


def _preparer(field: Field[Any, Any]) -> Callable[[Model], Any]:
    if type(field).pre_save is not Field.pre_save:
        # auto_now and the like: the object is stamped, as by save()
        def stamped(obj: Model) -> Any:
            return field.get_db_prep_save(field.pre_save(obj, True), connection)
        return stamped
    attname = field.attname
    memo: dict[tuple[type, Any], Any] = {}

    def plain(obj: Model) -> Any:
        value = getattr(obj, attname)
        kind = type(value)
        if kind in _PLAIN:
            key: tuple[type, Any] = (kind, value)
        elif kind is Decimal:
            key = (kind, str(value))
        else:
            return field.get_db_prep_save(value, connection)
        if key not in memo:
            memo[key] = field.get_db_prep_save(value, connection)
        return memo[key]
    return plain


def insert(objs: Sequence[Model]) -> int:
    """Insert new objects of one model (their primary keys unset, assigned by
    the database); returns how many."""
    if not objs:
        return 0
    model = type(objs[0])
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key and not f.generated]
    prepare = [_preparer(f) for f in fields]
    rows: list[list[Any]] = []
    for obj in objs:
        if type(obj) is not model or obj.pk is not None:
            raise ValueError("insert() takes new objects of one model")
        # bulk_create's own check: a related object not saved yet is refused
        obj._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]
        rows.append([p(obj) for p in prepare])
    # Names from the model's own metadata, quoted; every value is a parameter.
    qn = connection.ops.quote_name
    table = qn(meta.db_table)
    columns = ", ".join(qn(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)  # noqa: S608
    return len(rows)


def update(objs: Sequence[Model], field_names: Sequence[str]) -> int:
    """Write ``field_names`` of stored objects of one model, by primary key;
    returns how many.  (``bulk_update`` builds a CASE over each batch's rows
    per field: for 20,000 results that took longer than evaluating them.)"""
    if not objs:
        return 0
    model = type(objs[0])
    meta = model._meta
    fields = [meta.get_field(name) for name in field_names]
    concrete = [f for f in fields if isinstance(f, Field) and f.concrete and not f.primary_key]
    if len(concrete) != len(fields):
        raise ValueError("update() writes concrete fields other than the primary key")
    prepare = [_preparer(f) for f in concrete]
    pk = meta.pk
    assert pk is not None
    rows: list[list[Any]] = []
    for obj in objs:
        if type(obj) is not model or obj.pk is None:
            raise ValueError("update() takes stored objects of one model")
        rows.append([*(p(obj) for p in prepare), pk.get_db_prep_save(obj.pk, connection)])
    qn = connection.ops.quote_name
    table = qn(meta.db_table)
    sets = ", ".join(f"{qn(f.column)} = %s" for f in concrete)
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {sets} WHERE {qn(pk.column)} = %s", rows)  # noqa: S608
    return len(rows)
