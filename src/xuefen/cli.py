"""The ``xuefen`` command.

Exit codes: 0 the teacher(s) pass, 1 at least one does not, 2 bad input or
bad policy.  Errors are Chinese sentences naming file, row and column; a
traceback is never shown for bad input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xuefen.errors import XuefenError
from xuefen.numbers import fmt


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"“{text}”不是日期，请写成 2025-12-31") from None


def _options(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise XuefenError(f"--option 的格式应为 名称=取值，收到“{pair}”")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _pick(args: argparse.Namespace) -> tuple[Any, dt.date]:
    from xuefen.policy.loader import default_registry, pick

    return pick(default_registry(), args.policy, args.as_of)


def _ledgers(args: argparse.Namespace) -> list[Any]:
    from xuefen.io.readers import read_file

    ledgers = read_file(Path(args.file))
    if getattr(args, "teacher", None):
        ledgers = [lg for lg in ledgers if lg.teacher.id == args.teacher]
        if not ledgers:
            raise XuefenError(f"文件中没有教师编号为 {args.teacher} 的教师")
    if not ledgers:
        raise XuefenError("文件中没有教师")
    return ledgers


def cmd_policies(args: argparse.Namespace) -> int:
    from xuefen.engine.evaluate import cycle_first_year, resolve_options
    from xuefen.policy.loader import default_registry

    reg = default_registry()
    rows = []
    for p in sorted(reg.policies.values(), key=lambda p: (p.jurisdiction.code, p.effective.from_)):
        end = p.effective.to.isoformat() if p.effective.to else "至今"
        rows.append((p.id, p.name, p.jurisdiction.name, f"[{p.effective.from_.isoformat()}, {end})",
                     f"{p.cycle.years}年周期，始于{cycle_first_year(p, resolve_options(p, {}))}年", p.applies_to))
    if args.format == "json":
        from xuefen.engine.report import dumps

        print(dumps([dict(zip(("id", "name", "jurisdiction", "effective", "cycle", "applies_to"), r, strict=True))
                     for r in rows]))
        return 0
    for r in rows:
        print(f"{r[0]:<22} {r[2]}  {r[3]}  {r[4]}  适用：{r[5]}\n{'':<23}{r[1]}")
    return 0


def cmd_policy_show(args: argparse.Namespace) -> int:
    from xuefen.engine.show import show_text
    from xuefen.policy.loader import default_registry

    policy = default_registry().get(args.id)
    print(show_text(policy), end="")
    return 0


def cmd_policy_test(args: argparse.Namespace) -> int:
    from xuefen.engine.cases import cases_path, coverage_gaps, load_cases, run_case
    from xuefen.policy.loader import default_policy_dir, default_registry

    reg = default_registry()
    ids = [args.id] if args.id else sorted(reg.policies)
    failed = 0
    for pid in ids:
        policy = reg.get(pid)
        path = cases_path(default_policy_dir(), pid)
        if not path.exists():
            print(f"{pid}：没有用例文件 {path.name}")
            failed += 1
            continue
        _, cases = load_cases(path)
        outcomes = [run_case(policy, c, path.name) for c in cases]
        bad = [o for o in outcomes if o.mismatches]
        gaps = coverage_gaps(policy, outcomes)
        print(f"{pid}：{len(cases) - len(bad)}/{len(cases)} 个用例通过，覆盖缺口 {len(gaps)} 处")
        for o in bad:
            print(f"  ✗ 第{o.case.line}行 {o.case.name}")
            for m in o.mismatches:
                print(f"      {m}")
        for g in gaps:
            print(f"  ○ {g}")
        failed += len(bad) + len(gaps)
    return 0 if failed == 0 else 1


def _evaluate_all(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    from xuefen.engine.evaluate import Evaluator

    policy, as_of = _pick(args)
    evaluator = Evaluator(policy, _options(args.option))
    ledgers = _ledgers(args)
    _check_words(policy, ledgers, args.file)
    results = [evaluator.evaluate(lg.teacher, lg.records, as_of) for lg in ledgers]
    return policy, results


def _check_words(policy: Any, ledgers: list[Any], file: str) -> None:
    """A category or theme the policy does not know is bad input (exit 2),
    every one named with its cell, before anything is evaluated."""
    from xuefen.engine.words import unknown_words
    from xuefen.errors import InputError, Problem

    name = Path(file).name
    problems: list[Problem] = []
    for lg in ledgers:
        def where(record: Any, key: str, message: str, lg: Any = lg) -> Problem:
            locate = lg.where.get(record.id)
            return locate(key, message) if locate else Problem(message, file=name, column=key)
        problems += unknown_words(policy, lg.records, where)
    if problems:
        raise InputError(problems)


def cmd_evaluate_batch(args: argparse.Namespace) -> int:
    """A population (Parquet, or CSV/XLSX with --output): the batch evaluator,
    one row per teacher in the output file, unit rates on the screen."""
    from xuefen.batch import evaluate_parquet

    policy, as_of = _pick(args)
    options = _options(args.option)
    path = Path(args.file)
    # a Parquet file's workers start before this process loads Polars and the engine
    if path.suffix.lower() == ".parquet":
        teachers = evaluate_parquet(policy.id, path, as_of, args.output, options)
    else:
        import polars as pl

        from xuefen.batch import evaluate_frame
        from xuefen.io.readers import ledger_to_json

        rows = []
        for lg in _ledgers(args):
            doc = ledger_to_json(lg)
            t = {("teacher_id" if k == "id" else k): v for k, v in doc["teacher"].items() if k != "leaves"}
            t["leaves"] = ";".join(f"{lv['year']}:{lv['kind']}" + ("" if lv.get("approved", True) else ":否")
                                   for lv in doc["teacher"].get("leaves", [])) or None
            for r in doc["records"]:
                rows.append({**t, "record_id": r.pop("id"), **r})
        teachers = evaluate_frame(policy, pl.DataFrame(rows, infer_schema_length=None), as_of, options).teachers
        if args.output:
            teachers.write_parquet(args.output)
    import polars as pl

    from xuefen.batch.evaluate import unit_rates

    passed = int(teachers.get_column("passed").sum())
    units = unit_rates(teachers) if teachers.height else pl.DataFrame()
    units_path = None
    if args.output and units.height:
        out = Path(args.output)
        units_path = out.with_name(out.stem + "-units" + out.suffix)
        units.write_parquet(units_path)
    print(f"{policy.id}：{teachers.height} 名教师，达标 {passed} 名，"
          f"经逐人引擎评估 {int(teachers.get_column('routed').sum())} 名"
          + (f"；结果已写入 {args.output}" if args.output else "")
          + (f"，各单位达标率写入 {units_path}" if units_path else ""))
    for level in ("city", "district"):
        level_rows = units.filter(pl.col("level") == level) if units.height else units
        if 0 < level_rows.height <= 30:
            print("  " + "；".join(f"{r['unit']} {r['passed']}/{r['teachers']}（{r['passed'] / r['teachers']:.1%}）"
                                   for r in level_rows.iter_rows(named=True)))
    return 0 if passed == teachers.height else 1


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the province benchmark of a source checkout (benchmarks/bench_scale.py)."""
    import subprocess

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_scale.py"
    if not script.exists():
        raise XuefenError("找不到 benchmarks/bench_scale.py：性能测试只在源代码目录中提供")
    # our own interpreter and script; the user's arguments pass through unchanged
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    return subprocess.call([sys.executable, str(script), *rest])  # noqa: S603


