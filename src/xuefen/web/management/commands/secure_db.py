"""``xuefen manage secure_db --app-role ROLE``: run by the role that owns the
tables (the one migrations run as), it lets the application's own login role
do what the platform does and no more (issue 19 item 8):

* every table: SELECT, INSERT, UPDATE, DELETE; sequences: USAGE, SELECT;
* the audit log: SELECT and INSERT, and UPDATE of only ``actor_id`` (a
  deleted account) and the chain columns ``seq``, ``prev_hash``, ``hash``
  (sealing) — the triggers still refuse any other change;
* audit anchors: SELECT and INSERT;
* no TRUNCATE anywhere, and since the role owns nothing it can neither
  ``ALTER TABLE … DISABLE TRIGGER`` nor ``DROP TRIGGER``.

Serve with ``DATABASE_URL`` naming the application role; migrate with the
owner's.  PostgreSQL only."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from xuefen.web.models import AuditAnchor, AuditEntry


def grant(app_role: str) -> None:
    if connection.vendor != "postgresql":
        raise CommandError("secure_db 只用于 PostgreSQL")
    q = connection.ops.quote_name
    role = q(app_role)
    audit, anchor = q(AuditEntry._meta.db_table), q(AuditAnchor._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [app_role])
        if cursor.fetchone() is None:
            raise CommandError(f"数据库角色 {app_role} 不存在，请先 CREATE ROLE … LOGIN PASSWORD …")
        cursor.execute("SELECT current_schema()")
        schema = q(cursor.fetchone()[0])
        cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
        cursor.execute(f"REVOKE ALL ON {audit}, {anchor} FROM {role}")
        cursor.execute(f"GRANT SELECT, INSERT ON {audit}, {anchor} TO {role}")
        cursor.execute(f"GRANT UPDATE (actor_id, seq, prev_hash, hash) ON {audit} TO {role}")


class Command(BaseCommand):
    help = "为应用的数据库角色授予最小权限（审计表只能追加），须由表的所有者运行"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--app-role", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        grant(options["app_role"])
        self.stdout.write(f"已为 {options['app_role']} 授予最小权限；审计表与锚点表只能查询与追加。")
