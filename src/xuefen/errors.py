"""Errors that reach users.  Every one names where the problem is (file, row,
column or policy line) and why, in Chinese; none carries a traceback."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    message: str
    file: str | None = None
    row: int | None = None  # 1-based, as a spreadsheet shows it
    column: str | None = None  # the header as the user wrote it, or a JSON key
    line: int | None = None  # for YAML/JSON sources

    def __str__(self) -> str:
        where: list[str] = []
        if self.file:
            where.append(f"文件 {self.file}")
        if self.row is not None:
            where.append(f"第{self.row}行")
        if self.line is not None:
            where.append(f"第{self.line}行")
        if self.column:
            where.append(f"“{self.column}”")
        prefix = " ".join(where)
        return f"{prefix}：{self.message}" if prefix else self.message


class XuefenError(Exception):
    """Base: a problem with one or more locations."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = problems
        super().__init__("\n".join(str(p) for p in problems))


class InputError(XuefenError):
    """Bad teacher or record data."""


class PolicyError(XuefenError):
    """A policy file that does not load: unknown key, unknown value, missing
    citation, overlapping versions."""
