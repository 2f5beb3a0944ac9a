"""DNP patterns and the correctable work queue on the classified demo season."""

from __future__ import annotations

import datetime as dt

from lib import classification, patterns, players, workqueue
from lib.model import Filters
from lib.store import DuckDBStore
from lib.store import queries as q

SEASON = Filters(date_from=dt.date(2021, 10, 19), date_to=dt.date(2022, 4, 10))


def test_injected_raw_gaps_are_the_games_to_rescrape(classified: DuckDBStore, demo_season) -> None:
    rescrape = workqueue.games_to_fix(classified, SEASON, "RAW_DATA_GAP")
    listed = set(rescrape["game_id"])
    assert set(demo_season.injected["raw_gap_games"]) <= listed
    side_games = {s.split(":")[0] for s in demo_season.injected["side_gaps"]}
    assert side_games <= listed
    assert not set(demo_season.injected["backfilled_games"]) & listed  # their data arrived: nothing to re-scrape
    assert (rescrape["items"] > 0).all()


def test_analytics_gaps_are_the_games_to_reprocess(classified: DuckDBStore, demo_season) -> None:
    reprocess = set(workqueue.games_to_fix(classified, SEASON, "ANALYTICS_GAP")["game_id"])
    assert set(demo_season.injected["analytics_gap_games"]) <= reprocess


def test_reruns_follow_the_recovery_order_and_the_plan_exports_everything(classified: DuckDBStore) -> None:
    runs = workqueue.reruns(classified, SEASON)
    assert list(runs["step"]) == sorted(runs["step"])
    assert runs.iloc[0]["stage"] == "phase 3"
    assert {"PDC", "MLFS"} <= set(runs["stage"])
    assert int(runs["items"].sum()) == workqueue.counts(classified, SEASON)["open correctable items"]
    assert list(runs["section"]) == [f"4.{n}" for n in runs["step"]]  # the page's section 4, step by step
    plan = workqueue.plan(classified, SEASON)
    steps = [tuple(int(x) for x in s.split(".")) for s in plan["step"]]
    assert steps == sorted(steps) and set(plan["step"]) >= {"1", "2", "3", "4.4"}
    assert set(plan[plan["step"].str.startswith("4.")]["step"]) == set(runs["section"])  # numbered as on the page
    registry = plan[plan["task"] == "fix player registry name"]
    assert (registry["processor_name"] == "").all() and (registry["player"] != "").all()
    assert plan.iloc[0]["task"] == "re-scrape raw box score"
    assert {"re-process in phase 3", "fix player registry name", "re-run PDC"} <= set(plan["task"])


def test_resolved_items_leave_the_work_queue(classified: DuckDBStore, tmp_path) -> None:
    from lib import resolution
    from lib.model import Actor

    store = DuckDBStore(tmp_path / "w.duckdb")
    store.path.write_bytes(classified.path.read_bytes())
    day = Filters(date_from=dt.date(2022, 2, 1), date_to=dt.date(2022, 2, 10))
    before = workqueue.counts(store, day)["open correctable items"]
    assert before > 0
    scope = resolution.Scope(day.with_(correctable=("correctable",)))
    resolution.apply(store, scope, "RESOLVED", actor=Actor("alice"), note="re-scraped", now=dt.datetime.now(dt.UTC))
    assert workqueue.counts(store, day)["open correctable items"] == 0


def test_streaks_heatmap_and_shares_add_up(classified: DuckDBStore) -> None:
    f = Filters(date_from=dt.date(2021, 12, 1), date_to=dt.date(2022, 1, 15))
    runs = patterns.streaks(classified, f, limit=10)
    assert len(runs) == 10 and list(runs["games"]) == sorted(runs["games"], reverse=True)
    assert (runs["first_date"] <= runs["last_date"]).all()
    grid = patterns.team_dates(classified, f.with_(statuses=("UNRESOLVED", "INVESTIGATING", "REGRESSED")))
    assert grid["team"].nunique() == 30
    cell = grid.sort_values("players", ascending=False).iloc[0]
    keys = patterns.team_date_keys(classified, f, cell["team"], cell["item_date"])
    assert len({k.entity_id for k in keys}) == cell["players"]
    reasons = patterns.reasons_by_week(classified, f)
    assert {"coach's decision", "health and safety protocols", "injury / illness"} <= set(reasons["reason"])
    wave = reasons[reasons["reason"] == "health and safety protocols"].set_index("week")["games"]
    assert wave.idxmax() >= dt.date(2021, 12, 13)  # the December 2021 wave
    mass = patterns.mass_dates(classified, f)
    assert mass.iloc[0]["dnp_items"] == mass["dnp_items"].max()
    share = patterns.permanent_share(classified, f)
    assert ((share["share"] >= 0) & (share["share"] <= 1)).all()
    assert share.iloc[0]["permanent"] <= share.iloc[0]["classified"]


def test_players_are_found_by_name_or_lookup_and_their_items_listed(classified: DuckDBStore) -> None:
    some = classified.query(
        "SELECT player_lookup, player_name FROM nba_raw.nbac_gamebook_player_stats WHERE game_date = @d LIMIT 1",
        {"d": dt.date(2022, 1, 5)},
    ).iloc[0]
    by_name = players.search(classified, some["player_name"].split()[-1], dt.date(2021, 10, 1), dt.date(2022, 5, 1))
    assert some["player_lookup"] in set(by_name["player_lookup"])
    by_lookup = players.search(classified, some["player_lookup"], dt.date(2021, 10, 1), dt.date(2022, 5, 1))
    assert by_lookup.iloc[0]["player_lookup"] == some["player_lookup"]
    assert players.search(classified, "   ", dt.date(2021, 10, 1), dt.date(2022, 5, 1)).empty
    listed = players.items(classified, str(some["player_lookup"]), SEASON)
    assert (listed["entity_id"] == some["player_lookup"]).all()
    season = classification.player_season(classified, str(some["player_lookup"]), dt.date(2021, 10, 19),
                                          dt.date(2022, 4, 10))  # fmt: skip
    # His team's games (a later team's before he joined it are on the strip too, as "not with the team yet").
    with_team = [row for row in season if row[2] != "NOT_WITH_TEAM_YET"]
    assert 60 <= len(with_team) <= 90 and len(season) >= len(with_team)
    assert q.count_items(classified, SEASON.with_(entity=str(some["player_lookup"]), hide_expected=False)) >= len(
        listed
    )
