"""``xuefen manage rotate_id_key``: re-encrypt every 身份证号 under the first
key of ``XUEFEN_ID_KEYS`` and recompute every digest under the current
``XUEFEN_ID_HMAC_KEY``, in one transaction.

Rotation: put the new Fernet key first in ``XUEFEN_ID_KEYS`` (keep the old
one after it), run this command, then remove the old key.  To rotate the
HMAC key as well, run it with the new ``XUEFEN_ID_HMAC_KEY`` (the numbers
are decrypted, so the digests are recomputed from them)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from xuefen.web import pii
from xuefen.web.models import Teacher


class Command(BaseCommand):
    help = "用当前密钥重新加密全部身份证号并重算检索摘要（密钥轮换）"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--new-key", action="store_true", help="只打印一个新的 Fernet 密钥，不改动数据")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["new_key"]:
            self.stdout.write(pii.new_key())
            return
        pii.reset_keys()
        n = 0
        with transaction.atomic():
            for pk, token in Teacher.objects.select_for_update().values_list("pk", "id_number_enc").iterator(2000):
                number = pii.decrypt(token)
                Teacher.objects.filter(pk=pk).update(id_number_enc=pii.encrypt(number), id_hmac=pii.digest(number))
                n += 1
        self.stdout.write(f"已用当前密钥重新加密 {n} 名教师的身份证号。")
