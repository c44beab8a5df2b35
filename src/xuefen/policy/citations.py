"""Checking that every cited article exists in the cited seed file.

Search ignores whitespace (the seeds are extracted from PDFs, with line
breaks inside words).  With a ``section`` (附件3, 第四篇 ...) the article must
occur after that section's heading and before the next heading of its kind.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from xuefen.policy.schema import Cite, Policy

_SECTION_KIND = re.compile(r"^(附件|第.篇)")


def seeds_dir() -> Path:
    env = os.environ.get("XUEFEN_SEEDS")
    if env:
        return Path(env)
    # The repository sits beside shared/ (as in CI: a clone with shared/ next to it).
    return Path(__file__).resolve().parents[3].parent / "shared" / "seeds"


def _squash(text: str) -> str:
    return "".join(text.split())


def _section_span(text: str, section: str) -> tuple[int, int] | None:
    start = text.find(_squash(section))
    if start < 0:
        return None
    end = len(text)
    kind = _SECTION_KIND.match(section)
    if kind:
        prefix = kind.group(1)
        pattern = re.compile(r"附件\d+" if prefix == "附件" else r"第.篇")
        for m in pattern.finditer(text, start + len(_squash(section))):
            if m.group(0) != _squash(section):
                end = m.start()
                break
    return start, end


def check_cite(policy: Policy, cite: Cite, directory: Path) -> str | None:
    """None when the citation is found, else the reason."""
    name = cite.file or policy.source.file
    path = directory / name
    if not path.exists():
        return f"引用的文件 {name} 不存在"
    text = _squash(path.read_text(encoding="utf-8"))
    lo, hi = 0, len(text)
    if cite.section:
        span = _section_span(text, cite.section)
        if span is None:
            return f"{name} 中找不到章节“{cite.section}”"
        lo, hi = span
    if _squash(cite.article) not in text[lo:hi]:
        where = f"章节“{cite.section}”" if cite.section else name
        return f"{where}中找不到“{cite.article}”"
    return None


def check_policy(policy: Policy, directory: Path) -> list[str]:
    problems = []
    cites: list[tuple[str, Cite]] = []
    cycle_cites = policy.cycle.cite if isinstance(policy.cycle.cite, list) else [policy.cycle.cite]
    cites += [("cycle", c) for c in cycle_cites]
    for opt in policy.options:
        cites += [(f"选项 {opt.id}", c) for c in (opt.cite if isinstance(opt.cite, list) else [opt.cite])]
    for rule in policy.rules:
        cites += [(f"规则 {rule.id}", c) for c in rule.cites]
    for th in policy.unit_thresholds:
        cites += [(f"单位标准 {th.id}", c) for c in (th.cite if isinstance(th.cite, list) else [th.cite])]
    for owner, cite in cites:
        reason = check_cite(policy, cite, directory)
        if reason:
            problems.append(f"{policy.id} {owner}：{reason}")
    return problems
