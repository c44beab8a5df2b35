"""``xuefen manage certificate --teacher ID (--year Y | --cycle) -o FILE.pdf``:
one teacher's certificate as the page writes it, for scripts.  Refuses, with
the reason, when the period is not confirmed or the teacher has not passed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from xuefen.web import pdfs
from xuefen.web.models import Certificate, Teacher
from xuefen.web.services import certificates


class Command(BaseCommand):
    help = "写出一位教师的证书 PDF（年度证书或周期结业证书）"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--teacher", required=True, help="教师编号（如 T00001）")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--year", type=int, help="年度证书的年度")
        which.add_argument("--cycle", action="store_true", help="周期结业证书（最近一个已确认的周期）")
        parser.add_argument("-o", "--output", required=True, help="输出 PDF 文件")
        parser.add_argument("--base-url", default=None, help="二维码中核验地址的前缀（默认 XUEFEN_PUBLIC_URL）")

    def handle(self, *args: Any, **options: Any) -> None:
        teacher = Teacher.objects.select_related("school").filter(teacher_no=options["teacher"]).first()
        if teacher is None:
            raise CommandError(f"没有教师编号为 {options['teacher']} 的教师")
        kind = Certificate.Kind.CYCLE if options["cycle"] else Certificate.Kind.ANNUAL
        year = options["year"]
        cert = certificates.current(teacher, kind, year)
        if cert is None or not certificates.is_valid(cert):
            reason = certificates.explain_missing(teacher, kind, year)
            if cert is not None:
                reason = f"{cert.number} 已撤销（所计记录已被撤销），请联系区县继教办"
            raise CommandError(f"不能写出证书：{reason}")
        url = certificates.verify_url(cert, options["base_url"])
        Path(options["output"]).write_bytes(pdfs.certificates_pdf([(cert, url)], title=cert.number))
        self.stdout.write(f"{options['output']}：{cert.get_kind_display()} {cert.number}，核验地址 {url}")
