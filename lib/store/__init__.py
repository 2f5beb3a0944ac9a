"""One storage interface, two engines. ``open_store`` picks the engine from settings."""

from __future__ import annotations

from lib.config import Settings
from lib.errors import BadInput
from lib.store.base import Store
from lib.store.duckdb_store import DuckDBStore

__all__ = ["DuckDBStore", "Store", "open_store"]


def open_store(settings: Settings) -> Store:
    if settings.engine == "duckdb":
        return DuckDBStore(settings.db_path)
    raise BadInput(
        f"Unknown engine {settings.engine!r}.",
        "Set TRIAGE_ENGINE to 'duckdb' (the embedded default).",
    )
