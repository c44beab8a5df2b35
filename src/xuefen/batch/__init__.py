"""Province-scale evaluation: the same policy files as the per-teacher engine,
evaluated over a whole population in columnar form (Arrow + NumPy on the fast
path, Polars on the general one; integer thousandths).  Teachers whose situation needs a rule kind without a batch form
are routed to the per-teacher engine; none is skipped."""

from xuefen.batch.evaluate import BatchResult, evaluate_frame, evaluate_parquet

__all__ = ["BatchResult", "evaluate_frame", "evaluate_parquet"]
