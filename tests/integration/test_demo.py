"""The demo season is deterministic and looks like the real pipeline's data."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from lib import classification, demo
from lib.access import SYSTEM
from lib.model import Filters, Page
from lib.store import DuckDBStore
from lib.store import queries as q
from tests.conftest import ROOT


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(demo_season: demo.Demo) -> None:
    again = demo.build(seed=7)
    pd.testing.assert_frame_equal(again.gamebook, demo_season.gamebook)
    for name, frame in demo_season.failures.items():
        pd.testing.assert_frame_equal(again.failures[name], frame)
    other = demo.build(seed=8)
    assert not other.gamebook.equals(demo_season.gamebook)


def test_the_schedule_is_a_season_of_thirty_teams(demo_season: demo.Demo) -> None:
    s = demo_season.schedule
    regular = s[s["is_regular_season"]]
    assert len(regular) == 1230
    per_team = Counter(regular["home_team_tricode"]) + Counter(regular["away_team_tricode"])
    assert len(per_team) == 30 and min(per_team.values()) >= 76 and max(per_team.values()) <= 88
    per_day = regular.groupby("game_date").size()
    assert 5 <= per_day.median() <= 9 and per_day.max() <= 15
    assert set(s["game_id"].str[:3]) == {"001", "002"} and s["game_id"].str.len().eq(10).all()
    assert (s["game_status"] != 3).sum() >= 1  # postponed games exist and are not final


def test_box_scores_have_a_real_world_mix_of_statuses_and_reasons(demo_season: demo.Demo) -> None:
    g = demo_season.gamebook
    per_team_game = g.groupby(["game_id", "team_abbr"]).size()
    assert 12 <= per_team_game.median() <= 20
    status = g["player_status"].value_counts(normalize=True)
    assert 0.55 <= status["active"] <= 0.8 and status["dnp"] > 0.1 and status["inactive"] > 0.03
    reasons = g.loc[g["player_status"] == "dnp", "dnp_reason"].value_counts()
    assert reasons.index[0] == "DNP - Coach's Decision"
    assert {"DND - Injury/Illness", "NWT - League Suspension", "NWT - Not With Team", "DNP - Rest"} <= set(
        reasons.index
    )
    assert g.loc[g["player_status"] == "active", "minutes"].str.fullmatch(r"\d\d:\d\d").all()
    assert g.loc[g["player_status"] != "active", "minutes"].isin([None, "00:00"]).all()
    december = g[(g["game_date"] >= dt.date(2021, 12, 15)) & (g["game_date"] <= dt.date(2022, 1, 5))]
    assert december["dnp_reason"].fillna("").str.contains("Health and Safety").sum() > 50
    assert (g["name_resolution_status"] != "resolved").sum() >= 10
    assert g["game_id"].str.fullmatch(r"\d{8}_[A-Z]{3}_[A-Z]{3}").all()


def test_traps_of_the_domain_are_all_present(demo_season: demo.Demo) -> None:
    traded = [p for p in demo_season.players if len(p.stints) > 1]
    assert len(traded) >= 4
    inj = demo_season.injected
    assert len(inj["raw_gap_games"]) == 4 and len(inj["backfilled_games"]) == 2 and len(inj["side_gaps"]) == 3
    s = demo_season.schedule.set_index("game_id")
    for gid in inj["raw_gap_games"]:
        row = s.loc[gid]
        book = f"{row['game_date']:%Y%m%d}_{row['away_team_tricode']}_{row['home_team_tricode']}"
        assert not (demo_season.gamebook["game_id"] == book).any()
    analytics_ids = set(demo_season.analytics["game_id"])
    for gid in inj["analytics_gap_games"]:
        row = s.loc[gid]
        assert f"{row['game_date']:%Y%m%d}_{row['away_team_tricode']}_{row['home_team_tricode']}" not in analytics_ids
    # inactive players are omitted by some games' source: some team-games list no inactive player at all
    g = demo_season.gamebook
    with_inactive = g[g["player_status"] == "inactive"].groupby(["game_id", "team_abbr"]).size()
    assert len(with_inactive) < 0.9 * g.groupby(["game_id", "team_abbr"]).ngroups


def test_failures_look_like_the_pipelines(demo_season: demo.Demo) -> None:
    pf = demo_season.failures["precompute_failures"]
    start = dt.date(2021, 10, 19)
    early = pf[pf["analysis_date"] < start + dt.timedelta(days=14)]
    late = pf[pf["analysis_date"] >= dt.date(2022, 1, 1)]
    early_share = (early["failure_category"] == "INSUFFICIENT_DATA").mean()
    late_share = (late["failure_category"] == "INSUFFICIENT_DATA").mean()
    assert early_share > 0.6 and late_share < early_share - 0.3  # bootstrap failures dominate early season
    assert set(pf["processor_name"]) == set(demo.PHASE4_PROCESSORS)
    assert {"calculation_error", "MISSING_DEPENDENCIES", "SCHEMA_DRIFT"} <= set(pf["failure_category"])
    assert pf["failure_reason"].str.len().max() == 1000
    assert pf["resolution_status"].isna().sum() > 100
    assert pf["run_id"].str.contains("rerun").any()
    # the pipeline's own classifier filled later rows, with JSON lists of dates
    filled = pf.dropna(subset=["missing_game_dates"])
    assert len(filled) > 100 and all(isinstance(json.loads(v), list) for v in filled["missing_game_dates"])
    af = demo_season.failures["analytics_failures"]
    assert af.duplicated(["processor_name", "analysis_date", "entity_id"]).any()  # phase-3 appends
    assert set(af["entity_type"]) <= {"PLAYER", "TEAM", "GAME"}
    pr = demo_season.failures["prediction_failures"]
    assert pr["cache_age_hours"].notna().any() and pr["entity_id"].eq("DATE_LEVEL").any()


def test_scale_rows_are_generated_in_the_engine(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "scale.duckdb")
    store.init_schema()
    added = demo.add_scale_rows(store, 25_000, per_day=1000, chunk=10_000, players=["a", "b", "c", "d"], actor=SYSTEM)
    assert added == 25_000
    b = q.bounds(store)
    assert b.rows == 25_000 and b.last_date == demo.REGULAR[1]
    assert (b.last_date - b.first_date).days == 24
    items = q.count_items(store, Filters(hide_expected=False))
    assert 0 < items < 25_000  # four players x five processors per day: the overflow repeats as reruns
    page = q.list_items(store, Filters(hide_expected=False), Page(size=5))
    assert set(page["entity_id"]) <= {"a", "b", "c", "d"}


def test_the_demo_command_refuses_to_mix_into_existing_data(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    run = [sys.executable, "-m", "lib", "demo", "--db", str(db), "--scale", "2k", "--actor", "system"]
    first = subprocess.run(run, cwd=ROOT, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "Generated 2,000 of 2,000" in first.stderr
    rows = q.bounds(DuckDBStore(db)).rows
    # Rows are what may mix: the classified database is replaced, and classifying the new rows again (as the
    # first run did) is left out.
    run.append("--skip-classify")
    second = subprocess.run(run, cwd=ROOT, capture_output=True, text=True)
    assert second.returncode == 2 and "--replace" in second.stderr
    assert q.bounds(DuckDBStore(db)).rows == rows
    third = subprocess.run([*run, "--replace"], cwd=ROOT, capture_output=True, text=True)
    assert third.returncode == 0
    assert q.bounds(DuckDBStore(db)).rows == rows  # deterministic: the same rows again, not twice


def test_the_command_line_explains_bad_arguments(tmp_path: Path) -> None:
    def demo_cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "lib", "demo", "--db", str(tmp_path / db), *args, "--actor", "system"]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)

    bad = demo_cli("x.duckdb", "--scale", "lots")
    assert bad.returncode == 2 and "row count" in bad.stderr and "Traceback" not in bad.stderr
    future = demo_cli("y.duckdb", "--as-of", "2999-01-01")
    assert future.returncode == 2 and "after tomorrow" in future.stderr and "Traceback" not in future.stderr
    assert not (tmp_path / "y.duckdb").exists() or q.bounds(DuckDBStore(tmp_path / "y.duckdb")).rows == 0
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    unusable = subprocess.run(
        [sys.executable, "-m", "lib", "init", "--db", str(blocked / "x.duckdb"), "--actor", "system"], cwd=ROOT,
        capture_output=True, text=True,
    )  # fmt: skip
    assert unusable.returncode == 1 and "error:" in unusable.stderr and "Traceback" not in unusable.stderr


AS_OF = dt.date(2030, 3, 15)  # a Friday, nowhere near the season's real dates


def _judged(store: DuckDBStore, since: dt.date, until: dt.date, shift: dt.timedelta) -> dict[tuple[str, ...], tuple]:
    rows = store.query(
        "SELECT processor_name, analysis_date, entity_id, failure_type, is_correctable "
        "FROM nba_processing.precompute_failures WHERE analysis_date BETWEEN @a AND @b",
        {"a": since, "b": until},
    )
    return {
        (r.processor_name, str(r.analysis_date - shift), r.entity_id): (r.failure_type, r.is_correctable)
        for r in rows.itertuples()
    }


@pytest.mark.heavy(30)
def test_the_demo_in_the_present_is_the_same_season_moved_whole(
    tmp_path: Path, demo_season: demo.Demo, demo_store: DuckDBStore
) -> None:
    """Issue 21: the season ends the day before ``as_of``; dates, recording times, dates inside text (box-score
    game ids, run ids, reasons, lists of missing dates) move together; nothing is dated on or after ``as_of``;
    and the classifier judges the moved season exactly as the real one (its truth: the unmoved season)."""
    moved_db, real_db = DuckDBStore(tmp_path / "moved.duckdb"), demo_store  # the real season, as written
    moved = demo.seed(moved_db, actor=SYSTEM, as_of=AS_OF)
    midnight = pd.Timestamp(dt.datetime.combine(AS_OF, dt.time(0), tzinfo=dt.UTC))
    shift = (AS_OF - dt.timedelta(days=1)) - dt.date(2022, 4, 10)
    assert demo.last_day(moved) == AS_OF - dt.timedelta(days=1)
    assert q.bounds(moved_db).last_date == AS_OF - dt.timedelta(days=1)
    for table in ("precompute_failures", "analytics_failures", "prediction_failures"):
        latest = moved_db.query(f"SELECT MAX(created_at) AS t FROM nba_processing.{table}").iloc[0]["t"]
        assert pd.Timestamp(latest) < midnight, table
    history = moved_db.query("SELECT MIN(at) AS a, MAX(at) AS b, COUNT(*) AS n FROM nba_processing.failure_resolutions")
    assert history.iloc[0]["n"] > 1000 and pd.Timestamp(history.iloc[0]["b"]) < midnight
    assert pd.Timestamp(history.iloc[0]["a"]).date() > dt.date(2022, 12, 31)  # none left in the real season
    seen = moved_db.query("SELECT operator, MAX(visited_at) AS at FROM nba_processing.triage_visits GROUP BY 1")
    assert set(seen["operator"]) == {"alice", "bob", "carol"}
    assert all(AS_OF - dt.timedelta(days=7) <= pd.Timestamp(t).date() < AS_OF for t in seen["at"])

    # Every box-score game id carries its (moved) date; every text date of a row lies in the moved season.
    gamebook = moved.gamebook
    assert (gamebook["game_id"].str[:8] == pd.to_datetime(gamebook["game_date"]).dt.strftime("%Y%m%d")).all()
    first, last = min(moved.schedule["game_date"]), demo.last_day(moved)
    p4 = moved.failures["precompute_failures"]
    for text in p4["missing_game_dates"].dropna():
        assert all(first <= dt.date.fromisoformat(d) <= last for d in json.loads(text)), text
    assert (p4["run_id"].str.extract(r"-(\d{8})")[0].dropna() >= first.strftime("%Y%m%d")).all()
    reasons = {t: [str(r) for r in f["failure_reason"]] for t, f in moved.failures.items()}
    real = [str(r) for f in demo_season.failures.values() for r in f["failure_reason"] if "2022-0" in str(r)]
    assert real and not any("2022-0" in r or "2021-1" in r or "_2022" in r for rs in reasons.values() for r in rs)
    assert int(moved.schedule["season_year"].iloc[0]) == first.year

    # The classifier's verdicts on a month of the moved season equal those on the same month of the real one.
    since, until = dt.date(2022, 1, 10), dt.date(2022, 1, 31)
    now = dt.datetime(2030, 3, 15, 8, tzinfo=dt.UTC)
    classification.run(real_db, actor=SYSTEM, now=now, since=since, until=until, include_classified=True)
    classification.run(moved_db, actor=SYSTEM, now=now, since=since + shift, until=until + shift,
                       include_classified=True)  # fmt: skip
    real, moved_verdicts = _judged(real_db, since, until, dt.timedelta(0)), _judged(moved_db, since + shift,
                                                                                  until + shift, shift)  # fmt: skip
    assert len(real) > 500 and moved_verdicts == real
    assert {v[0] for v in real.values()} >= {"PLAYER_DNP", "DATA_GAP"}
