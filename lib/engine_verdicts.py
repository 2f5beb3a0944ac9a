"""The classifier's rules as set-based SQL: verdicts computed where the data lives.

The same rules as ``lib/classifier.py`` (the pure oracle, which the tests prove this equal to, game by game
and failure by failure), written once in BigQuery SQL and rendered for DuckDB by the dialect layer. A run
goes through the failure items date range by date range; for each range the engine

1. routes every item and places each player on his team as of the analysis date (``classification_items``),
2. lists the games each item considers and judges them (``classification_games``),
3. turns those into the item's failure type, counts and missing dates,
4. writes the verdicts into the failure rows and the per-game evidence into ``failure_missing_games``,

and the client sends parameters and receives counts: no evidence row reaches it. Every statement filters the
failure tables on their partition column, and the evidence tables on the dates the range needs (its windows
and a player's season included). On DuckDB a range is one transaction; on BigQuery each statement is
idempotent for its batch, so a run that stops half way is finished by the next.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from lib.classifier import (
    BOOTSTRAP_CATEGORIES,
    FORWARD_LOOKING_PROCESSORS,
    HISTORY_DAYS,
    ISO_DATE_PATTERN,
    JSON_LIST_PATTERN,
    JSON_STRING_PATTERN,
    LOOKAHEAD_DAYS,
    MINUTES_PATTERN,
    MISSING_DATA_CATEGORIES,
    NON_DATA_CATEGORIES,
    ClassifierConfig,
)
from lib.model import EARLIEST, LATEST, Clock, Filters, stamp
from lib.store import relation
from lib.store.base import Store

Progress = Callable[[float, str], None]

#: Stands for "no season information": every date is then one season.
_NO_SEASON = -999999
_CORRECTABLE = ("RAW_DATA_GAP", "ANALYTICS_GAP", "NAME_UNRESOLVED")


def _sql_string(pattern: str) -> str:
    """A regular expression as a BigQuery raw string literal (patterns are constants of this code base)."""
    if "'" in pattern:
        raise ValueError("pattern constants must not contain a single quote")
    return f"r'{pattern}'"


_ANCHORED = {
    "json_list": _sql_string(f"^(?:{JSON_LIST_PATTERN})$"),
    "json_string": _sql_string(JSON_STRING_PATTERN),
    "iso_date": _sql_string(f"^(?:{ISO_DATE_PATTERN})$"),
    "minutes": _sql_string(f"^(?:{MINUTES_PATTERN})$"),
    "minutes_first": _sql_string("^[ \\t\\n\\r]*([0-9]+(?:\\.[0-9]+)?)"),
    "minutes_second": _sql_string("^[ \\t\\n\\r]*[0-9]+(?:\\.[0-9]+)?:([0-9]+(?:\\.[0-9]+)?)"),
}

# -- shared fragments ---------------------------------------------------------------------------------

# Where each season starts, and the range of dates it covers; dates before the first known start belong
# to the season before it (as Evidence.season_of).
_SEASONS = """
season_starts AS (
  SELECT season_year, MIN(game_date) AS first_date
  FROM nba_raw.nbac_schedule
  WHERE game_date BETWEEN DATE_SUB(@date_from, INTERVAL @history_days DAY)
      AND DATE_ADD(@date_to, INTERVAL @lookahead_days DAY)
    AND season_year IS NOT NULL
  GROUP BY season_year
),
seasons AS (
  SELECT season_year, first_date,
    LEAD(first_date) OVER (ORDER BY first_date, season_year) AS next_date
  FROM season_starts
  UNION ALL
  SELECT season_year - 1, DATE '0001-01-01', first_date
  FROM (SELECT season_year, first_date, ROW_NUMBER() OVER (ORDER BY first_date, season_year) AS n
        FROM season_starts) AS s
  WHERE n = 1
)"""


def _season_of(date_sql: str, alias: str) -> str:
    return (
        f"LEFT JOIN seasons AS {alias} ON {date_sql} >= {alias}.first_date "
        f"AND ({alias}.next_date IS NULL OR {date_sql} < {alias}.next_date)"
    )


# Final games, one row per team side, over every date a batch can look at.
_SIDES_OF_GAMES = f"""
games AS (
  SELECT DISTINCT game_id, game_date, home_team_tricode AS home, away_team_tricode AS away,
    COALESCE(game_status, 0) = 3 AS is_final, COALESCE(se.season_year, {_NO_SEASON}) AS season
  FROM nba_raw.nbac_schedule AS s
  {_season_of("s.game_date", "se")}
  WHERE s.game_date BETWEEN DATE_SUB(@date_from, INTERVAL @reach_days DAY) AND @date_to
),
team_games AS (
  SELECT game_id, game_date, home AS team, season FROM games WHERE is_final AND home IS NOT NULL
  UNION ALL
  SELECT game_id, game_date, away AS team, season FROM games WHERE is_final AND away IS NOT NULL
),
first_game AS (
  SELECT team, game_date, MIN(game_id) AS game_id FROM team_games GROUP BY team, game_date
),
season_first AS (
  SELECT season_year AS season, first_date FROM seasons
  UNION ALL
  SELECT {_NO_SEASON}, DATE '0001-01-01'
)"""

# The processors' windows: "PROCESSOR|days|14" strings, "*" for every processor without its own.
_WINDOWS = """
win AS (
  SELECT REGEXP_EXTRACT(w, r'^(.*)\\|[a-z]+\\|[0-9]+$') AS processor_name,
    REGEXP_EXTRACT(w, r'\\|([a-z]+)\\|[0-9]+$') AS kind,
    CAST(REGEXP_EXTRACT(w, r'\\|([0-9]+)$') AS INT64) AS size
  FROM UNNEST(@windows) AS w
),
proc_windows AS (
  SELECT p.processor_name, w.kind, w.size
  FROM (SELECT DISTINCT processor_name FROM wanted) AS p JOIN win AS w ON w.processor_name = p.processor_name
  UNION ALL
  SELECT p.processor_name, w.kind, w.size
  FROM (SELECT DISTINCT processor_name FROM wanted) AS p JOIN win AS w ON w.processor_name = '*'
  WHERE p.processor_name NOT IN (SELECT processor_name FROM win WHERE processor_name IS NOT NULL)
),
day_window_games AS (
  SELECT DISTINCT k.processor_name, k.team, k.item_date, tg.game_id, tg.game_date
  FROM (SELECT DISTINCT processor_name, team, item_date, season FROM wanted) AS k
  JOIN proc_windows AS w ON w.processor_name = k.processor_name AND w.kind = 'days'
  JOIN team_games AS tg ON tg.team = k.team AND tg.season = k.season
    AND tg.game_date >= DATE_SUB(k.item_date, INTERVAL w.size DAY) AND tg.game_date < k.item_date
),
count_window_games AS (
  SELECT DISTINCT processor_name, team, item_date, game_id, game_date
  FROM (
    SELECT k.processor_name, k.team, k.item_date, tg.game_id, tg.game_date, w.size,
      ROW_NUMBER() OVER (PARTITION BY k.processor_name, k.team, k.item_date, w.size
                         ORDER BY tg.game_date DESC, tg.game_id DESC) AS n
    FROM (SELECT DISTINCT processor_name, team, item_date, season FROM wanted) AS k
    JOIN (SELECT DISTINCT processor_name, size FROM proc_windows WHERE kind = 'games') AS w
      ON w.processor_name = k.processor_name
    JOIN season_first AS sf ON sf.season = k.season
    JOIN team_games AS tg ON tg.team = k.team AND tg.game_date >= sf.first_date AND tg.game_date < k.item_date
  ) AS ranked
  WHERE n <= size
),
window_games AS (
  SELECT processor_name, team, item_date, game_id, game_date FROM day_window_games
  UNION DISTINCT
  SELECT processor_name, team, item_date, game_id, game_date FROM count_window_games
),
window_starts AS (
  SELECT k.processor_name, k.team, k.item_date,
    LEAST(COALESCE(d.first_day, k.item_date), COALESCE(c.first_game, k.item_date)) AS window_start
  FROM (SELECT DISTINCT processor_name, team, item_date FROM wanted) AS k
  LEFT JOIN (
    SELECT k2.processor_name, k2.item_date, MIN(DATE_SUB(k2.item_date, INTERVAL w.size DAY)) AS first_day
    FROM (SELECT DISTINCT processor_name, item_date FROM wanted) AS k2
    JOIN proc_windows AS w ON w.processor_name = k2.processor_name AND w.kind = 'days'
    GROUP BY k2.processor_name, k2.item_date
  ) AS d ON d.processor_name = k.processor_name AND d.item_date = k.item_date
  LEFT JOIN (
    SELECT processor_name, team, item_date, MIN(game_date) AS first_game
    FROM count_window_games GROUP BY processor_name, team, item_date
  ) AS c ON c.processor_name = k.processor_name AND c.team = k.team AND c.item_date = k.item_date
)"""


def _appearances(players: str) -> str:
    """Every raw and analytics row of the players in CTE ``players`` that an item of the batch can look at (its
    history and lookahead), with its season, packed as ``date|source|team`` to order and pick them."""
    rows = f"""
    WHERE game_date BETWEEN DATE_SUB(@date_from, INTERVAL @history_days DAY)
        AND DATE_ADD(@date_to, INTERVAL @lookahead_days DAY)
      AND team_abbr IS NOT NULL AND player_lookup IN (SELECT entity_id FROM {players})"""
    return f"""apps AS (
  SELECT a.player, a.game_date, a.source, a.team, COALESCE(se.season_year, {_NO_SEASON}) AS season,
    CONCAT(CAST(a.game_date AS STRING), '|', a.source, '|', a.team) AS packed
  FROM (
    SELECT player_lookup AS player, game_date, 'raw' AS source, team_abbr AS team
    FROM nba_raw.nbac_gamebook_player_stats{rows}
    UNION ALL
    SELECT player_lookup, game_date, 'analytics', team_abbr
    FROM nba_analytics.player_game_summary{rows}
  ) AS a
  {_season_of("a.game_date", "se")}
)"""


def _played(players: str) -> str:
    """The dates the players in CTE ``players`` have an analytics row not flagged is_dnp."""
    return f"""played AS (
  SELECT DISTINCT player_lookup AS player, game_date
  FROM nba_analytics.player_game_summary
  WHERE game_date BETWEEN DATE_SUB(@date_from, INTERVAL @reach_days DAY)
      AND DATE_ADD(@date_to, INTERVAL @lookahead_days DAY)
    AND player_lookup IN (SELECT entity_id FROM {players}) AND COALESCE(is_dnp, FALSE) = FALSE
)"""


def _failure_rows() -> str:
    return relation.rows_cte(Filters(hide_expected=False))


# Which items the classifier judges: those without a verdict, and those whose verdict is the pipeline's (no
# judgement of ours since their latest row was written): the dashboard shows only verdicts it computed. With
# @overwrite (classify --all), every item.
JUDGED = """judged AS (
  SELECT source_table, processor_name, item_date, entity_id, MAX(at) AS judged_at
  FROM nba_processing.item_judgements
  WHERE item_date BETWEEN @date_from AND @date_to
  GROUP BY source_table, processor_name, item_date, entity_id
)"""
LAST_WRITTEN = "MAX(COALESCE(created_at, TIMESTAMP '1970-01-01 00:00:00+00'))"
TO_JUDGE = "(@overwrite OR i.failure_type IS NULL OR j.judged_at IS NULL OR j.judged_at < i.last_written)"


# -- 1. route the items, place the players ------------------------------------------------------------

_ROUTE = f"""
INSERT INTO nba_processing.classification_items
  (batch_id, source_table, processor_name, item_date, entity_id, run_id, route, can_retry, bootstrap,
   judge_history, listed, dates_listed, ids_listed, season, team, no_apps, unknown_ids, expected_count,
   actual_count)
