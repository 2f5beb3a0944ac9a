"""The local BigQuery emulator (local-bigquery, in .venv-emulator: `make emulator`) for the BigQuery path."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import sqlglot
from sqlglot import exp

from lib.store.bigquery_store import BigQueryStore
from lib.store.schema import DATASETS
from tests.servers import free_port, stop, wait_until_answering

ROOT = Path(__file__).resolve().parent.parent
EMULATOR = ROOT / ".venv-emulator" / "bin" / "local-bigquery"
PROJECT = "test-project"
_tags = itertools.count(1)
#: The datasets made through ``store`` and ``recording`` (endpoint and tag), in order. A test drops the ones it
#: made when it ends, a module those its fixtures made (tests/conftest.py): every statement on the emulator gets
#: slower with every table it holds (a count took 0.2 s with one test's tables, 1.1 s with twelve tests' tables,
#: 2 s with thirty), so a suite that kept them all got slower with every test.
_made: list[tuple[str, str]] = []


#: Where the emulator keeps its tables: in memory (/dev/shm) where the machine has it. Its catalog (DuckLake) writes
#: files and a snapshot for every statement that changes a table; one workload (load a random world, read two views'
#: pages) took 58.7 s and 64.5 CPU-seconds of the emulator with its data on disk, 43.1 s and 51.3 in memory.
MEMORY = Path("/dev/shm")
#: Free space /dev/shm must have to be used (a container's is often 64 MB): the data goes to disk otherwise.
MEMORY_NEEDED = 2 * 1024**3
#: An emulator's data left in memory by a run that was killed is removed by a later run after this long.
STALE = 12 * 3600


def _free(path: Path) -> int:
    try:
        stat = os.statvfs(path)
    except OSError:
        return 0
    return stat.f_bavail * stat.f_frsize


def start(log_dir: Path, catalog: str | None = None, translations: str | None = None) -> Iterator[str]:
    """Start the emulator on free loopback ports, its data in memory where possible and its log in ``log_dir``
    (``catalog``, ``translations``: see ``CATALOG`` and ``TRANSLATIONS``); yield its endpoint; stop it and remove its
    data."""
    if not EMULATOR.exists():
        raise RuntimeError("The BigQuery emulator is not installed: run `make emulator` (part of `make test`).")
    usable = MEMORY.is_dir() and os.access(MEMORY, os.W_OK) and _free(MEMORY) >= MEMORY_NEEDED
    if usable:
        for old in MEMORY.glob("bigquery-emulator-*"):
            with contextlib.suppress(OSError):
                if time.time() - old.stat().st_mtime > STALE:
                    shutil.rmtree(old, ignore_errors=True)
    data_dir = Path(tempfile.mkdtemp(prefix="bigquery-emulator-", dir=MEMORY if usable else log_dir))
    try:
        yield from _serve(data_dir, log_dir, _command(catalog, translations))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _serve(data_dir: Path, log_dir: Path, command: list[str]) -> Iterator[str]:
    port, grpc = free_port(), free_port()
    log = open(log_dir / "emulator.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--grpc-port", str(grpc),
         "--project", PROJECT, "--data-dir", str(data_dir)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{endpoint}/bigquery/v2/projects/{PROJECT}/datasets", proc, log.name)
    try:
        yield endpoint
    finally:
        _made[:] = [m for m in _made if m[0] != endpoint]  # its datasets go with it
        stop(proc, log)


#: DuckDB threads of each emulator (``TRIAGE_EMULATOR_THREADS``; 0 for DuckDB's default, every core). Each of
#: ``make test``'s workers has an emulator of its own, and the emulator's statements read a few hundred rows: with
#: every core, 150 reads and 50 updates cost the emulator 76-79 CPU-seconds on an idle machine, with one thread 61-65
#: (and 12% more time, which a busy machine does not have to spare). Every BigQuery test (``-n 3 -m bigquery``) took
#: 14 min 09 s and 1,579 CPU-seconds with every core, 9 min 45 s and 1,062 with one thread.
THREADS = int(os.environ.get("TRIAGE_EMULATOR_THREADS", "1"))
#: The emulator's reads of DuckDB's catalog answered from DuckLake's metadata (tests/emulator_entry.py):
#: ``TRIAGE_EMULATOR_CATALOG`` ``on`` (the default), ``off``, or ``verify`` (each answer checked against DuckDB's).
CATALOG = os.environ.get("TRIAGE_EMULATOR_CATALOG", "on")
#: The emulator's translations of a statement into DuckDB's SQL kept and used again for the same statement, parameter
#: types and schema (tests/emulator_entry.py): ``TRIAGE_EMULATOR_TRANSLATIONS`` ``on`` (the default), ``off``, or
#: ``verify`` (each kept translation checked against a fresh one).
TRANSLATIONS = os.environ.get("TRIAGE_EMULATOR_TRANSLATIONS", "on")
ENTRY = Path(__file__).resolve().parent / "emulator_entry.py"


def _command(catalog: str | None = None, translations: str | None = None) -> list[str]:
    """The emulator's entry point (tests/emulator_entry.py), run by its own Python; -P: nothing imported from here."""
    modes = [catalog or CATALOG, translations or TRANSLATIONS]
    return [str(EMULATOR.parent / "python"), "-P", str(ENTRY), str(THREADS), *modes]


