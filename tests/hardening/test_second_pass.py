"""Issue 22: the second hardening pass.

Writes built from a clicked player, team or game touch exactly what they name (never every entity whose id
*contains* the clicked one); ``system`` acts only where it is configured and every public write checks its
actor; CSV downloads quote every line break; every row the schema allows renders on every page and panel;
items without a processor or entity are classified like any other; the command line refuses what it cannot
do before it does any work.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib import classification, demo, nightly, players, processors, resolution
from lib.__main__ import main
from lib.access import SYSTEM, NotAllowed, account
from lib.export import FORMULA_START
from lib.model import Actor, Filters, ItemKey, Role
from lib.store import DuckDBStore, index
from lib.store import queries as q
from tests.conftest import ROOT, precompute_row

DAY = dt.date(2021, 12, 31)
ALICE = Actor("alice")


def _write(store: DuckDBStore, table: str, rows: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame(rows)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    store.insert_frame(f"nba_processing.{table}", frame)


def _events(store: DuckDBStore) -> pd.DataFrame:
    return store.query(
        "SELECT item_key, entity_id, to_status FROM nba_processing.failure_resolutions "
        "WHERE item_date BETWEEN @a AND @b",
        {"a": dt.date(1, 1, 1), "b": dt.date(9999, 12, 31)},
    )


# -- 1. a write touches exactly what it names ---------------------------------------------------------

LOOKALIKES = ["goranbrown", "goranbrownjr", "bogdankispert", "bogdankispertiii", "jrgoranbrown", "GoranBrown"]


@pytest.fixture
def lookalikes(store: DuckDBStore) -> DuckDBStore:
    """Open PLAYER_DNP items of players whose lookups contain one another, on three dates each."""
    rows = [
        precompute_row(
            entity_id=p,
            analysis_date=DAY - dt.timedelta(days=d),
            failure_type="PLAYER_DNP",
            is_correctable=False,
            run_id=f"r{d}",
        )
        for p in LOOKALIKES
        for d in range(3)
    ]
    _write(store, "precompute_failures", rows)
    return store


def _their_keys(store: DuckDBStore, entity: str) -> set[str]:
    every = pd.concat(q.iter_items(store, Filters(hide_expected=False)))
    return set(every.loc[every["entity_id"] == entity, "key"])


@pytest.mark.parametrize("player", LOOKALIKES)
def test_marking_a_players_streak_permanent_touches_his_items_and_no_one_elses(
    lookalikes: DuckDBStore, player: str
) -> None:
    scope = resolution.streak_scope(
        Filters(date_from=DAY - dt.timedelta(days=30), date_to=DAY), player, DAY - dt.timedelta(days=2), DAY
    )
    change = resolution.apply(lookalikes, scope, "PERMANENT", actor=ALICE, note="streak")
    written = _events(lookalikes)
    assert set(written["item_key"]) == _their_keys(lookalikes, player) and change.changed == 3
    assert set(written["entity_id"]) == {player}


@pytest.mark.parametrize("player", LOOKALIKES)
def test_a_players_page_lists_his_items_only(lookalikes: DuckDBStore, player: str) -> None:
    mine = players.items(lookalikes, player, Filters(date_from=DAY - dt.timedelta(days=5), date_to=DAY))
    assert set(mine["key"]) == _their_keys(lookalikes, player)


def test_a_heatmap_cell_names_one_team_exactly(lookalikes: DuckDBStore) -> None:
    from lib import patterns

    evidence = pd.DataFrame(
        [
            {
                "source_table": "precompute_failures",
                "processor_name": "PlayerDailyCacheProcessor",
                "run_id": "r0",
                "analysis_date": DAY,
                "entity_id": p,
                "game_date": DAY - dt.timedelta(days=1),
                "game_id": "g",
                "team_abbr": team,
                "verdict": "PLAYER_DNP",
                "is_correctable": False,
                "dnp_reason": "DNP",
                "classified_at": pd.Timestamp("2022-01-01", tz="UTC"),
            }
            for p, team in (("goranbrown", "LA"), ("goranbrownjr", "LAL"), ("bogdankispert", "LAC"))
        ]
    )
    lookalikes.insert_frame("nba_processing.failure_missing_games", evidence)
    f = resolution.dnp_scope(Filters(date_from=DAY, date_to=DAY)).filters
    for team, player in (("LA", "goranbrown"), ("LAL", "goranbrownjr"), ("LAC", "bogdankispert")):
        keys = patterns.team_date_keys(lookalikes, f, team, DAY)
        assert [k.entity_id for k in keys] == [player]


def test_the_command_line_resolves_one_entity_exactly(lookalikes: DuckDBStore) -> None:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            [
                "resolve",
                "--db",
                str(lookalikes.path),
                "--actor",
                "alice",
                "--to",
                "PERMANENT",
                "--note",
                "x",
                "--entity-id",
                "goranbrown",
                "--since",
                "2021-12-01",
                "--until",
                "2021-12-31",
            ]
        )
    assert code == 0, err.getvalue()
    assert set(_events(lookalikes)["entity_id"]) == {"goranbrown"}


_entity = st.text(alphabet=st.sampled_from("abAB:%_\\'\" .j r-1"), min_size=0, max_size=6)


@settings(
    max_examples=int(os.environ.get("TRIAGE_SCOPE_EXAMPLES", "40")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(entities=st.lists(_entity, min_size=2, max_size=6, unique=True), pick=st.integers(0, 5))
def test_a_scope_built_from_a_clicked_entity_writes_exactly_that_entity(
    tmp_path_factory: pytest.TempPathFactory, empty_db_path: Path, entities: list[str], pick: int
) -> None:
    """Random entity ids that are prefixes, suffixes and case variants of each other, with LIKE wildcards,
    quotes and the key's separator: the scope of a click writes the clicked entity's items and nothing else."""
    path = tmp_path_factory.mktemp("scope") / "s.duckdb"
    shutil.copy(empty_db_path, path)  # a fresh database of the example's own, without forty statements each
    store = DuckDBStore(path)
    _write(
        store,
        "precompute_failures",
        [precompute_row(entity_id=e, failure_type="PLAYER_DNP", is_correctable=False) for e in entities],
    )
    clicked = entities[pick % len(entities)]
    for scope in (
        resolution.streak_scope(Filters(), clicked, DAY, DAY),
        resolution.Scope(Filters(date_from=DAY, date_to=DAY, entity_exact=clicked, hide_expected=False)),
    ):
        resolution.apply(store, scope, "PERMANENT", actor=ALICE, note="click")
        assert set(_events(store)["entity_id"]) == {clicked}, (entities, clicked)


# -- 2. roles: system only where configured, every public write checked -------------------------------

VIEWER = Actor("vera", Role.VIEWER)
NOBODY: list[Actor | None] = [None, Actor(""), Actor("   "), VIEWER]


@functools.cache
def _season() -> demo.Demo:
    return demo.build(seed=3)


def _writes(store: DuckDBStore) -> dict[str, Callable[[Actor | None], object]]:
    """Every public write in ``lib``, each as a call with the actor to check."""
    season = _season()
    now = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    key = ItemKey("precompute_failures", "PlayerDailyCacheProcessor", DAY, "zachlavine")
    return {
        "resolution.apply": lambda a: resolution.apply(
            store, resolution.Scope.of_keys([key]), "PERMANENT", actor=a, note="n"
        ),
        "resolution.autoresolve": lambda a: resolution.autoresolve(store, actor=a, now=now),
        "resolution.sync_statuses": lambda a: resolution.sync_statuses(store, actor=a),
        "classification.run": lambda a: classification.run(store, actor=a, now=now),
        "classification.run --all": lambda a: classification.run(store, actor=a, now=now, include_classified=True),
        "processors.record_failures": lambda a: processors.record_failures(
            store, "precompute_failures", [precompute_row(run_id="new")], actor=a, now=now
        ),
        "demo.write": lambda a: demo.write(store, season, actor=a),
        "demo.seed": lambda a: demo.seed(store, 3, actor=a, history=False),
        "demo.add_scale_rows": lambda a: demo.add_scale_rows(store, 10, players=["x"], actor=a),
        "index.reindex": lambda a: index.reindex(store, actor=a),
        "nightly.run": lambda a: nightly.run(store, actor=a, now=now),
    }


def _state(store: DuckDBStore) -> tuple[int, ...]:
    counts = []
    for table, column in (
        ("precompute_failures", "analysis_date"),
        ("failure_resolutions", "item_date"),
        ("triage_operations", "started_at"),
        ("failure_missing_games", "analysis_date"),
    ):
        where = "DATE(started_at)" if column == "started_at" else column
        counts.append(
            int(
                store.query(
                    f"SELECT COUNT(*) AS n FROM nba_processing.{table} WHERE {where} BETWEEN @a AND @b",
                    {"a": dt.date(1, 1, 1), "b": dt.date(9999, 12, 31)},
                )["n"].iloc[0]
            )
        )
    typed = store.query(
        "SELECT COUNT(*) AS n FROM nba_processing.precompute_failures WHERE analysis_date BETWEEN @a "
        "AND @b AND failure_type IS NOT NULL",
        {"a": dt.date(1, 1, 1), "b": dt.date(9999, 12, 31)},
    )
    return (*counts, int(typed["n"].iloc[0]))


@pytest.fixture
def one_item(store: DuckDBStore) -> DuckDBStore:
    _write(store, "precompute_failures", [precompute_row()])
    return store


@pytest.fixture
def roles_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deployment with roles (everyone a viewer unless listed) that has not configured ``system``."""
    monkeypatch.setenv("TRIAGE_DEFAULT_ROLE", "viewer")
    monkeypatch.setenv("TRIAGE_RESOLVERS", "alice")
    monkeypatch.delenv("TRIAGE_SYSTEM_USERS", raising=False)