def cmd_evaluate(args: argparse.Namespace) -> int:
    from xuefen.engine.report import as_dict, dumps, text_report

    if args.output or Path(args.file).suffix.lower() == ".parquet":
        return cmd_evaluate_batch(args)

    _, results = _evaluate_all(args)
    if args.format == "json":
        data = [as_dict(ev) for ev in results]
        print(dumps(data[0] if len(data) == 1 else data))
    else:
        print("\n".join(text_report(ev) for ev in results), end="")
    return 0 if all(ev.passed for ev in results) else 1


def cmd_explain(args: argparse.Namespace) -> int:
    from xuefen.engine.report import explain_text

    _, results = _evaluate_all(args)
    print("\n".join(explain_text(ev) for ev in results), end="")
    return 0 if all(ev.passed for ev in results) else 1


def cmd_plan(args: argparse.Namespace) -> int:
    from xuefen.engine.report import dumps, plan, plan_text

    _, results = _evaluate_all(args)
    plans = [plan(ev) for ev in results]
    if args.format == "json":
        print(dumps(plans[0] if len(plans) == 1 else plans))
    else:
        for ev, data in zip(results, plans, strict=True):
            print(f"{ev.teacher.name or ''}（{ev.teacher.id}）  {ev.policy.name}")
            print(plan_text(data))
    return 0 if all(ev.passed for ev in results) else 1


def cmd_template(args: argparse.Namespace) -> int:
    from xuefen.io.template import write_template

    path = Path(args.output)
    write_template(path)
    print(f"已写出导入模板：{path}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from xuefen.engine.report import dumps
    from xuefen.io.schema import interchange_schema

    text = dumps(interchange_schema())
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"已写出 JSON Schema：{args.output}")
    else:
        print(text)
    return 0


