"""Keep 身份证号 out of logs: any 18-character ID number in a log message,
its arguments, or an attached traceback (a PostgreSQL unique-violation
detail quotes the value) is masked before it is written."""

from __future__ import annotations

import logging
import re

ID_NUMBER = re.compile(r"(?<![0-9])([1-9][0-9]{5})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9])")


def mask(text: str) -> str:
    return ID_NUMBER.sub(lambda m: m.group(1)[:4] + "**********" + m.group(2)[-4:], text)


class MaskIdNumbers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg = masked
            record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True
