"""Patterns of uncorrectable did-not-play failures, from the classifier's per-game evidence.

All of it is computed in the engine over ``nba_processing.failure_missing_games`` (the permanent verdicts
PLAYER_DNP and NOT_IN_BOXSCORE), the items and the analytics table, within the date range in view.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from lib.model import EARLIEST, LATEST, Filters, ItemKey
from lib.store import queries as q
from lib.store.base import Store

PERMANENT_VERDICTS = ("PLAYER_DNP", "NOT_IN_BOXSCORE")

#: Buckets of did-not-play reasons, matched in this order on the upper-cased reason text.
REASON_BUCKET_SQL = """CASE
    WHEN dnp_reason IS NULL THEN 'not listed (inactive, omitted)'
    WHEN STRPOS(UPPER(dnp_reason), 'HEALTH AND SAFETY') > 0 THEN 'health and safety protocols'
    WHEN STRPOS(UPPER(dnp_reason), 'SUSPENSION') > 0 THEN 'suspension'
    WHEN STRPOS(UPPER(dnp_reason), 'INJURY') > 0 OR STRPOS(UPPER(dnp_reason), 'ILLNESS') > 0 THEN 'injury / illness'
    WHEN STRPOS(UPPER(dnp_reason), 'REST') > 0 THEN 'rest'
    WHEN STRPOS(UPPER(dnp_reason), 'COACH') > 0 THEN "coach's decision"
    WHEN STRPOS(UPPER(dnp_reason), 'NOT WITH TEAM') > 0 OR STRPOS(UPPER(dnp_reason), 'PERSONAL') > 0
      OR STRPOS(UPPER(dnp_reason), 'NWT') > 0 THEN 'not with team'
    WHEN STRPOS(UPPER(dnp_reason), 'G LEAGUE') > 0 OR STRPOS(UPPER(dnp_reason), 'TWO-WAY') > 0
      THEN 'G League / two-way'
    ELSE 'other'
  END"""

_MISSED = """
SELECT DISTINCT entity_id AS player, game_date, team_abbr, dnp_reason
FROM nba_processing.failure_missing_games
WHERE analysis_date BETWEEN @date_from AND @date_to AND verdict IN UNNEST(@permanent)
  AND source_table = 'precompute_failures'"""


def _window(filters: Filters) -> dict[str, Any]:
    return {
        "date_from": filters.date_from or EARLIEST,
        "date_to": filters.date_to or LATEST,
        "permanent": list(PERMANENT_VERDICTS),
    }


def streaks(store: Store, filters: Filters, *, limit: int = 25) -> pd.DataFrame:
    """Players with the longest runs of consecutive team games missed for good (gaps and islands)."""
    sql = f"""
WITH missed AS ({_MISSED}),
played AS (
  SELECT DISTINCT player_lookup AS player, game_date, CAST(NULL AS STRING) AS team_abbr,
    CAST(NULL AS STRING) AS dnp_reason
  FROM nba_analytics.player_game_summary
  WHERE game_date BETWEEN DATE_SUB(@date_from, INTERVAL 30 DAY) AND @date_to AND NOT is_dnp
    AND player_lookup IN (SELECT player FROM missed)
),
games AS (
  SELECT player, game_date, team_abbr, dnp_reason, 1 AS missed FROM missed
  UNION ALL
  SELECT p.player, p.game_date, p.team_abbr, p.dnp_reason, 0 AS missed FROM played AS p
  WHERE NOT EXISTS (SELECT 1 FROM missed AS m WHERE m.player = p.player AND m.game_date = p.game_date)
),
islands AS (
  SELECT *,
    ROW_NUMBER() OVER (PARTITION BY player ORDER BY game_date)
      - ROW_NUMBER() OVER (PARTITION BY player, missed ORDER BY game_date) AS island
  FROM games
)
SELECT player, COUNT(*) AS games, MIN(game_date) AS first_date, MAX(game_date) AS last_date,
  ANY_VALUE(team_abbr) AS team, MAX(dnp_reason) AS a_reason,
  COUNTIF(dnp_reason IS NULL) AS unlisted
FROM islands
WHERE missed = 1
GROUP BY player, island
ORDER BY games DESC, last_date DESC, player
LIMIT @n"""
    return store.query(sql, {**_window(filters), "n": limit}, label="patterns-streaks")


def reasons_by_week(store: Store, filters: Filters) -> pd.DataFrame:
    sql = f"""
