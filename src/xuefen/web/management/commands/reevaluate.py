"""Re-evaluate every teacher of a unit (or of the whole platform) with the
policies as bound today: after a policy version or a binding's options
change, at year end, before certification.  ``--policy`` reads only the
teachers bound to one policy (after its file changed)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from xuefen.web.models import Org
from xuefen.web.services.reevaluate import METHODS, default_method, reevaluate


class Command(BaseCommand):
    help = "按当前绑定的政策重新评估一个单位（默认全部）的所有教师"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", type=int, help="单位编号（默认：全部单位）")
        parser.add_argument("--policy", help="只评估绑定该政策（编号或地区代码）的教师：政策文件更新之后")
        parser.add_argument("--method", choices=METHODS, default=None,
                            help="sql：在 PostgreSQL 中按政策的 SQL 译法计算并比对（PostgreSQL 上的默认）；"
                                 "batch：读出记录用批量评估器计算（SQLite 上的默认）")

    def handle(self, *args: Any, **options: Any) -> None:
        org = None
        if options["org"] is not None:
            org = Org.objects.filter(pk=options["org"]).first()
            if org is None:
                raise CommandError(f"没有编号为 {options['org']} 的单位")
        try:
            out = reevaluate(org, method=options["method"] or default_method(), policy=options["policy"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        how = "SQL 评估" if out.method == "sql" else "批量评估"
        routed = f"（其中 {out.routed} 名由批量评估器计算）" if out.routed else ""
        self.stdout.write(f"共 {out.teachers} 名教师：{out.unchanged} 名经{how}确认无变化{routed}，"
                          f"{out.refreshed} 名已逐人重新评估并保存（{out.seconds:.1f} 秒）。")
