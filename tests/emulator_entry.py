"""The BigQuery emulator as the tests start it: ``local-bigquery`` from PyPI (in .venv-emulator), run by its own
Python 3.13, never imported by the tests (tests/bq.py starts ``python -P tests/emulator_entry.py THREADS MEMO serve
...``). Two things differ from its installed entry point, neither of them what any statement answers:

* **DuckDB threads.** DuckDB has no environment variable for them and the emulator opens its one connection without
  them; ``THREADS`` (0: DuckDB's default, every core) is given to every connection it opens.
* **Cheaper reads of DuckDB's catalog** (``MEMO``: ``on``, ``off`` or ``verify``). For every statement the emulator
  reads DuckDB's catalog several times (does the table exist and how many rows has it, which columns are required,
  does the dataset exist, which temporary tables are there), and ``duckdb_tables()`` computes the size of every table
  of every DuckLake catalog to answer about one: 21 ms each with one test's 24 tables, more with every table a module
  keeps, and a quarter of the emulator's time. So, for the tests' datasets (a DuckLake catalog):

  - which tables and views a dataset has, and their sizes, are read from DuckLake's metadata (the rows not ended,
    and each table's row count as DuckLake keeps it, which is what ``duckdb_tables()`` reports): 2.4 ms;
  - the other three reads are kept while the catalog's latest snapshot (DuckLake numbers every committed change) is
    the one they were read at, and kept only if it was the same before and after the read;
  - each job's list of temporary tables (per connection) is read from ``duckdb_columns()`` less ``duckdb_views()``:
    the same names, without the sizes it never uses.

  The emulator's own catalog and its result tables (plain DuckDB) are read as before.

  ``verify`` also reads every such answer from DuckDB as before and fails the statement if the two differ while
  nothing was committed (each job's temporary tables likewise, in SQL). tests/integration/test_briefing.py runs its
  module in that mode; the whole BigQuery half passed in it, 15,820 reads compared.
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


def _snapshot(name: object) -> int:
    """The latest committed snapshot of a DuckLake catalog."""
    return _fetch(f"SELECT max(snapshot_id) FROM {_metadata(name)}.ducklake_snapshot")[0][0]


OBJECTS = next(c for c in database.objects.__code__.co_consts if isinstance(c, str) and "FROM duckdb_" in c)
#: ``objects()`` (a dataset's tables and views, or one of them, with each table's size) for a DuckLake catalog, read
#: from its metadata: the tables and views not ended, in the dataset not ended, and each table's row count as DuckLake
#: keeps it (what ``duckdb_tables()`` reports as its size; 0 before its first insert). 2.4 ms instead of 26 ms with
#: 50 tables, and it does not grow with the other datasets' tables.
_OBJECTS = """
SELECT t.table_name, 'TABLE', coalesce(st.record_count, 0) FROM {m}.ducklake_table AS t
JOIN {m}.ducklake_schema AS s ON s.schema_id = t.schema_id AND s.end_snapshot IS NULL AND s.schema_name = $1
LEFT JOIN {m}.ducklake_table_stats AS st ON st.table_id = t.table_id
WHERE t.end_snapshot IS NULL AND t.table_name = coalesce($2, t.table_name)
UNION ALL SELECT v.view_name, 'VIEW', 0 FROM {m}.ducklake_view AS v
JOIN {m}.ducklake_schema AS s ON s.schema_id = v.schema_id AND s.end_snapshot IS NULL AND s.schema_name = $1
WHERE v.end_snapshot IS NULL AND v.view_name = coalesce($2, v.view_name) ORDER BY 1
"""


def _metadata(name: object) -> str:
    return database.quote(f"__ducklake_metadata_{name}")


def _objects(sql: str, params: list) -> list[tuple]:
    """``objects()`` from DuckLake's metadata; in ``verify`` mode also from DuckDB, and the statement fails if the two
    differ while nothing was committed."""
    before = _snapshot(params[0]) if MEMO == "verify" else None
    rows = _fetch(_OBJECTS.format(m=_metadata(params[0])), [params[1], params[2]])
    if MEMO == "verify":
        _compare(sql, params, before, rows, "read from DuckLake's metadata")
    return rows


def fetch(sql: str, params: list | None = None) -> list[tuple]:
    if sql not in CATALOG_READS or not params or params[0] not in database._attached:
        return _fetch(sql, params)
    if sql == OBJECTS:
        return _objects(sql, params)
    before = _snapshot(params[0])
    key = (sql, tuple(params))
    with _lock:
        kept = _kept.get(key)
    if kept is not None and kept[0] == before:
        if MEMO == "verify":
            _compare(sql, params, before, kept[1], "kept")
        return list(kept[1])
    rows = _fetch(sql, params)
    if _snapshot(params[0]) == before:
        with _lock:
            if len(_kept) > 50_000:
                _kept.clear()
            _kept[key] = (before, rows)
    return list(rows)


def _compare(sql: str, params: list, snapshot: int | None, answer: list[tuple], how: str) -> None:
    fresh = _fetch(sql, params)
    if _snapshot(params[0]) != snapshot:
        return  # something was committed meanwhile: nothing to compare with
    if fresh != answer:
        print(f"catalog memo MISMATCH: {sql} {params}: {how} {answer}, read {fresh}", file=sys.stderr, flush=True)
        raise RuntimeError(f"the emulator's {how} catalog read differs from DuckDB's: {sql} {params}")
    with _lock:
        _verified[0] += 1
        if _verified[0] % 100 == 1:
            print(f"catalog memo: {_verified[0]} reads verified", file=sys.stderr, flush=True)


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
