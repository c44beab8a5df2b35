"""Recount every unit's tally (``UnitTally``) from the stored results: for
repair, and after loading teachers or results behind the services."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from xuefen.web.services import tallies


class Command(BaseCommand):
    help = "从已存储的评估结果重新统计各单位的达标人数"

    def handle(self, *args: Any, **options: Any) -> None:
        rebuilt = tallies.rebuild()
        self.stdout.write(f"已重新统计 {rebuilt.units} 个单位，其中 {rebuilt.corrected} 个与原统计不同并已更正。")