def datasets(tag: str) -> dict[str, str]:
    """Datasets of their own for one test (the emulator has one project): nba_processing -> t3_processing."""
    return {d: f"{tag}_{d.removeprefix('nba_')}" for d in DATASETS}


def mark() -> frozenset[tuple[str, str]]:
    """The datasets made so far: ``drop_since`` drops those made after."""
    return frozenset(_made)


def drop_since(point: frozenset[tuple[str, str]]) -> None:
    """Drop (with their tables) the datasets made since ``point`` on emulators still running."""
    made = [m for m in _made if m not in point]
    _made[:] = [m for m in _made if m in point]
    for endpoint, tag in made:
        client = BigQueryStore(PROJECT, endpoint=endpoint, timeout=60).client()
        for real in datasets(tag).values():
            client.delete_dataset(real, delete_contents=True, not_found_ok=True)


def store(
    endpoint: str, tag: str | None = None, *, cls: type[BigQueryStore] = BigQueryStore, **kw: object
) -> BigQueryStore:
    tag = tag or f"t{next(_tags)}"
    _made.append((endpoint, tag))
    return cls(PROJECT, endpoint=endpoint, datasets=datasets(tag), timeout=120, **kw)  # type: ignore[arg-type]


# -- the partition-filter proof ---------------------------------------------------------------------

EVIDENCE_TABLES = ("nbac_schedule", "nbac_gamebook_player_stats", "player_game_summary")

PARTITION_COLUMN = {
    "precompute_failures": "analysis_date",
    "analytics_failures": "analysis_date",
    "prediction_failures": "prediction_date",
}


class Recording(BigQueryStore):
    """The real BigQuery engine, keeping every statement it renders and counting the rows it hands back."""

    statements: list[str]
    received: int = 0

    def query(self, sql: str, params=None, *, label: str = ""):  # type: ignore[no-untyped-def]
        frame = super().query(sql, params, label=label)
        if not label.startswith("index-"):  # the item index's upkeep reads (table, date) pairs, not data
            self.received += len(frame)
        return frame

    def _run(self, sql: str, params, label: str, **kw):  # type: ignore[no-untyped-def]
        self.statements.append(self.dialect.render(sql))
        return super()._run(sql, params, label, **kw)


def recording(endpoint: str) -> Recording:
    tag = f"t{next(_tags)}"
    _made.append((endpoint, tag))
    r = Recording(PROJECT, endpoint=endpoint, datasets=datasets(tag), timeout=120)
    r.statements = []
    return r


def partition_violations(sql: str) -> list[str]:
    """Every read, update or delete of a failure table must filter its partition column in its own WHERE."""
    found = []
    for tree in sqlglot.parse(sql, read="bigquery"):  # a script is checked statement by statement
        if tree is not None and not isinstance(tree, exp.Create):  # DDL reads no rows
            found += _violations(tree, sql)
    return found


def evidence_violations(sql: str) -> list[str]:
    """Every read of an evidence table must filter its partition column, game_date, in its own WHERE."""
    found = []
    for tree in sqlglot.parse(sql, read="bigquery"):
        if tree is not None and not isinstance(tree, exp.Create):
            found += _violations(tree, sql, {t: "game_date" for t in EVIDENCE_TABLES})
    return found


def _violations(tree: exp.Expression, sql: str, columns: dict[str, str] | None = None) -> list[str]:
    found = []
    for table in tree.find_all(exp.Table):
        column = (columns or PARTITION_COLUMN).get(table.name)
        if column is None:
            continue
        insert = table.find_ancestor(exp.Insert)
        if insert is not None and table in (insert.this, *insert.this.find_all(exp.Table)):
            continue  # the target of an INSERT reads nothing
        scope = table.find_ancestor(exp.Select, exp.Update, exp.Delete)
        where = scope.args.get("where") if scope is not None else None
        if where is None or column not in {c.name for c in where.find_all(exp.Column)}:
            flat = re.sub(r"\s+", " ", sql)[:200]
            found.append(f"{table.name} without a filter on {column}: {flat}")
    return found
