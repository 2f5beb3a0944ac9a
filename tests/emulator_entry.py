"""The BigQuery emulator as the tests start it: ``local-bigquery`` from PyPI (in .venv-emulator), run by its own
Python 3.13, never imported by the tests (tests/bq.py starts ``python -P tests/emulator_entry.py THREADS CATALOG
TRANSLATIONS serve ...``). Three things differ from its installed entry point, none of them what any statement
answers:

* **DuckDB threads.** DuckDB has no environment variable for them and the emulator opens its one connection without
  them; ``THREADS`` (0: DuckDB's default, every core) is given to every connection it opens.
* **Its reads of DuckDB's catalog** (``CATALOG``: ``on``, ``off`` or ``verify``). For every statement the emulator
  reads DuckDB's catalog several times: which tables a dataset has and their sizes, which columns of a table are
  required, whether a table has the ingestion-time column, whether a dataset exists, which temporary tables there
  are. ``duckdb_tables()`` computes the size of every table of every DuckLake catalog to answer about one (21 ms with
  one test's 24 tables, more with every table a module keeps), ``duckdb_columns()`` lists every column; together a
  third of the emulator's time. So:

  - for the tests' datasets (a DuckLake catalog) the first four are answered from DuckLake's metadata: the rows not
    ended (DuckLake writes them when a transaction commits, as a new connection sees the catalog), and each table's
    row count as DuckLake keeps it, which is what ``duckdb_tables()`` reports as its size. A view's columns are not
    in the metadata: for a view the emulator reads DuckDB's catalog as before;
  - each job's list of temporary tables (per connection) is read from ``duckdb_columns()`` less ``duckdb_views()``:
    the same names, without the sizes it never uses;
  - the emulator's own catalog and its result tables (plain DuckDB) are read as before.

  ``verify`` also reads every answer from DuckDB as before and fails the statement if the two differ while nothing
  was committed (each job's temporary tables likewise, in SQL). tests/integration/test_briefing.py runs its module in
  that mode; the whole BigQuery half passed in it (``TRIAGE_EMULATOR_CATALOG=verify pytest -m bigquery``).
* **Its translations** (``TRANSLATIONS``: ``on``, ``off`` or ``verify``). Every statement of every job is translated
  from BigQuery's SQL into DuckDB's with sqlglot (parsed, typed against the tables' columns, rewritten): 40% of the
  emulator's time, and most statements are the same ones again with other parameter values (the app's statements
  are fixed text; values are bound, not written into the translation). A translation is kept for the statement's
  text with its dataset, its parameters' names and types, its temporary tables, the script variables it names and
  the schema version of every DuckLake catalog (any CREATE, ALTER or DROP moves it) and of the emulator's own
  catalog of resources; used again, it replays what translating did to the job's context (the parameters used, the
  tables referenced, temporary tables, positional parameters). Not kept: DDL, statements that depend on the clock,
  on system variables or on INFORMATION_SCHEMA, and jobs with session settings or temporary functions. ``verify``
  translates again each time a kept one is used and fails the statement if the two differ; the whole BigQuery half
  passed in that mode (``TRIAGE_EMULATOR_TRANSLATIONS=verify pytest -m bigquery``).
"""

from __future__ import annotations

import collections
import re
import sys
import threading

import duckdb

THREADS, CATALOG, TRANSLATIONS = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for _mode in (CATALOG, TRANSLATIONS):
    if _mode not in ("on", "off", "verify"):
        raise SystemExit(f"CATALOG and TRANSLATIONS must be on, off or verify, not {_mode!r}")
del sys.argv[1:4]
sys.argv[0] = "local-bigquery"

_connect = duckdb.connect


def connect(*args, config=None, **kwargs):  # type: ignore[no-untyped-def]
    if THREADS > 0:
        config = {**(config or {}), "threads": THREADS}
    return _connect(*args, config=config, **kwargs)


duckdb.connect = connect  # type: ignore[assignment]

from local_bigquery.catalog import datasets, metadata, tables  # noqa: E402 - after DuckDB's connect is set
from local_bigquery.cli import main  # noqa: E402
from local_bigquery.engine import database  # noqa: E402
from local_bigquery.jobs import query  # noqa: E402
from local_bigquery.sql.dialect import BigQueryDialect  # noqa: E402
from local_bigquery.sql.rules import partitions  # noqa: E402
from sqlglot import exp  # noqa: E402


def _catalog_read(function) -> str:  # type: ignore[no-untyped-def]
    """The one read of DuckDB's catalog functions in one of the emulator's functions, taken from its code."""
    found = [c for c in function.__code__.co_consts if isinstance(c, str) and "FROM duckdb_" in c]
    if len(found) != 1:
        raise SystemExit(f"tests/emulator_entry.py: the emulator's catalog reads changed ({function.__name__})")
    return found[0]


