"""Every difference between the engines, in one place.

Queries are written once, in BigQuery Standard SQL, naming tables by their production
``dataset.table``. Each engine renders them here: DuckDB gets a transpiled statement (datasets are
schemas of the database file), BigQuery gets the same statement with the configured project and
datasets. Constructs known to transpile wrongly (see ../shared/bigquery-emulator.md) are refused at
render time so that nobody writes them by accident.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

import sqlglot
from sqlglot import exp

from lib.store.schema import DATASETS

#: Constructs that sqlglot turns into silently different DuckDB SQL: never write them.
_FORBIDDEN = (
    (re.compile(r"\bWITH\s+OFFSET\b", re.I), "UNNEST ... WITH OFFSET becomes 1-based in DuckDB"),
    (re.compile(r"\bDAYOFWEEK\b", re.I), "EXTRACT(DAYOFWEEK) numbers Sunday differently in DuckDB"),
    (re.compile(r"\bIGNORE\s+NULLS\b", re.I), "ARRAY_AGG ... IGNORE NULLS is garbled for DuckDB"),
    (re.compile(r"\bARRAY_AGG\s*\([^)]*\bLIMIT\b", re.I | re.S), "ARRAY_AGG(... LIMIT n) fails on DuckDB"),
    (
        re.compile(r"\[\s*(SAFE_)?(OFFSET|ORDINAL)\s*\(\s*[^0-9\s)]", re.I),
        "an array index that is an expression is not shifted to DuckDB's 1-based lists",
    ),
    (re.compile(r"\bMAX_BY\b|\bMIN_BY\b", re.I), "MAX_BY skips NULL values on DuckDB: use ANY_VALUE(x HAVING MAX y)"),
)

#: BigQuery type -> DuckDB type, for the few places (casts of parameters) that need it spelled out.
DUCKDB_TYPES: Mapping[str, str] = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "BOOL": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMPTZ",
}


class SqlError(ValueError):
    """A query in the code base breaks a rule of this module (a bug, not bad input)."""


def check_portable(sql: str) -> None:
    for pattern, why in _FORBIDDEN:
        if pattern.search(sql):
            raise SqlError(f"Not portable between engines: {why}")


@dataclass(frozen=True)
class Dialect:
    """How one engine spells a query. ``datasets`` maps production dataset names to the real ones."""

    engine: str  # "duckdb" or "bigquery"
    project: str | None = None
    datasets: Mapping[str, str] = field(default_factory=lambda: {d: d for d in DATASETS})

    def __hash__(self) -> int:
        return hash((self.engine, self.project, tuple(sorted(self.datasets.items()))))

    def render(self, sql: str) -> str:
        return _render(self, sql)

    def dataset(self, name: str) -> str:
        return self.datasets.get(name, name)


@functools.lru_cache(maxsize=512)
def _render(dialect: Dialect, sql: str) -> str:
    check_portable(sql)
    # The tree is this call's own (parsed just now): transformed in place, not copied node by node first.
    tree = sqlglot.parse_one(sql, read="bigquery").transform(_row_hash(dialect.engine), copy=False)
    for table in tree.find_all(exp.Table):
        db = table.args.get("db")
        if db is not None and db.name in dialect.datasets:
            table.set("db", exp.to_identifier(dialect.dataset(db.name)))
            if dialect.engine == "bigquery" and dialect.project and not table.args.get("catalog"):
                table.set("catalog", exp.to_identifier(dialect.project))
    if dialect.engine == "duckdb":
        # DuckDB's COUNT_IF gives NULL over no rows where BigQuery's COUNTIF gives 0.
        tree = tree.transform(
            lambda node: (
                exp.Count(this=exp.If(this=node.this, true=exp.Literal.number(1)))
                if isinstance(node, exp.CountIf)
                else node
            ),
            copy=False,
        )
        for prop in list(tree.find_all(exp.PartitionedByProperty, exp.Cluster, exp.ClusteredByProperty)):
            prop.pop()
        # BigQuery's partition/cluster clauses of CREATE TABLE parse into these property nodes.
        for prop in list(tree.find_all(exp.Property)):
            if type(prop).__name__ in {"PartitionedByProperty", "ClusterProperty"}:
                prop.pop()
        return tree.sql(dialect="duckdb")
    return tree.sql(dialect="bigquery")


#: ``ROW_HASH(a, b, ...)``: a 60-bit, non-negative hash of a row's values, for the item index's fingerprints. It is
#: no engine's function: each engine gets what it computes fastest, and fingerprints are only ever compared with
#: fingerprints of the same engine. Arguments are STRING, INT64 or BOOL (a timestamp goes in as UNIX_MICROS).
ROW_HASH = "ROW_HASH"

#: BigQuery's spelling: MD5 over the values, each cast to STRING, with ``\`` and ``|`` escaped, NULL as ``\N``,
#: joined by ``|`` (one text per row, and no two rows' texts alike), the first 15 hex digits as an INT64. MD5,
#: CAST and REPLACE are native in BigQuery and in the emulator (FARM_FINGERPRINT is a Python function there, 70
#: times slower than a COUNT); ``lib.store.dialect.row_hash`` computes the same in Python, and a test proves the
#: emulator equal to it (tests/integration/test_engines.py).
_BQ_ROW_HASH = "CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5({text})), 1, 15)) AS INT64)"
_BQ_ROW_PART = r"COALESCE(REPLACE(REPLACE(CAST({value} AS STRING), '\\', '\\\\'), '|', '\\|'), '\\N')"


def row_hash(values: Iterable[str | int | bool | None]) -> int:
    """What ``ROW_HASH`` gives on BigQuery, in Python: the reference the emulator is tested against."""

    def part(value: str | int | bool | None) -> str:
        if value is None:
            return "\\N"
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return text.replace("\\", "\\\\").replace("|", "\\|")

    digest = hashlib.md5("|".join(part(v) for v in values).encode()).hexdigest()
    return int(digest[:15], 16)


def _row_hash(engine: str) -> Callable[[exp.Expression], exp.Expression]:
    def transform(node: exp.Expression) -> exp.Expression:
        if not (isinstance(node, exp.Anonymous) and str(node.this).upper() == ROW_HASH):
            return node
        args = list(node.expressions)
        if engine == "duckdb":  # DuckDB hashes the values themselves: ten times faster than hashing their text
            return exp.Anonymous(this="hash", expressions=args)
        parts = [_BQ_ROW_PART.format(value=a.sql(dialect="bigquery")) for a in args]
        text = "CONCAT(" + ", '|', ".join(parts) + ")" if len(parts) > 1 else parts[0]
        return cast(exp.Expression, sqlglot.parse_one(_BQ_ROW_HASH.format(text=text), read="bigquery"))

    return transform


def quote_identifier(name: str, engine: str = "bigquery") -> str:
    """The one helper through which any identifier reaches SQL text (values never do)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", name):
        raise SqlError(f"Refusing identifier {name[:60]!r}")
    return f'"{name}"' if engine == "duckdb" else f"`{name}`"
