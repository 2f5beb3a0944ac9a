"""One storage interface, two engines. ``open_store`` picks the engine from settings."""

from __future__ import annotations

from lib.config import Settings
from lib.errors import BadInput
from lib.store.base import Store
from lib.store.duckdb_store import DuckDBStore

__all__ = ["DuckDBStore", "Store", "open_store"]


def open_store(settings: Settings, *, create: bool = True) -> Store:
    """The configured engine's store; ``create=False`` (reads) never creates a database file."""
    if settings.engine == "duckdb":
        return DuckDBStore(settings.db_path, create=create)
    if settings.engine == "bigquery":
        from lib.store.bigquery_store import BigQueryStore
        from lib.store.schema import DATASETS

        bq = settings.bigquery
        if not bq.project:
            raise BadInput("BigQuery needs a project id.", "Set TRIAGE_BQ_PROJECT, [triage.bigquery] project, "
                           "or pass --bigquery PROJECT.")  # fmt: skip
        return BigQueryStore(
            bq.project,
            location=bq.location,
            datasets={d: bq.datasets.get(d, d) for d in DATASETS},
            credentials_info=bq.credentials_info,
            endpoint=bq.endpoint,
            maximum_bytes_billed=bq.maximum_bytes_billed,
        )
    raise BadInput(
        f"Unknown engine {settings.engine!r}.",
        "Set TRIAGE_ENGINE to 'duckdb' (the embedded default) or 'bigquery'.",
    )
