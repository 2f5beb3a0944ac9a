"""The overview's "what changed" panel, its links into the failure list, visits, and the Settling page (AppTest)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib import briefing, resolution
from lib.access import SYSTEM
from lib.model import Actor, Filters, Page
from lib.store import DuckDBStore
from lib.store import queries as q
from tests.conftest import ROOT

APP = str(ROOT / "app.py")
TIMEOUT = 120
FROM, TO = dt.date(2022, 3, 12), dt.date(2022, 4, 10)  # the demo's default 30 days


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _metric(at: AppTest, label: str) -> tuple[str, str | None]:
    found = [m for m in at.metric if m.label == label]
    assert found, [m.label for m in at.metric]
    return found[0].value, found[0].proto.delta or None


def _settle_some(db: Path, n: int, hours_ago: float) -> list[str]:
    """Mark ``n`` items still UNRESOLVED permanent, as alice did ``hours_ago``."""
    store = DuckDBStore(db)
    keys = list(q.list_items(store, Filters(date_from=TO, date_to=TO, statuses=("UNRESOLVED",)), Page(1, n))["key"])
    resolution.apply(store, resolution.Scope.of_keys(keys), "PERMANENT", actor=Actor("alice"), note="dnp",
                     now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours_ago))  # fmt: skip
    return keys


def test_the_panel_counts_what_changed_and_the_kpis_say_by_how_much(app_db: Path) -> None:
    _settle_some(app_db, 7, hours_ago=2)  # today
    _settle_some(app_db, 3, hours_ago=30)  # yesterday's period: the delta's reference
    at = _run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    value, delta = _metric(at, "Settled")
    # 7 settled in the last 24 hours; the 3 before (they were settled 30 hours ago) make the delta +4.
    assert value == "7" and delta == "+4 vs the period before"
    assert _metric(at, "New items")[0] == "0" and _metric(at, "Regressed")[0] == "0"
    _, change = _metric(at, "Unresolved")
    assert change == "-7 vs then"  # 7 items left UNRESOLVED since the comparison point
    assert any("Settled by **alice** 7 permanent" in c.value for c in at.caption)


def test_each_link_lists_exactly_the_counted_items(app_db: Path) -> None:
    keys = _settle_some(app_db, 5, hours_ago=1)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=24)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"from": str(FROM), "to": str(TO), "changed": "settled",
                            "since": since.strftime("%Y-%m-%dT%H:%M:%SZ")})  # fmt: skip
    _run(at)
    at.switch_page("views/triage/failures.py")
    _run(at)
    assert any("Showing only the **5** item(s) counted as **Settled**" in i.value for i in at.info)
    shown = at.dataframe[0].value
    assert sorted(shown["key"]) == sorted(keys) if "key" in shown else len(shown) == 5


@pytest.mark.parametrize("params", [{"changed": "everything", "since": "2026-01-01"}, {"changed": "new", "since": "x"},
                                    {"changed": "<b>new</b>"}, {"since": "9999-99-99"}])  # fmt: skip
def test_a_broken_change_link_is_named_and_the_list_shows_everything(app_db: Path, params: dict[str, str]) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(params)
    _run(at)
    at.switch_page("views/triage/failures.py")
    _run(at)
    assert any("Ignored from the link" in w.value for w in at.warning)
    total = q.count_items(DuckDBStore(app_db), Filters(date_from=FROM, date_to=TO))
    assert any(f"{total:,} items" in m.value for m in at.markdown)


def test_since_my_last_visit_is_remembered_per_operator(app_db: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["identity_name"] = "dora"
    _run(at)  # her first visit: recorded, and nothing earlier to compare with
    store = DuckDBStore(app_db)
    first = briefing.last_visit(store, "dora", before=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    assert first is not None
    # Her visit of this morning, two hours ago; a reload within the hour is the same visit and writes nothing.
    briefing.record_visit(store, Actor("dora"), at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    _settle_some(app_db, 4, hours_ago=0)  # after that visit
    visits = store.query("SELECT COUNT(*) AS n FROM nba_processing.triage_visits").iloc[0]["n"]

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)  # a new session, within the hour of the first
    at.session_state["identity_name"] = "dora"
    at.query_params["compare"] = "My last visit"
    _run(at)
    assert any("your last visit" in c.value for c in at.caption), [c.value for c in at.caption]
    assert _metric(at, "Settled")[0] == "4"
    assert store.query("SELECT COUNT(*) AS n FROM nba_processing.triage_visits").iloc[0]["n"] == visits
    assert briefing.last_visit(store, "nobody", before=dt.datetime.now(dt.UTC)) is None


def test_without_a_name_there_is_no_last_visit_to_compare_with(app_db: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["compare"] = "My last visit"
    _run(at)
    assert any("Give your name" in c.value for c in at.caption)
    assert DuckDBStore(app_db).query("SELECT COUNT(*) AS n FROM nba_processing.triage_visits").iloc[0]["n"] == 0


def test_the_settling_page_charts_and_tabulates(app_db: Path) -> None:
    _settle_some(app_db, 6, hours_ago=5)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    _run(at)
    at.switch_page("views/triage/settling.py")
    _run(at)
    titles = [s.value for s in at.subheader]
    for wanted in ("Open backlog by age", "Time to settle, per week", "Regressions per week", "The numbers"):
        assert wanted in titles
    shown = {m.label: m.value for m in at.metric}
    assert shown["Settled"] == "6"
    store = DuckDBStore(app_db)
    open_items = q.count_items(store, Filters(date_from=FROM, date_to=TO, statuses=("UNRESOLVED", "INVESTIGATING",
                                                                                    "REGRESSED")))  # fmt: skip
    assert shown["Open items"] == f"{open_items:,}"
    week = at.dataframe[0].value
    assert int(week["settled"].sum()) == 6


def test_the_overview_says_when_the_nightly_job_last_ran(app_db: Path) -> None:
    at = _run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    assert any("No nightly job has run on this data yet" in c.value for c in at.caption)
    from lib import nightly

    result = nightly.run(DuckDBStore(app_db), actor=SYSTEM, now=dt.datetime.now(dt.UTC), since=TO, until=TO)
    assert result.exit_code == 0
    at = _run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    line = [c.value for c in at.caption if "Last nightly job" in c.value]
    assert line and "**done**" in line[0] and f"classified {result.classified:,}" in line[0]


def test_a_read_only_database_from_before_the_briefing_says_how_to_upgrade(app_db: Path) -> None:
    import stat

    import duckdb

    with duckdb.connect(str(app_db)) as con:  # a database made before the briefing's two tables existed
        con.execute("DROP TABLE nba_processing.classification_changes")
        con.execute("DROP TABLE nba_processing.triage_visits")
    app_db.chmod(stat.S_IRUSR | stat.S_IRGRP)
    try:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.run()
        assert not at.exception
        message = " ".join(e.value for e in at.error)
        message = message.replace("\\", "")  # shown as text: the markdown escapes go
        assert "classification_changes" in message and "triage_visits" in message, message
        assert "python -m lib init" in message
    finally:
        app_db.chmod(stat.S_IRUSR | stat.S_IWUSR)
    at = _run(AppTest.from_file(APP, default_timeout=TIMEOUT))  # writable again: created on the way, and shown
    assert _metric(at, "Settled")[0] == "0"


def test_a_read_only_database_from_before_the_item_index_shows_the_same_figures_from_the_rows(app_db: Path) -> None:
    import stat

    import duckdb

    at = _run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    figures = {label: _metric(at, label)[0] for label in ("Items", "Unresolved", "Correctable", "Not correctable")}
    with duckdb.connect(str(app_db)) as con:  # a database made before the item index existed
        for table in ("failure_items", "failure_rollups", "failure_index_dates"):
            con.execute(f"DROP TABLE nba_processing.{table}")
    app_db.chmod(stat.S_IRUSR | stat.S_IRGRP)
    try:
        at = _run(AppTest.from_file(APP, default_timeout=TIMEOUT))
        assert {label: _metric(at, label)[0] for label in figures} == figures
        note = " ".join(c.value for c in at.sidebar.caption)
        assert "computed from the failure rows" in note and "python -m lib init" in note, note
    finally:
        app_db.chmod(stat.S_IRUSR | stat.S_IWUSR)


def _items_shown(at: AppTest) -> int:
    found = [m.value for m in at.markdown if " match" in m.value and "items**" in m.value]
    assert found, [m.value[:80] for m in at.markdown]
    return int(found[0].split("**")[1].split()[0].replace(",", ""))


def test_the_list_shows_what_the_pipeline_said_and_lists_exactly_where_we_differ(app_db: Path) -> None:
    from lib import classification

    store = DuckDBStore(app_db)
    classification.run(store, actor=SYSTEM, now=dt.datetime(2022, 4, 12, tzinfo=dt.UTC))
    scope = Filters(date_from=FROM, date_to=TO)
    differ = q.count_items(store, scope.with_(disagree=True))
    assert differ > 0
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"from": str(FROM), "to": str(TO), "disagree": "true"})
    _run(at)
    tables = [d.value for d in at.dataframe if "disagree" in d.value.columns]
    assert len(tables) == 1  # the overview counts them by type
    shown = tables[0]
    assert int(shown["disagree"].sum()) == differ
    at.switch_page("views/triage/failures.py")
    _run(at)
    assert _items_shown(at) == differ
    listed = at.dataframe[0].value
    assert "pipeline_said" in listed.columns and listed["pipeline_said"].str.startswith("≠ ").all()
    at.query_params["item"] = str(listed["key"].iloc[0])  # its panel: whose verdict, what the pipeline said
    _run(at)
    assert any(m.value.startswith("**The pipeline said**") for m in at.markdown), [m.value[:60] for m in at.markdown]


def test_a_link_with_comma_joined_statuses_keeps_both(app_db: Path) -> None:
    _settle_some(app_db, 5, hours_ago=1)
    store = DuckDBStore(app_db)
    season = dt.date(2021, 10, 19)
    wanted = q.count_items(store, Filters(date_from=season, date_to=TO, statuses=("UNRESOLVED", "REGRESSED")))
    everything = q.count_items(store, Filters(date_from=season, date_to=TO))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"from": str(season), "to": str(TO), "status": "UNRESOLVED,REGRESSED"})
    _run(at)
    at.switch_page("views/triage/failures.py")
    _run(at)
    assert _items_shown(at) == wanted
    assert wanted != everything  # the link narrowed the list (it was dropped whole before)


def test_auto_resolve_on_the_work_queue_asks_first_and_reports_there(app_db: Path, monkeypatch) -> None:
    """Issue 21: it rewrites the verdicts of the whole range, so it asks first; its result shows on the page where
    it ran (it used to show only on the next visit to the overview)."""
    monkeypatch.setenv("TRIAGE_OPERATOR", "alice")
    store = DuckDBStore(app_db)
    before = store.query("SELECT COUNT(*) AS n FROM nba_processing.failure_resolutions").iloc[0]["n"]
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"from": "2022-04-01", "to": "2022-04-10"})
    _run(at)
    at.switch_page("views/triage/work.py")
    _run(at)
    at.button(key="overview_autoresolve").click()
    _run(at)
    # The confirm step: the range and how many items it re-judges; nothing has run yet.
    assert any("2022-04-01 to 2022-04-10" in m.value and "again from today's evidence" in m.value for m in at.markdown)
    assert store.query("SELECT COUNT(*) AS n FROM nba_processing.failure_resolutions").iloc[0]["n"] == before
    at.switch_page("views/triage/failures.py")  # left without an answer: it does not come back on the next visit
    _run(at)
    at.switch_page("views/triage/work.py")
    _run(at)
    assert not any("again from today's evidence" in m.value for m in at.markdown)
    at.button(key="overview_autoresolve").click()
    _run(at)
    at.button(key="autoresolve_go").click()
    _run(at)
    assert any("Auto-resolved" in s.value and "(actor: system)" in s.value for s in at.success), [
        s.value for s in at.success
    ]
    log = store.query("SELECT actor, outcome FROM nba_processing.triage_operations WHERE kind = 'autoresolve'")
    assert set(log["actor"]) == {"alice"} and list(log["outcome"]).count("done") == 1, log
    at.run()  # the report is shown once, then gone
    assert not any("Auto-resolved" in s.value for s in at.success)


def test_resolving_did_not_play_items_warns_that_they_will_recur(app_db: Path) -> None:
    store = DuckDBStore(app_db)
    day = Filters(date_from=dt.date(2022, 3, 1), date_to=dt.date(2022, 4, 10), failure_types=("PLAYER_DNP",))
    keys = list(q.list_items(store, day, Page(1, 3))["key"])
    assert len(keys) == 3
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["identity_name"] = "alice"
    at.query_params.update({"from": "2022-03-01", "to": "2022-04-10", "type": "PLAYER_DNP"})
    _run(at)
    at.switch_page("views/triage/failures.py")
    _run(at)
    at.segmented_control(key="failures_act_on").set_value("matching")
    _run(at)
    assert any(m.value.startswith("**All ") for m in at.markdown)  # the row names its scope
    at.button(key="failures_bulk_resolved").click()
    _run(at)
    assert any("PLAYER_DNP: the player did not play" in w.value for w in at.warning)
    assert next(t.placeholder for t in at.text_area if t.key == "resolve_note").startswith("e.g. box score")
    at.button(key="failures_bulk_permanent").click()
    _run(at)
    assert not any("PLAYER_DNP: the player did not play" in w.value for w in at.warning)
    assert "did not play" in next(t.placeholder for t in at.text_area if t.key == "resolve_note")


def test_the_list_prints_no_none_and_leads_with_what_tells_items_apart(app_db: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"from": "2022-03-12", "to": "2022-04-10"})
    _run(at)
    at.switch_page("views/triage/failures.py")
    _run(at)
    shown = at.dataframe[0].value
    text = ["missing_json", "failure_reason", "latest_run_id", "pipeline_said", "failure_category", "expected_count"]
    assert shown["missing_json"].eq("").any()  # items without a list of missing games: an empty cell
    assert not shown[text].isna().any().any(), shown[text].isna().sum()
    assert set(shown["processor_short"]) <= {"PDC", "MLFS", "PCF", "PSZA", "TDZA", "PGS", "UPGC", "UTGC", "PPP",
                                             "TOGS", "TDGS", "PC"}, set(shown["processor_short"])  # fmt: skip
