"""Resident identity numbers (GB 11643-1999): 17 digits and a check
character computed from them with ISO 7064 MOD 11-2."""

from __future__ import annotations

import re

_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_CHECK = "10X98765432"
_SHAPE = re.compile(r"^[1-9]\d{5}(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}[\dX]$")


def check_char(first17: str) -> str:
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def problem(value: str) -> str | None:
    """None when valid, else the reason in Chinese."""
    text = value.strip().upper()
    if re.fullmatch(r"\d(\.\d+)?E\+?\d+", text):
        return "身份证号被 Excel 转成了科学计数法，末几位已丢失；请把该列设置为“文本”格式后重新录入"
    if len(text) != 18:
        return f"身份证号应为18位，实际{len(text)}位"
    if not _SHAPE.match(text):
        return "身份证号格式不正确（地区码、出生日期或字符有误）"
    if check_char(text[:17]) != text[17]:
        hint = "；末三位为000，可能是 Excel 把它当作数字截断了，请把该列设置为“文本”格式" if text.endswith("000") else ""
        return f"身份证号校验位不正确{hint}"
    return None


def make(region: str, birth: str, seq: int) -> str:
    body = f"{region}{birth}{seq:03d}"
    return body + check_char(body)