WRITES = [
    "resolution.apply",
    "resolution.autoresolve",
    "resolution.sync_statuses",
    "classification.run",
    "classification.run --all",
    "processors.record_failures",
    "demo.write",
    "demo.seed",
    "demo.add_scale_rows",
    "index.reindex",
    "nightly.run",
]


@pytest.mark.parametrize("write", WRITES)
def test_every_public_write_refuses_nobody_a_viewer_and_an_unconfigured_system(
    one_item: DuckDBStore, write: str, roles_configured: None
) -> None:
    call = _writes(one_item)[write]
    before = _state(one_item)
    for actor in [*NOBODY, SYSTEM, Actor("SYSTEM"), Actor(" System ")]:
        with pytest.raises(NotAllowed):
            call(actor)
        assert _state(one_item) == before, (write, actor)  # refused before anything was written


def test_the_writes_list_is_every_public_write(one_item: DuckDBStore) -> None:
    assert sorted(_writes(one_item)) == sorted(WRITES)


@pytest.mark.parametrize("write", [w for w in WRITES if w != "resolution.apply"])
def test_system_acts_where_it_is_configured_for_this_account(
    one_item: DuckDBStore, write: str, roles_configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if write in ("demo.write", "demo.seed"):
        one_item.execute("DELETE FROM nba_processing.precompute_failures WHERE analysis_date = @d", {"d": DAY})
    monkeypatch.setenv("TRIAGE_SYSTEM_USERS", f"someone-else, {account()}")
    _writes(one_item)[write](SYSTEM)  # no refusal
    monkeypatch.setenv("TRIAGE_SYSTEM_USERS", "someone-else")
    with pytest.raises(NotAllowed, match="not among those"):
        _writes(one_item)[write](SYSTEM)
    monkeypatch.setenv("TRIAGE_SYSTEM_USERS", "*")
    monkeypatch.setenv("TRIAGE_VIEWERS", "system")
    with pytest.raises(NotAllowed, match="viewers"):
        _writes(one_item)[write](SYSTEM)


def test_system_never_authors_a_hand_made_change_even_where_configured(
    one_item: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIAGE_SYSTEM_USERS", "*")
    with pytest.raises(NotAllowed, match="unattended"):
        _writes(one_item)["resolution.apply"](SYSTEM)


COMMANDS = [
    ["init"],
    ["demo", "--replace"],
    ["classify"],
    ["classify", "--all"],
    ["autoresolve"],
    ["sync-status"],
    ["reindex"],
    ["nightly"],
    ["resolve", "--to", "PERMANENT", "--note", "n", "--since", "2021-12-31"],
]


def _run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_every_command_refuses_system_and_viewers_where_roles_are_configured(
    one_item: DuckDBStore, command: list[str], roles_configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = ["--db", str(one_item.path)]
    before = _state(one_item)
    names = ["system", "SYSTEM", " System ", "vera"] if command[0] != "nightly" else [None, "system", "vera"]
    for name in names:
        monkeypatch.delenv("TRIAGE_ACTOR", raising=False)
        code, err = _run([*command, *db, *(["--actor", name] if name is not None else [])])
        assert code == 1 and "may not" in err and "Traceback" not in err, (command, name, err)
        assert _state(one_item) == before, (command, name)
    monkeypatch.setenv("TRIAGE_VIEWERS", "system")
    monkeypatch.setenv("TRIAGE_SYSTEM_USERS", "*")
    code, err = _run([*command, *db, "--actor", "system"])
    assert code == 1 and "may not" in err, (command, err)
    assert _state(one_item) == before


@pytest.mark.parametrize("command", [c for c in COMMANDS if c[0] != "resolve"], ids=lambda c: " ".join(c[:2]))
def test_every_unattended_command_runs_as_system_where_it_is_configured(
    one_item: DuckDBStore, command: list[str], roles_configured: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIAGE_SYSTEM_USERS", account())
    code, err = _run(
        [*command, "--db", str(one_item.path), *(["--actor", "system"] if command[0] != "nightly" else [])]
    )
    assert code in (0, 3), (command, err)
    logged = one_item.query(
        "SELECT DISTINCT actor FROM nba_processing.triage_operations WHERE DATE(started_at) BETWEEN @a AND @b",
        {"a": dt.date(1, 1, 1), "b": dt.date(9999, 12, 31)},
    )
    assert set(logged["actor"]) == {"system"}, (command, logged)


# -- 3. the spreadsheet guard quotes every line break ------------------------------------------------

BREAKERS = ["x\r=cmd|' /C calc'!A0", "x\n=1+1", "x\r\n@SUM(1)", "\r=1", "=1+1", "+1", "-1", "@x", "\tx", "ok"]


def _spreadsheet_safe(text: str, rows: int) -> None:
    """Parsed as a spreadsheet would: the rows expected, and no cell that starts like a formula."""
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert len(parsed) == rows + 1, parsed[:5]
    bad = [cell for row in parsed for cell in row if cell.startswith(FORMULA_START)]
    assert bad == []


@pytest.fixture
def breaking(store: DuckDBStore) -> DuckDBStore:
    rows = [
        precompute_row(
            entity_id=f"e{i}{text}",
            run_id=text,
            processor_name=f"P{text}",
            failure_category=text,
            failure_reason=text,
            failure_type=text,
        )
        for i, text in enumerate(BREAKERS)
    ]
    _write(store, "precompute_failures", rows)
    keys = list(pd.concat(q.iter_items(store, Filters(hide_expected=False)))["key"])
    for text, key in zip(BREAKERS, keys, strict=True):
        resolution.apply(
            store, resolution.Scope.of_keys([key]), "INVESTIGATING", actor=Actor(f"a{text}"), note=f"note {text}"
        )
    return store


def test_the_command_lines_csv_quotes_every_line_break(breaking: DuckDBStore) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["items", "--db", str(breaking.path), "--include-expected", "--format", "csv"]) == 0
    _spreadsheet_safe(out.getvalue(), len(BREAKERS))


def test_the_dashboards_downloads_quote_every_line_break(breaking: DuckDBStore) -> None:
    from lib import activity
    from ui import data

    listed = data.csv_export(breaking, Filters(hide_expected=False), "newest date")()
    _spreadsheet_safe(listed.decode("utf-8"), len(BREAKERS))
    columns = ["at", "actor", "item_key", "from_status", "to_status", "note", "origin"]
    trail = data.activity_export(breaking, activity.ActivityFilters(), columns)
    _spreadsheet_safe(trail.decode("utf-8"), len(BREAKERS))


# -- 4. every row the schema allows, on every page and panel ------------------------------------------

DEEP = "[" * 5000 + "]" * 5000
TEXT_COLUMNS = (
    "processor_name",
    "run_id",
    "entity_id",
    "failure_category",
    "failure_reason",
    "failure_type",
    "resolution_status",
)
NULLABLE = (
    "failure_type",
    "is_correctable",
    "expected_game_count",
    "actual_game_count",
    "missing_game_dates",
    "raw_data_checked",
    "resolution_status",
    "resolved_at",
    "created_at",
)


def every_row_the_schema_allows() -> list[dict[str, Any]]:
    """Precompute rows: the calendar's ends, NULL in each nullable column, line breaks in each text column,
    JSON nested past any parser's patience, and counts at the limits of INT64."""
    rows: list[dict[str, Any]] = [
        {"analysis_date": dt.date(9999, 12, 31), "entity_id": "lastday"},
        {"analysis_date": dt.date(1, 1, 1), "entity_id": "firstday"},
        {"missing_game_dates": DEEP, "entity_id": "deepjson"},
        {"missing_game_dates": '[{"a": [1, 2]}, null, true]', "entity_id": "oddjson"},
        {"expected_game_count": 2**63 - 1, "actual_game_count": -(2**63), "entity_id": "extremes"},
    ]
    rows += [{column: None, "entity_id": f"null{column}"} for column in NULLABLE]
    rows += [
        {column: f"a\r=b\nc{column}", "entity_id": f"breaks{column}"}
        for column in TEXT_COLUMNS
        if column != "entity_id"
    ]
    rows += [{"entity_id": "player\r\nname"}]
    return rows


@pytest.fixture(scope="module")
def every_row(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = DuckDBStore(tmp_path_factory.mktemp("every-row") / "every.duckdb")
    store.init_schema()
    for column in ("resolution_status", "created_at"):  # the pipeline's NULLs, not the table's defaults
        store.execute(f"ALTER TABLE nba_processing.precompute_failures ALTER COLUMN {column} DROP DEFAULT")
    rows = [precompute_row(**r) for r in every_row_the_schema_allows()]
    frame = pd.DataFrame(rows)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    for column in ("expected_game_count", "actual_game_count"):
        frame[column] = pd.array([r[column] for r in rows], dtype="Int64")
    store.insert_frame("nba_processing.precompute_failures", frame)
    classification.run(store, actor=SYSTEM, now=dt.datetime(2022, 1, 1, tzinfo=dt.UTC), since=dt.date(1, 1, 1))
    return store.path


def _app(db: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("TRIAGE_DB", str(db))
    monkeypatch.setenv("TRIAGE_OPERATOR", "alice")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"from": "0001-01-01", "to": "9999-12-31", "hide_expected": "false"})
    return at


PAGES = [
    "",
    "views/triage/failures.py",
    "views/triage/incidents.py",
    "views/triage/player.py",
    "views/triage/patterns.py",
    "views/triage/work.py",
    "views/triage/settling.py",
    "views/audit/activity.py",
]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_survives_every_row_the_schema_allows(
    every_row: Path, page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _app(every_row, monkeypatch)
    at.run()
    if page:
        at.switch_page(page)
        if page.endswith("player.py"):
            at.query_params["player"] = "lastday"
        at.run()
    assert not at.exception, [e.value[:500] for e in at.exception]


def test_every_items_panel_opens(every_row: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = list(pd.concat(q.iter_items(DuckDBStore(every_row), Filters(hide_expected=False)))["key"])
    assert len(keys) == len(every_row_the_schema_allows())
    at = _app(every_row, monkeypatch)
    at.run()
    at.switch_page("views/triage/failures.py")
    for key in keys:
        at.query_params["item"] = key
        at.run()
        assert not at.exception, (key[:80], [e.value[:500] for e in at.exception])
        assert any("Item key" in c.value for c in at.caption), key[:80]  # the panel is there
    for player in ("lastday", "deepjson", "player\r\nname", ""):
        at = _app(every_row, monkeypatch)
        at.run()
        at.switch_page("views/triage/player.py")
        at.query_params["player"] = player
        at.run()
        assert not at.exception, (player, [e.value[:500] for e in at.exception])


def test_a_production_deployment_shows_no_traceback() -> None:
    config = (ROOT / ".streamlit" / "config.toml").read_text()
    assert 'showErrorDetails = "none"' in config


# -- 5. items without a processor or an entity are classified, and rows without a date are said ---------


def test_items_without_a_processor_or_entity_are_classified_not_claimed(tmp_path: Path) -> None:
    from tests.hardening.test_hostile_rows import hostile_store

    store = hostile_store(
        tmp_path / "nulls.duckdb",
        rows=[{"processor_name": None, "entity_id": "nullproc"}, {"entity_id": None}, {"entity_id": "fine"}],
    )
    report = classification.run(store, actor=SYSTEM, now=dt.datetime(2022, 1, 1, tzinfo=dt.UTC))
    assert report.items == 3
    rows = store.query(
        "SELECT processor_name, entity_id, failure_type FROM nba_processing.precompute_failures "
        "WHERE analysis_date = @d",
        {"d": DAY},
    )
    assert rows["failure_type"].notna().all(), rows  # every row got its verdict: none was reported and skipped
    assert sum(report.by_type.values()) == 3


def test_rows_without_a_date_are_counted_and_the_overview_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DuckDBStore(tmp_path / "undated.duckdb")
    store.init_schema()
    store.execute("ALTER TABLE nba_processing.precompute_failures ALTER COLUMN analysis_date DROP NOT NULL")
    _write(store, "precompute_failures", [precompute_row(), precompute_row(analysis_date=None, entity_id="nodate")])
    assert q.bounds(store).undated == 1 and q.bounds(store).rows == 1
    at = _app(store.path, monkeypatch)
    at.run()
    assert any("1 failure row(s) have no date" in w.value for w in at.warning), [w.value for w in at.warning]


# -- 6. the command line refuses before it works ------------------------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lib", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TRIAGE_WEBHOOK_URL": "", **(env or {})},
        timeout=300,
    )


def test_a_digest_that_cannot_be_written_is_refused_before_the_job_runs(one_item: DuckDBStore, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    before = _state(one_item)
    for target in ("/proc/digest.md", str(blocker / "digest.md"), "/proc/self/digest"):
        run = _cli("nightly", "--db", str(one_item.path), "--digest", target)
        assert run.returncode == 2 and "--digest" in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert _state(one_item) == before  # refused before any work


def test_a_digest_into_a_folder_lands_in_it(one_item: DuckDBStore, tmp_path: Path) -> None:
    folder = tmp_path / "digests"
    folder.mkdir()
    run = _cli("nightly", "--db", str(one_item.path), "--digest", f"{folder}/")
    summary = json.loads(run.stdout.splitlines()[-1])
    assert run.returncode == 0, run.stderr
    assert summary["digest"] == [str(folder / "digest.md"), str(folder / "digest.json")]
    assert sorted(p.name for p in folder.iterdir()) == ["digest.json", "digest.md"]
    assert not (tmp_path / "digests.md").exists()


def test_a_digest_that_fails_to_write_after_the_work_still_says_what_was_done(
    one_item: DuckDBStore, tmp_path: Path
) -> None:
    result = nightly.run(one_item, actor=SYSTEM, now=dt.datetime(2022, 1, 1, tzinfo=dt.UTC))
    assert result.exit_code == nightly.EXIT_DONE
    blocker = tmp_path / "a-file"  # its folder became a file after the check (a folder in a file: root too fails)
    blocker.write_text("x")
    data = nightly.write_digest(result, blocker / "sub" / "digest.md", dashboard=None)
    assert data["changes"] is not None  # the digest is still there to be posted
    assert result.exit_code == nightly.EXIT_NOT_POSTED and result.summary()["digest"].startswith("failed: ")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "ftp://x/y", "triage.example", "http://"])
def test_a_dashboard_address_that_is_not_http_is_refused(one_item: DuckDBStore, url: str) -> None:
    run = _cli("nightly", "--db", str(one_item.path), "--dashboard-url", url)
    assert run.returncode == 2 and "--dashboard-url" in run.stderr and not run.stdout


def test_an_empty_triage_db_is_refused_like_an_empty_db_option(tmp_path: Path) -> None:
    run = _cli("items", env={"TRIAGE_DB": ""})
    assert run.returncode == 2 and "TRIAGE_DB is set but empty" in run.stderr
    run = _cli("items", env={"TRIAGE_DB": "  "})
    assert run.returncode == 2


@pytest.mark.parametrize("command", [["autoresolve"], ["classify"], ["sync-status"], ["nightly"], ["reindex"]])
def test_commands_that_change_a_database_never_create_one(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "no" / "such.duckdb"
    run = _cli(*command, "--db", str(missing), "--actor", "alice")
    assert run.returncode == 1 and "no database" in run.stderr.lower(), run.stderr
    assert not missing.parent.exists()


def test_names_that_match_nothing_are_warned_about(one_item: DuckDBStore) -> None:
    run = _cli(
        "items",
        "--db",
        str(one_item.path),
        "--include-expected",
        "--type",
        "PLAYR_DNP",
        "--processor",
        "PlayerDailyCacheProcesor",
    )
    assert run.returncode == 0 and json.loads(run.stdout) == []
    assert "--type 'PLAYR_DNP' is not a failure type" in run.stderr
    assert "--processor 'PlayerDailyCacheProcesor' recorded no failure" in run.stderr
    run = _cli("classify", "--db", str(one_item.path), "--actor", "alice", "--window", "PlayerDailyCacheProcesor=5g")
    assert run.returncode == 0 and "--window names 'PlayerDailyCacheProcesor'" in run.stderr


# -- 7. smaller ------------------------------------------------------------------------------------------


def test_an_event_edited_in_place_is_noticed_by_the_index(one_item: DuckDBStore) -> None:
    key = ItemKey("precompute_failures", "PlayerDailyCacheProcessor", DAY, "zachlavine")
    resolution.apply(one_item, resolution.Scope.of_keys([key]), "RESOLVED", actor=ALICE, note="done")
    f = Filters(date_from=DAY, date_to=DAY, hide_expected=False)
    assert q.kpis(one_item, f).unresolved == 0
    one_item.execute(
        "UPDATE nba_processing.failure_resolutions SET to_status = 'UNRESOLVED' WHERE item_date = @d", {"d": DAY}
    )
    assert q.kpis(one_item, f).unresolved == 1
    with index.bypassed(one_item):
        assert q.kpis(one_item, f).unresolved == 1


def test_a_classification_killed_half_way_leaves_its_start_in_the_log(tmp_path: Path) -> None:
    db = tmp_path / "killed.duckdb"
    seeded = _cli("demo", "--db", str(db), "--actor", "system", "--skip-classify")
    assert seeded.returncode == 0, seeded.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "lib", "classify", "--db", str(db), "--actor", "alice", "--batch-size", "500"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # killed once its first batch is under way
        if "Classified" in line:
            break
    proc.kill()
    proc.wait()
    store = DuckDBStore(db)
    from lib import operations

    log = operations.recent(store)
    mine = log[(log["kind"] == "classify") & (log["actor"] == "alice")]
    assert len(mine) == 1 and mine.iloc[0]["outcome"] == operations.STARTED and pd.isna(mine.iloc[0]["finished_at"])


def _show_a_conflict() -> None:
    from lib.resolution import Conflict
    from ui import context

    context.show_error(Conflict(["precompute_failures:P:2021-12-31:x", "precompute_failures:P:2021-12-31:smile"], 2))


def test_a_message_quoting_a_key_that_ends_in_x_is_shown_as_text() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_show_a_conflict)
    at.run()
    shown = at.error[0].value
    assert "31\\:x," in shown and re.search(r"(?<!\\):", shown) is None, shown  # every colon escaped
