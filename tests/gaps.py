"""What the pipeline does when a missing box score is re-scraped: the side's raw rows and phase 3 rows arrive."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from lib import demo
from lib.store.base import Store


def game(season: demo.Demo, game_id: str) -> pd.Series:
    schedule = season.schedule
    return schedule[schedule["game_id"] == game_id].iloc[0]


def roster(season: demo.Demo, team: str, day: dt.date) -> set[str]:
    """Who was on the team that day, from the demo's own rosters (what the box score would have listed)."""
    return {p.lookup for p in season.players if p.team_on(day) == team}


def restore_side(store: Store, season: demo.Demo, game_id: str, team: str) -> list[str]:
    """Write the side's box score (every player on the roster, active) and its phase 3 rows, shaped as the other
    side's; returns the players written."""
    g = game(season, game_id)
    day = pd.Timestamp(g["game_date"]).date()
    other = store.query(
        "SELECT * FROM nba_raw.nbac_gamebook_player_stats WHERE game_date = @d AND team_abbr <> @t "
        "AND team_abbr IN UNNEST(@teams) LIMIT 1",
        {"d": day, "t": team, "teams": [g["home_team_tricode"], g["away_team_tricode"]]},
    ).iloc[0]
    players = sorted(roster(season, team, day))
    raw = pd.DataFrame([{**other.to_dict(), "team_abbr": team, "player_lookup": p, "player_name": p,
                         "player_status": "active", "dnp_reason": None, "minutes": "20:00",
                         "name_resolution_status": "resolved"} for p in players])  # fmt: skip
    store.insert_frame("nba_raw.nbac_gamebook_player_stats", raw)
    template = store.query(
        "SELECT * FROM nba_analytics.player_game_summary WHERE game_date = @d LIMIT 1", {"d": day}
    ).iloc[0]
    store.insert_frame("nba_analytics.player_game_summary", pd.DataFrame([
        {**template.to_dict(), "game_id": other["game_id"], "team_abbr": team, "player_lookup": p,
         "minutes_played": 20.0, "is_dnp": False} for p in players]))  # fmt: skip
    return players
