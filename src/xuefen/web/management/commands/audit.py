"""``xuefen manage audit verify|anchor|seal``: the audit log's hash chain
(services.audit).  ``verify`` exits 1 and names the first broken link."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from xuefen.web.services import audit


class Command(BaseCommand):
    help = "审计日志哈希链：verify 校验（报告第一处断链），anchor 写入锚点，seal 封存待封存的记录"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["verify", "anchor", "seal"])
        parser.add_argument("--anchor-file", default=None, help="另行保存的锚点文件（默认 XUEFEN_AUDIT_ANCHOR_FILE）")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "seal":
            self.stdout.write(f"已封存 {audit.seal()} 条审计记录。")
            return
        if action == "anchor":
            anchor = audit.anchor()
            if anchor is None:
                self.stdout.write("审计日志为空，无需锚点。")
            else:
                self.stdout.write(f"锚点：第 {anchor.seq} 条 {anchor.hash}")
            return
        sealed = audit.seal()
        verdict = audit.verify(options["anchor_file"])
        if not verdict.ok:
            raise CommandError("审计日志校验失败：" + "；".join(verdict.problems))
        extra = f"（本次封存 {sealed} 条）" if sealed else ""
        self.stdout.write(f"审计日志校验通过：{verdict.checked} 条记录的哈希链完整{extra}。")
