"""The storage interface: a few primitives each engine implements, and nothing engine-specific above.

Reads and writes used by the rest of ``lib`` are plain functions over these primitives
(``lib/store/queries.py``), so that both engines run the very same SQL.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pandas as pd

from lib.model import EARLIEST, LATEST, SourceTable
from lib.store.dialect import Dialect
from lib.store.schema import ALL_TABLES, DATASETS, FAILURE_TABLES, PIPELINE_TABLES, TableDef

#: A span of item dates, either end open (None).
DateSpan = tuple[dt.date | None, dt.date | None]

#: ``Store.touching(NO_DATES)``: a write that changes what pages read, but no item of any date (the operations log).
NO_DATES: DateSpan = (dt.date.max, dt.date.min)

Params = Mapping[str, Any]

#: Column dtypes every engine returns, so pages and tests never see engine-specific types.
_DATE_COLUMNS = (
    "item_date",
    "analysis_date",
    "prediction_date",
    "game_date",
    "date",
    "first_date",
    "last_date",
    "first_game",
    "last_game",
    "week",
    "date_from",
    "date_to",
    "plausible_last",
)
_TIMESTAMP_COLUMNS = (
    "first_seen", "last_seen", "born", "created_at", "resolved_at", "classified_at", "at", "started_at", "finished_at",
    "checked_at",
)  # fmt: skip


def normalise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Dates as ``datetime.date`` objects, timestamps as UTC pandas timestamps, whatever the engine."""
    for col in df.columns:
        if col in _DATE_COLUMNS or str(df[col].dtype) == "dbdate":
            df[col] = pd.to_datetime(df[col]).dt.date if len(df) else df[col].astype(object)
        elif col in _TIMESTAMP_COLUMNS:
            df[col] = pd.to_datetime(df[col], utc=True)
    return df


# One statement per failure table; identifiers come from the schema module. The predicate on the
# partition column keeps it valid (and cheap: one column) where a partition filter is required.
_BOUNDS = {
    t.value: f"SELECT MIN({t.date_column}) AS first_date, MAX({t.date_column}) AS last_date, "
    f"COUNTIF({t.date_column} IS NOT NULL) AS n, COUNTIF({t.date_column} IS NULL) AS undated, "
    f"MAX(IF({t.date_column} <= @plausible, {t.date_column}, NULL)) AS plausible_last FROM {t.spec.ref} "
    f"WHERE {t.date_column} BETWEEN @lo AND @hi OR {t.date_column} IS NULL"
    for t in SourceTable
}


@dataclasses.dataclass(frozen=True)
class PartitionTimes:
    """When each date partition of some tables was last written, as the engine's metadata says (BigQuery's
    ``INFORMATION_SCHEMA.PARTITIONS``), read at ``now`` (the engine's clock)."""

    now: pd.Timestamp
    #: (``dataset.table`` in production spelling, partition date) -> last written.
    modified: Mapping[tuple[str, dt.date], pd.Timestamp]
    #: Tables with rows in no date partition yet (BigQuery's streaming buffer): any of their dates may have changed.
    unsettled: frozenset[str] = frozenset()


class Transaction(abc.ABC):
    """Statements that commit together or not at all."""

    @abc.abstractmethod
    def query(self, sql: str, params: Params | None = None) -> pd.DataFrame: ...

    @abc.abstractmethod
    def execute(self, sql: str, params: Params | None = None) -> int: ...

    @abc.abstractmethod
    def insert_frame(self, table_ref: str, frame: pd.DataFrame) -> int: ...