SELECT DATE_TRUNC(game_date, WEEK(MONDAY)) AS week, {REASON_BUCKET_SQL} AS reason, COUNT(*) AS games
FROM ({_MISSED}) AS m
GROUP BY week, reason
ORDER BY week, reason"""
    return store.query(sql, _window(filters), label="patterns-reasons")


def team_dates(store: Store, filters: Filters) -> pd.DataFrame:
    """Open PLAYER_DNP items per team and analysis date (the team of their missing games)."""
    f = filters.with_(failure_types=("PLAYER_DNP",), tables=("precompute_failures",))
    sql = (
        q.relation(store, f)
        + """
SELECT t.team_abbr AS team, i.item_date, COUNT(DISTINCT i.entity_id) AS players, COUNT(*) AS items
FROM filtered AS i
JOIN (
  SELECT DISTINCT source_table, processor_name, analysis_date, entity_id, team_abbr
  FROM nba_processing.failure_missing_games
  WHERE analysis_date BETWEEN @date_from AND @date_to
) AS t
  ON t.source_table = i.source_table AND t.processor_name = i.processor_name
  AND t.analysis_date = i.item_date AND t.entity_id = i.entity_id
GROUP BY t.team_abbr, i.item_date
ORDER BY i.item_date, t.team_abbr"""
    )
    return store.query(sql, q.params_of(f), label="patterns-heatmap")


def team_date_keys(store: Store, filters: Filters, team: str, day: dt.date) -> list[ItemKey]:
    """The PLAYER_DNP items behind one cell of the team x date heatmap."""
    f = filters.with_(failure_types=("PLAYER_DNP",), tables=("precompute_failures",), date_from=day, date_to=day)
    sql = (
        q.relation(store, f)
        + """
SELECT DISTINCT i.item_key
FROM filtered AS i
JOIN nba_processing.failure_missing_games AS t
  ON t.source_table = i.source_table AND t.processor_name = i.processor_name
  AND t.analysis_date = i.item_date AND t.entity_id = i.entity_id
WHERE t.analysis_date BETWEEN @date_from AND @date_to AND t.team_abbr = @team
ORDER BY i.item_key"""
    )
    frame = store.query(sql, {**q.params_of(f), "team": team}, label="patterns-cell")
    return [ItemKey.parse(k) for k in frame["item_key"]]


def mass_dates(store: Store, filters: Filters, *, limit: int = 15) -> pd.DataFrame:
    return mass_dates_of(q.summary(store, filters), filters.hide_expected, limit=limit)


def mass_dates_of(cube: pd.DataFrame, hide_expected: bool, *, limit: int = 15) -> pd.DataFrame:
    """Dates with the most did-not-play items, and all items for comparison (from ``queries.summary``)."""
    cube = q.dates_of(cube)
    shown = cube[~cube["is_expected"]] if hide_expected else cube
    per_day = shown.groupby("item_date").agg(items=("items", "sum")).reset_index()
    dnp = shown[shown["failure_type"] == "PLAYER_DNP"].groupby("item_date").agg(dnp_items=("items", "sum"))
    per_day = per_day.merge(dnp, on="item_date", how="left").fillna({"dnp_items": 0})
    per_day["dnp_items"] = per_day["dnp_items"].astype(int)
    return per_day.sort_values(["dnp_items", "items"], ascending=False).head(limit).reset_index(drop=True)


def permanent_share(store: Store, filters: Filters) -> pd.DataFrame:
    return permanent_share_of(q.summary(store, filters), filters.hide_expected)


def permanent_share_of(cube: pd.DataFrame, hide_expected: bool) -> pd.DataFrame:
    """Per processor: classified items, how many are permanent, and their share (from ``queries.summary``)."""
    cube = q.state_of(cube)
    shown = cube[~cube["is_expected"]] if hide_expected else cube
    judged = shown[shown["correctable_class"] != "unknown"]
    out = judged.groupby("processor_name").agg(classified=("items", "sum")).reset_index()
    permanent = judged[judged["correctable_class"] == "uncorrectable"].groupby("processor_name")["items"].sum()
    out["permanent"] = out["processor_name"].map(permanent).fillna(0).astype(int)
    out["share"] = out["permanent"] / out["classified"].where(out["classified"] > 0, 1)
    return out.sort_values("share", ascending=False).reset_index(drop=True)
