from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate

# The audit log is append-only (models.AuditEntry refuses save-after-create
# and delete in Python).  On PostgreSQL a trigger also refuses UPDATE and
# DELETE in the database, so raw SQL, ``QuerySet.update()``/``delete()`` and
# other clients cannot rewrite history either.  One exception: when a user
# account is deleted, Django sets ``actor_id`` to NULL (on_delete=SET_NULL);
# that update, touching nothing but ``actor_id``, is let through — the entry
# keeps ``actor_name``.
#
# Installed after every migrate rather than by a migration, so other
# migrations can be added without touching this; idempotent.
AUDIT_GUARD_FUNCTION = "xuefen_audit_append_only"

_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION {AUDIT_GUARD_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'xuefen: the audit log is append-only (% refused on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def install_audit_guard(using: str = "default", **kwargs: Any) -> bool:
    """Create (or replace) the append-only trigger on PostgreSQL; a no-op on
    other databases.  Returns whether it was installed."""
    from xuefen.web.models import AuditEntry

    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    table = AuditEntry._meta.db_table
    if table not in connection.introspection.table_names():
        return False
    quoted = connection.ops.quote_name(table)
    with connection.cursor() as cursor:
        cursor.execute(_FUNCTION_SQL)
        cursor.execute(f"DROP TRIGGER IF EXISTS {AUDIT_GUARD_FUNCTION} ON {quoted}")
        cursor.execute(
            f"CREATE TRIGGER {AUDIT_GUARD_FUNCTION} BEFORE UPDATE OR DELETE ON {quoted} "
            f"FOR EACH ROW EXECUTE FUNCTION {AUDIT_GUARD_FUNCTION}()"
        )
    return True


def _after_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    install_audit_guard(using)


class XuefenWebConfig(AppConfig):
    name = "xuefen.web"
    label = "xuefen"
    verbose_name = "学分平台"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_after_migrate, sender=self, dispatch_uid="xuefen.web.audit_guard")
