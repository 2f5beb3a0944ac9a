"""The BigQuery emulator as the tests start it: ``local-bigquery`` from PyPI (in .venv-emulator), run by its own
Python 3.13, never imported by the tests (tests/bq.py starts ``python -P tests/emulator_entry.py THREADS MEMO serve
...``). Two things differ from its installed entry point, neither what any statement answers:

* **DuckDB threads.** DuckDB has no environment variable for them and the emulator opens its one connection without
  them; ``THREADS`` (0: DuckDB's default, every core) is given to every connection it opens.
* **Catalog reads kept while nothing changed** (``MEMO``: ``on``, ``off`` or ``verify``). For every statement the
  emulator lists DuckDB's catalog several times (does the table exist, which columns are required, does the dataset
  exist), and DuckDB's ``duckdb_tables()`` computes the size of every table of every DuckLake catalog to answer
  about one: 21 ms each with one test's 24 tables, most of the emulator's time. DuckLake numbers every committed
  change of a catalog (its snapshots), so those reads are kept per snapshot and read again once it has moved:

  - a kept answer is only used while the catalog's latest snapshot is the one it was read at; it is kept only if
    the snapshot was the same before and after the read (nothing committed in between);
  - the emulator's own catalog and its result tables (plain DuckDB) are always read afresh;
  - each job's list of temporary tables (per connection, no snapshot) is read from ``duckdb_columns()`` and
    ``duckdb_views()`` instead of ``duckdb_tables()``: the same names, without the sizes it never uses.

  ``verify`` reads every kept answer afresh as well and fails the statement if the two differ; each job's temporary
  tables are listed both ways and the statement fails if the lists differ. tests/integration/test_engines.py runs a
  module in that mode.
"""

from __future__ import annotations

import sys
import threading

import duckdb

THREADS, MEMO = int(sys.argv[1]), sys.argv[2]
if MEMO not in ("on", "off", "verify"):
    raise SystemExit(f"MEMO must be on, off or verify, not {MEMO!r}")
del sys.argv[1:3]
sys.argv[0] = "local-bigquery"

_connect = duckdb.connect


def connect(*args, config=None, **kwargs):  # type: ignore[no-untyped-def]
    if THREADS > 0:
        config = {**(config or {}), "threads": THREADS}
    return _connect(*args, config=config, **kwargs)


duckdb.connect = connect  # type: ignore[assignment]

from local_bigquery.catalog import datasets, tables  # noqa: E402 - after DuckDB's connect is set
from local_bigquery.cli import main  # noqa: E402
from local_bigquery.engine import database  # noqa: E402
from local_bigquery.jobs import query  # noqa: E402
from local_bigquery.sql.rules import partitions  # noqa: E402


def _catalog_reads() -> frozenset[str]:
    """The emulator's four reads of DuckDB's catalog functions, taken from its code: each one's first parameter is
    the database (for the tests' tables, a DuckLake catalog) and its answer depends on nothing else."""
    found = {
        const
        for function in (database.objects, tables.columns, datasets.exists, partitions._hidden)
        for const in function.__code__.co_consts
        if isinstance(const, str) and "FROM duckdb_" in const
    }
    if len(found) != 4:
        raise SystemExit(f"tests/emulator_entry.py: the emulator's catalog reads changed ({sorted(found)})")
    return frozenset(found)


CATALOG_READS = _catalog_reads()
_fetch = database.fetch
_kept: dict[tuple[str, tuple], tuple[int, list[tuple]]] = {}
_lock = threading.Lock()
_verified = [0]


def _snapshot(name: object) -> int | None:
    """The latest committed snapshot of a DuckLake catalog; None for any other database."""
    if name not in database._attached:
        return None
    metadata = database.quote(f"__ducklake_metadata_{name}")
    return _fetch(f"SELECT max(snapshot_id) FROM {metadata}.ducklake_snapshot")[0][0]


def fetch(sql: str, params: list | None = None) -> list[tuple]:
    if sql not in CATALOG_READS or not params:
        return _fetch(sql, params)
    before = _snapshot(params[0])
    if before is None:
        return _fetch(sql, params)
    key = (sql, tuple(params))
    with _lock:
        kept = _kept.get(key)
    if kept is not None and kept[0] == before:
        if MEMO == "verify":
            _verify(sql, params, before, kept[1])
        return list(kept[1])
    rows = _fetch(sql, params)
    if _snapshot(params[0]) == before:
        with _lock:
            if len(_kept) > 50_000:
                _kept.clear()
            _kept[key] = (before, rows)
    return list(rows)


def _verify(sql: str, params: list, snapshot: int, kept: list[tuple]) -> None:
    fresh = _fetch(sql, params)
    if _snapshot(params[0]) != snapshot:
        return  # something was committed meanwhile: nothing to compare with
    if fresh != kept:
        print(f"catalog memo MISMATCH: {sql} {params}: kept {kept}, read {fresh}", file=sys.stderr, flush=True)
        raise RuntimeError(f"the emulator's kept catalog read differs from DuckDB's: {sql} {params}")
    with _lock:
        _verified[0] += 1
        if _verified[0] % 100 == 1:
            print(f"catalog memo: {_verified[0]} kept reads verified", file=sys.stderr, flush=True)


TEMPORARY = "SELECT table_name FROM duckdb_tables() WHERE temporary"
_NAMES = (
    "SELECT schema_name, table_name FROM duckdb_columns() WHERE database_name = 'temp' "
    "EXCEPT SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = 'temp'"
)
CHEAP_TEMPORARY = f"SELECT table_name FROM ({_NAMES})"
#: Both lists, and an error if they differ (DuckDB's error() fails the statement).
CHECKED_TEMPORARY = (
    f"WITH cheap AS ({CHEAP_TEMPORARY}), listed AS ({TEMPORARY}) "
    "SELECT table_name FROM cheap UNION ALL "
    "SELECT CAST(error('the temporary tables listed two ways differ') AS VARCHAR) "
    "WHERE EXISTS (SELECT * FROM ((SELECT * FROM cheap EXCEPT SELECT * FROM listed) "
    "UNION ALL (SELECT * FROM listed EXCEPT SELECT * FROM cheap)))"
)


def _swap_temporary_listing(replacement: str) -> None:
    code = query.execute.__code__
    if TEMPORARY not in code.co_consts:
        raise SystemExit("tests/emulator_entry.py: the emulator's listing of temporary tables changed")
    consts = tuple(replacement if const == TEMPORARY else const for const in code.co_consts)
    query.execute.__code__ = code.replace(co_consts=consts)


if MEMO != "off":
    database.fetch = fetch
    _swap_temporary_listing(CHECKED_TEMPORARY if MEMO == "verify" else CHEAP_TEMPORARY)

sys.exit(main())
