"""The production engine: BigQuery, through the official client, with the same queries as DuckDB.

Differences from the embedded engine, each handled here:
* parameters are typed (``@name`` with a BigQuery type inferred from the Python value);
* results come back with BigQuery's dtypes (``dbdate``...) and are normalised like DuckDB's;
* there is no cross-statement transaction: the statements of a unit of work run in order. Every write
  of the dashboard is either one statement (resolution events) or idempotent and safe to run again
  (classification verdicts, the status sync), so a failure midway loses nothing;
* rows are loaded with load jobs, never streamed (streamed rows refuse DML for up to ~90 minutes);
* every job carries labels (the page or command), a ``maximum_bytes_billed`` guard and short retries.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import pandas as pd

from lib.errors import QueryFailed, StoreUnavailable, TriageError
from lib.store.base import Params, PartitionTimes, Store, Transaction, normalise_frame
from lib.store.dialect import Dialect
from lib.store.schema import DATASETS, FAILURE_TABLES, TableDef

T = TypeVar("T")


def _param(name: str, value: Any) -> Any:
    from google.cloud import bigquery

    if isinstance(value, (list, tuple)):
        kind = "STRING"
        if value and isinstance(value[0], bool):
            kind = "BOOL"
        elif value and isinstance(value[0], int):
            kind = "INT64"
        elif value and isinstance(value[0], dt.date):
            kind = "DATE"
        return bigquery.ArrayQueryParameter(name, kind, list(value))
    if isinstance(value, bool):
        return bigquery.ScalarQueryParameter(name, "BOOL", value)
    if isinstance(value, int):
        return bigquery.ScalarQueryParameter(name, "INT64", value)
    if isinstance(value, float):
        return bigquery.ScalarQueryParameter(name, "FLOAT64", value)
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return bigquery.ScalarQueryParameter(name, "TIMESTAMP", value)
    if isinstance(value, dt.date):
        return bigquery.ScalarQueryParameter(name, "DATE", value)
    return bigquery.ScalarQueryParameter(name, "STRING", None if value is None else str(value))


def _explain(exc: Exception, what: str) -> TriageError:
    """A BigQuery or auth error as what happened and what to do."""
    from google.api_core import exceptions as gx
    from google.auth import exceptions as ax

    text = (str(getattr(exc, "message", "") or exc).splitlines() or [""])[0][:300]
    if "streaming buffer" in text.lower():
        return QueryFailed(
            f"BigQuery refused {what}: some rows are still in its streaming buffer ({text}).",
            "Rows the pipeline streamed in the last ~90 minutes cannot be updated yet. Nothing was lost: the "
            "status events are saved, and `python -m lib sync-status` (or the nightly job) catches up later.",
        )
    if isinstance(exc, ax.DefaultCredentialsError | ax.RefreshError):
        return StoreUnavailable(f"No usable Google credentials for BigQuery ({text}).",
                                "Set service-account info in .streamlit/secrets.toml or run "
                                "`gcloud auth application-default login`.")  # fmt: skip
    if isinstance(exc, gx.Forbidden | gx.PermissionDenied):
        if "bytes billed" in text.lower() or "billing" in text.lower():
            todo = "Narrow the date range, or raise maximum_bytes_billed in the configuration."
            return QueryFailed(f"{what} would scan more than the cost guard allows ({text}).", todo)
        return StoreUnavailable(f"BigQuery refused {what}: permission denied ({text}).",
                                "The service account needs BigQuery Data Viewer on the datasets, Data Editor on "
                                "nba_processing and Job User on the project.")  # fmt: skip
    if isinstance(exc, gx.NotFound):
        todo = "Check the project and dataset names, or run `python -m lib init --bigquery PROJECT`."
        return StoreUnavailable(f"{what}: a dataset or table does not exist ({text}).", todo)
    if isinstance(exc, gx.TooManyRequests | gx.ResourceExhausted):
        return QueryFailed(f"BigQuery quota exceeded for {what} ({text}).", "Wait a minute and try again.")
    if isinstance(exc, gx.DeadlineExceeded | TimeoutError | gx.RetryError) or "timeout" in text.lower():
        todo = "Check that BigQuery is reachable and try again; for a query, narrow the date range."
        return QueryFailed(f"{what} took too long or BigQuery did not answer ({text}).", todo)
    if isinstance(exc, gx.BadRequest):
        return QueryFailed(f"BigQuery could not run {what}: {text}")
    if isinstance(exc, gx.GoogleAPICallError):
        return QueryFailed(f"BigQuery failed on {what}: {text}", "Try again; if it persists, check BigQuery's status.")
    return QueryFailed(f"{what} failed: {text}")


#: Writes that are not data (the item index's upkeep, visits): they leave the data version alone.
_UNVERSIONED_LABELS = frozenset({"index", "visits"})


class _BqTransaction(Transaction):
    """Statements in order (BigQuery has no cross-statement transaction for these jobs)."""

    def __init__(self, store: BigQueryStore, label: str) -> None:
        self._store = store
        self._label = label

    def query(self, sql: str, params: Params | None = None) -> pd.DataFrame:
        return self._store.query(sql, params, label=self._label)

    def execute(self, sql: str, params: Params | None = None) -> int:
        return self._store.execute(sql, params, label=self._label)

    def insert_frame(self, table_ref: str, frame: pd.DataFrame) -> int:
        return self._store.insert_frame(table_ref, frame, label=self._label)


def read_partitions(frame: pd.DataFrame) -> PartitionTimes:
    """``PartitionTimes`` from rows of ``INFORMATION_SCHEMA.PARTITIONS`` (columns ``dataset``, ``table_name``,
    ``partition_id``, ``last_modified_time``, and ``now``, the query's clock, on every row; a row with no table
    only brings ``now``). Day partitions are named ``YYYYMMDD``; ``__NULL__`` holds rows without a date (in no
    item); ``__UNPARTITIONED__`` holds streamed rows not yet in their partition, so any date of that table may
    have changed."""
    modified: dict[tuple[str, dt.date], pd.Timestamp] = {}
    unsettled: set[str] = set()
    for dataset, table, partition, at in zip(frame["dataset"], frame["table_name"], frame["partition_id"],
                                             frame["last_modified_time"], strict=True):  # fmt: skip
        if not isinstance(table, str) or not isinstance(partition, str):
            continue
        ref = f"{dataset}.{table}"
        if partition == "__UNPARTITIONED__" or pd.isna(at):
            unsettled.add(ref)
        elif partition.isdigit() and len(partition) == 8:
            modified[(ref, dt.datetime.strptime(partition, "%Y%m%d").date())] = _utc(at)
    return PartitionTimes(now=_utc(frame["now"].iloc[0]), modified=modified, unsettled=frozenset(unsettled))


def _utc(value: object) -> pd.Timestamp:
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def extent_of_partitions(
    frame: pd.DataFrame, *, plausible: dt.date
) -> tuple[dt.date | None, dt.date | None, int, dt.date | None, int] | None:
    """``Store.date_extent`` from partition rows (``partition_id``, ``total_rows``); None when some rows are in no
    date partition yet (``__UNPARTITIONED__``: BigQuery's streaming buffer)."""
    days: list[dt.date] = []
    total = undated = 0
    for partition, rows in zip(frame["partition_id"], frame["total_rows"], strict=True):
        if not isinstance(partition, str) or pd.isna(rows) or int(rows) <= 0:
            continue
        if partition == "__NULL__":
            undated += int(rows)
        elif partition.isdigit() and len(partition) == 8:
            days.append(dt.datetime.strptime(partition, "%Y%m%d").date())
            total += int(rows)
        else:
            return None
    sensible = [d for d in days if d <= plausible]
    return (min(days) if days else None, max(days) if days else None, total, max(sensible) if sensible else None,
            undated)  # fmt: skip


class BigQueryStore(Store):
    engine = "bigquery"
    #: After partition metadata could not be read (a view without ``last_modified_time``, as in the local emulator,
    #: or a refused call), the item index fingerprints every date for this long before asking again.
    METADATA_RETRY_SECONDS = 600.0

    def __init__(
        self,
        project: str,
        *,
        location: str | None = None,
        datasets: Mapping[str, str] | None = None,
        credentials_info: Mapping[str, Any] | None = None,
        endpoint: str | None = None,
        maximum_bytes_billed: int | None = 50 * 1024**3,
        timeout: float = 60.0,
    ) -> None:
        self.project = project
        self.bq_location = location
        self.dialect = Dialect("bigquery", project=project, datasets=dict(datasets or {d: d for d in DATASETS}))
        self.maximum_bytes_billed = maximum_bytes_billed
        self.timeout = timeout
        self._credentials_info = dict(credentials_info) if credentials_info else None
        self._endpoint = endpoint
        self._client: Any = None
        self._lock = threading.Lock()
        self._version: tuple[float, str] = (0.0, "")
        #: Writes made through this store object: part of the data version at once, so that this process never
        #: serves a page or an index state from before its own write (the tables' stamps are looked up lazily).
        self._writes = 0
        self._metadata_off_until = 0.0

    @property
    def location(self) -> str:
        return f"bigquery://{self.project}" + (f" ({self._endpoint})" if self._endpoint else "")

    # -- the client ---------------------------------------------------------------------------------
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._guard(self._make_client, "connecting to BigQuery")
            return self._client

    def _make_client(self) -> Any:
        from google.cloud import bigquery

        if self._endpoint:
            from google.api_core.client_options import ClientOptions
            from google.auth.credentials import AnonymousCredentials

            return bigquery.Client(project=self.project, location=self.bq_location,
                                   credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                                   client_options=ClientOptions(api_endpoint=self._endpoint))  # fmt: skip
        if self._credentials_info:
            from google.oauth2 import service_account

            creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                self._credentials_info
            )
            return bigquery.Client(project=self.project, location=self.bq_location, credentials=creds)
        return bigquery.Client(project=self.project, location=self.bq_location)

    def _guard(self, fn: Callable[[], T], what: str) -> T:
        try:
            return fn()
        except TriageError:
            raise
        except Exception as exc:  # every client error becomes a message, never a traceback
            raise _explain(exc, what) from exc

    def _job_config(self, params: Params | None, label: str, *, dml: bool = False) -> Any:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            query_parameters=[_param(k, v) for k, v in (params or {}).items()],
            labels={"app": "failure-triage", "page": (label or "unlabelled").lower().replace("_", "-")[:60]},
        )
        if self.maximum_bytes_billed and not dml:
            config.maximum_bytes_billed = self.maximum_bytes_billed
        return config

    def _run(
        self, sql: str, params: Params | None, label: str, *, dml: bool = False, page_size: int | None = None
    ) -> Any:
        """Run a statement and wait for it. A read goes through ``jobs.query`` (``query_and_wait``): one request that
        answers with the rows (the first page of them) once the query is done, where a job takes an insert, a wait
        for its end and a read of its results, each a round trip. A write (DML, a script) runs as a job, as before:
        its job id is what makes a retried insert of a lost answer run once. Returns the rows (a read) or the done
        job (a write)."""
        from google.cloud import bigquery

        rendered = self.dialect.render(sql)
        used = {k: v for k, v in (params or {}).items() if f"@{k}" in rendered}
        client = self.client()
        retry = bigquery.DEFAULT_RETRY.with_deadline(self.timeout)
        config = self._job_config(used, label, dml=dml)
        if not dml:
            # The request is held by the server up to its HTTP timeout (less a quarter second) while the query runs,
            # and a query not done by then is waited for up to ``wait_timeout`` more: half the timeout each, so that a
            # read gives up after the timeout in all, as a job's wait did, not twice it.
            half = self.timeout / 2
            return client.query_and_wait(
                rendered,
                job_config=config,
                retry=retry,
                job_retry=None,
                api_timeout=half,  # each HTTP call: a stalled answer is given up, not waited for forever
                wait_timeout=half,
                page_size=page_size,
            )
        job = client.query(rendered, job_config=config, retry=retry, job_retry=None, timeout=self.timeout)
        job.result(timeout=self.timeout)
        return job

    # -- primitives ---------------------------------------------------------------------------------
    def query(self, sql: str, params: Params | None = None, *, label: str = "") -> pd.DataFrame:
        def run() -> pd.DataFrame:
            frame: pd.DataFrame = self._run(sql, params, label).to_dataframe(create_bqstorage_client=False)
            return frame

        return normalise_frame(self._guard(run, f"the {label or 'query'}"))

    def execute(self, sql: str, params: Params | None = None, *, label: str = "") -> int:
        def run() -> int:
            job = self._run(sql, params, label, dml=True)
            return int(job.num_dml_affected_rows or 0)

        try:
            return self._guard(run, f"the {label or 'statement'}")
        finally:
            self._wrote(label)

    def create_tables(self, tables: Sequence[TableDef]) -> None:
        """Every missing table in one job, a script of their DDL, not a job each: a job's own round trips are most
        of a CREATE's time (the emulator: 5.1-6.0 s for the schema's 24 tables a job each, 3.7-3.9 s in one). A
        script that fails part way has created the tables before the failing one, as the jobs one by one would
        have; the next ``init`` creates the rest."""
        if tables:
            self.execute(";\n".join(t.ddl.strip().rstrip(";") for t in tables), label="init")

    def write_script(self, sql: str, params: Params | None = None, *, label: str = "") -> pd.DataFrame:
        """Run a multi-statement script that writes (a write, as ``execute``: no bytes cap) and return the rows of
        its last statement."""

        def run() -> pd.DataFrame:
            job = self._run(sql, params, label, dml=True)
            frame: pd.DataFrame = job.result().to_dataframe(create_bqstorage_client=False)
            return frame

        try:
            return normalise_frame(self._guard(run, f"the {label or 'script'}"))
        finally:
            self._wrote(label)

    def _wrote(self, label: str) -> None:
        if label not in _UNVERSIONED_LABELS:
            self._writes += 1

    def stream(
        self, sql: str, params: Params | None = None, *, chunk: int = 50_000, label: str = ""
    ) -> Iterator[pd.DataFrame]:
        rows = self._guard(lambda: self._run(sql, params, label, page_size=chunk), f"the {label or 'export'}")
        for frame in rows.to_dataframe_iterable():
            yield normalise_frame(frame)

    @contextmanager
    def transaction(self, *, label: str = "") -> Iterator[Transaction]:
        yield _BqTransaction(self, label)

    def insert_frame(self, table_ref: str, frame: pd.DataFrame, *, label: str = "") -> int:
        if frame.empty:
            return 0
        self._wrote("visits" if table_ref.endswith(".triage_visits") else label)
        from google.cloud import bigquery

        dataset, name = table_ref.split(".")
        target = f"{self.project}.{self.dialect.dataset(dataset)}.{name}"

        def load() -> int:
            client = self.client()
            schema = client.get_table(target, **self._api()).schema
            columns = [f.name for f in schema if f.name in frame.columns]
            config = bigquery.LoadJobConfig(
                schema=[f for f in schema if f.name in frame.columns],
                write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
                labels={"app": "failure-triage", "page": (label or "load").lower()[:60]},
            )
            job = client.load_table_from_dataframe(frame[columns], target, job_config=config, timeout=self.timeout)
            job.result(timeout=self.timeout)
            return len(frame)

        return self._guard(load, f"loading rows into {table_ref}")

    def create_dataset(self, dataset: str) -> None:
        from google.cloud import bigquery

        def create() -> None:
            ref = bigquery.Dataset(f"{self.project}.{dataset}")
            if self.bq_location:
                ref.location = self.bq_location
            self.client().create_dataset(ref, exists_ok=True, **self._api())

        self._guard(create, f"creating dataset {dataset}")

    def existing_tables(self) -> set[str]:
        from google.api_core import exceptions as gx

        found: set[str] = set()
        for dataset in DATASETS:
            real = self.dialect.dataset(dataset)
            try:
                tables = self._guard(self._lister(real), f"listing {real}")
            except StoreUnavailable as exc:
                if isinstance(exc.__cause__, gx.NotFound):
                    continue
                raise
            found |= {f"{dataset}.{t.table_id}" for t in tables}
        return found

    @property
    def keeps_partition_times(self) -> bool:  # type: ignore[override]
        return time.monotonic() >= self._metadata_off_until

    @staticmethod
    def _partitions_sql(tables: Sequence[TableDef], column: str, where: str = "") -> tuple[str, dict[str, Any]]:
        """One statement over ``INFORMATION_SCHEMA.PARTITIONS`` of each table's dataset (``dataset``, ``table_name``,
        ``partition_id``, ``column``, and the query's clock ``now``; one row without a table if there is none)."""
        by_dataset: dict[str, list[str]] = {}
        for table in tables:
            by_dataset.setdefault(table.dataset, []).append(table.name)
        params: dict[str, Any] = {}
        selects = []
        for i, (dataset, names) in enumerate(sorted(by_dataset.items())):
            params[f"names_{i}"] = names
            selects.append(
                f"SELECT '{dataset}' AS dataset, table_name, partition_id, {column}\n"
                f"  FROM {dataset}.INFORMATION_SCHEMA.PARTITIONS\n"
                f"  WHERE table_name IN UNNEST(@names_{i}){where}"
            )
        sql = (
            "WITH p AS (\n" + "\n  UNION ALL\n".join(selects) + "\n)\n"
            "SELECT p.*, CURRENT_TIMESTAMP() AS now FROM (SELECT 1 AS one) AS o LEFT JOIN p ON TRUE"
        )
        return sql, params

    def partition_times(self, tables: Sequence[TableDef], lo: dt.date, hi: dt.date) -> PartitionTimes | None:
        """``INFORMATION_SCHEMA.PARTITIONS`` of each table's dataset: metadata, no scan of the tables (billed as
        the 10 MB minimum of a metadata query). None where it cannot be read."""
        if time.monotonic() < self._metadata_off_until:
            return None
        where = "\n    AND (partition_id BETWEEN @lo_id AND @hi_id OR partition_id = '__UNPARTITIONED__')"
        sql, params = self._partitions_sql(tables, "last_modified_time", where)
        params |= {"lo_id": lo.strftime("%Y%m%d"), "hi_id": hi.strftime("%Y%m%d")}
        try:
            return read_partitions(self.query(sql, params, label="index-partitions"))
        except TriageError:
            self._metadata_off_until = time.monotonic() + self.METADATA_RETRY_SECONDS
            return None

    def date_extent(self) -> tuple[dt.date | None, dt.date | None, int, dt.date | None, int]:
        """From the failure tables' partition metadata (``total_rows`` per date partition; ``__NULL__``: the rows
        without a date): one metadata query instead of a scan per table. Scanned as on every engine where the
        metadata cannot be read, or while streamed rows wait outside the partitions (their dates are unknown)."""
        sql, params = self._partitions_sql(FAILURE_TABLES, "total_rows")
        try:
            frame = self.query(sql, params, label="bounds")
        except TriageError:
            return super().date_extent()
        extent = extent_of_partitions(frame, plausible=dt.date.today() + dt.timedelta(days=366))
        return super().date_extent() if extent is None else extent

    def _api(self) -> dict[str, Any]:
        """Deadlines for the non-query API calls (the client's default retries for 10 minutes)."""
        from google.cloud import bigquery

        return {"retry": bigquery.DEFAULT_RETRY.with_deadline(self.timeout), "timeout": self.timeout}

    def _lister(self, dataset: str) -> Callable[[], list[Any]]:
        return lambda: list(self.client().list_tables(f"{self.project}.{dataset}", **self._api()))

    def _modified(self, target: str) -> Callable[[], str]:
        return lambda: str(self.client().get_table(target, **self._api()).modified)

    def data_version(self) -> str:
        """The failure and dashboard tables' last-modified times (metadata calls, nothing billed),
        looked up at most every few seconds."""
        now = time.monotonic()
        if now - self._version[0] < 5:
            return f"{self._version[1]}|w{self._writes}"
        from lib.store.schema import DASHBOARD_TABLES, INDEX_TABLES, TRIAGE_VISITS

        stamps = []
        # Visits and the item index are not data: writing them must not invalidate every cached page.
        versioned = [t for t in DASHBOARD_TABLES if t is not TRIAGE_VISITS and t not in INDEX_TABLES]
        for table in (*FAILURE_TABLES, *versioned):
            target = f"{self.project}.{self.dialect.dataset(table.dataset)}.{table.name}"
            try:
                stamps.append(self._guard(self._modified(target), "reading table metadata"))
            except TriageError:
                stamps.append("-")
        self._version = (now, "|".join(stamps))
        return f"{self._version[1]}|w{self._writes}"
