"""PDF documents: certificates (one per page; a school's merged for
printing), the 学分证明 and the 登记手册 booklet.  ReportLab draws them; the
QR code (segno) is drawn as vector squares, so it stays sharp at any scale.

Fonts: a TrueType CJK font is embedded when one is installed (ReportLab
embeds TrueType outlines only; the Noto CJK fonts of fonts-noto-cjk are
CFF-flavoured OpenType, which it cannot embed).  Otherwise the text uses the
PDF standard Chinese font STSong-Light (Adobe-GB1), which every PDF viewer
supplies itself — so a fresh machine without any CJK font still writes
correct, readable documents."""

from __future__ import annotations

import io
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import segno
from django.utils import timezone
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from xuefen.numbers import fmt
from xuefen.web.models import Certificate, Record, Teacher
from xuefen.web.permissions import COUNTING
from xuefen.web.services.certificates import PROVIDES

TRUETYPE_CJK = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
_font: str | None = None


def font() -> str:
    global _font
    if _font is None:
        for candidate in TRUETYPE_CJK:
            if Path(candidate).exists():
                try:
                    pdfmetrics.registerFont(TTFont("XuefenCJK", candidate, subfontIndex=0))
                except Exception:  # noqa: S112 — a broken font file: try the next one
                    continue
                _font = "XuefenCJK"
                break
        else:
            pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
            _font = "STSong-Light"
    return _font


def draw_qr(c: Canvas, data: str, x: float, y: float, size: float) -> None:
    """``data`` as a QR code whose lower left corner is (x, y), ``size`` wide."""
    qr = segno.make(data, error="m")
    matrix = [list(row) for row in qr.matrix]
    n = len(matrix)
    border = 2
    cell = size / (n + 2 * border)
    c.setFillColorRGB(1, 1, 1)
    c.rect(x, y, size, size, stroke=0, fill=1)
    c.setFillColorRGB(0, 0, 0)
    for r, row in enumerate(matrix):
        for col, value in enumerate(row):
            if value:
                c.rect(x + (col + border) * cell, y + size - (r + 1 + border) * cell, cell, cell, stroke=0, fill=1)


TITLES = {
    Certificate.Kind.ANNUAL: "年度继续教育证书",
    Certificate.Kind.CYCLE: "教师培训结业证书",
    Certificate.Kind.STATEMENT: "继续教育学分证明",
}


def _period(cert: Certificate) -> str:
    if cert.period_start == cert.period_end:
        return f"{cert.period_start} 年度"
    return f"{cert.period_start}–{cert.period_end} 年"


def _certificate_page(c: Canvas, cert: Certificate, url: str) -> None:
    f = font()
    width, height = A4
    c.setStrokeColorRGB(0.55, 0.1, 0.1)
    c.setLineWidth(3)
    c.rect(12 * mm, 12 * mm, width - 24 * mm, height - 24 * mm)
    c.setLineWidth(0.8)
    c.rect(15 * mm, 15 * mm, width - 30 * mm, height - 30 * mm)
    c.setFillColorRGB(0.55, 0.1, 0.1)
    c.setFont(f, 30)
    c.drawCentredString(width / 2, height - 50 * mm, TITLES[Certificate.Kind(cert.kind)])
    c.setFillColorRGB(0, 0, 0)
    c.setFont(f, 11)
    c.drawRightString(width - 25 * mm, height - 62 * mm, f"编号：{cert.number}")
    teacher = cert.teacher
    c.setFont(f, 15)
    y = height - 85 * mm
    if cert.kind == Certificate.Kind.STATEMENT:
        lines = [f"兹证明 {teacher.name}（教师编号 {teacher.teacher_no}），{cert.school_name}教师，",
                 f"{_period(cert)}继续教育已登记学分共计 {fmt(cert.total)} 分，明细如下。",
                 f"（截至 {timezone.localtime(cert.issued_at):%Y年%m月%d日}，以平台记录为准。）"]
    else:
        lines = [f"{teacher.name}（教师编号 {teacher.teacher_no}），{cert.school_name}教师，",
                 f"{_period(cert)}参加中小学教师继续教育，经审核认定，",
                 f"共计获得 {fmt(cert.total)} 学分，达到规定要求。", "特发此证。"]
    for line in lines:
        c.drawString(30 * mm, y, line)
        y -= 10 * mm
    y -= 4 * mm
    c.setFont(f, 12)
    c.drawString(30 * mm, y, "学分类别")
    c.drawRightString(120 * mm, y, "学分")
    c.line(30 * mm, y - 2 * mm, 120 * mm, y - 2 * mm)
    y -= 9 * mm
    for name, value in cert.categories.items():
        c.drawString(30 * mm, y, str(name))
        c.drawRightString(120 * mm, y, fmt(Decimal(str(value))))
        y -= 8 * mm
    c.line(30 * mm, y + 6 * mm, 120 * mm, y + 6 * mm)
    c.drawString(30 * mm, y, "合计")
    c.drawRightString(120 * mm, y, fmt(cert.total))

    c.setFont(f, 13)
    c.drawString(30 * mm, 70 * mm, f"发证机关：{cert.issuer}")
    c.drawString(30 * mm, 60 * mm, f"发证日期：{timezone.localtime(cert.issued_at):%Y年%m月%d日}")
    c.setFont(f, 9)
    c.setFillColorRGB(0.35, 0.35, 0.35)
    cite = PROVIDES.get(cert.policy_id, (False, False, ""))[2]
    # The cited article names its policy; the policy id is an internal code (issue 16 item 5).
    c.drawString(30 * mm, 34 * mm, f"依据：{cite}　扫描右侧二维码核验真伪与状态")
    c.setFont(f, 7)
    cut = url.find("/verify/") + len("/verify/")
    c.drawString(30 * mm, 29 * mm, url[:cut])
    c.drawString(30 * mm, 25 * mm, url[cut:])
    c.setFillColorRGB(0, 0, 0)
    draw_qr(c, url, width - 70 * mm, 25 * mm, 45 * mm)
    c.setFont(f, 9)
    c.drawCentredString(width - 47.5 * mm, 21 * mm, "扫码核验")
    c.showPage()