#: The emulator's four catalog reads. Each one's first parameter is the database: for the tests' datasets a
#: DuckLake catalog, whose metadata answers them below.
OBJECTS = _catalog_read(database.objects)  # [db, dataset, table or None]: (name, 'TABLE' or 'VIEW', size)
REQUIRED = _catalog_read(tables.columns)  # [db, dataset, table]: (column,) for each NOT NULL column
HIDDEN = _catalog_read(partitions._hidden)  # [db, dataset, table, column]: (1,) if the table has that column
EXISTS = _catalog_read(datasets.exists)  # [db, dataset]: (1,) if the dataset exists

#: The current rows of DuckLake's metadata (``end_snapshot IS NULL``: not dropped, renamed or replaced). DuckLake writes
#: them when a transaction commits, as ``duckdb_tables()`` and the others see them from a new connection.
_OBJECTS = """
SELECT t.table_name, 'TABLE', coalesce(st.record_count, 0) FROM {m}.ducklake_table AS t
JOIN {m}.ducklake_schema AS s ON s.schema_id = t.schema_id AND s.end_snapshot IS NULL AND s.schema_name = $1
LEFT JOIN {m}.ducklake_table_stats AS st ON st.table_id = t.table_id
WHERE t.end_snapshot IS NULL AND t.table_name = coalesce($2, t.table_name)
UNION ALL SELECT v.view_name, 'VIEW', 0 FROM {m}.ducklake_view AS v
JOIN {m}.ducklake_schema AS s ON s.schema_id = v.schema_id AND s.end_snapshot IS NULL AND s.schema_name = $1
WHERE v.end_snapshot IS NULL AND v.view_name = coalesce($2, v.view_name) ORDER BY 1
"""
#: A table's top-level columns in order, with whether each allows NULLs; a view's name alone (its columns are not in
#: the metadata: the emulator's own read answers for views).
_COLUMNS = """
SELECT c.column_name, c.nulls_allowed, c.column_order FROM {m}.ducklake_column AS c
JOIN {m}.ducklake_table AS t ON t.table_id = c.table_id AND t.end_snapshot IS NULL AND t.table_name = $2
JOIN {m}.ducklake_schema AS s ON s.schema_id = t.schema_id AND s.end_snapshot IS NULL AND s.schema_name = $1
WHERE c.end_snapshot IS NULL AND c.parent_column IS NULL
UNION ALL SELECT NULL, NULL, NULL FROM {m}.ducklake_view AS v
JOIN {m}.ducklake_schema AS s ON s.schema_id = v.schema_id AND s.end_snapshot IS NULL AND s.schema_name = $1
WHERE v.end_snapshot IS NULL AND v.view_name = $2
ORDER BY 3
"""
_SCHEMA = "SELECT 1 FROM {m}.ducklake_schema WHERE end_snapshot IS NULL AND schema_name = $1"

_fetch = database.fetch
_lock = threading.Lock()
_verified = [0]


def _metadata(name: object) -> str:
    return database.quote(f"__ducklake_metadata_{name}")


def _snapshot(name: object) -> int:
    """The latest committed snapshot of a DuckLake catalog."""
    return _fetch(f"SELECT max(snapshot_id) FROM {_metadata(name)}.ducklake_snapshot")[0][0]


def _from_metadata(sql: str, params: list) -> list[tuple] | None:
    """The answer of one of the four reads from DuckLake's metadata; None for a view's columns."""
    m = _metadata(params[0])
    if sql == OBJECTS:
        return _fetch(_OBJECTS.format(m=m), [params[1], params[2]])
    if sql == EXISTS:
        return _fetch(_SCHEMA.format(m=m), [params[1]])
    columns = _fetch(_COLUMNS.format(m=m), [params[1], params[2]])
    if any(name is None for name, _, _ in columns):
        return None
    if sql == REQUIRED:
        return [(name,) for name, nulls, _ in columns if not nulls]
    return [(1,) for name, _, _ in columns if name == params[3]]


def fetch(sql: str, params: list | None = None) -> list[tuple]:
    if sql not in (OBJECTS, REQUIRED, HIDDEN, EXISTS) or not params or params[0] not in database._attached:
        return _fetch(sql, params)
    before = _snapshot(params[0]) if CATALOG == "verify" else None
    rows = _from_metadata(sql, params)
    if rows is None:
        return _fetch(sql, params)
    if CATALOG == "verify":
        _compare(sql, params, before, rows)
    return rows


def _compare(sql: str, params: list, snapshot: int | None, answer: list[tuple]) -> None:
    """In ``verify`` mode: the statement fails if DuckDB's own read differs from the metadata's answer while nothing
    was committed."""
    fresh = _fetch(sql, params)
    if _snapshot(params[0]) != snapshot:
        return  # something was committed meanwhile: nothing to compare with
    if fresh != answer:
        print(f"catalog read MISMATCH: {sql} {params}: metadata {answer}, DuckDB {fresh}", file=sys.stderr, flush=True)
        raise RuntimeError(f"the emulator's catalog read from DuckLake's metadata differs: {sql} {params}")
    with _lock:
        _verified[0] += 1
        if _verified[0] % 100 == 1:
            print(f"catalog reads: {_verified[0]} verified", file=sys.stderr, flush=True)


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


