"""Province-scale evaluation: the same policy files as the per-teacher engine,
evaluated over a whole population in columnar form (Arrow + NumPy on the fast
path, Polars on the general one; integer thousandths).  Teachers whose situation needs a rule kind without a batch form
are routed to the per-teacher engine; none is skipped.

The names are imported when first used: the Parquet driver's parent process
starts its workers before it loads Polars and the engine (about 0.3 s of a
province's run)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xuefen.batch.evaluate import BatchResult, evaluate_frame
    from xuefen.batch.parquet import evaluate_parquet

__all__ = ["BatchResult", "evaluate_frame", "evaluate_parquet"]


def __getattr__(name: str) -> Any:
    if name == "evaluate_parquet":
        from xuefen.batch import parquet

        return parquet.evaluate_parquet
    if name in ("BatchResult", "evaluate_frame"):
        from xuefen.batch import evaluate

        return getattr(evaluate, name)
    raise AttributeError(name)