WITH
{_failure_rows()},
{_SEASONS.strip()},
{JUDGED},
every_item AS (
  SELECT source_table, processor_name, item_date, entity_id,
    ANY_VALUE(failure_category HAVING MAX seen_at) AS failure_category,
    ANY_VALUE(failure_type HAVING MAX seen_at) AS failure_type,
    ANY_VALUE(can_retry HAVING MAX seen_at) AS can_retry,
    ANY_VALUE(entity_type HAVING MAX seen_at) AS entity_type,
    ANY_VALUE(missing_json HAVING MAX seen_at) AS missing_json,
    ANY_VALUE(run_id HAVING MAX seen_at) AS run_id,
    {LAST_WRITTEN} AS last_written
  FROM (SELECT *, {relation.SEEN_AT} AS seen_at FROM failure_rows) AS r
  GROUP BY source_table, processor_name, item_date, entity_id
),
items AS (
  SELECT i.source_table, i.processor_name, i.item_date, i.entity_id, i.failure_category, i.failure_type,
    i.can_retry, i.entity_type, i.missing_json, i.run_id
  FROM every_item AS i
  LEFT JOIN judged AS j ON j.source_table = i.source_table AND j.processor_name = i.processor_name
    AND j.item_date = i.item_date AND j.entity_id = i.entity_id
  WHERE {TO_JUDGE}
),
shaped AS (
  SELECT *,
    UPPER(REGEXP_REPLACE(COALESCE(failure_category, 'None'), r'^[ \\t\\n\\r\\f\\v]+|[ \\t\\n\\r\\f\\v]+$', ''))
      AS cat,
    CASE
      WHEN source_table = 'analytics_failures'
        AND COALESCE(entity_type, {relation.ENTITY_TYPE_GUESS}) IN ('PLAYER', 'TEAM', 'GAME')
        THEN COALESCE(entity_type, {relation.ENTITY_TYPE_GUESS})
      WHEN entity_id = 'DATE_LEVEL' THEN 'DATE'
      WHEN REGEXP_CONTAINS(entity_id, r'^[A-Z]{{2,3}}$') THEN 'TEAM'
      WHEN REGEXP_CONTAINS(entity_id, r'^(?:[0-9]{{10}}|[0-9]{{8}}_[A-Z]{{2,3}}_[A-Z]{{2,3}})$') THEN 'GAME'
      ELSE 'PLAYER'
    END AS kind,
    CASE WHEN source_table IN ('precompute_failures', 'analytics_failures')
      AND REGEXP_CONTAINS(missing_json, {_ANCHORED["json_list"]}) THEN missing_json END AS listed
  FROM items
),
bad_dates AS (
  SELECT DISTINCT source_table, processor_name, item_date, entity_id
  FROM shaped, UNNEST(REGEXP_EXTRACT_ALL(listed, {_ANCHORED["json_string"]})) AS v
  WHERE source_table = 'precompute_failures' AND listed IS NOT NULL
    AND NOT (REGEXP_CONTAINS(SUBSTR(v, 1, 10), {_ANCHORED["iso_date"]})
             AND SAFE_CAST(SUBSTR(v, 1, 10) AS DATE) IS NOT NULL)
),
flagged AS (
  SELECT s.*,
    s.source_table = 'precompute_failures' AND s.listed IS NOT NULL AND b.entity_id IS NULL AS dates_listed,
    s.source_table = 'analytics_failures' AND s.listed IS NOT NULL AS ids_listed
  FROM shaped AS s
  LEFT JOIN bad_dates AS b ON b.source_table = s.source_table AND b.processor_name = s.processor_name
    AND b.item_date = s.item_date AND b.entity_id = s.entity_id
),
routed AS (
  SELECT f.*,
    CASE
      WHEN cat IN UNNEST(@non_data) THEN 'PROCESSING_ERROR'
      WHEN processor_name IN UNNEST(@forward) THEN 'FORWARD'
      WHEN cat NOT IN UNNEST(@missing_data) AND NOT (dates_listed OR ids_listed) THEN 'UNCHECKABLE'
      WHEN kind = 'PLAYER' AND cat = 'REGISTRY_LOOKUP_FAILED' THEN 'REGISTRY'
      ELSE kind
    END AS route,
    cat IN UNNEST(@bootstrap) AS bootstrap,
    COALESCE(se.season_year, {_NO_SEASON}) AS season
  FROM flagged AS f
  {_season_of("f.item_date", "se")}
),
pitems AS (
  SELECT source_table, processor_name, item_date, entity_id, season FROM routed WHERE route = 'PLAYER'
),
{_appearances("pitems")},
stream AS (
  SELECT player, season, game_date AS d, 1 AS tie, packed,
    CAST(NULL AS STRING) AS source_table, CAST(NULL AS STRING) AS processor_name
  FROM apps
  UNION ALL
  SELECT entity_id, season, item_date, 0, CAST(NULL AS STRING), source_table, processor_name FROM pitems
),
around AS (
  SELECT source_table, processor_name, player AS entity_id, d AS item_date, season, before_season, upto_season,
    upto_any, after_season, after_any
  FROM (
    SELECT *,
      MAX(packed) OVER (PARTITION BY player, season ORDER BY d, tie
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS before_season,
      MAX(packed) OVER (PARTITION BY player, season ORDER BY d, tie DESC
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS upto_season,
      MAX(packed) OVER (PARTITION BY player ORDER BY d, tie DESC
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS upto_any,
      MIN(packed) OVER (PARTITION BY player, season ORDER BY d, tie DESC
                        ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS after_season,
      MIN(packed) OVER (PARTITION BY player ORDER BY d, tie DESC
                        ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS after_any
    FROM stream
  ) AS w
  WHERE source_table IS NOT NULL
),
placed AS (
  SELECT source_table, processor_name, entity_id, item_date, season,
    NOT (COALESCE(CAST(SUBSTR(upto_any, 1, 10) AS DATE) >= DATE_SUB(item_date, INTERVAL @history_days DAY), FALSE)
         OR COALESCE(CAST(SUBSTR(after_any, 1, 10) AS DATE)
                     <= DATE_ADD(item_date, INTERVAL @lookahead_days DAY), FALSE)) AS no_apps,
    CASE
      WHEN CAST(SUBSTR(before_season, 1, 10) AS DATE) >= DATE_SUB(item_date, INTERVAL @history_days DAY)
        THEN REGEXP_EXTRACT(before_season, r'^[^|]*\\|[^|]*\\|(.*)$')
      WHEN CAST(SUBSTR(upto_season, 1, 10) AS DATE) = item_date
        THEN REGEXP_EXTRACT(upto_season, r'^[^|]*\\|[^|]*\\|(.*)$')
      WHEN NOT COALESCE(CAST(SUBSTR(upto_any, 1, 10) AS DATE)
                        >= DATE_SUB(item_date, INTERVAL @history_days DAY), FALSE)
        AND CAST(SUBSTR(after_season, 1, 10) AS DATE) <= DATE_ADD(item_date, INTERVAL @lookahead_days DAY)
        THEN REGEXP_EXTRACT(after_season, r'^[^|]*\\|[^|]*\\|(.*)$')
    END AS team
  FROM around
),
wanted AS (
  SELECT processor_name, team, item_date, season FROM placed WHERE team IS NOT NULL AND NOT no_apps
  UNION DISTINCT
  SELECT processor_name, entity_id, item_date, season FROM routed WHERE route = 'TEAM' AND NOT ids_listed
),
{_SIDES_OF_GAMES.strip()},
{_WINDOWS.strip()},
window_counts AS (
  SELECT processor_name, team, item_date, COUNT(*) AS expected, MIN(game_date) AS first_game
  FROM window_games GROUP BY processor_name, team, item_date
),
{_played("pitems")},
actuals AS (
  SELECT p.source_table, p.processor_name, p.entity_id, p.item_date, COUNT(pl.game_date) AS actual
  FROM placed AS p
  JOIN window_starts AS ws ON ws.processor_name = p.processor_name AND ws.team = p.team
    AND ws.item_date = p.item_date
  LEFT JOIN played AS pl ON pl.player = p.entity_id
    AND pl.game_date >= GREATEST(ws.window_start, DATE_SUB(p.item_date, INTERVAL @history_days DAY))
    AND pl.game_date < p.item_date
  WHERE p.team IS NOT NULL AND NOT p.no_apps
  GROUP BY p.source_table, p.processor_name, p.entity_id, p.item_date
),
listed_ids AS (
  SELECT r.source_table, r.processor_name, r.item_date, r.entity_id, v AS id
  FROM routed AS r, UNNEST(REGEXP_EXTRACT_ALL(r.listed, {_ANCHORED["json_string"]})) AS v
  WHERE r.route = 'GAME' AND r.ids_listed
),
game_ids AS (
  SELECT source_table, processor_name, item_date, entity_id, id FROM listed_ids
  UNION ALL
  SELECT r.source_table, r.processor_name, r.item_date, r.entity_id, r.entity_id
  FROM routed AS r
  WHERE r.route = 'GAME' AND NOT EXISTS (
    SELECT 1 FROM listed_ids AS l WHERE l.source_table = r.source_table AND l.processor_name = r.processor_name
      AND l.item_date = r.item_date AND l.entity_id = r.entity_id)
),
unknown_games AS (
  SELECT DISTINCT gi.source_table, gi.processor_name, gi.item_date, gi.entity_id
  FROM game_ids AS gi
  WHERE NOT EXISTS (
    SELECT 1 FROM games AS g
    WHERE (g.game_id = gi.id OR CONCAT(FORMAT_DATE('%Y%m%d', g.game_date), '_', g.away, '_', g.home) = gi.id)
      AND g.game_date BETWEEN DATE_SUB(gi.item_date, INTERVAL @history_days DAY) AND gi.item_date)
)
SELECT @batch_id, r.source_table, r.processor_name, r.item_date, r.entity_id, r.run_id, r.route, r.can_retry,
  r.bootstrap,
  CASE r.route WHEN 'PLAYER' THEN TRUE WHEN 'TEAM' THEN NOT r.ids_listed ELSE FALSE END AS judge_history,
  r.listed, r.dates_listed, r.ids_listed, r.season,
  CASE WHEN r.route = 'TEAM' THEN r.entity_id ELSE p.team END AS team,
  COALESCE(p.no_apps, FALSE) AS no_apps,
  u.entity_id IS NOT NULL AS unknown_ids,
  CASE
    WHEN r.route = 'PLAYER' AND p.team IS NOT NULL AND NOT p.no_apps THEN COALESCE(wc.expected, 0)
    WHEN r.route = 'TEAM' AND NOT r.ids_listed THEN COALESCE(tc.expected, 0)
  END AS expected_count,
  a.actual AS actual_count
FROM routed AS r
LEFT JOIN placed AS p ON p.source_table = r.source_table AND p.processor_name = r.processor_name
  AND p.item_date = r.item_date AND p.entity_id = r.entity_id
LEFT JOIN window_counts AS wc ON wc.processor_name = r.processor_name AND wc.team = p.team
  AND wc.item_date = r.item_date
LEFT JOIN window_counts AS tc ON tc.processor_name = r.processor_name AND tc.team = r.entity_id
  AND tc.item_date = r.item_date AND r.route = 'TEAM'
LEFT JOIN actuals AS a ON a.source_table = r.source_table AND a.processor_name = r.processor_name
  AND a.item_date = r.item_date AND a.entity_id = r.entity_id
LEFT JOIN unknown_games AS u ON u.source_table = r.source_table AND u.processor_name = r.processor_name
  AND u.item_date = r.item_date AND u.entity_id = r.entity_id"""

# -- 2. the games each item considers, judged ---------------------------------------------------------

_MINUTES_POSITIVE = (
    f"(REGEXP_CONTAINS(minutes, {_ANCHORED['minutes']}) AND (REGEXP_CONTAINS(REGEXP_EXTRACT(minutes, "
    f"{_ANCHORED['minutes_first']}), r'[1-9]') OR COALESCE(REGEXP_CONTAINS(REGEXP_EXTRACT(minutes, "
    f"{_ANCHORED['minutes_second']}), r'[1-9]'), FALSE)))"
)

_JUDGE = f"""
INSERT INTO nba_processing.classification_games
  (batch_id, source_table, processor_name, item_date, entity_id, run_id, game_date, game_id, team_abbr, verdict,
   dnp_reason)
WITH
{_SEASONS.strip()},
{_SIDES_OF_GAMES.strip()},
its AS (
  SELECT * FROM nba_processing.classification_items
  WHERE batch_id = @batch_id AND item_date BETWEEN @date_from AND @date_to
),
wanted AS (
  SELECT processor_name, team, item_date, season FROM its
  WHERE team IS NOT NULL AND NOT no_apps AND (route = 'PLAYER' OR (route = 'TEAM' AND NOT ids_listed))
),
{_WINDOWS.strip()},
pl AS (SELECT * FROM its WHERE route = 'PLAYER' AND NOT no_apps),
{_appearances("pl")},
{_played("pl")},
implicit AS (
  SELECT i.source_table, i.processor_name, i.item_date, i.entity_id, i.run_id, wg.game_date, wg.game_id,
    i.team AS side
  FROM pl AS i
  JOIN window_games AS wg ON wg.processor_name = i.processor_name AND wg.team = i.team
    AND wg.item_date = i.item_date
  LEFT JOIN played AS p ON p.player = i.entity_id AND p.game_date = wg.game_date
    AND p.game_date >= DATE_SUB(i.item_date, INTERVAL @history_days DAY)
  WHERE i.team IS NOT NULL AND NOT i.dates_listed AND p.player IS NULL
),
listed_dates AS (
  SELECT DISTINCT i.source_table, i.processor_name, i.item_date, i.entity_id, i.run_id, i.team, i.season,
    CAST(SUBSTR(v, 1, 10) AS DATE) AS d
  FROM pl AS i, UNNEST(REGEXP_EXTRACT_ALL(i.listed, {_ANCHORED["json_string"]})) AS v
  WHERE i.dates_listed
),
listed_open AS (
  SELECT l.*, fg.game_id AS own_game,
    l.d BETWEEN DATE_SUB(l.item_date, INTERVAL @history_days DAY) AND l.item_date AS in_range
  FROM listed_dates AS l
  LEFT JOIN first_game AS fg ON fg.team = l.team AND fg.game_date = l.d
  LEFT JOIN played AS p ON p.player = l.entity_id AND p.game_date = l.d
    AND p.game_date BETWEEN DATE_SUB(l.item_date, INTERVAL @history_days DAY)
      AND DATE_ADD(l.item_date, INTERVAL @lookahead_days DAY)
  WHERE l.team IS NOT NULL AND p.player IS NULL
),
other_team AS (
  SELECT o.source_table, o.processor_name, o.item_date, o.entity_id, o.d,
    COALESCE(MAX(IF(a.game_date <= o.d, a.packed, NULL)), MIN(a.packed)) AS packed
  FROM listed_open AS o
  JOIN apps AS a ON a.player = o.entity_id AND a.season = o.season
    AND a.game_date BETWEEN DATE_SUB(o.item_date, INTERVAL @history_days DAY) AND o.item_date
  WHERE o.in_range AND o.own_game IS NULL
  GROUP BY o.source_table, o.processor_name, o.item_date, o.entity_id, o.d
),
explicit AS (
  SELECT o.source_table, o.processor_name, o.item_date, o.entity_id, o.run_id, o.d AS game_date,
    CASE WHEN NOT o.in_range THEN NULL WHEN o.own_game IS NOT NULL THEN o.own_game ELSE ofg.game_id END AS game_id,
    CASE WHEN NOT o.in_range THEN o.team WHEN o.own_game IS NOT NULL THEN o.team
      WHEN ofg.game_id IS NOT NULL THEN REGEXP_EXTRACT(ot.packed, r'^[^|]*\\|[^|]*\\|(.*)$') ELSE o.team END AS side
  FROM listed_open AS o
  LEFT JOIN other_team AS ot ON ot.source_table = o.source_table AND ot.processor_name = o.processor_name
    AND ot.item_date = o.item_date AND ot.entity_id = o.entity_id AND ot.d = o.d
  LEFT JOIN first_game AS ofg ON ofg.team = REGEXP_EXTRACT(ot.packed, r'^[^|]*\\|[^|]*\\|(.*)$')
    AND ofg.game_date = o.d
),
candidates AS (
  SELECT source_table, processor_name, item_date, entity_id, run_id, game_date, game_id, side FROM implicit
  UNION ALL
  SELECT source_table, processor_name, item_date, entity_id, run_id, game_date, game_id, side FROM explicit
),
his_rows AS (
  SELECT c.source_table, c.processor_name, c.item_date, c.entity_id, c.game_date, c.side,
    COUNTIF(r.source = 'raw') AS raw_rows,
    COUNTIF(r.source = 'raw' AND LOWER(COALESCE(r.player_status, '')) NOT IN ('dnp', 'inactive')
            AND r.played_minutes) AS played_rows,
    COUNTIF(r.source = 'analytics' AND r.is_dnp) AS dnp_rows,
    MIN(IF(r.source = 'raw' AND r.dnp_reason <> '', r.dnp_reason, NULL)) AS reason
  FROM (SELECT DISTINCT source_table, processor_name, item_date, entity_id, game_date, side FROM candidates
        WHERE game_id IS NOT NULL) AS c
  JOIN (
    SELECT player_lookup, game_date, team_abbr, 'raw' AS source, player_status, dnp_reason,
      COALESCE({_MINUTES_POSITIVE}, FALSE) AS played_minutes, CAST(NULL AS BOOL) AS is_dnp
    FROM nba_raw.nbac_gamebook_player_stats
    WHERE game_date BETWEEN DATE_SUB(@date_from, INTERVAL @reach_days DAY) AND @date_to
      AND player_lookup IN (SELECT entity_id FROM pl)
    UNION ALL
    SELECT player_lookup, game_date, team_abbr, 'analytics', CAST(NULL AS STRING), CAST(NULL AS STRING), FALSE,
      COALESCE(is_dnp, FALSE)
    FROM nba_analytics.player_game_summary
    WHERE game_date BETWEEN DATE_SUB(@date_from, INTERVAL @reach_days DAY) AND @date_to
      AND player_lookup IN (SELECT entity_id FROM pl)
  ) AS r ON r.player_lookup = c.entity_id AND r.game_date = c.game_date AND r.team_abbr = c.side
    AND c.game_date >= DATE_SUB(c.item_date, INTERVAL @history_days DAY)
  GROUP BY c.source_table, c.processor_name, c.item_date, c.entity_id, c.game_date, c.side
),
side_rows AS (
  SELECT game_date, team_abbr, source, COUNT(*) AS n
  FROM (
    SELECT game_date, team_abbr, 'raw' AS source FROM nba_raw.nbac_gamebook_player_stats
    WHERE game_date BETWEEN DATE_SUB(@date_from, INTERVAL @reach_days DAY) AND @date_to
    UNION ALL
    SELECT game_date, team_abbr, 'analytics' FROM nba_analytics.player_game_summary
    WHERE game_date BETWEEN DATE_SUB(@date_from, INTERVAL @reach_days DAY) AND @date_to
  ) AS x
  GROUP BY game_date, team_abbr, source
),
unresolved AS (
  SELECT DISTINCT c.source_table, c.processor_name, c.item_date, c.entity_id, c.game_date, c.side
  FROM (SELECT DISTINCT source_table, processor_name, item_date, entity_id, game_date, side FROM candidates
        WHERE game_id IS NOT NULL) AS c
  JOIN nba_raw.nbac_gamebook_player_stats AS u
    ON u.game_date = c.game_date AND u.team_abbr = c.side
  WHERE u.game_date BETWEEN DATE_SUB(@date_from, INTERVAL @reach_days DAY) AND @date_to
    AND u.name_resolution_status IS NOT NULL AND u.name_resolution_status <> 'resolved'
    AND u.player_lookup IS NOT NULL AND u.player_lookup <> ''
    AND LENGTH(u.player_lookup) >= 3 AND STRPOS(c.entity_id, u.player_lookup) > 0
),
player_judged AS (
  SELECT c.source_table, c.processor_name, c.item_date, c.entity_id, c.run_id, c.game_date,
    COALESCE(c.game_id, '') AS game_id, c.side AS team_abbr,
    CASE
      WHEN c.game_id IS NULL THEN 'UNDECIDED'
      WHEN COALESCE(h.dnp_rows, 0) > 0 THEN 'PLAYER_DNP'
      WHEN COALESCE(h.raw_rows, 0) > 0 THEN IF(h.played_rows > 0, 'ANALYTICS_GAP', 'PLAYER_DNP')
      WHEN COALESCE(sr.n, 0) = 0 THEN 'RAW_DATA_GAP'
      WHEN u.entity_id IS NOT NULL THEN 'NAME_UNRESOLVED'
      ELSE 'NOT_IN_BOXSCORE'
    END AS verdict,
    h.reason
  FROM candidates AS c
  LEFT JOIN his_rows AS h ON h.source_table = c.source_table AND h.processor_name = c.processor_name
    AND h.item_date = c.item_date AND h.entity_id = c.entity_id AND h.game_date = c.game_date AND h.side = c.side
  LEFT JOIN side_rows AS sr ON sr.game_date = c.game_date AND sr.team_abbr = c.side AND sr.source = 'raw'
  LEFT JOIN unresolved AS u ON u.source_table = c.source_table AND u.processor_name = c.processor_name
    AND u.item_date = c.item_date AND u.entity_id = c.entity_id AND u.game_date = c.game_date AND u.side = c.side
),
unplaced AS (
  SELECT DISTINCT i.source_table, i.processor_name, i.item_date, i.entity_id, i.run_id,
    CAST(SUBSTR(v, 1, 10) AS DATE) AS game_date
  FROM pl AS i, UNNEST(REGEXP_EXTRACT_ALL(i.listed, {_ANCHORED["json_string"]})) AS v
  WHERE i.dates_listed AND i.team IS NULL
),
registry AS (
  SELECT i.source_table, i.processor_name, i.item_date, i.entity_id, i.run_id, g.game_date,
    COALESCE(fg.game_id, '') AS game_id, g.team_abbr
  FROM (SELECT * FROM its WHERE route = 'REGISTRY') AS i
  JOIN nba_raw.nbac_gamebook_player_stats AS g ON g.player_lookup = i.entity_id
    AND g.game_date BETWEEN DATE_SUB(i.item_date, INTERVAL @history_days DAY) AND i.item_date
  LEFT JOIN first_game AS fg ON fg.team = g.team_abbr AND fg.game_date = g.game_date
  WHERE g.game_date BETWEEN DATE_SUB(@date_from, INTERVAL @history_days DAY) AND @date_to
    AND g.team_abbr IS NOT NULL AND COALESCE(g.name_resolution_status, 'resolved') <> 'resolved'
),
listed_games AS (
  SELECT i.source_table, i.processor_name, i.item_date, i.entity_id, i.run_id, i.route, v AS id
  FROM its AS i, UNNEST(REGEXP_EXTRACT_ALL(i.listed, {_ANCHORED["json_string"]})) AS v
  WHERE i.ids_listed AND (i.route = 'TEAM' OR (i.route = 'GAME' AND NOT i.unknown_ids))
),
game_items AS (
  SELECT source_table, processor_name, item_date, entity_id, run_id, route, id FROM listed_games
  UNION ALL
  SELECT i.source_table, i.processor_name, i.item_date, i.entity_id, i.run_id, i.route, i.entity_id
  FROM its AS i
  WHERE i.route = 'GAME' AND NOT i.unknown_ids AND NOT EXISTS (
    SELECT 1 FROM listed_games AS l WHERE l.source_table = i.source_table AND l.processor_name = i.processor_name
      AND l.item_date = i.item_date AND l.entity_id = i.entity_id)
),
found_games AS (
  SELECT gi.*, g.game_id, g.game_date, g.home, g.away
  FROM game_items AS gi
  JOIN games AS g ON (g.game_id = gi.id OR CONCAT(FORMAT_DATE('%Y%m%d', g.game_date), '_', g.away, '_', g.home) = gi.id)
    AND g.game_date BETWEEN DATE_SUB(gi.item_date, INTERVAL @history_days DAY) AND gi.item_date
  WHERE g.is_final
),
sides AS (
  SELECT i.source_table, i.processor_name, i.item_date, i.entity_id, i.run_id, wg.game_date, wg.game_id,
    i.entity_id AS team_abbr
  FROM (SELECT * FROM its WHERE route = 'TEAM' AND NOT ids_listed) AS i
  JOIN window_games AS wg ON wg.processor_name = i.processor_name AND wg.team = i.entity_id
    AND wg.item_date = i.item_date
  UNION ALL
  SELECT source_table, processor_name, item_date, entity_id, run_id, game_date, game_id, entity_id
  FROM found_games WHERE route = 'TEAM'
  UNION ALL
  SELECT source_table, processor_name, item_date, entity_id, run_id, game_date, game_id, away
  FROM found_games WHERE route = 'GAME'
  UNION ALL
  SELECT source_table, processor_name, item_date, entity_id, run_id, game_date, game_id, home
  FROM found_games WHERE route = 'GAME'
  UNION ALL
  SELECT i.source_table, i.processor_name, i.item_date, i.entity_id, i.run_id, tg.game_date, tg.game_id, tg.team
  FROM (SELECT * FROM its WHERE route = 'DATE') AS i
  JOIN team_games AS tg ON tg.game_date >= DATE_SUB(i.item_date, INTERVAL @date_level_days DAY)
    AND tg.game_date < i.item_date
)
SELECT @batch_id, source_table, processor_name, item_date, entity_id, run_id, game_date, game_id, team_abbr, verdict,
  IF(verdict = 'PLAYER_DNP', reason, NULL)
FROM player_judged
UNION ALL
SELECT @batch_id, source_table, processor_name, item_date, entity_id, run_id, game_date, '', '', 'UNDECIDED',
  CAST(NULL AS STRING)
FROM unplaced
UNION ALL
SELECT @batch_id, source_table, processor_name, item_date, entity_id, run_id, game_date, game_id, team_abbr,
  'NAME_UNRESOLVED', CAST(NULL AS STRING)
FROM registry
UNION ALL
SELECT @batch_id, s.source_table, s.processor_name, s.item_date, s.entity_id, s.run_id, s.game_date, s.game_id,
  s.team_abbr,
  CASE WHEN COALESCE(r.n, 0) = 0 THEN 'RAW_DATA_GAP' WHEN COALESCE(a.n, 0) = 0 THEN 'ANALYTICS_GAP' END,
  CAST(NULL AS STRING)
FROM sides AS s
LEFT JOIN side_rows AS r ON r.game_date = s.game_date AND r.team_abbr = s.team_abbr AND r.source = 'raw'
LEFT JOIN side_rows AS a ON a.game_date = s.game_date AND a.team_abbr = s.team_abbr AND a.source = 'analytics'"""

# -- 3. each item's verdict from its games ------------------------------------------------------------

_CONCLUDE = """
INSERT INTO nba_processing.classification_staging
  (batch_id, source_table, processor_name, item_date, entity_id, failure_type, is_correctable, expected_count,
   actual_count, missing_game_dates, raw_data_checked)
WITH
its AS (
  SELECT * FROM nba_processing.classification_items
  WHERE batch_id = @batch_id AND item_date BETWEEN @date_from AND @date_to
),
considered AS (
  SELECT * FROM nba_processing.classification_games
  WHERE batch_id = @batch_id AND item_date BETWEEN @date_from AND @date_to
),
counted AS (
  SELECT source_table, processor_name, item_date, entity_id, COUNT(*) AS n_rows, COUNT(verdict) AS n_missing,
    COUNTIF(verdict IN ('RAW_DATA_GAP', 'ANALYTICS_GAP', 'NAME_UNRESOLVED')) AS n_correctable,
    COUNTIF(verdict = 'UNDECIDED') AS n_undecided
  FROM considered GROUP BY source_table, processor_name, item_date, entity_id
),
dated AS (
  SELECT source_table, processor_name, item_date, entity_id,
    CONCAT('[', STRING_AGG(CONCAT('"', CAST(game_date AS STRING), '"'), ', ' ORDER BY game_date), ']') AS dates
  FROM (SELECT DISTINCT source_table, processor_name, item_date, entity_id, game_date FROM considered
        WHERE verdict IS NOT NULL AND game_date IS NOT NULL) AS d
  GROUP BY source_table, processor_name, item_date, entity_id
),
joined AS (
  SELECT i.*, COALESCE(c.n_rows, 0) AS n_rows, COALESCE(c.n_missing, 0) AS n_missing,
    COALESCE(c.n_correctable, 0) AS n_correctable, COALESCE(c.n_undecided, 0) AS n_undecided,
    COALESCE(d.dates, '[]') AS dates,
    CASE
      WHEN i.route IN ('PROCESSING_ERROR', 'FORWARD', 'UNCHECKABLE') THEN 'exit'
      WHEN i.route = 'PLAYER' AND (i.no_apps OR i.team IS NULL) THEN 'exit'
      WHEN i.route = 'GAME' AND i.unknown_ids THEN 'exit'
      WHEN i.route = 'DATE' AND COALESCE(c.n_rows, 0) = 0 THEN 'exit'
      WHEN i.route = 'REGISTRY' THEN 'registry'
      ELSE 'combine'
    END AS how,
    CASE WHEN i.route = 'PLAYER' OR (i.route = 'TEAM' AND NOT i.ids_listed) THEN i.expected_count
      ELSE COALESCE(c.n_rows, 0) END AS expected
  FROM its AS i
  LEFT JOIN counted AS c ON c.source_table = i.source_table AND c.processor_name = i.processor_name
    AND c.item_date = i.item_date AND c.entity_id = i.entity_id
  LEFT JOIN dated AS d ON d.source_table = i.source_table AND d.processor_name = i.processor_name
    AND d.item_date = i.item_date AND d.entity_id = i.entity_id
),
judged AS (
  SELECT *,
    CASE
      WHEN route = 'PROCESSING_ERROR' THEN 'PROCESSING_ERROR'
      WHEN how = 'exit' THEN 'UNKNOWN'
      WHEN how = 'registry' THEN IF(n_missing > 0, 'DATA_GAP', 'COMPLETE')
      WHEN n_undecided > 0 THEN 'UNKNOWN'
      WHEN judge_history AND expected < @min_expected THEN 'INSUFFICIENT_HISTORY'
      WHEN n_missing = 0 THEN IF(bootstrap, 'INSUFFICIENT_HISTORY', 'COMPLETE')
      WHEN n_correctable = n_missing THEN 'DATA_GAP'
      WHEN n_correctable = 0 THEN 'PLAYER_DNP'
      ELSE 'MIXED'
    END AS failure_type,
    CASE
      WHEN route = 'PROCESSING_ERROR' THEN can_retry
      WHEN how = 'exit' THEN NULL
      WHEN how = 'registry' THEN TRUE
      WHEN n_undecided > 0 THEN NULL
      WHEN judge_history AND expected < @min_expected THEN n_correctable > 0
      WHEN n_missing = 0 THEN NOT bootstrap
      ELSE n_correctable > 0
    END AS is_correctable
  FROM joined
)
SELECT @batch_id, source_table, processor_name, item_date, entity_id, failure_type, is_correctable,
  IF(how = 'combine', expected, NULL),
  CASE WHEN how <> 'combine' THEN NULL WHEN route = 'PLAYER' THEN actual_count ELSE expected - n_missing END,
  IF(how = 'exit', NULL, dates),
  how <> 'exit'
FROM judged"""

# -- 4. into the failure rows and the evidence table, then clear the batch -----------------------------

_EVIDENCE = """
INSERT INTO nba_processing.failure_missing_games
  (source_table, processor_name, run_id, analysis_date, entity_id, game_date, game_id, team_abbr, verdict,
   is_correctable, dnp_reason, classified_at)
SELECT source_table, processor_name, COALESCE(run_id, ''), item_date, entity_id, game_date, game_id, team_abbr,
  verdict, IF(verdict = 'UNDECIDED', NULL, verdict IN ('RAW_DATA_GAP', 'ANALYTICS_GAP', 'NAME_UNRESOLVED')),
  dnp_reason, @now
FROM nba_processing.classification_games
WHERE batch_id = @batch_id AND item_date BETWEEN @date_from AND @date_to AND verdict IS NOT NULL"""

_CLEAR = tuple(
    f"DELETE FROM nba_processing.{name} WHERE batch_id = @batch_id AND item_date BETWEEN @date_from AND @date_to"
    for name in ("classification_staging", "classification_games", "classification_items")
)

_TALLY = """
SELECT 'type' AS what, failure_type AS value, COUNT(*) AS n FROM nba_processing.classification_staging
WHERE batch_id = @batch_id AND item_date BETWEEN @date_from AND @date_to GROUP BY failure_type
UNION ALL
SELECT 'verdict', verdict, COUNT(*) FROM nba_processing.classification_games
WHERE batch_id = @batch_id AND item_date BETWEEN @date_from AND @date_to AND verdict IS NOT NULL GROUP BY verdict"""

# The items a run judges (``TO_JUDGE``), as ``FROM ... WHERE``: counted per date, or listed by key.
_UNJUDGED = f"""
WITH {{rows}},
{JUDGED},
i AS (
  SELECT source_table, processor_name, item_date, entity_id,
    ANY_VALUE(failure_type HAVING MAX seen_at) AS failure_type, {LAST_WRITTEN} AS last_written
  FROM (SELECT *, {relation.SEEN_AT} AS seen_at FROM failure_rows) AS r
  GROUP BY source_table, processor_name, item_date, entity_id
)
SELECT {{columns}} FROM i
LEFT JOIN judged AS j ON j.source_table = i.source_table AND j.processor_name = i.processor_name
  AND j.item_date = i.item_date AND j.entity_id = i.entity_id
WHERE {TO_JUDGE}"""
_ITEMS_PER_DATE = _UNJUDGED.replace("{columns}", "i.item_date, COUNT(*) AS n") + (
    "\nGROUP BY i.item_date ORDER BY i.item_date"
)
_KEYS_TO_JUDGE = _UNJUDGED.replace("{columns}", "i.source_table, i.processor_name, i.item_date, i.entity_id")


def window_specs(config: ClassifierConfig) -> list[str]:
    """The configured windows as ``PROCESSOR|kind|size`` strings (``*``: every other processor)."""
    specs = [f"{name}|{w.kind}|{w.size}" for name, ws in config.windows_by_processor.items() for w in ws]
    return specs + [f"*|{w.kind}|{w.size}" for w in config.fallback_windows()]


def params(
    config: ClassifierConfig, *, date_from: dt.date, date_to: dt.date, overwrite: bool, batch_id: str, now: dt.datetime
) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "date_from": date_from,
        "date_to": date_to,
        "overwrite": overwrite,
        "now": now,
        "windows": window_specs(config),
        "min_expected": config.min_expected_games,
        "history_days": HISTORY_DAYS,
        "lookahead_days": LOOKAHEAD_DAYS,
        "reach_days": max(config.reach_days(), HISTORY_DAYS),
        "date_level_days": config.date_level_lookback_days,
        "non_data": sorted(NON_DATA_CATEGORIES),
        "forward": sorted(FORWARD_LOOKING_PROCESSORS),
        "missing_data": sorted(MISSING_DATA_CATEGORIES),
        "bootstrap": sorted(BOOTSTRAP_CATEGORIES),
    }


def _only(p: dict[str, Any], sql: str) -> dict[str, Any]:
    """The parameters a statement uses (BigQuery refuses unused ones on some paths; DuckDB on all)."""
    return {k: v for k, v in p.items() if f"@{k}" in sql}


def keys_to_judge(store: Store, *, since: dt.date | None, until: dt.date | None, overwrite: bool) -> pd.DataFrame:
    """The keys (source_table, processor_name, item_date, entity_id) of the items a run would judge."""
    first, last = since or EARLIEST, until or LATEST
    sql = _KEYS_TO_JUDGE.format(rows=relation.rows_cte(Filters(date_from=first, date_to=last, hide_expected=False)))
    return store.query(sql, {"date_from": first, "date_to": last, "overwrite": overwrite}, label="classify")


def batches(store: Store, *, since: dt.date | None, until: dt.date | None, overwrite: bool, size: int
            ) -> list[tuple[dt.date, dt.date, int]]:  # fmt: skip
    """Consecutive date ranges of at most ``size`` items each (a single busier date stands alone)."""
    first, last = since or EARLIEST, until or LATEST
    rows = relation.rows_cte(Filters(date_from=first, date_to=last, hide_expected=False))
    sql = _ITEMS_PER_DATE.format(rows=rows)
    counts = store.query(sql, {"date_from": first, "date_to": last, "overwrite": overwrite}, label="classify")
    out: list[tuple[dt.date, dt.date, int]] = []
    for day, n in zip(counts["item_date"], counts["n"], strict=True):
        if out and out[-1][2] + int(n) <= size:
            out[-1] = (out[-1][0], day, out[-1][2] + int(n))
        else:
            out.append((day, day, int(n)))
    return out


def _run_batch(
    store: Store,
    config: ClassifierConfig,
    *,
    date_from: dt.date,
    date_to: dt.date,
    overwrite: bool,
    now: dt.datetime,
    updates: Sequence[str],
    replace_evidence: str,
    keep_causes: str,
    clock: Clock | None = None,
    restamp: str | None = None,
) -> tuple[Counter[str], Counter[str]]:
    """Classify every item dated ``date_from``..``date_to`` in the engine; returns the tallies by type and verdict.
    The verdict changes and evidence are stamped ``clock()`` read inside the write (never before ``now``; ``now``
    without a clock); with ``clock`` the verdict changes again as the write ends (``restamp``, the statement that sets
    ``@written`` on the batch's rows). On BigQuery the batch is one script, stamped as it is sent."""
    p = params(config, date_from=date_from, date_to=date_to, overwrite=overwrite, batch_id=uuid.uuid4().hex, now=now)
    writes = [_ROUTE, _JUDGE, _CONCLUDE, *updates, keep_causes, replace_evidence, _EVIDENCE]
    by_type: Counter[str] = Counter()
    by_verdict: Counter[str] = Counter()
    if store.engine == "bigquery":
        # One multi-statement transaction: every item of the batch is written whole or not at all (a
        # streaming-buffer refusal, a quota error or a killed job leaves the rows as they were).
        script = "BEGIN TRANSACTION;\n" + ";\n".join(writes) + ";\nCOMMIT TRANSACTION;"
        p["now"] = stamp(now, clock)
        store.execute(script, _only(p, script), label="classify")
        _tally(store.query(_TALLY, _only(p, _TALLY), label="classify"), by_type, by_verdict)
        for sql in _CLEAR:  # the batch's working rows; left behind by a killed run, they are never read again
            store.execute(sql, _only(p, sql), label="classify")
        return by_type, by_verdict
    with store.transaction(label="classify") as tx:
        p["now"] = stamp(now, clock)  # the file is this process's from here to the commit
        for sql in writes:
            tx.execute(sql, _only(p, sql))
        if clock is not None and restamp:
            tx.execute(restamp, {**_only(p, restamp), "written": stamp(now, clock)})
        _tally(tx.query(_TALLY, _only(p, _TALLY)), by_type, by_verdict)
        for sql in _CLEAR:
            tx.execute(sql, _only(p, sql))
    return by_type, by_verdict


def _tally(rows: Any, by_type: Counter[str], by_verdict: Counter[str]) -> None:
    for row in rows.itertuples(index=False):
        (by_type if row.what == "type" else by_verdict)[str(row.value)] += int(str(row.n))