# -- translations kept ------------------------------------------------------------------------------------------------

#: Statements whose translation depends on more than the statement, its parameters' types and the catalog's schema:
#: the clock (time travel, table decorators), the session's system variables, the catalog's contents (row counts of
#: ``__TABLES__``), the caller (row access), parameter values written in (an external query's connection).
_UNKEPT = re.compile(
    r"SYSTEM_TIME|INFORMATION_SCHEMA|__TABLES__|@@|@-?\d|SESSION_USER|CURRENT_USER|EXTERNAL_QUERY", re.I
)
_kept: collections.OrderedDict[tuple, tuple] = collections.OrderedDict()
_KEPT_MAX = 4096
_generation = [0]  # bumped by every change to the emulator's own catalog of resources (options, policies, routines)
_translate = query.translate
_translations_verified = [0]  # (verify) kept translations compared with a fresh one


def _schema_versions() -> tuple:
    """The schema version of every DuckLake catalog (any CREATE, ALTER or DROP moves it; a write of rows does not)."""
    return tuple(
        (name, _fetch(f"SELECT max(schema_version) FROM {_metadata(name)}.ducklake_snapshot")[0][0])
        for name in sorted(database._attached)
    )


def _key(part, context) -> tuple | None:  # type: ignore[no-untyped-def]
    if isinstance(part, (*query.DDL, exp.Command)) or context.functions or context.settings:
        return None
    text = part.sql(dialect=BigQueryDialect)
    if _UNKEPT.search(text):
        return None
    variables = ()
    if context.variables:  # a script's variables are read where a column names one: those are part of the key
        named = {n for c in part.find_all(exp.Column) for n in (c.name.lower(), c.table.lower()) if n}
        variables = tuple(sorted((n, t) for n, t in context.variables.items() if n in named))
    return (
        text, context.project_id, context.dataset_id, tuple(sorted(context.parameters.items())),
        tuple(sorted(context.values)), tuple(sorted(context.temporary)), variables, context.position,
        _schema_versions(), _generation[0],
    )  # fmt: skip


def _fresh(part, context) -> tuple:  # type: ignore[no-untyped-def]
    """A translation, and what it did to its context besides its answer: the parameters it used, every table it
    referenced (all of them, not only those the job had not referenced yet), the temporary tables it added, the
    positional index after it."""
    referenced, temporary = context.referenced, set(context.temporary)
    context.referenced = set()
    try:
        sql, _ = _translate(part, context)
        mine = context.referenced
    finally:
        context.referenced = referenced | context.referenced
    return sql, (tuple(sorted(context.used)), tuple(sorted(mine)), tuple(sorted(context.temporary - temporary)),
                 context.position)  # fmt: skip


def translate(part, context) -> tuple[str, dict]:  # type: ignore[no-untyped-def]
    key = _key(part, context)
    kept = _kept.get(key) if key is not None else None
    if kept is None:
        sql, effects = _fresh(part, context)
        if key is not None:
            _kept[key] = (sql, effects)
            while len(_kept) > _KEPT_MAX:
                _kept.popitem(last=False)
    else:
        sql, effects = kept
        if TRANSLATIONS == "verify":
            position, referenced, temporary = context.position, set(context.referenced), set(context.temporary)
            fresh = _fresh(part, context)
            if fresh != kept:
                print(f"translation MISMATCH: {key[0]}: kept {kept}, fresh {fresh}", file=sys.stderr, flush=True)
                raise RuntimeError("the emulator's kept translation differs from a fresh one")
            context.position, context.referenced, context.temporary = position, referenced, temporary
            with _lock:
                _translations_verified[0] += 1
                if _translations_verified[0] % 100 == 1:
                    print(f"translations: {_translations_verified[0]} verified", file=sys.stderr, flush=True)
        used, referenced_added, temporary_added, position = effects
        context.used.clear()
        context.used.update(used)
        context.referenced.update(referenced_added)
        context.temporary.update(temporary_added)
        context.position = position
    return sql, {name: context.values[name] for name in context.used}


def _bumping(function):  # type: ignore[no-untyped-def]
    def bumped(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return function(*args, **kwargs)
        finally:
            _generation[0] += 1

    return bumped


if CATALOG != "off":
    database.fetch = fetch
    _swap_temporary_listing(CHECKED_TEMPORARY if CATALOG == "verify" else CHEAP_TEMPORARY)
if TRANSLATIONS != "off":
    query.translate = translate
    metadata.save, metadata.delete = _bumping(metadata.save), _bumping(metadata.delete)

sys.exit(main())