class Store(abc.ABC):
    engine: str
    dialect: Dialect

    # -- primitives -------------------------------------------------------------------------------
    @abc.abstractmethod
    def query(self, sql: str, params: Params | None = None, *, label: str = "") -> pd.DataFrame:
        """Run one BigQuery-dialect SELECT with named parameters; return a normalised frame."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Params | None = None, *, label: str = "") -> int:
        """Run one BigQuery-dialect DML statement; return the number of rows it changed."""

    def write_script(self, sql: str, params: Params | None = None, *, label: str = "") -> pd.DataFrame:
        """Run a multi-statement BigQuery script that writes and return the rows of its last statement. Only
        BigQuery runs scripts: the other engines write in ``transaction`` blocks."""
        raise NotImplementedError(f"{type(self).__name__} runs no multi-statement scripts")

    @abc.abstractmethod
    def transaction(self, *, label: str = "") -> AbstractContextManager[Transaction]:
        """A unit of work: commits on a clean exit, rolls back on an exception."""

    @abc.abstractmethod
    def insert_frame(self, table_ref: str, frame: pd.DataFrame, *, label: str = "") -> int:
        """Append a frame's rows to ``dataset.table`` (columns by name); return rows written."""

    @abc.abstractmethod
    def create_dataset(self, dataset: str) -> None: ...

    @abc.abstractmethod
    def existing_tables(self) -> set[str]:
        """``dataset.table`` names (production spelling) that exist."""

    @abc.abstractmethod
    def data_version(self) -> str:
        """A cheap token that changes whenever data changes: part of every cache key."""

    def content_version(self) -> str:
        """The key of a cached read of the failure items and everything about them, but not of the operations log:
        :meth:`data_version`, except that the writes that change no item of any date (the operations log) or only
        bring the item index in line with the rows (its rebuilds) do not change it, where the engine knows them
        (DuckDB's journal). On BigQuery the data version already leaves the index's tables out."""
        return self.data_version()

    def date_bounds(self) -> tuple[dt.date | None, dt.date | None, int]:
        """First and last failure date over all failure tables, and their row count."""
        first, last, total, _, _ = self.date_extent()
        return first, last, total

    def date_extent(self) -> tuple[dt.date | None, dt.date | None, int, dt.date | None, int]:
        """:meth:`date_bounds`, the last date that is not in the future by more than a year (a row dated
        3100 by mistake must not become the default view), and the rows without a date (in no item: said, not
        hidden)."""
        existing = self.existing_tables()
        firsts, lasts, plausible, total, undated = [], [], [], 0, 0
        params = {"lo": EARLIEST, "hi": LATEST, "plausible": dt.date.today() + dt.timedelta(days=366)}
        for table in FAILURE_TABLES:
            if table.ref not in existing:
                continue
            row = self.query(_BOUNDS[table.name], params, label="bounds").iloc[0]
            if row["n"]:
                firsts.append(row["first_date"])
                lasts.append(row["last_date"])
                if row["plausible_last"] is not None and not pd.isna(row["plausible_last"]):
                    plausible.append(row["plausible_last"])
                total += int(row["n"])
            undated += int(row["undated"] or 0)
        return (min(firsts) if firsts else None, max(lasts) if lasts else None, total,
                max(plausible) if plausible else None, undated)  # fmt: skip

    #: Whether ``partition_times`` may have an answer (the item index then reads it beside its stored fingerprints).
    keeps_partition_times: bool = False

    def partition_times(self, tables: Sequence[TableDef], lo: dt.date, hi: dt.date) -> PartitionTimes | None:
        """When the date partitions of ``tables`` between ``lo`` and ``hi`` were last written, from metadata that
        costs no scan of the data; None where the engine keeps no such metadata (the item index then fingerprints
        every date in range)."""
        return None

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the data is, for people: a file path or a project id."""

    # -- shared behaviour -------------------------------------------------------------------------
    def init_schema(self, *, pipeline_tables: bool = True) -> list[str]:
        """Create what is missing, idempotently. Returns the tables created (nothing is written, and a
        read-only database is fine, when every table exists)."""
        existing = self.existing_tables()
        wanted: Sequence[TableDef] = (
            ALL_TABLES if pipeline_tables else [t for t in ALL_TABLES if t not in PIPELINE_TABLES]
        )
        missing = [t for t in wanted if t.ref not in existing]
        if not missing:
            return []
        for dataset in DATASETS:
            self.create_dataset(self.dialect.dataset(dataset))
        self.create_tables(missing)
        return [t.ref for t in missing]

    def create_tables(self, tables: Sequence[TableDef]) -> None:
        """Create each table that does not exist yet (its DDL says ``IF NOT EXISTS``)."""
        for table in tables:
            self.execute(table.ddl, label="init")

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """A dashboard run: on an engine that locks a file, the run keeps it from its first statement to its end
        (another process has its turn between runs). Nothing to do elsewhere."""
        yield

    @contextlib.contextmanager
    def touching(self, span: DateSpan | None, *, derived: bool = False) -> Iterator[None]:
        """Say what this thread's writes to this store within the block change: the failure rows, status events,
        verdicts and item index entries of the dates of ``span`` and nothing else (never the pipeline's tables; an
        open end: every date that way), or nothing any page reads through a cache (``None``: a visit; the data
        version then stays as it was). ``derived``: the writes only bring the item index of those dates in line with
        their rows (its own rebuilds), so whatever was current stays current. An engine that journals the versions
        of its file (DuckDB) then knows which dates' data may differ from one version to the next
        (``written_between``), and the item index keeps what it found current elsewhere. ``NO_DATES``: the writes
        change what pages read, but no item of any date (the operations log): every date stays current, the data
        version moves. A write outside such a block may have changed anything. Nothing to do on other engines."""
        yield

    def pipeline_version(self) -> str:
        """A token that changes whenever the pipeline's own tables (schedule, box scores, analytics) may have: the
        key of a cached read of those alone. The data version here; on DuckDB, the one before the latest writes
        that said what they change (``touching``: none of those is the pipeline's)."""
        return self.data_version()

    def written_between(self, old: str, new: str) -> list[DateSpan] | None:
        """The date spans whose data the writes declared with ``touching`` (by any process) changed from data version
        ``old`` to ``new`` (the index's own rebuilds change none); None when that is not known (a write said nothing,
        or the engine keeps no journal): then anything may have changed."""
        return None

    def others_waiting(self) -> bool:
        """Whether another process waits for the data now (a long write outside a dashboard run then takes smaller
        steps). Engines that do not lock a file: never."""
        return False

    def in_dashboard_run(self) -> bool:
        """Whether this thread runs a dashboard page (``held``): people wait for it, so its work does not shrink its
        steps for a waiting process (the nightly job), which has its turn between runs. Engines without ``held``:
        never."""
        return False

    def let_waiters_in(self, *, at_most: float = 5.0) -> None:
        """Between the batches of a long write: let any process waiting for the data have its turn first.
        Engines that do not lock a file have nothing to do."""
        return None

    def is_empty(self) -> bool:
        return self.date_bounds()[2] == 0

    @abc.abstractmethod
    def stream(
        self, sql: str, params: Params | None = None, *, chunk: int = 50_000, label: str = ""
    ) -> Iterator[pd.DataFrame]:
        """Run one SELECT and yield its result in frames of at most ``chunk`` rows, in order."""
