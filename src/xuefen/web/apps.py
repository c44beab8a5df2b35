from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db import connections
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate

# The audit log is append-only (models.AuditEntry refuses save-after-create
# and delete in Python, for instances, querysets and the base manager).  The
# database refuses too, so raw SQL and other clients cannot rewrite history:
#
# * PostgreSQL: a row trigger refuses UPDATE and DELETE, a statement trigger
#   TRUNCATE.  The application's role should not own the table either
#   (``xuefen manage secure_db --app-role``: it then holds only SELECT and
#   INSERT, and UPDATE of the sealing columns), so it can neither disable nor
#   drop these triggers;
# * SQLite: triggers refuse DELETE and UPDATE.
#
# Two updates are let through: when a user account is deleted, Django sets
# ``actor_id`` to NULL (on_delete=SET_NULL) and changes nothing else — the
# entry keeps ``actor_name``; and sealing an entry into the hash chain sets
# ``seq``, ``prev_hash`` and ``hash`` once, from empty, and nothing else
# (services.audit.seal).
#
# Maintenance (the test suite's flush between transactional tests) is let
# through only on a connection that asked for it: on PostgreSQL the session
# setting ``xuefen.audit_maintenance = 'on'``, on SQLite the connection's
# ``xuefen_audit_maintenance()`` function (registered below, off unless
# ``allow_audit_maintenance(True)`` was called in this process).
#
# Installed after every migrate rather than by a migration, so other
# migrations can be added without touching this; idempotent.
AUDIT_GUARD_FUNCTION = "xuefen_audit_append_only"
ANCHOR_GUARD_FUNCTION = "xuefen_anchor_append_only"
_SEAL_COLUMNS = ("seq", "prev_hash", "hash")
_maintenance = False


def allow_audit_maintenance(on: bool) -> None:
    global _maintenance
    _maintenance = on


_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {AUDIT_GUARD_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('xuefen.audit_maintenance', true), '') = 'on' THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL AND OLD.hash = '' AND OLD.prev_hash = ''
       AND (to_jsonb(NEW) - 'seq' - 'prev_hash' - 'hash') = (to_jsonb(OLD) - 'seq' - 'prev_hash' - 'hash') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'xuefen: the audit log is append-only (% refused on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""

_ANCHOR_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {ANCHOR_GUARD_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('xuefen.audit_maintenance', true), '') = 'on' THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RAISE EXCEPTION 'xuefen: audit anchors are append-only (% refused on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def _postgres_guard(cursor: Any, connection: Any, table: str, function: str, function_sql: str) -> None:
    quoted = connection.ops.quote_name(table)
    cursor.execute(function_sql)
    for suffix in ("", "_truncate"):
        cursor.execute(f"DROP TRIGGER IF EXISTS {function}{suffix} ON {quoted}")
    cursor.execute(f"CREATE TRIGGER {function} BEFORE UPDATE OR DELETE ON {quoted} "
                   f"FOR EACH ROW EXECUTE FUNCTION {function}()")
    cursor.execute(f"CREATE TRIGGER {function}_truncate BEFORE TRUNCATE ON {quoted} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()")


def _sqlite_guard(cursor: Any, table: str, name: str, exceptions: list[str]) -> None:
    refused = f"SELECT RAISE(ABORT, 'xuefen: {table} is append-only')"
    allowed = " OR ".join(f"({e})" for e in exceptions) or "0"
    for op in ("UPDATE", "DELETE"):
        cursor.execute(f"DROP TRIGGER IF EXISTS {name}_{op.lower()}")
    cursor.execute(f'CREATE TRIGGER {name}_delete BEFORE DELETE ON "{table}" '
                   f"WHEN NOT xuefen_audit_maintenance() BEGIN {refused}; END")
    cursor.execute(f'CREATE TRIGGER {name}_update BEFORE UPDATE ON "{table}" '
                   f"WHEN NOT xuefen_audit_maintenance() AND NOT ({allowed}) BEGIN {refused}; END")


def _same(cols: list[str]) -> str:
    return " AND ".join(f'NEW."{c}" IS OLD."{c}"' for c in cols) or "1"


def install_audit_guard(using: str = "default", **kwargs: Any) -> bool:
    """Create (or replace) the append-only triggers of the audit log and its
    anchors.  Returns whether they were installed."""
    from xuefen.web.models import AuditAnchor, AuditEntry

    connection = connections[using]
    tables = connection.introspection.table_names()
    audit, anchor = AuditEntry._meta.db_table, AuditAnchor._meta.db_table
    if audit not in tables or anchor not in tables:
        return False
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            _postgres_guard(cursor, connection, audit, AUDIT_GUARD_FUNCTION, _FUNCTION_SQL)
            _postgres_guard(cursor, connection, anchor, ANCHOR_GUARD_FUNCTION, _ANCHOR_FUNCTION_SQL)
        return True
    if connection.vendor == "sqlite":
        columns = [f.column for f in AuditEntry._meta.concrete_fields]
        unset_actor = ('OLD."actor_id" IS NOT NULL AND NEW."actor_id" IS NULL AND '
                       + _same([c for c in columns if c != "actor_id"]))
        sealing = ("OLD.\"seq\" IS NULL AND NEW.\"seq\" IS NOT NULL AND OLD.\"hash\" = '' AND OLD.\"prev_hash\" = '' AND "
                   + _same([c for c in columns if c not in _SEAL_COLUMNS]))
        with connection.cursor() as cursor:
            _sqlite_guard(cursor, audit, AUDIT_GUARD_FUNCTION, [unset_actor, sealing])
            _sqlite_guard(cursor, anchor, ANCHOR_GUARD_FUNCTION, [])
        return True
    return False


def _sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        # Looked up at call time: the suite's flush turns maintenance on.
        connection.connection.create_function("xuefen_audit_maintenance", 0, lambda: int(_maintenance),
                                              deterministic=False)
    elif connection.vendor == "postgresql" and _maintenance:
        with connection.cursor() as cursor:
            cursor.execute("SET xuefen.audit_maintenance TO 'on'")


def _after_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    install_audit_guard(using)


class XuefenWebConfig(AppConfig):
    name = "xuefen.web"
    label = "xuefen"
    verbose_name = "学分平台"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_after_migrate, sender=self, dispatch_uid="xuefen.web.audit_guard")
        connection_created.connect(_sqlite_functions, dispatch_uid="xuefen.web.audit_sqlite_functions")
        from django.contrib.auth.signals import user_logged_in

        from xuefen.web import checks  # noqa: F401  (registers the deploy checks)
        from xuefen.web.services.accounts import stamp_session

        user_logged_in.connect(stamp_session, dispatch_uid="xuefen.web.session_stamp")
