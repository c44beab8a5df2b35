"""Keep 身份证号 out of logs: any 18-character ID number in a log message is
masked before it is written."""

from __future__ import annotations

import logging
import re

ID_NUMBER = re.compile(r"(?<![0-9])([1-9][0-9]{5})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9])")


class MaskIdNumbers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = ID_NUMBER.sub(lambda m: m.group(1)[:4] + "**********" + m.group(2)[-4:], message)
        if masked != message:
            record.msg = masked
            record.args = ()
        return True
