"""What to do about the correctable failures, in the order the pipeline recovers.

From the open correctable items of the view and the classifier's per-game evidence:
1. games whose raw box scores to re-scrape (RAW_DATA_GAP), by game and team side;
2. games to re-process in phase 3 (ANALYTICS_GAP);
3. names to fix in the player registry (NAME_UNRESOLVED);
4. then the processors to re-run, in the pipeline's recovery order (phase 3; TDZA and PSZA; PCF; PDC; MLFS;
   predictions), for which dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pandas as pd

from lib.model import OPEN_STATUSES, Filters
from lib.store import queries as q
from lib.store.base import Store

#: The pipeline's recovery order after a data gap: step number per processor (phase 3 first).
RECOVERY_STEP: dict[str, tuple[int, str]] = {
    "PlayerGameSummaryProcessor": (1, "phase 3"),
    "TeamOffenseGameSummaryProcessor": (1, "phase 3"),
    "TeamDefenseGameSummaryProcessor": (1, "phase 3"),
    "UpcomingPlayerGameContextProcessor": (1, "phase 3"),
    "UpcomingTeamGameContextProcessor": (1, "phase 3"),
    "TeamDefenseZoneAnalysisProcessor": (2, "TDZA and PSZA"),
    "PlayerShotZoneAnalysisProcessor": (2, "TDZA and PSZA"),
    "PlayerCompositeFactorsProcessor": (3, "PCF"),
    "PlayerDailyCacheProcessor": (4, "PDC"),
    "MLFeatureStoreProcessor": (5, "MLFS"),
}
_LAST_STEP = (6, "predictions")


def _scope(filters: Filters) -> Filters:
    statuses = tuple(s for s in OPEN_STATUSES if not filters.statuses or s in filters.statuses) or OPEN_STATUSES
    return filters.with_(correctable=("correctable",), statuses=statuses)


_EVIDENCE_JOIN = """
FROM filtered AS i
JOIN nba_processing.failure_missing_games AS m
  ON m.source_table = i.source_table AND m.processor_name = i.processor_name
  AND m.analysis_date = i.item_date AND m.entity_id = i.entity_id
WHERE m.analysis_date BETWEEN @date_from AND @date_to AND m.verdict = @verdict"""


def games_to_fix(store: Store, filters: Filters, verdict: str) -> pd.DataFrame:
    """Games (and team sides) behind the open correctable items with this verdict, most items first."""
    f = _scope(filters)
    sql = (
        q.relation(store, f)
        + f"""
SELECT m.game_date, m.game_id, m.team_abbr AS team, COUNT(DISTINCT i.item_key) AS items,
  COUNT(DISTINCT i.entity_id) AS entities, COUNT(DISTINCT i.processor_name) AS processors
{_EVIDENCE_JOIN}
GROUP BY m.game_date, m.game_id, m.team_abbr
ORDER BY m.game_date, m.game_id, m.team_abbr"""
    )
    return store.query(sql, {**q.params_of(f), "verdict": verdict}, label="workqueue")


def names_to_fix(store: Store, filters: Filters) -> pd.DataFrame:
    f = _scope(filters)
    sql = (
        q.relation(store, f)
        + f"""
