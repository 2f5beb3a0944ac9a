"""Issue 13: roles on every write, the order of audit events, and the command line's answers to bad input.

Each test here failed before its fix: viewers could classify, events were ordered by a clock read before
the lock, bad arguments raised tracebacks or silently used defaults, and unknown keys were a silent no-op.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lib import activity, classification, demo, operations, resolution
from lib.access import SYSTEM, NotAllowed
from lib.model import Actor, ItemKey, Role
from lib.store import DuckDBStore
from tests.conftest import ROOT, Writer, precompute_row

NOW = dt.datetime(2022, 4, 11, 6, 0, tzinfo=dt.UTC)
VIEWER = Actor("vera", Role.VIEWER)
KEY = ItemKey("precompute_failures", "PlayerDailyCacheProcessor", dt.date(2021, 12, 31), "lebronjames")


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lib", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TRIAGE_ACTOR": "", **(env or {})}, timeout=timeout)  # fmt: skip


def _snapshot(store: DuckDBStore) -> tuple[Any, ...]:
    """Everything a write could change: classifications, evidence, events, the operations log."""
    tables = ("precompute_failures", "analytics_failures", "prediction_failures", "failure_missing_games",
              "failure_resolutions", "triage_operations")  # fmt: skip
    existing = store.existing_tables()
    out = []
    for t in tables:
        if f"nba_processing.{t}" not in existing:
            out.append(None)
            continue
        # The columns, and every row's every value as text in a stable order, digested where the rows are
        # (without carrying 48k rows into pandas twice per case).
        columns = tuple(store.query(f"SELECT * FROM nba_processing.{t} WHERE FALSE").columns)
        frame = store.query(f"SELECT COUNT(*) AS n, md5(string_agg(CAST(r AS VARCHAR), chr(10) ORDER BY "
                            f"CAST(r AS VARCHAR))) AS digest FROM nba_processing.{t} AS r WHERE TRUE")  # fmt: skip
        out.append((columns, int(frame["n"].iloc[0]), str(frame["digest"].iloc[0])))
    return tuple(out)


WRITES: dict[str, Callable[[DuckDBStore, Actor | None], object]] = {
    "classify": lambda s, a: classification.run(s, actor=a, now=NOW),
    "reclassify": lambda s, a: classification.run(s, actor=a, now=NOW, include_classified=True),
    "autoresolve": lambda s, a: resolution.autoresolve(s, actor=a, now=NOW),
    "sync-status": lambda s, a: resolution.sync_statuses(s, actor=a),
    "demo": lambda s, a: demo.seed(s, actor=a),
    "demo scale rows": lambda s, a: demo.add_scale_rows(s, 10, actor=a, players=["x"]),
    "resolve": lambda s, a: resolution.apply(s, resolution.Scope.of_keys([KEY]), "PERMANENT", actor=a, note="n"),
}


@pytest.mark.parametrize("write", sorted(WRITES))
@pytest.mark.parametrize("actor", [VIEWER, None, Actor("   ")], ids=["viewer", "nobody", "blank"])
def test_every_write_in_lib_refuses_anyone_but_a_resolver(
    demo_store: DuckDBStore, write: str, actor: Actor | None
) -> None:
    before = _snapshot(demo_store)
    with pytest.raises(NotAllowed):
        WRITES[write](demo_store, actor)
    assert _snapshot(demo_store) == before


def test_system_is_for_unattended_work_not_for_hand_made_changes(demo_store: DuckDBStore) -> None:
    with pytest.raises(NotAllowed, match="unattended"):
        resolution.apply(demo_store, resolution.Scope.of_keys([KEY]), "PERMANENT", actor=SYSTEM, note="n")


def test_a_resolvers_classification_is_recorded_with_who_and_how_it_ended(demo_store: DuckDBStore) -> None:
    report = classification.run(demo_store, actor=Actor("alice"), now=NOW, since=dt.date(2022, 1, 3),
                                until=dt.date(2022, 1, 4), origin="test")  # fmt: skip
    lines = demo_store.query("SELECT * FROM nba_processing.triage_operations WHERE DATE(started_at) > @d "
                             "AND kind = 'classify'", {"d": dt.date(2000, 1, 1)})  # fmt: skip
    assert sorted(lines["outcome"]) == ["done", "started"]  # its start, written before the first batch, and its end
    log = operations.recent(demo_store)  # the log as read: one line per operation, its last word
    row = log[log["kind"] == "classify"].iloc[0]
    assert (row["actor"], row["origin"], row["outcome"]) == ("alice", "test", "done")
    assert (row["date_from"], row["date_to"]) == (dt.date(2022, 1, 3), dt.date(2022, 1, 4))
    assert f"Classified {report.items:,} items" in row["summary"]


def test_the_command_line_writes_need_an_actor_and_respect_roles(demo_store: DuckDBStore) -> None:
    db = str(demo_store.path)
    before = _snapshot(demo_store)
    for command in (["classify"], ["autoresolve"], ["sync-status"], ["init"], ["demo", "--replace"]):
        nameless = _cli(*command, "--db", db)
        assert nameless.returncode == 2 and "--actor" in nameless.stderr, (command, nameless.stderr)
        viewer = _cli(*command, "--db", db, "--actor", "vera", env={"TRIAGE_VIEWERS": "vera"})
        assert viewer.returncode == 1 and "viewer" in viewer.stderr and "Traceback" not in viewer.stderr, command
    by_system = _cli("resolve", "--db", db, "--actor", "system", "--to", "PERMANENT", "--note", "n", "--item", KEY.text)
    assert by_system.returncode == 1 and "unattended" in by_system.stderr
    assert _snapshot(demo_store) == before
    done = _cli("sync-status", "--db", db, "--actor", "Alice", "--since", "2022-01-01", "--until", "2022-01-02")
    assert done.returncode == 0, done.stderr
    log = demo_store.query("SELECT kind, actor, origin FROM nba_processing.triage_operations "
                           "WHERE DATE(started_at) > @d", {"d": dt.date(2000, 1, 1)})  # fmt: skip
    assert ("sync-status", "Alice", "cli") in set(log.itertuples(index=False, name=None))


# -- the command line's answers to bad input -------------------------------------------------------


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["items", "--db", ""], 2, "--db is empty"),
        (["classify", "--db", "", "--actor", "a"], 2, "--db is empty"),
        (["demo", "--db", "{tmp}/x.duckdb", "--actor", "a", "--scale", "inf"], 2, "row count"),
        (["demo", "--db", "{tmp}/x.duckdb", "--actor", "a", "--scale", "1e400"], 2, "row count"),
        (["demo", "--db", "{tmp}/x.duckdb", "--actor", "a", "--scale", "1e30"], 2, "row count"),
        (["demo", "--db", "{tmp}/x.duckdb", "--actor", "a", "--scale", "-5"], 2, "row count"),
        (["classify", "--db", "{tmp}/x.duckdb", "--actor", "a", "--lookback-days", "1000000"], 2, "--lookback-days"),
        (["classify", "--db", "{tmp}/x.duckdb", "--actor", "a", "--lookback-games", "0"], 2, "--lookback-games"),
        (["classify", "--db", "{tmp}/x.duckdb", "--actor", "a", "--batch-size", "0"], 2, "--batch-size"),
        (["classify", "--db", "{tmp}/x.duckdb", "--actor", "a", "--batch-size", "-1"], 2, "--batch-size"),
        (
            ["classify", "--db", "{tmp}/x.duckdb", "--actor", "a", "--since", "2022-02-01", "--until", "2022-01-01"],
            2,
            "after --until",
        ),
        (
            ["autoresolve", "--db", "{tmp}/x.duckdb", "--actor", "a", "--since", "2022-02-01", "--until", "2022-01-01"],
            2,
            "after --until",
        ),
        (["items", "--db", "{tmp}/x.duckdb", "--since", "2022-02-01", "--until", "2022-01-01"], 2, "after --until"),
        (
            [
                "resolve",
                "--db",
                "{tmp}/x.duckdb",
                "--actor",
                "a",
                "--to",
                "RESOLVED",
                "--note",
                "n",
                "--since",
                "2022-02-01",
                "--until",
                "2022-01-01",
            ],
            2,
            "after --until",
        ),
        (["items", "--db", "{tmp}/missing/folder/x.duckdb"], 1, "There is no database"),
        (["items", "--db", "{tmp}/table.csv"], 1, "not a DuckDB database"),
        (["items", "--db", "{tmp}/old.sqlite"], 1, "a SQLite database"),
        (["items", "--db", "{tmp}"], 1, "is a folder"),
        (["items", "--bigquery", ""], 2, "--bigquery needs a project"),
    ],
)
def test_bad_command_lines_get_a_clear_message_and_create_nothing(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    (tmp_path / "old.sqlite").write_bytes(b"SQLite format 3\x00" + bytes(200))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = _cli(*[a.replace("{tmp}", str(tmp_path)) for a in args], env={"TRIAGE_DB": str(tmp_path / "default.db")})
    assert result.returncode == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no folder, no database, no default file


def test_an_unparseable_byte_limit_names_its_variable(tmp_path: Path) -> None:
    result = _cli("items", "--bigquery", "p", env={"TRIAGE_BQ_MAX_BYTES": "abc"})
    assert result.returncode == 2 and "TRIAGE_BQ_MAX_BYTES" in result.stderr and "Traceback" not in result.stderr


def test_resolving_keys_that_match_nothing_says_which_and_fails(write_rows: Writer, store: DuckDBStore) -> None:
    write_rows("precompute_failures", [precompute_row(entity_id=KEY.entity_id)])
    store.init_schema(pipeline_tables=False)
    db = str(store.path)
    base = ["resolve", "--db", db, "--to", "PERMANENT", "--actor", "alice", "--note", "dnp"]
    typo = KEY.text.replace("lebron", "lebrom")
    none = _cli(*base, "--item", typo, "--item", KEY.text + " ")
    assert none.returncode == 1 and "2 of 2 item key(s) match no item" in none.stderr
    assert typo in none.stderr and "note the spaces" in none.stderr and "nothing was changed" in none.stderr
    assert activity.status_of(store, KEY) == "UNRESOLVED"
    some = _cli(*base, "--item", typo, "--item", KEY.text)
    assert some.returncode == 0 and "1 of 2 item key(s) match no item" in some.stderr
    assert "Marked 1 item(s) PERMANENT" in some.stdout and activity.status_of(store, KEY) == "PERMANENT"
    many = _cli(*base, *[a for i in range(20_000) for a in ("--item", f"{KEY.text[:-9]}ghost{i}")])
    assert many.returncode == 1 and "20,000 of 20,000" in many.stderr and "and 19,980 more" in many.stderr


def test_csv_from_the_command_line_is_safe_to_open_in_a_spreadsheet(write_rows: Writer, store: DuckDBStore) -> None:
    hostile = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "\tTAB"]
    write_rows("precompute_failures", [precompute_row(entity_id=e) for e in hostile])
    store.init_schema(pipeline_tables=False)
    out = _cli("items", "--db", str(store.path), "--format", "csv", "--include-expected")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert sorted(r["entity_id"] for r in rows) == sorted("'" + e for e in hostile)
    assert all(not r["key"].startswith(("=", "+", "-", "@", "\t")) for r in rows)
    assert pd.read_csv(io.StringIO(out.stdout)).shape[0] == len(hostile)


def test_a_new_demo_is_judged_whole_and_keeps_what_the_pipeline_said(tmp_path: Path, demo_season: demo.Demo) -> None:
    """First start (the dashboard, or `demo` on the command line) judges every item, the pipeline's verdicts
    included, so every verdict on screen is the dashboard's; what the pipeline said is kept beside it."""
    db = tmp_path / "new.duckdb"
    made = _cli("demo", "--db", str(db), "--actor", "system", "--as-of", "2022-04-11")  # the real dates
    assert made.returncode == 0 and "Classified" in made.stdout, made.stderr
    store = DuckDBStore(db)
    assert classification.count_to_classify(store) == 0
    own = demo_season.failures["precompute_failures"]
    own = own[own["failure_type"].notna()][["processor_name", "analysis_date", "entity_id", "run_id", "failure_type"]]
    own = own.drop_duplicates()
    assert len(own) > 100
    said = store.query(
        "SELECT processor_name, item_date AS analysis_date, entity_id, pipeline_type AS failure_type "
        "FROM nba_processing.item_judgements WHERE source_table = 'precompute_failures' "
        "AND item_date BETWEEN @a AND @b",
        {"a": dt.date(1, 1, 1), "b": dt.date(9999, 12, 31)},
    )
    rows = demo_season.failures["precompute_failures"]
    keys = ["processor_name", "analysis_date", "entity_id"]
    latest = rows[rows["created_at"] == rows.groupby(keys)["created_at"].transform("max")]  # the item's verdict
    single = latest.groupby(keys).filter(lambda g: g["failure_type"].nunique(dropna=False) == 1)
    items = single[single["failure_type"].notna()][[*keys, "failure_type"]].drop_duplicates()
    kept = items.merge(said, on=["processor_name", "analysis_date", "entity_id", "failure_type"])
    assert len(kept) == len(items)  # what the pipeline said of each item it judged is kept
    unclassified = store.query("SELECT COUNT(*) AS n FROM nba_processing.precompute_failures "
                               "WHERE failure_type IS NULL AND analysis_date BETWEEN @a AND @b",
                               {"a": dt.date(1, 1, 1), "b": dt.date(9999, 12, 31)})  # fmt: skip
    assert int(unclassified.iloc[0]["n"]) == 0  # and every row carries a verdict of the dashboard's


def test_a_change_statement_replayed_with_its_batch_id_records_nothing_more(
    write_rows: Writer, store: DuckDBStore
) -> None:
    """What a retried job does after its first attempt committed (an answer lost on the way back): the batch
    id is the idempotency key, so the replay inserts no second event."""
    write_rows("precompute_failures", [precompute_row(entity_id=KEY.entity_id)])
    store.init_schema(pipeline_tables=False)
    scope = resolution.Scope.of_keys([KEY])
    change = resolution.apply(store, scope, "INVESTIGATING", actor=Actor("alice"), note="first")
    replay = resolution._INSERT_EVENTS.format(scoped=resolution._scoped_sql(scope), note="@note", extra="")
    params = {**resolution._params(scope), "to_status": "PERMANENT", "actor": "alice", "note": "replayed",
              "batch_id": change.batch_id, "origin": "cli", "at": change.at}  # fmt: skip
    assert store.execute(replay, params) == 0
    assert len(activity.history(store, KEY)) == 1
