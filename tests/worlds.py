"""Random worlds for the equivalence of the engine's classifier and the pure oracle.

A world is two seasons of a small league, told game by game: who was on which roster (trades, signings,
returns after a missed season), who played, sat or was inactive (listed or left out), which box scores and
analytics rows never arrived, which names the registry left unresolved; then failure rows of every shape a
processor writes or a hostile writer could: players, teams, games in both id forms, date-level rows,
reruns and duplicates, listed dates and game ids (valid, malformed, out of range), every category seen in
production and some never seen, and the processors' windows. Built with Hypothesis so that a failing world
shrinks to a small one.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass

import pandas as pd
from hypothesis import strategies as st

from lib.classifier import ClassifierConfig
from lib.model import KNOWN_CATEGORIES, Window
from lib.store import Store
from lib.store.schema import ALL_TABLES

TEAMS = ("AAA", "BBB", "CC", "DDD", "EE", "FFF")
SEASONS = ((2020, dt.date(2020, 10, 1)), (2021, dt.date(2021, 10, 1)))
SEASON_DAYS = 75
PROCESSORS = (
    "PlayerDailyCacheProcessor",
    "PlayerCompositeFactorsProcessor",
    "TeamDefenseZoneAnalysisProcessor",
    "MLFeatureStoreProcessor",
    "UpcomingPlayerGameContextProcessor",
    "PlayerGameSummaryProcessor",
    "SomeNewProcessor",
)
CATEGORIES = (*KNOWN_CATEGORIES, "SCHEMA_DRIFT", " incomplete_data ", "insufficient_data", "")
REASONS = ("DNP - Coach's Decision", "DND - Injury/Illness", "NWT - Not With Team", "", None)
SCHEDULE_COLUMNS = ["game_id", "game_date", "game_status", "home_team_tricode", "away_team_tricode", "season_year",
                    "is_regular_season", "is_playoffs"]  # fmt: skip
GAMEBOOK_COLUMNS = ["game_id", "game_date", "team_abbr", "player_lookup", "player_name", "player_status", "dnp_reason",
                    "minutes", "name_resolution_status"]  # fmt: skip
MINUTES = ("31:12", "07:05", "0:00", "00:00:00", "12", "1.5", "0.0", " 22:10 ", "DNP", "", None, "3:00:00")


@dataclass
class World:
    schedule: pd.DataFrame
    gamebook: pd.DataFrame
    analytics: pd.DataFrame
    failures: dict[str, pd.DataFrame]
    config: ClassifierConfig


def _day(season: int, n: int) -> dt.date:
    return SEASONS[season][1] + dt.timedelta(days=n)


def worlds() -> st.SearchStrategy[World]:
    """A world from a seed Hypothesis chooses (and replays: a failure is reported with its seed)."""
    return st.integers(0, 2**32 - 1).map(build)


def build(seed: int) -> World:
    rng = random.Random(seed)
    with_seasons = rng.random() < 0.75
    # -- the schedule ----------------------------------------------------------------------------
    games = []
    serial = 0
    for s, (year, _) in enumerate(SEASONS):
        for n in range(SEASON_DAYS):
            if not (rng.random() < 0.5):
                continue
            teams = list(rng.sample(TEAMS, len(TEAMS)))
            for i in range(rng.randint(0, 3)):
                home, away = teams[2 * i], teams[2 * i + 1]
                serial += 1
                status = rng.choice((3, 3, 3, 3, 3, 1))
                games.append(
                    {"game_id": f"00{year % 100}1{serial:05d}", "game_date": _day(s, n), "game_status": status,
                     "home_team_tricode": home, "away_team_tricode": away,
                     "season_year": year if with_seasons else None, "is_regular_season": True, "is_playoffs": False}
                )  # fmt: skip
    schedule = pd.DataFrame(games, columns=SCHEDULE_COLUMNS)
    # -- rosters: each player's stints (season, from day, team) ------------------------------------
    players = [f"player{c}{k}" for c in "abcdefgh" for k in ("", "jr")][: rng.randint(3, 10)]
    stints: dict[str, list[tuple[int, int, int, str]]] = {}
    for p in players:
        out = []
        for s in range(2):
            if rng.randint(0, 4) == 0:
                continue  # missed the season
            start = rng.choice((0, 0, 0, 10, 25, 40))
            end = rng.choice((SEASON_DAYS, SEASON_DAYS, 30, 55))
            team = rng.choice(TEAMS)
            if rng.randint(0, 3) == 0 and end - start > 10:  # a trade
                mid = rng.randint(start + 1, end - 1)
                out += [(s, start, mid, team), (s, mid, end, rng.choice(TEAMS))]
            else:
                out.append((s, start, end, team))
        stints[p] = out
    # -- box scores and analytics --------------------------------------------------------------------
    raw_rows, ana_rows = [], []
    for g in games:
        if g["game_status"] != 3:
            continue
        s = 0 if g["game_date"] < SEASONS[1][1] else 1
        n = (g["game_date"] - SEASONS[s][1]).days
        for team in (g["away_team_tricode"], g["home_team_tricode"]):
            side_missing = rng.randint(0, 12) == 0
            gamebook_id = f"{g['game_date']:%Y%m%d}_{g['away_team_tricode']}_{g['home_team_tricode']}"
            roster = [p for p in players for (ss, a, b, t) in stints[p] if ss == s and a <= n < b and t == team]
            filler = f"{team.lower()}bench"
            for p in [*roster, filler]:
                fate = rng.choice(("play", "play", "play", "dnp", "inactive", "omitted"))
                if fate == "omitted":
                    continue
                minutes = rng.choice(MINUTES) if fate == "play" else None
                status = {"play": "active", "dnp": "dnp", "inactive": "inactive"}[fate]
                lookup, resolution = p, rng.choice(("resolved",) * 8 + ("unresolved", None))
                if resolution == "unresolved" and (rng.random() < 0.5):
                    lookup = p[-rng.randint(2, 6) :]  # only a piece of his name
                if not side_missing:
                    raw_rows.append(
                        {"game_id": gamebook_id, "game_date": g["game_date"], "team_abbr": team,
                         "player_lookup": lookup, "player_name": lookup, "player_status": status,
                         "dnp_reason": rng.choice(REASONS) if fate != "play" else None,
                         "minutes": minutes, "name_resolution_status": resolution}
                    )  # fmt: skip
                if side_missing or rng.randint(0, 8) == 0 or resolution == "unresolved":
                    continue  # analytics never got it
                if fate == "play" or (rng.random() < 0.5):
                    is_dnp = None if rng.randint(0, 9) == 0 else fate != "play"
                    ana_rows.append({"game_id": gamebook_id, "game_date": g["game_date"], "team_abbr": team,
                                     "player_lookup": p, "minutes_played": 20.0, "is_dnp": is_dnp})  # fmt: skip
    gamebook = pd.DataFrame(raw_rows, columns=GAMEBOOK_COLUMNS)
    analytics = pd.DataFrame(ana_rows, columns=["game_id", "game_date", "team_abbr", "player_lookup",
                                                "minutes_played", "is_dnp"])  # fmt: skip
    # -- failures ---------------------------------------------------------------------------------------
    final_dates = sorted({g["game_date"] for g in games})
    failures: dict[str, list[dict[str, object]]] = {"precompute_failures": [], "analytics_failures": [],
                                                     "prediction_failures": []}  # fmt: skip
    for k in range(rng.randint(1, 40)):
        table = rng.choice(("precompute_failures",) * 4 + ("analytics_failures", "prediction_failures"))
        s = rng.randint(0, 1)
        day = _day(s, rng.randint(0, SEASON_DAYS + 5))
        kind = rng.choice(("player",) * 5 + ("team", "game", "gamebook", "date", "ghost"))
        some_games = [g for g in games if abs((g["game_date"] - day).days) <= 20] or games or [None]
        g = rng.choice(some_games)
        entity = {
            "player": rng.choice(players),
            "team": rng.choice(TEAMS),
            "game": g["game_id"] if g else "0022199999",
            "gamebook": f"{g['game_date']:%Y%m%d}_{g['away_team_tricode']}_{g['home_team_tricode']}"
            if g
            else "20211010_AAA_BBB",
            "date": "DATE_LEVEL",
            "ghost": "nobodyatall",
        }[kind]
        listed = None
        shape = rng.choice(("none", "none", "dates", "ids", "bad"))
        if shape == "dates":
            picks = [rng.choice(final_dates or [day]) for _ in range(rng.randint(0, 4))]
            far = [day - dt.timedelta(days=500)] if rng.randint(0, 6) == 0 else []
            listed = json.dumps([d.isoformat() for d in [*picks, *far]] + ([None] if (rng.random() < 0.5) else []))
        elif shape == "ids":
            ids = [x["game_id"] for x in [rng.choice(games or [{"game_id": "x"}]) for _ in range(rng.randint(0, 3))]]
            listed = json.dumps(ids + (["0022100000"] if rng.randint(0, 5) == 0 else []))
        elif shape == "bad":
            listed = rng.choice(("not json", '["2021-13-01"]', "[1, 2]", '["a\\"b"]', "{}", "[null]",
                                           "[]", '  [ "2021-10-05T08:00" ]  ', '["20211005"]'))  # fmt: skip
        category = rng.choice(CATEGORIES)
        processor = rng.choice(PROCESSORS)
        for rerun in range(rng.choice((1, 1, 1, 2, 3))):
            row: dict[str, object] = {
                "processor_name": processor, "run_id": f"run-{k}-{rerun}",
                "entity_id": entity, "failure_category": category if rerun == 0 else rng.choice(CATEGORIES),
                "failure_reason": "r", "can_retry": (rng.random() < 0.5),
                "failure_type": rng.choice((None, None, "PLAYER_DNP", "COMPLETE")),
                "resolution_status": "UNRESOLVED",
                "created_at": pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=rng.randint(0, 40)),
            }  # fmt: skip
            if table == "prediction_failures":
                row["prediction_date"] = day
                row["missing_upstream_tables"] = listed
            elif table == "analytics_failures":
                row["analysis_date"] = day
                row["entity_type"] = rng.choice(("PLAYER", "TEAM", "GAME", "player", "DATE"))
                row["missing_game_ids"] = listed
            else:
                row["analysis_date"] = day
                row["missing_game_dates"] = listed
            failures[table].append(row)

    # -- the processors' windows --------------------------------------------------------------------------
    def window() -> Window:
        return Window("days", rng.randint(1, 25)) if rng.random() < 0.5 else Window("games", rng.randint(1, 9))

    per_processor = {
        rng.choice(PROCESSORS): tuple(dict.fromkeys(window() for _ in range(rng.randint(1, 3))))
        for _ in range(rng.randint(0, 3))
    }
    config = ClassifierConfig(
        lookback_days=rng.randint(3, 20),
        windows_by_processor=per_processor,
        default_windows=rng.choice(((), (Window("games", 5),), (Window("games", 4), Window("days", 6)))),
        min_expected_games=rng.randint(1, 6),
        date_level_lookback_days=rng.randint(1, 3),
    )
    frames = {t: pd.DataFrame(rows) for t, rows in failures.items() if rows}
    return World(schedule, gamebook, analytics, frames, config)


WIDE = {"a": dt.date(1900, 1, 1), "b": dt.date(2999, 12, 31)}
_DATE_COLUMN = {
    "precompute_failures": "analysis_date",
    "analytics_failures": "analysis_date",
    "prediction_failures": "prediction_date",
    "failure_missing_games": "analysis_date",
    "nbac_schedule": "game_date",
    "nbac_gamebook_player_stats": "game_date",
    "player_game_summary": "game_date",
    "triage_operations": "DATE(started_at)",
    "triage_visits": "DATE(visited_at)",
    "processor_run_history": "data_date",
    "rerun_requests": "data_date",
}


def load(store: Store, world: World) -> None:
    """The world alone in the database: every table emptied (the item index too), then filled (one transaction)."""
    with store.transaction(label="test-world") as tx:
        for table in ALL_TABLES:
            date = _DATE_COLUMN.get(table.name, "item_date")
            tx.execute(f"DELETE FROM {table.ref} WHERE {date} BETWEEN @a AND @b OR {date} IS NULL", WIDE)
        for ref, frame in (("nba_raw.nbac_schedule", world.schedule), ("nba_raw.nbac_gamebook_player_stats",
                           world.gamebook), ("nba_analytics.player_game_summary", world.analytics)):  # fmt: skip
            if len(frame):
                tx.insert_frame(ref, frame)
        for table, frame in world.failures.items():
            created = pd.to_datetime(frame["created_at"])
            tx.insert_frame(f"nba_processing.{table}", frame.assign(created_at=created))
