"""One suite, both engines: DuckDB, and the real google-cloud-bigquery client against a local emulator.

`pytest -m bigquery` runs the BigQuery half alone.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lib import activity, classification, demo, incidents, patterns, players, resolution, workqueue
from lib.access import SYSTEM
from lib.errors import StoreUnavailable
from lib.model import Actor, Filters, ItemKey, Page
from lib.processors import record_failures
from lib.store import DuckDBStore, Store
from lib.store import queries as q
from lib.store.dialect import row_hash
from lib.store.schema import ALL_TABLES
from tests import bq, realdata
from tests.conftest import ROOT, precompute_row

NOW = dt.datetime(2022, 4, 11, 6, 0, tzinfo=dt.UTC)
ENGINES = ["duckdb", pytest.param("bigquery", marks=pytest.mark.bigquery)]
VIEWS = [
    Filters(date_from=dt.date(2022, 3, 12), date_to=dt.date(2022, 4, 10)),
    Filters(date_from=dt.date(2021, 12, 1), date_to=dt.date(2021, 12, 31), hide_expected=False,
            processors=("PlayerDailyCacheProcessor", "PlayerGameSummaryProcessor")),
]  # fmt: skip


def _fresh(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if engine == "duckdb":
        return DuckDBStore(tmp_path / "engine.duckdb")
    return bq.store(request.getfixturevalue("emulator"))


@pytest.fixture(params=ENGINES)
def engine_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    store = _fresh(request.param, request, tmp_path)
    store.init_schema()
    return store


@pytest.fixture(scope="module", params=ENGINES)
def demo_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                demo_season: demo.Demo) -> Store:  # fmt: skip
    store = _fresh(request.param, request, tmp_path_factory.mktemp("demo-engine"))
    demo.write(store, demo_season, actor=SYSTEM)
    return store


def _rows(store: Store, table: str, rows: list[dict[str, object]]) -> None:
    frame = pd.DataFrame(rows)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    store.insert_frame(f"nba_processing.{table}", frame)


@pytest.mark.parametrize("view", VIEWS, ids=["latest-30-days", "december-two-processors"])
def test_both_engines_count_list_and_chart_the_same_items(demo_engine: Store, demo_db_path: Path,
                                                          view: Filters) -> None:  # fmt: skip
    reference = DuckDBStore(demo_db_path)
    assert q.bounds(demo_engine) == q.bounds(reference)
    assert q.kpis(demo_engine, view) == q.kpis(reference, view)
    pd.testing.assert_frame_equal(q.matrix(demo_engine, view), q.matrix(reference, view), check_dtype=False)
    pd.testing.assert_frame_equal(q.trend(demo_engine, view), q.trend(reference, view), check_dtype=False)
    for sort in ("newest date", "most occurrences"):
        mine = q.list_items(demo_engine, view, Page(2, 40, sort))
        theirs = q.list_items(reference, view, Page(2, 40, sort))
        assert list(mine["key"]) == list(theirs["key"])
        assert list(mine["status"]) == list(theirs["status"]) and list(mine["occurrences"]) == list(
            theirs["occurrences"]
        )
    exported = pd.concat(list(q.iter_items(demo_engine, view, chunk=700)))
    assert len(exported) == q.count_items(reference, view) and exported["key"].is_unique
    assert q.choices(demo_engine, view) == q.choices(reference, view)
    # Incidents: the same root causes, counts and re-runs, and the same items in the biggest.
    mine, theirs = incidents.incidents(demo_engine, view, now=NOW), incidents.incidents(reference, view, now=NOW)
    pd.testing.assert_frame_equal(mine, theirs, check_dtype=False)
    assert len(mine) > 0 or view.processors  # the two processors' December has no correctable item
    if len(mine):
        top = incidents.IncidentId.parse(str(mine.iloc[0]["incident_id"]))
        a, b = incidents.incident_items(demo_engine, view, top), incidents.incident_items(reference, view, top)
        assert list(a["key"]) == list(b["key"]) and list(a["open_in_incident"]) == list(b["open_in_incident"])


def test_both_engines_classify_real_box_scores_to_the_truth(engine_store: Store) -> None:
    world = realdata.build(realdata.FIXTURE, teams={"GSW", "BKN", "LAL", "NOP"})
    realdata.write(engine_store, world)
    written = NOW + dt.timedelta(minutes=7)  # the batch's write, after the run started
    report = classification.run(engine_store, actor=SYSTEM, now=NOW, config=realdata.classifier_config(),
                                clock=lambda: written)  # fmt: skip
    accuracy = realdata.measure(engine_store, world)
    assert report.items == len(world.failures)
    assert accuracy.per_game >= 0.998 and accuracy.per_failure >= 0.998
    # Its verdict changes and evidence are stamped when written ("what changed since my last visit" reads them).
    stamps = engine_store.query(
        "SELECT MIN(at) AS a, MAX(at) AS b, COUNT(*) AS n FROM nba_processing.classification_changes "
        "WHERE item_date BETWEEN @a AND @b UNION ALL SELECT MIN(classified_at), MAX(classified_at), COUNT(*) "
        "FROM nba_processing.failure_missing_games WHERE analysis_date BETWEEN @a AND @b",
        {"a": dt.date(2000, 1, 1), "b": dt.date(2100, 1, 1)},
    )
    assert (stamps["n"] > 0).all()
    assert {pd.Timestamp(v) for v in [*stamps["a"], *stamps["b"]]} == {pd.Timestamp(written)}


def test_both_engines_refuse_a_confirm_whose_items_moved_after_its_preview(engine_store: Store) -> None:
    """The preview (through the item index where it is used) and the write's own reading agree when nothing moved,
    and differ when an item moved with a stamp from before the dialog opened (the nightly job's)."""
    day = dt.date(2021, 12, 31)
    rows = [precompute_row(resolution_status=None), precompute_row(entity_id="lebronjames", resolution_status=None)]
    _rows(engine_store, "precompute_failures", rows)
    keys = [
        ItemKey("precompute_failures", "PlayerDailyCacheProcessor", day, who) for who in ("zachlavine", "lebronjames")
    ]
    scope = resolution.Scope.of_keys(keys)
    at = dt.datetime(2022, 1, 2, tzinfo=dt.UTC)
    seen = resolution.preview(engine_store, scope, "PERMANENT")
    assert seen.by_status == {"UNRESOLVED": 2}
    resolution.apply(engine_store, resolution.Scope.of_keys(keys[:1]), "RESOLVED", actor=Actor("bob"), note="job",
                     now=at)  # fmt: skip
    with pytest.raises(resolution.Conflict, match=r"1 item.*zachlavine"):
        resolution.apply(engine_store, scope, "PERMANENT", actor=Actor("alice"), note="dnp",
                         now=at + dt.timedelta(hours=2), opened_at=at + dt.timedelta(hours=1), seen=seen)  # fmt: skip
    again = resolution.preview(engine_store, scope, "PERMANENT")
    assert again.by_status == {"UNRESOLVED": 1, "RESOLVED": 1} and again.state != seen.state
    later = at + dt.timedelta(hours=2)
    done = resolution.apply(engine_store, scope, "PERMANENT", actor=Actor("alice"), note="dnp", now=later,
                            opened_at=at + dt.timedelta(hours=1), seen=again)  # fmt: skip
    assert done.changed == 2


def test_both_engines_keep_events_derive_regressions_and_sync_rows(engine_store: Store) -> None:
    key = ItemKey("precompute_failures", "PlayerDailyCacheProcessor", dt.date(2021, 12, 31), "zachlavine")
    _rows(engine_store, "precompute_failures", [precompute_row(resolution_status=None)])
    scope = resolution.Scope.of_keys([key])
    resolution.apply(engine_store, scope, "RESOLVED", actor=Actor("alice"), note="<b>re-scraped</b>",
                     now=dt.datetime(2022, 1, 2, tzinfo=dt.UTC))  # fmt: skip
    with pytest.raises(resolution.Conflict):
        resolution.apply(engine_store, scope, "PERMANENT", actor=Actor("bob"), note="no",
                         now=dt.datetime(2022, 1, 3, tzinfo=dt.UTC),
                         opened_at=dt.datetime(2022, 1, 1, tzinfo=dt.UTC))  # fmt: skip
    rows = engine_store.query("SELECT resolution_status FROM nba_processing.precompute_failures "
                              "WHERE analysis_date = @d", {"d": key.item_date})  # fmt: skip
    assert list(rows["resolution_status"]) == ["RESOLVED"]  # the sync ran after the change
    rerun = precompute_row(run_id="rerun", created_at=pd.Timestamp("2022-01-05 08:00", tz="UTC"))
    _rows(engine_store, "precompute_failures", [rerun])
    assert activity.status_of(engine_store, key) == "REGRESSED"
    events = activity.history(engine_store, key)
    assert list(events["note"]) == ["<b>re-scraped</b>"] and list(events["actor"]) == ["alice"]


def test_both_engines_record_processor_failures_idempotently(engine_store: Store) -> None:
    world = realdata.build(realdata.FIXTURE, teams={"GSW"})
    realdata.write(engine_store, world.__class__(world.schedule, world.gamebook, world.analytics,
                                                 world.failures.head(0), {}))  # fmt: skip
    day = dt.date(2019, 12, 20)
    rows = [{"processor_name": "PlayerDailyCacheProcessor", "run_id": "run-1", "analysis_date": day,
             "entity_id": p, "failure_category": "INCOMPLETE_DATA", "failure_reason": "window",
             "can_retry": True} for p in ("stephencurry", "draymondgreen", "nobodyatall")]  # fmt: skip
    first = record_failures(engine_store, "precompute_failures", rows, actor=SYSTEM, now=NOW)
    again = record_failures(engine_store, "precompute_failures", rows, actor=SYSTEM, now=NOW)
    assert [v.failure_type for v in first] == [v.failure_type for v in again]
    # Curry was hurt on Oct 30 and the fixture starts on Nov 1: no row of his anywhere, so his team is
    # unknown and the verdict is UNKNOWN, never a guess; Green played for GSW and is judged.
    assert first[0].failure_type.value == "UNKNOWN" and first[2].failure_type.value == "UNKNOWN"
    assert first[1].failure_type.value != "UNKNOWN" and first[1].expected_game_count
    stored = engine_store.query("SELECT entity_id, failure_type FROM nba_processing.precompute_failures "
                                "WHERE analysis_date = @d", {"d": day})  # fmt: skip
    assert len(stored) == 3


@pytest.mark.bigquery
def test_classifying_a_range_reads_only_its_evidence_partitions_and_returns_only_counts(
    emulator: str, demo_season: demo.Demo
) -> None:
    store = bq.recording(emulator)
    store.init_schema()
    demo.write(store, demo_season, actor=SYSTEM)
    store.statements.clear()
    store.received = 0
    first, last = dt.date(2022, 3, 1), dt.date(2022, 3, 3)
    report = classification.run(store, actor=SYSTEM, now=NOW, since=first, until=last, include_classified=True)
    assert report.items > 300
    assert [v for s in store.statements for v in bq.evidence_violations(s)] == []
    assert [v for s in store.statements for v in bq.partition_violations(s)] == []
    reads = [s for s in store.statements if any(t in s for t in bq.EVIDENCE_TABLES)]
    assert reads and all("DATE_SUB(@date_from" in s or "@date_from" in s for s in reads)
    # The client got one row per date to plan the batches and the tallies of each batch, nothing per game.
    assert store.received <= (last - first).days + 1 + len(report.by_type) + len(report.by_verdict)


@pytest.mark.bigquery
@pytest.mark.heavy(35)
def test_every_failure_table_statement_filters_its_partition_column(emulator: str, demo_season: demo.Demo) -> None:
    store = bq.recording(emulator)
    assert sorted(store.init_schema()) == sorted(t.ref for t in ALL_TABLES)
    # One job creates every table (a script of their DDL), and a table missing later is created alone.
    assert len(store.statements) == 1 and store.statements[0].count("CREATE TABLE IF NOT EXISTS") == len(ALL_TABLES)
    store.client().delete_table(f"{bq.PROJECT}.{store.dialect.dataset('nba_processing')}.failure_resolutions")
    assert store.init_schema() == ["nba_processing.failure_resolutions"] and store.init_schema() == []
    assert len(store.statements) == 2 and store.statements[1].count("CREATE TABLE") == 1
    assert store.existing_tables() == {t.ref for t in ALL_TABLES}
    demo.write(store, demo_season, actor=SYSTEM)
    view = Filters(date_from=dt.date(2022, 3, 1), date_to=dt.date(2022, 3, 14))
    q.bounds(store), q.choices(store, view), q.kpis(store, view), q.count_items(store, view)
    items = q.list_items(store, view, Page(size=5))
    list(q.iter_items(store, view))
    key = ItemKey.parse(items.iloc[0]["key"])
    q.get_item(store, key), q.missing_games(store, key)
    classification.run(store, actor=SYSTEM, now=NOW, since=view.date_from, until=view.date_to)
    resolution.apply(store, resolution.Scope.of_keys([key]), "INVESTIGATING", actor=Actor("alice"), note="x",
                     now=NOW, opened_at=NOW - dt.timedelta(minutes=1))  # fmt: skip
    resolution.apply(store, resolution.dnp_scope(view), "PERMANENT", actor=Actor("alice"), note="dnp", now=NOW)
    resolution.autoresolve(store, actor=SYSTEM, now=NOW, since=view.date_from, until=view.date_to)
    resolution.sync_statuses(store, actor=SYSTEM, since=view.date_from, until=view.date_to)
    workqueue.plan(store, view), patterns.streaks(store, view), patterns.team_dates(store, view)
    players.items(store, key.entity_id, view)
    record_failures(store, "precompute_failures", [precompute_row(run_id="p", analysis_date=dt.date(2022, 3, 10))],
                    actor=SYSTEM, now=NOW)  # fmt: skip
    touching = [s for s in store.statements if any(t in s for t in bq.PARTITION_COLUMN)]
    assert len(touching) > 30
    violations = [v for s in touching for v in bq.partition_violations(s)]
    assert violations == []
    # and the check itself bites
    assert bq.partition_violations("SELECT COUNT(*) FROM `p`.`d`.precompute_failures WHERE entity_id = 'x'")


#: Values of a failure row's fingerprinted columns (STRING, STRING, STRING, BOOL, INT64 as UNIX_MICROS), hostile ones
#: included: separators, escapes, the NULL marker's text, empty strings, NULLs, non-ASCII, line breaks, extremes.
HASHED = [
    ("PlayerDailyCacheProcessor", "zachlavine", "run-1", True, 1640937600000000),
    ("", "", None, False, None),
    ("a|b", "c", "d\\|", None, 0),
    ("a", "b|c", "d\\|", None, 0),
    ("\\N", None, "x\\", True, -1),
    ("ünïcødé 🏀 O'Neal", "<b>&amp;</b>", "\r\n\t", False, 253402300799999999),
    ("=cmd|' /C calc'!A0", "'; DROP TABLE x; --", "%3A:", True, -62135596800000000),
]


@pytest.mark.bigquery
def test_the_emulator_computes_the_row_hash_as_bigquery_defines_it(emulator: str) -> None:
    """The item index's fingerprints on BigQuery hash each row with MD5 over its values' text (ROW_HASH in
    lib/store/dialect.py): functions BigQuery documents exactly (MD5 of the UTF-8 bytes, CAST to STRING, REPLACE,
    TO_HEX), which the emulator computes natively. The reference is Python's hashlib on the same text."""
    store = bq.store(emulator)
    names = ["a", "b", "c", "d", "e"]
    for values in HASHED:
        params = dict(zip(names, values, strict=True))
        got = store.query("SELECT ROW_HASH(@a, @b, @c, @d, @e) AS h", params)
        assert int(got["h"].iloc[0]) == row_hash(values), values
    assert len({row_hash(v) for v in HASHED}) == len(HASHED)


@pytest.mark.bigquery
def test_the_emulator_still_finds_a_sessions_temporary_tables(emulator: str) -> None:
    """tests/emulator_entry.py lists each job's temporary tables from ``duckdb_columns()`` less ``duckdb_views()``
    instead of ``duckdb_tables()`` (which sizes every table to name a few). The emulator resolves an unqualified name
    to a temporary table only if that list has it: a session's temporary table must still be read by the next job
    (without the list, the name is looked up in the default dataset, which has no such table)."""
    from google.cloud import bigquery

    client = bq.store(emulator, "session").client()
    dataset = client.create_dataset(bq.datasets("session")["nba_processing"]).reference
    first = client.query(
        "CREATE TEMP TABLE kept AS SELECT 7 AS n", job_config=bigquery.QueryJobConfig(create_session=True)
    )
    first.result()
    session = [bigquery.ConnectionProperty("session_id", first.session_info.session_id)]
    again = bigquery.QueryJobConfig(connection_properties=session, default_dataset=dataset)
    assert [row.n for row in client.query("SELECT n FROM kept", job_config=again).result()] == [7]
    alone = bigquery.QueryJobConfig(default_dataset=dataset)
    with pytest.raises(Exception, match="kept"):
        client.query("SELECT n FROM kept", job_config=alone).result()


@pytest.mark.bigquery
def test_the_emulator_uses_a_kept_translation_only_for_the_same_statement_and_schema(tmp_path: Path) -> None:
    """tests/emulator_entry.py keeps each statement's translation into DuckDB's SQL and uses it again for the same
    statement, parameter types and schema. Here in its ``verify`` mode (each kept translation compared with a fresh
    one, a difference fails the statement): the same statement with other values is answered from the kept
    translation; after the table is made again with another column type (a NUMERIC times a decimal literal is
    translated with a cast that a FLOAT64 is not), and with a parameter of another type, it is translated afresh."""
    emulator = bq.start(tmp_path, translations="verify")
    endpoint = next(emulator)
    try:
        store = bq.store(endpoint, "kept")
        store.client().create_dataset(bq.datasets("kept")["nba_processing"])
        sql = "SELECT a * 1.5 AS x, b FROM nba_processing.t WHERE a >= @least ORDER BY a"
        for kind in ("NUMERIC", "FLOAT64"):
            store.execute(f"CREATE OR REPLACE TABLE nba_processing.t (a {kind}, b STRING)")
            store.execute("INSERT INTO nba_processing.t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')")
            answers = [store.query(sql, {"least": n}) for n in (1, 2, 3)]
            assert [list(a["b"]) for a in answers] == [["x", "y", "z"], ["y", "z"], ["z"]], kind
            assert [float(v) for v in answers[0]["x"]] == [1.5, 3.0, 4.5], kind
        assert list(store.query(sql, {"least": 2.5})["b"]) == ["z"]  # a FLOAT64 parameter: another translation
    finally:
        emulator.close()
    log = (tmp_path / "emulator.log").read_text()
    assert "MISMATCH" not in log, log[-2000:]
    assert "translations: 1 verified" in log  # kept translations were used (and each compared with a fresh one)


@pytest.mark.bigquery
def test_bigquery_errors_say_what_happened_and_what_to_do(emulator: str) -> None:
    missing = bq.store(emulator, "nothing_here")
    with pytest.raises(StoreUnavailable) as caught:
        q.kpis(missing, Filters())
    assert "does not exist" in caught.value.what and "init --bigquery" in caught.value.todo
    unreachable = bq.BigQueryStore("test-project", endpoint="http://127.0.0.1:9", timeout=3)
    with pytest.raises(Exception) as failed:
        unreachable.query("SELECT 1 AS x")
    assert type(failed.value).__module__ == "lib.errors" and "Traceback" not in str(failed.value)


@pytest.mark.bigquery
@pytest.mark.heavy(15)
def test_the_command_line_works_unchanged_on_bigquery(emulator: str, demo_season: demo.Demo) -> None:
    names = {f"TRIAGE_BQ_DATASET_{d.removeprefix('nba_').upper()}": v for d, v in bq.datasets("cli").items()}
    env = {**os.environ, "TRIAGE_BQ_ENDPOINT": emulator, **names}
    run = [sys.executable, "-m", "lib"]
    init = subprocess.run(
        [*run, "init", "--bigquery", bq.PROJECT, "--actor", "system"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert init.returncode == 0, init.stderr
    assert "failure_resolutions" in init.stdout and "precompute_failures" not in init.stdout  # pipeline's: on request
    init = subprocess.run([*run, "init", "--bigquery", bq.PROJECT, "--create-pipeline-tables", "--actor", "system"],
                          cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    assert init.returncode == 0 and "precompute_failures" in init.stdout
    store = bq.store(emulator, "cli")
    demo.write(store, demo_season, actor=SYSTEM)
    items = subprocess.run([*run, "items", "--bigquery", bq.PROJECT, "--since", "2022-04-10", "--until", "2022-04-10",
                            "--format", "csv"], cwd=ROOT, env=env, capture_output=True, text=True)  # fmt: skip
    assert items.returncode == 0, items.stderr
    expected = q.count_items(store, Filters(date_from=dt.date(2022, 4, 10), date_to=dt.date(2022, 4, 10)))
    assert len(items.stdout.splitlines()) == expected + 1
    key = items.stdout.splitlines()[1].split(",")[0]
    resolve = subprocess.run([*run, "resolve", "--bigquery", bq.PROJECT, "--to", "PERMANENT", "--actor", "alice",
                              "--note", "dnp", "--item", key], cwd=ROOT, env=env, capture_output=True,
                             text=True)  # fmt: skip
    assert resolve.returncode == 0 and "Marked 1 item(s) PERMANENT" in resolve.stdout
    both = subprocess.run([*run, "items", "--bigquery", bq.PROJECT, "--db", "x.duckdb"], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert both.returncode == 2 and "not both" in both.stderr


@pytest.mark.bigquery
@pytest.mark.heavy(12)
def test_the_dashboard_runs_unchanged_on_bigquery(emulator: str, demo_season: demo.Demo,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from streamlit.testing.v1 import AppTest

    store = bq.store(emulator, "app")
    demo.write(store, demo_season, actor=SYSTEM)
    monkeypatch.setenv("TRIAGE_ENGINE", "bigquery")
    monkeypatch.setenv("TRIAGE_BQ_PROJECT", bq.PROJECT)
    monkeypatch.setenv("TRIAGE_BQ_ENDPOINT", emulator)
    for dataset, real in bq.datasets("app").items():
        monkeypatch.setenv(f"TRIAGE_BQ_DATASET_{dataset.removeprefix('nba_').upper()}", real)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    start, end = q.bounds(store).default_range() or (None, None)
    expected = q.kpis(store, Filters(date_from=start, date_to=end))
    shown = {m.label: m.value for m in at.metric}
    assert shown["Items"] == f"{expected.items:,}" and shown["Unclassified"] == f"{expected.unclassified:,}"
    assert any("bigquery" in c.value for c in at.sidebar.caption)
    at.switch_page("views/triage/failures.py")
    at.run()
    assert not at.exception and len(at.dataframe[0].value) == 50