def _django() -> None:
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xuefen.web.settings")
    import django

    django.setup()


def cmd_serve(args: argparse.Namespace) -> int:
    """Migrate the embedded database, load the demo, serve on 127.0.0.1."""
    _django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    if not args.no_demo:
        call_command("demo")
    from django.conf import settings

    from xuefen.web import serving

    server = args.server
    if server == "auto":
        server = "gunicorn" if serving.gunicorn_available() else "runserver"
    if settings.PRODUCTION:
        # WhiteNoise serves the collected, precompressed copies (settings.STORAGES).
        call_command("collectstatic", interactive=False, verbosity=0)
    print(f"\n学分平台已启动：http://{args.host}:{args.port}/  （Ctrl+C 停止）", flush=True)
    if server == "gunicorn":
        print(f"gunicorn：{serving.options(args.host, args.port)['workers']} 个进程 × "
              f"{serving.options(args.host, args.port)['threads']} 个线程，"
              f"数据库连接至多 {serving.connection_budget()} 个", flush=True)
        from django.db import connections

        connections.close_all()  # a connection opened here must not be shared by the forked workers
        serving.run_gunicorn(args.host, args.port)
    else:
        call_command("runserver", f"{args.host}:{args.port}", use_reloader=False, verbosity=0)
    return 0


def cmd_manage(args: argparse.Namespace) -> int:
    _django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["xuefen manage", *args.rest])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xuefen", description="xuefen 教师培训学分：政策引擎与命令行工具")
    sub = parser.add_subparsers(dest="command", required=True, metavar="命令")

    p = sub.add_parser("policies", help="列出全部政策")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_policies)

    pol = sub.add_parser("policy", help="查看或检验一项政策")
    pol_sub = pol.add_subparsers(dest="policy_command", required=True, metavar="子命令")
    p = pol_sub.add_parser("show", help="逐条列出政策规则及出处")
    p.add_argument("id")
    p.set_defaults(func=cmd_policy_show)
    p = pol_sub.add_parser("test", help="运行政策旁的数据化用例")
    p.add_argument("id", nargs="?")
    p.set_defaults(func=cmd_policy_test)

    def common(p: argparse.ArgumentParser, formats: bool = True) -> None:
        p.add_argument("--policy", required=True, help="政策编号，或辖区代码（按 --as-of 选版本）")
        p.add_argument("file", help="教师记录：JSON（一名教师）或 CSV/XLSX（多名教师，一行一条记录）")
        p.add_argument("--as-of", type=_date, default=None, help="评估日期，默认今天（已失效的政策取其最后一天）")
        p.add_argument("--option", action="append", metavar="名称=取值", help="政策选项（见 policy show）")
        p.add_argument("--teacher", help="只评估该教师编号")
        if formats:
            p.add_argument("--format", choices=["json", "text"], default="text")

    p = sub.add_parser("evaluate", help="评估教师是否达标")
    common(p)
    p.add_argument("--output", "-o", help="批量评估：把每名教师的结论写入 Parquet 文件（输入为 .parquet 时自动批量）")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("explain", help="完整的计算过程与依据")
    common(p, formats=False)
    p.set_defaults(func=cmd_explain)
    p = sub.add_parser("plan", help="本年度和本周期还需要的学分与学时")
    common(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("template", help="写出 XLSX 导入模板")
    p.add_argument("--output", "-o", default="xuefen-导入模板.xlsx")
    p.set_defaults(func=cmd_template)
    p = sub.add_parser("schema", help="写出交换格式的 JSON Schema")
    p.add_argument("--output", "-o")
    p.set_defaults(func=cmd_schema)
    p = sub.add_parser("serve", help="运行 Web 平台（内置默认：SQLite，载入演示数据）")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", default="8000")
    p.add_argument("--no-demo", action="store_true", help="不载入演示数据")
    p.add_argument("--server", choices=["auto", "gunicorn", "runserver"], default="auto",
                   help="auto：gunicorn（Windows 上为 Django 开发服务器）；runserver 仅供调试")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("bench", help="性能测试：批量评估与手写 DuckDB SQL、Python 循环对比（参数同 benchmarks/bench_scale.py）",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("manage", help="Django 管理命令（migrate、createsuperuser …）")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_manage)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        # every argument, --help included, belongs to the benchmark script
        argv = ["bench", "--", *argv[1:]] if len(argv) > 1 and argv[1] != "--" else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except XuefenError as exc:
        for problem in exc.problems:
            print(f"错误：{problem}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["fmt", "main"]