SELECT i.entity_id AS player, m.team_abbr AS team, MIN(m.game_date) AS first_game, MAX(m.game_date) AS last_game,
  COUNT(DISTINCT m.game_date) AS games, COUNT(DISTINCT i.item_key) AS items
{_EVIDENCE_JOIN}
GROUP BY i.entity_id, m.team_abbr
ORDER BY games DESC, player"""
    )
    return store.query(sql, {**q.params_of(f), "verdict": "NAME_UNRESOLVED"}, label="workqueue")


def compact_dates(dates: Iterable[dt.date]) -> str:
    """Dates as a person reads them: consecutive days joined into a range, the month named once ("Nov 1–3, 7, 30;
    Dec 2"), the year added where the dates span more than one."""
    days = sorted(set(dates))
    if not days:
        return ""
    runs: list[tuple[dt.date, dt.date]] = []
    for d in days:
        if runs and (d - runs[-1][1]).days == 1:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    years = len({d.year for d in days}) > 1
    parts: list[str] = []
    month: tuple[int, int] | None = None
    for a, b in runs:
        head = f"{a:%b} {a.day}" + (f" {a.year}" if years else "") if (a.year, a.month) != month else str(a.day)
        if parts and (a.year, a.month) != month:
            parts[-1] += ";"
        month = (a.year, a.month)
        if a == b:
            parts.append(head)
            continue
        tail = str(b.day) if (b.year, b.month) == month else f"{b:%b} {b.day}" + (f" {b.year}" if years else "")
        month = (b.year, b.month)
        parts.append(f"{head}–{tail}")
    return ", ".join(parts).replace(";,", ";")


def reruns(store: Store, filters: Filters) -> pd.DataFrame:
    """Processors to re-run for which dates, in recovery order."""
    f = _scope(filters)
    sql = (
        q.relation(store, f)
        + """
SELECT processor_name, item_date, COUNT(*) AS items
FROM filtered
GROUP BY processor_name, item_date"""
    )
    frame = store.query(sql, q.params_of(f), label="workqueue")
    if frame.empty:
        return pd.DataFrame(columns=["step", "section", "stage", "processor_name", "dates", "first_date", "last_date",
                                     "items", "date_list", "date_ranges"])  # fmt: skip
    steps = frame["processor_name"].map(lambda p: RECOVERY_STEP.get(p, _LAST_STEP))
    frame["step"] = [s[0] for s in steps]
    frame["stage"] = [s[1] for s in steps]
    out = (
        frame.assign(section=[f"{RERUN_SECTION}.{s[0]}" for s in steps])
        .groupby(["step", "section", "stage", "processor_name"])
        .agg(dates=("item_date", "nunique"), first_date=("item_date", "min"), last_date=("item_date", "max"),
             items=("items", "sum"), date_list=("item_date", lambda d: ", ".join(x.isoformat() for x in sorted(d))),
             date_ranges=("item_date", compact_dates))
        .reset_index()
        .sort_values(["step", "processor_name"])
    )  # fmt: skip
    return out.reset_index(drop=True)


#: The work queue's sections, numbered alike on the page and in the exported plan: the processors to re-run are
#: section 4, its steps 4.1 (phase 3) to 4.6 (predictions) in the pipeline's recovery order.
SECTIONS = ("Raw box scores to re-scrape", "Games to re-process in phase 3", "Names to fix in the player registry",
            "Processors to re-run, in recovery order")  # fmt: skip
RERUN_SECTION = 4
PLAN_COLUMNS = ["step", "task", "game_date", "game_id", "team", "player", "processor_name", "dates", "items"]


def plan(store: Store, filters: Filters) -> pd.DataFrame:
    """The whole queue as one table (for the CSV export): one row per task, in the order to do them, each with its
    step as the page numbers it ("1" to "3", "4.1" to "4.6"); a registry task names its player in ``player``."""
    parts: list[pd.DataFrame] = []
    for order, (task, verdict) in enumerate((("re-scrape raw box score", "RAW_DATA_GAP"),
                                             ("re-process in phase 3", "ANALYTICS_GAP")), start=1):  # fmt: skip
        games = games_to_fix(store, filters, verdict)
        if len(games):
            parts.append(pd.DataFrame({
                "step": str(order), "rank": float(order), "task": task, "game_date": games["game_date"],
                "game_id": games["game_id"], "team": games["team"], "player": "", "processor_name": "", "dates": "",
                "items": games["items"],
            }))  # fmt: skip
    names = names_to_fix(store, filters)
    if len(names):
        parts.append(pd.DataFrame({
            "step": "3", "rank": 3.0, "task": "fix player registry name", "game_date": names["first_game"],
            "game_id": "", "team": names["team"], "player": names["player"], "processor_name": "", "dates": "",
            "items": names["items"],
        }))  # fmt: skip
    runs = reruns(store, filters)
    if len(runs):
        parts.append(pd.DataFrame({
            "step": runs["section"], "rank": RERUN_SECTION + runs["step"] / 10, "task": "re-run " + runs["stage"],
            "game_date": runs["first_date"], "game_id": "", "team": "", "player": "",
            "processor_name": runs["processor_name"], "dates": runs["date_list"], "items": runs["items"],
        }))  # fmt: skip
    if not parts:
        return pd.DataFrame(columns=PLAN_COLUMNS)
    out = pd.concat(parts, ignore_index=True).sort_values(["rank", "game_date"], kind="stable")
    return out[PLAN_COLUMNS].reset_index(drop=True)


def counts(store: Store, filters: Filters) -> dict[str, Any]:
    return {"open correctable items": q.count_items(store, _scope(filters))}