def certificates_pdf(items: Iterable[tuple[Certificate, str]], title: str = "证书") -> bytes:
    """One page per (certificate, verification URL); a school's merged file
    is this with all of its certificates."""
    buffer = io.BytesIO()
    c = Canvas(buffer, pagesize=A4, pageCompression=1)
    c.setTitle(title)
    c.setCreator("xuefen")
    pages = 0
    for cert, url in items:
        _certificate_page(c, cert, url)
        pages += 1
    if not pages:
        c.setFont(font(), 14)
        c.drawString(30 * mm, A4[1] - 40 * mm, "（无证书）")
        c.showPage()
    c.save()
    return buffer.getvalue()


def booklet_pdf(teacher: Teacher, records: list[Record], verifiers: dict[int, str], closes: dict[int, str]) -> bytes:
    """登记手册 (肃州 第十一条; 永吉《继续教育证书》按年度登记): one section per
    year — the entries, their credits, who verified them — and the stamp
    fields the school and the district sign."""
    f = font()
    width, height = A4
    buffer = io.BytesIO()
    c = Canvas(buffer, pagesize=A4, pageCompression=1)
    c.setTitle(f"继续教育登记手册 {teacher.name}")
    c.setFont(f, 22)
    c.drawCentredString(width / 2, height - 60 * mm, "中小学教师继续教育登记手册")
    c.setFont(f, 14)
    y = height - 90 * mm
    for label, value in (("姓名", teacher.name), ("教师编号", teacher.teacher_no), ("学校", teacher.school.name),
                         ("学段", teacher.stage or "—"), ("岗位", teacher.post or "—"),
                         ("打印日期", f"{timezone.localdate():%Y年%m月%d日}")):
        c.drawString(50 * mm, y, f"{label}：{value}")
        y -= 10 * mm
    c.showPage()
    by_year: dict[int, list[Record]] = {}
    for r in records:
        by_year.setdefault(r.year, []).append(r)
    for year in sorted(by_year):
        c.setFont(f, 16)
        c.drawString(20 * mm, height - 25 * mm, f"{year} 年度登记")
        c.setFont(f, 10)
        c.drawRightString(width - 20 * mm, height - 25 * mm, f"年度登记：{closes.get(year, '未登记')}")
        cols = (20, 95, 118, 140, 160)
        y = height - 38 * mm
        for x, head in zip(cols, ("培训项目", "类别", "学时", "学分", "审核"), strict=True):
            c.drawString(x * mm, y, head)
        c.line(20 * mm, y - 2 * mm, width - 20 * mm, y - 2 * mm)
        y -= 8 * mm
        total = Decimal(0)
        for r in by_year[year]:
            if y < 60 * mm:
                c.showPage()
                c.setFont(f, 10)
                y = height - 25 * mm
            c.drawString(cols[0] * mm, y, (r.title or r.uid)[:30])
            c.drawString(cols[1] * mm, y, r.credit_category or "—")
            c.drawString(cols[2] * mm, y, fmt(r.hours) if r.hours is not None else "—")
            c.drawString(cols[3] * mm, y, fmt(r.credits))
            c.drawString(cols[4] * mm, y, f"{r.get_status_display()} {verifiers.get(r.pk, '')}"[:22])
            if r.status in COUNTING:
                total += r.credits
            y -= 7 * mm
        c.line(20 * mm, y + 4 * mm, width - 20 * mm, y + 4 * mm)
        c.drawString(cols[0] * mm, y - 2 * mm, "本年度登记学分（已审核记录）")
        c.drawString(cols[3] * mm, y - 2 * mm, fmt(total))
        c.setFont(f, 11)
        c.drawString(20 * mm, 40 * mm, "学校审核（盖章）：")
        c.drawString(110 * mm, 40 * mm, "区县审核（盖章）：")
        c.drawString(20 * mm, 28 * mm, "日期：")
        c.drawString(110 * mm, 28 * mm, "日期：")
        c.showPage()
    c.save()
    return buffer.getvalue()
