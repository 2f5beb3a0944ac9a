"""Every difference between the engines, in one place.

Queries are written once, in BigQuery Standard SQL, naming tables by their production
``dataset.table``. Each engine renders them here: DuckDB gets a transpiled statement (datasets are
schemas of the database file), BigQuery gets the same statement with the configured project and
datasets. Constructs known to transpile wrongly (see ../shared/bigquery-emulator.md) are refused at
render time so that nobody writes them by accident.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from lib.store.schema import DATASETS

if TYPE_CHECKING:
    from sqlglot import exp

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
    cache = _disk_cache()
    key = hashlib.sha256(
        "\0".join((dialect.engine, dialect.project or "", repr(sorted(dialect.datasets.items())), sql)).encode()
    ).hexdigest()
    if cache is not None and (kept := cache.get(key)) is not None:
        return kept
    rendered = _transpile(dialect, sql)
    if cache is not None:
        cache.put(key, rendered)
    return rendered


def _transpile(dialect: Dialect, sql: str) -> str:
    import sqlglot  # here, not at the top: a process whose statements are all in the disk cache never needs it
    from sqlglot import exp

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


# -- the rendered statements kept on disk ------------------------------------------------------------------------

#: Where rendered statements are kept between processes (``TRIAGE_SQL_CACHE``, or the user's cache folder; an empty
#: value keeps them in memory only). Rendering parses and writes every statement with sqlglot, about two seconds of a
#: nightly job and of a dashboard's first page (the index's statements are long), and every process rendered the same
#: statements again: the command line, each dashboard server, each test worker.
CACHE_ENV = "TRIAGE_SQL_CACHE"
#: A folder of an older version (another sqlglot, or another version of this module) not used for this long is removed.
CACHE_STALE_DAYS = 14


class DiskCache:
    """Rendered statements, one file each, named by the hash of what was rendered and for which engine, in a folder
    named by what renders them (sqlglot's version and this module's text), so that a change of either renders
    afresh. A file is written whole (a temporary file renamed into place) and starts with its own key: a file that
    does not is ignored and rendered again. A folder that cannot be written only means no keeping."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / _version()
        self.writable = True

    def get(self, key: str) -> str | None:
        try:
            with open(self.folder / key[:2] / key, encoding="utf-8", newline="") as kept:  # \r kept as written
                text = kept.read()
        except (OSError, UnicodeDecodeError):
            return None
        head, sep, body = text.partition("\n")
        return body if sep and head == f"-- {key}" else None

    def put(self, key: str, rendered: str) -> None:
        if not self.writable:
            return
        folder = self.folder / key[:2]
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)  # statements this account's processes run
            folder.mkdir(exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                out.write(f"-- {key}\n{rendered}")
            os.replace(tmp, folder / key)
        except (OSError, ValueError):  # ValueError: text that cannot be encoded
            self.writable = False  # a read-only or full disk: render in memory from now on
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)

    def prune(self, now: float | None = None) -> list[Path]:
        """Remove the folders of other versions (named as ``_version`` names them: nothing else in the folder is
        touched) not used for ``CACHE_STALE_DAYS``; returns them."""
        now = time.time() if now is None else now
        removed = []
        with contextlib.suppress(OSError):
            for other in self.root.iterdir():
                if other == self.folder or not _VERSION_NAME.fullmatch(other.name) or not other.is_dir():
                    continue  # another thing's entry is never even looked at: a broken link of its stops nothing
                if now - other.stat().st_mtime > CACHE_STALE_DAYS * 86400:
                    shutil.rmtree(other, ignore_errors=True)
                    removed.append(other)
        return removed


#: How ``_version`` names a folder.
_VERSION_NAME = re.compile(r"[0-9a-f]{16}")


@functools.cache
def _version() -> str:
    """What renders a statement: sqlglot's version and this module's own text."""
    mine = Path(__file__).read_bytes()
    return hashlib.sha256(importlib.metadata.version("sqlglot").encode() + b"\0" + mine).hexdigest()[:16]


_caches: dict[str, DiskCache | None] = {}


def _disk_cache() -> DiskCache | None:
    configured = os.environ.get(CACHE_ENV)
    if configured is None:
        try:
            base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        except RuntimeError:  # no home folder: nowhere to keep them
            base = ""
        configured = str(Path(base) / "nba-failure-triage" / "sql") if base else ""
    if configured not in _caches:
        try:
            cache = DiskCache(Path(configured)) if configured else None
            if cache is not None:
                cache.prune()
        except Exception:  # no source or package metadata to name the version by: keep nothing
            cache = None
        _caches[configured] = cache
    return _caches[configured]


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
    import sqlglot
    from sqlglot import exp

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
