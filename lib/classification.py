"""Classify failures in sets: a few queries per batch of items, never one per failure or per game.

For each batch (items in date order): one query for the schedule, one for raw and analytics row
counts per team side, one for unresolved names, one for the batch's players' appearances. The pure
classifier (``lib/classifier.py``) judges each item from that evidence; the verdicts reach the failure
rows through a staging table (one UPDATE per failure table) and the per-game evidence replaces the
item's rows in ``nba_processing.failure_missing_games``, all in one transaction.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lib import engine_verdicts, operations
from lib.classifier import (
    HISTORY_DAYS,
    ISO_DATE_PATTERN,
    JSON_LIST_PATTERN,
    JSON_STRING_PATTERN,
    LOOKAHEAD_DAYS,
    ClassifierConfig,
    Evidence,
    classify,
    entity_kind,
    player_timeline,
)
from lib.errors import BadInput
from lib.model import (
    EARLIEST,
    LATEST,
    MAX_WINDOW_DAYS,
    Actor,
    Appearance,
    Clock,
    FailureTableSpec,
    FailureToClassify,
    Filters,
    ScheduledGame,
    SourceTable,
    Verdict,
    rising,
    stamp,
)
from lib.store import index, relation
from lib.store import queries as q
from lib.store.base import Store, Transaction

Progress = Callable[[float, str], None]

#: Items per engine batch: large, since each batch reads its evidence range once.
ENGINE_BATCH = 200_000
_JSON_LIST = re.compile(JSON_LIST_PATTERN)
_JSON_STRING = re.compile(JSON_STRING_PATTERN)
_ISO_DATE = re.compile(ISO_DATE_PATTERN)


def _quiet(fraction: float, message: str) -> None:
    return None


@dataclass
class Report:
    """What a classification run did."""

    items: int = 0
    batches: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    by_verdict: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        out = [f"Classified {self.items:,} items in {self.batches} batch(es)."]
        if self.by_type:
            out.append("By failure_type: " + ", ".join(f"{k} {v:,}" for k, v in self.by_type.most_common()))
        if self.by_verdict:
            out.append("Missing games by verdict: " + ", ".join(f"{k} {v:,}" for k, v in self.by_verdict.most_common()))
        return out


# -- reading -------------------------------------------------------------------------------------

_SCHEDULE = """
SELECT game_id, game_date, game_status, home_team_tricode, away_team_tricode, season_year
FROM nba_raw.nbac_schedule
WHERE game_date BETWEEN @start AND @end"""

# Where each season starts, as far back as a player's team is looked for (his team is taken within a season).
_SEASON_STARTS = """
SELECT season_year, MIN(game_date) AS first_date
FROM nba_raw.nbac_schedule
WHERE game_date BETWEEN @history_start AND @end AND season_year IS NOT NULL
GROUP BY season_year"""

_SIDES = """
SELECT 'raw' AS source, game_date, team_abbr, COUNT(*) AS n
FROM nba_raw.nbac_gamebook_player_stats
WHERE game_date BETWEEN @start AND @end
GROUP BY game_date, team_abbr
UNION ALL
SELECT 'analytics' AS source, game_date, team_abbr, COUNT(*) AS n
FROM nba_analytics.player_game_summary
WHERE game_date BETWEEN @start AND @end
GROUP BY game_date, team_abbr"""

_UNRESOLVED = """
SELECT game_date, team_abbr, player_lookup
FROM nba_raw.nbac_gamebook_player_stats
WHERE game_date BETWEEN @start AND @end
  AND name_resolution_status IS NOT NULL AND name_resolution_status <> 'resolved'"""

_APPEARANCES = """
SELECT player_lookup, game_date, team_abbr, 'raw' AS source, player_status, dnp_reason, minutes,
  CAST(NULL AS BOOL) AS is_dnp, CAST(NULL AS FLOAT64) AS minutes_played,
  COALESCE(name_resolution_status, 'resolved') = 'resolved' AS resolved
FROM nba_raw.nbac_gamebook_player_stats
WHERE game_date BETWEEN @history_start AND @end AND player_lookup IN UNNEST(@players)
UNION ALL
SELECT player_lookup, game_date, team_abbr, 'analytics' AS source, CAST(NULL AS STRING), CAST(NULL AS STRING),
  CAST(NULL AS STRING), is_dnp, minutes_played, TRUE
FROM nba_analytics.player_game_summary
WHERE game_date BETWEEN @history_start AND @end AND player_lookup IN UNNEST(@players)"""


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _none(value: Any) -> Any:
    return None if value is None or (not isinstance(value, (list, tuple, str)) and pd.isna(value)) else value


def _shifted(day: dt.date, days: int) -> dt.date:
    """``day`` moved by ``days``, held within the calendar (a row dated 9999-12-31 or 0001-01-01 is evidence too)."""
    try:
        return day + dt.timedelta(days=days)
    except OverflowError:
        return LATEST if days > 0 else EARLIEST


def load_evidence(store: Store, failures: Sequence[FailureToClassify], config: ClassifierConfig) -> Evidence:
    """Everything the classifier needs for these failures, in five queries."""
    if not failures:
        return Evidence([], {}, {}, {}, {})
    first = min(f.item_date for f in failures)
    end = max(f.item_date for f in failures)
    furthest = _shifted(first, -HISTORY_DAYS)
    lookahead_end = _shifted(end, LOOKAHEAD_DAYS)

    season_starts = {
        int(r["season_year"]): r["first_date"]
        for r in _records(
            store.query(_SEASON_STARTS, {"history_start": furthest, "end": lookahead_end}, label="classify")
        )
    }
    # Everything an item can look at lies within its history (game-count windows reach back to the start of
    # the season, a registry row, a listed game or date up to HISTORY_DAYS; a day window may reach further):
    # the schedule and the side counts are small, so the whole history of the batch is read. A player's
    # appearances also go a little past the batch, for one whose first appearance comes after the date.
    start = min(_shifted(first, -config.reach_days()), furthest)
    window = {"start": start, "end": end}

    games = [
        ScheduledGame(
            str(r["game_id"]),
            r["game_date"],
            str(r["home_team_tricode"]),
            str(r["away_team_tricode"]),
            int(r["game_status"]) if _none(r["game_status"]) is not None else 0,
            int(r["season_year"]) if _none(r["season_year"]) is not None else None,
        )
        for r in _records(store.query(_SCHEDULE, window, label="classify"))
    ]
    raw_rows: dict[tuple[dt.date, str], int] = {}
    ana_rows: dict[tuple[dt.date, str], int] = {}
    for r in _records(store.query(_SIDES, window, label="classify")):
        (raw_rows if r["source"] == "raw" else ana_rows)[(r["game_date"], str(r["team_abbr"]))] = int(r["n"])
    unresolved: dict[tuple[dt.date, str], list[str]] = defaultdict(list)
    for r in _records(store.query(_UNRESOLVED, window, label="classify")):
        if _none(r["player_lookup"]):
            unresolved[(r["game_date"], str(r["team_abbr"]))].append(str(r["player_lookup"]))

    players = sorted({f.entity_id for f in failures if entity_kind(f) == "PLAYER"})
    appearances: dict[str, list[Appearance]] = defaultdict(list)
    if players:
        rows = store.query(
            _APPEARANCES,
            {"end": lookahead_end, "history_start": start, "players": players},
            label="classify",
        )
        for r in _records(rows):
            if _none(r["team_abbr"]) is None:
                continue
            appearances[str(r["player_lookup"])].append(
                Appearance(
                    game_date=r["game_date"],
                    team=str(r["team_abbr"]),
                    source=str(r["source"]),
                    status=_none(r["player_status"]),
                    dnp_reason=_none(r["dnp_reason"]),
                    minutes=_none(r["minutes"]),
                    is_dnp=None if _none(r["is_dnp"]) is None else bool(r["is_dnp"]),
                    minutes_played=_none(r["minutes_played"]),
                    resolved=bool(r["resolved"]),
                )
            )
    return Evidence(games, raw_rows, ana_rows, unresolved, appearances, season_starts)


def parse_json_list(text: object) -> tuple[str, ...] | None:
    """A JSON array of strings as recorded by a processor (nulls skipped); None when absent or unusable."""
    if _none(text) is None or not _JSON_LIST.fullmatch(str(text)):
        return None
    return tuple(_JSON_STRING.findall(str(text)))


def _dates(values: tuple[str, ...] | None) -> tuple[dt.date, ...] | None:
    if values is None:
        return None
    out = []
    for v in values:
        if not _ISO_DATE.fullmatch(v[:10]):
            return None  # a list we cannot read is treated as absent: the window decides
        try:
            out.append(dt.date.fromisoformat(v[:10]))
        except ValueError:
            return None
    return tuple(out)


def failure_from_item(item: dict[str, Any]) -> FailureToClassify:
    """The classifier's view of one item (a row of ``queries.list_items`` / ``iter_items``)."""
    table = str(item["source_table"])
    listed = parse_json_list(item["missing_json"])
    return FailureToClassify(
        source_table=table,
        processor_name=str(item["processor_name"]),
        item_date=item["item_date"],
        entity_id=str(item["entity_id"]),
        failure_category=str(item["failure_category"]),
        can_retry=None if _none(item["can_retry"]) is None else bool(item["can_retry"]),
        entity_type=_none(item["entity_type"]) if table == SourceTable.ANALYTICS else None,
        missing_dates=_dates(listed) if table == SourceTable.PRECOMPUTE else None,
        missing_game_ids=listed if table == SourceTable.ANALYTICS else None,
        run_id=str(_none(item["latest_run_id"]) or ""),
    )


_KEY = ["source_table", "processor_name", "item_date", "entity_id"]


def unclassified_items(
    store: Store, *, include_classified: bool, since: dt.date | None, until: dt.date | None, chunk: int
) -> Iterator[pd.DataFrame]:
    """The items a run judges (see :data:`engine_verdicts.TO_JUDGE`: no verdict, or only the pipeline's), in
    chunks, oldest first."""
    filters = Filters(date_from=since, date_to=until, hide_expected=False)
    if include_classified:
        yield from q.iter_items(store, filters, sort="oldest date", chunk=chunk)
        return
    wanted = engine_verdicts.keys_to_judge(store, since=since, until=until, overwrite=False)
    if wanted.empty:
        return
    chosen = set(wanted[_KEY].itertuples(index=False, name=None))
    pending: list[pd.DataFrame] = []
    size = 0
    for frame in q.iter_items(store, filters, sort="oldest date", chunk=chunk):
        keys = frame[_KEY].itertuples(index=False, name=None)
        mine = frame[[k in chosen for k in keys]]
        if len(mine):
            pending.append(mine)
            size += len(mine)
        if size >= chunk:
            yield pd.concat(pending, ignore_index=True)
            pending, size = [], 0
    if pending:
        yield pd.concat(pending, ignore_index=True)


def count_to_classify(
    store: Store, *, include_classified: bool = False, since: dt.date | None = None, until: dt.date | None = None
) -> int:
    """How many items a run would judge: without a verdict, or with only the pipeline's."""
    if include_classified or "nba_processing.item_judgements" not in store.existing_tables():
        # (without the table, nothing was judged yet: every item is to judge)
        return q.count_items(store, Filters(date_from=since, date_to=until, hide_expected=False))
    from_index = q.count_to_judge(store, since, until)  # the items keep their latest verdict of ours
    if from_index is not None:
        return from_index
    days = engine_verdicts.batches(store, since=since, until=until, overwrite=False, size=1)
    return sum(n for _, _, n in days)


# -- writing --------------------------------------------------------------------------------------


# The classifier's columns each table has, from its spec (lib/model.py); values come from the staging table.
def _assignments(spec: FailureTableSpec) -> str:
    verdict = "failure_type = s.failure_type, is_correctable = s.is_correctable"
    if not spec.classifier_writes_window:
        return verdict
    return (
        f"{verdict}, {spec.expected_column} = s.expected_count, {spec.actual_column} = s.actual_count, "
        f"{spec.missing_column} = COALESCE(t.{spec.missing_column}, s.missing_game_dates), "
        "raw_data_checked = s.raw_data_checked"
    )


_UPDATE = """
UPDATE {ref} AS t
SET {assignments}
FROM nba_processing.classification_staging AS s
WHERE s.batch_id = @batch_id AND s.source_table = '{table}'
  AND COALESCE(t.processor_name, '') = s.processor_name AND t.{date} = s.item_date
  AND COALESCE(t.entity_id, '') = s.entity_id
  AND t.{date} BETWEEN @date_from AND @date_to"""
# (An item's key holds '' where its rows have no processor or entity (NULL): the rows are matched the same way.)
_UPDATES = {
    table: _UPDATE.format(
        ref=table.spec.ref, table=table.value, date=table.date_column, assignments=_assignments(table.spec)
    )
    for table in SourceTable
}

# What each item shows before the verdicts land: its latest row's type and correctability, and when its rows were
# last written (a judgement after that is the one the item shows).
_SHOWN = (
    relation.rows_cte(Filters())
    + f""",
shown AS (
  SELECT source_table, processor_name, item_date, entity_id,
    ANY_VALUE(failure_type HAVING MAX seen_at) AS failure_type,
    ANY_VALUE(is_correctable HAVING MAX seen_at) AS is_correctable,
    {engine_verdicts.LAST_WRITTEN} AS last_written
  FROM (SELECT *, {relation.SEEN_AT} AS seen_at FROM failure_rows) AS r
  GROUP BY source_table, processor_name, item_date, entity_id
)"""
)

# Before the verdicts land: every item whose verdict differs from the one it shows (its latest row's type and
# correctability) gets a line in the classification history, so that "classification changed since
# yesterday" can be answered although the failure rows only keep the latest verdict.
_LOG_CHANGES = (
    """
INSERT INTO nba_processing.classification_changes
  (batch_id, source_table, processor_name, item_date, entity_id, from_type, from_correctable, to_type,
   to_correctable, at)
WITH """
    + _SHOWN
    + """
SELECT @batch_id, s.source_table, s.processor_name, s.item_date, s.entity_id, c.failure_type, c.is_correctable,
  s.failure_type, s.is_correctable, @now
FROM nba_processing.classification_staging AS s
LEFT JOIN shown AS c
  ON c.source_table = s.source_table AND c.processor_name = s.processor_name AND c.item_date = s.item_date
  AND c.entity_id = s.entity_id
WHERE s.batch_id = @batch_id AND s.item_date BETWEEN @date_from AND @date_to
  AND (COALESCE(c.failure_type, '') != s.failure_type
    OR COALESCE(CAST(c.is_correctable AS STRING), '-') != COALESCE(CAST(s.is_correctable AS STRING), '-'))"""
)

# Every judged item gets a line: what the pipeline had said and what the classifier says. The pipeline's verdict
# is the one the item showed, unless the dashboard judged it since its rows were written (then the item shows
# the dashboard's verdict, and the pipeline's is carried from that judgement).
_LOG_JUDGEMENTS = (
    """
INSERT INTO nba_processing.item_judgements
  (batch_id, source_table, processor_name, item_date, entity_id, pipeline_type, pipeline_correctable, failure_type,
   is_correctable, at)
WITH """
    + _SHOWN
    + """,
prior AS (
  SELECT source_table, processor_name, item_date, entity_id, MAX(at) AS judged_at,
    ANY_VALUE(pipeline_type HAVING MAX at) AS pipeline_type,
    ANY_VALUE(pipeline_correctable HAVING MAX at) AS pipeline_correctable
  FROM nba_processing.item_judgements
  WHERE item_date BETWEEN @date_from AND @date_to
  GROUP BY source_table, processor_name, item_date, entity_id
)
SELECT @batch_id, s.source_table, s.processor_name, s.item_date, s.entity_id,
  IF(p.judged_at >= c.last_written, p.pipeline_type, c.failure_type),
  IF(p.judged_at >= c.last_written, p.pipeline_correctable, c.is_correctable),
  s.failure_type, s.is_correctable, CURRENT_TIMESTAMP()
FROM nba_processing.classification_staging AS s
LEFT JOIN shown AS c
  ON c.source_table = s.source_table AND c.processor_name = s.processor_name AND c.item_date = s.item_date
  AND c.entity_id = s.entity_id
LEFT JOIN prior AS p
  ON p.source_table = s.source_table AND p.processor_name = s.processor_name AND p.item_date = s.item_date
  AND p.entity_id = s.entity_id
WHERE s.batch_id = @batch_id AND s.item_date BETWEEN @date_from AND @date_to"""
)

# Before an item's evidence is replaced, the root causes it named are kept (once per item and cause): the
# incident they made keeps the item once its data is back (lib/incidents.py).
_KEEP_CAUSES = """
INSERT INTO nba_processing.incident_links
  (cause, game_id, team_abbr, game_date, source_table, processor_name, item_date, entity_id, linked_at)
SELECT m.verdict, COALESCE(m.game_id, ''), COALESCE(m.team_abbr, ''), MIN(m.game_date), m.source_table,
  m.processor_name, m.analysis_date, m.entity_id, MIN(m.classified_at)
FROM nba_processing.failure_missing_games AS m
WHERE m.analysis_date BETWEEN @date_from AND @date_to
  AND m.verdict IN ('RAW_DATA_GAP', 'ANALYTICS_GAP', 'NAME_UNRESOLVED')
  AND EXISTS (
    SELECT 1 FROM nba_processing.classification_staging AS s
    WHERE s.batch_id = @batch_id AND s.source_table = m.source_table AND s.processor_name = m.processor_name
      AND s.item_date = m.analysis_date AND s.entity_id = m.entity_id)
  AND NOT EXISTS (
    SELECT 1 FROM nba_processing.incident_links AS l
    WHERE l.item_date BETWEEN @date_from AND @date_to AND l.source_table = m.source_table
      AND l.processor_name = m.processor_name AND l.item_date = m.analysis_date AND l.entity_id = m.entity_id
      AND l.cause = m.verdict AND l.game_id = COALESCE(m.game_id, '') AND l.team_abbr = COALESCE(m.team_abbr, ''))
GROUP BY m.verdict, COALESCE(m.game_id, ''), COALESCE(m.team_abbr, ''), m.source_table, m.processor_name,
  m.analysis_date, m.entity_id"""

_REPLACE_EVIDENCE = """
DELETE FROM nba_processing.failure_missing_games AS m
WHERE m.analysis_date BETWEEN @date_from AND @date_to
  AND EXISTS (
    SELECT 1 FROM nba_processing.classification_staging AS s
    WHERE s.batch_id = @batch_id AND s.source_table = m.source_table AND s.processor_name = m.processor_name
      AND s.item_date = m.analysis_date AND s.entity_id = m.entity_id)"""

# The batch's verdict changes take the instant its write ends (read just before the commit), not the one it began
# with: a page read between the two (in this process, or on an engine without the file's lock) did not see them, and
# stamped before that visit they would be missing from "what changed since my last visit" ever after. (Only the
# batch's own rows, not yet committed: the committed log is never changed.)
RESTAMP_CHANGES = """
UPDATE nba_processing.classification_changes SET at = @written
WHERE batch_id = @batch_id AND item_date BETWEEN @date_from AND @date_to"""

_CLEAR_STAGING = """
DELETE FROM nba_processing.classification_staging
WHERE batch_id = @batch_id AND item_date BETWEEN @date_from AND @date_to"""


def _staging_frame(batch_id: str, judged: Sequence[tuple[FailureToClassify, Verdict]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "batch_id": batch_id,
                "source_table": f.source_table,
                "processor_name": f.processor_name,
                "item_date": f.item_date,
                "entity_id": f.entity_id,
                "failure_type": v.failure_type.value,
                "is_correctable": v.is_correctable,
                "expected_count": v.expected_game_count,
                "actual_count": v.actual_game_count,
                "missing_game_dates": v.missing_dates_json if v.raw_data_checked else None,
                "raw_data_checked": v.raw_data_checked,
            }
            for f, v in judged
        ]
    ).astype({"expected_count": "Int64", "actual_count": "Int64", "is_correctable": "boolean"})


def evidence_frame(judged: Iterable[tuple[FailureToClassify, Verdict]], now: dt.datetime) -> pd.DataFrame:
    rows = [
        {
            "source_table": f.source_table,
            "processor_name": f.processor_name,
            "run_id": f.run_id,
            "analysis_date": f.item_date,
            "entity_id": f.entity_id,
            "game_date": m.game_date,
            "game_id": m.game_id,
            "team_abbr": m.team,
            "verdict": m.verdict.value,
            "is_correctable": m.is_correctable,
            "dnp_reason": m.dnp_reason,
            "classified_at": now,
        }
        for f, v in judged
        for m in v.missing
    ]
    columns = [
        "source_table", "processor_name", "run_id", "analysis_date", "entity_id", "game_date", "game_id",
        "team_abbr", "verdict", "is_correctable", "dnp_reason", "classified_at",
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    frame["classified_at"] = pd.to_datetime(frame["classified_at"], utc=True)
    return frame.astype({"is_correctable": "boolean"})


def _write_verdicts(
    tx: Transaction,
    judged: Sequence[tuple[FailureToClassify, Verdict]],
    *,
    now: dt.datetime,
    overwrite: bool,
    clock: Clock | None = None,
) -> None:
    """Verdicts into the failure rows and per-game evidence, inside the caller's transaction, stamped ``stamp(now,
    clock)`` as the write begins; with ``clock``, the verdict changes again as it ends (``RESTAMP_CHANGES``)."""
    now = stamp(now, clock)
    if not judged:
        return
    batch_id = uuid.uuid4().hex
    bounds = {
        "batch_id": batch_id,
        "date_from": min(f.item_date for f, _ in judged),
        "date_to": max(f.item_date for f, _ in judged),
    }
    tx.insert_frame("nba_processing.classification_staging", _staging_frame(batch_id, judged))
    tx.execute(_LOG_CHANGES, {**bounds, "now": now})
    tx.execute(_LOG_JUDGEMENTS, bounds)
    for table, sql in _UPDATES.items():
        if any(f.source_table == table for f, _ in judged):
            tx.execute(sql, bounds)
    tx.execute(_KEEP_CAUSES, bounds)
    tx.execute(_REPLACE_EVIDENCE, bounds)
    tx.insert_frame("nba_processing.failure_missing_games", evidence_frame(judged, now))
    if clock is not None:
        tx.execute(RESTAMP_CHANGES, {**bounds, "written": stamp(now, clock)})
    tx.execute(_CLEAR_STAGING, bounds)


# -- running --------------------------------------------------------------------------------------


def classify_batch(
    store: Store, failures: Sequence[FailureToClassify], config: ClassifierConfig
) -> list[tuple[FailureToClassify, Verdict]]:
    evidence = load_evidence(store, failures, config)
    return [(f, classify(f, evidence, config)) for f in failures]


def run(
    store: Store,
    *,
    actor: Actor | None,
    now: dt.datetime,
    config: ClassifierConfig | None = None,
    include_classified: bool = False,
    since: dt.date | None = None,
    until: dt.date | None = None,
    batch_size: int | None = None,
    progress: Progress = _quiet,
    method: str = "engine",
    origin: str = "lib",
    clock: Clock | None = None,
) -> Report:
    """Classify every unclassified item (or every item, with ``include_classified``) in the date range.

    ``actor`` must be a resolver (``lib.access.SYSTEM`` for unattended work); the run is recorded in the
    operations log. ``method="engine"`` (the default) computes the verdicts in the engine, set-based
    (lib/engine_verdicts.py); ``method="oracle"`` loads the evidence and runs the pure classifier in Python,
    item by item. A batch is one transaction of at most ``batch_size`` items (default: 200,000 in the
    engine, 20,000 in Python). On the embedded engine, whose file one process holds at a time, batches are
    sized to take about :data:`BATCH_SECONDS` each and the file is handed to any process waiting for it
    between batches, so an operator's action waits seconds, not the whole run.

    A batch's verdict changes (the change log "what changed" counts) are stamped when its write ends, its evidence when
    the write begins (``clock()`` read inside the write, never before ``now``, never before an earlier batch): a run
    over a long range takes minutes, and a change stamped at the run's start but committed after a person's visit
    would be before that visit ("what changed since my last visit" would miss it). On BigQuery a batch is one script,
    stamped as it is sent. Without ``clock`` (tests) they are stamped ``now``.
    """
    config = config or ClassifierConfig()
    clock = rising(clock)
    if batch_size is not None and not 1 <= batch_size <= MAX_BATCH:
        raise BadInput(f"The batch size must be between 1 and {MAX_BATCH:,} items, not {batch_size:,}.")
    if method not in {"engine", "oracle"}:
        raise BadInput(f"Unknown classification method {str(method)[:40]!r}: use 'engine' or 'oracle'.")
    kind = "reclassify" if include_classified else "classify"
    operations.check(kind, actor)
    store.init_schema(pipeline_tables=False)
    with operations.logged(store, kind, actor, origin=origin, date_from=since, date_to=until) as op:
        if method == "oracle":
            report = _run_oracle(store, now=now, config=config, include_classified=include_classified, since=since,
                                 until=until, batch_size=batch_size or 20_000, progress=progress,
                                 clock=clock)  # fmt: skip
        else:
            report = _run_engine(store, now=now, config=config, include_classified=include_classified, since=since,
                                 until=until, batch_size=batch_size, progress=progress, clock=clock)  # fmt: skip
        op.summary = [f"method {method}.", *report.lines()]
    index.after_write(store, since, until)
    return report


#: Seconds one classification batch should take on the embedded engine (the longest an operator's
#: action waits for the file), and the bounds of its size in items.
BATCH_SECONDS = 2.0
MAX_BATCH = 5_000_000
_FIRST_DUCKDB_BATCH = 20_000


def _run_engine(
    store: Store,
    *,
    now: dt.datetime,
    config: ClassifierConfig,
    include_classified: bool,
    since: dt.date | None,
    until: dt.date | None,
    batch_size: int | None,
    progress: Progress,
    clock: Clock | None = None,
) -> Report:
    days = engine_verdicts.batches(store, since=since, until=until, overwrite=include_classified, size=1)
    total = sum(n for _, _, n in days)
    report = Report()
    progress(0.0, f"{total:,} items to classify")
    if total == 0:
        progress(1.0, "Nothing to classify")
        return report
    ceiling = batch_size or ENGINE_BATCH
    adaptive = store.engine == "duckdb"
    target = min(ceiling, _FIRST_DUCKDB_BATCH) if adaptive else ceiling
    queue = list(days)
    while queue:
        first, last, n = queue.pop(0)
        while queue and n + queue[0][2] <= target:
            last, n = queue[0][1], n + queue.pop(0)[2]
        started = time.monotonic()
        with store.touching((first, last)):  # the items of these dates, their verdicts, evidence and causes
            by_type, by_verdict = engine_verdicts._run_batch(
                store,
                config,
                date_from=first,
                date_to=last,
                overwrite=include_classified,
                now=now,
                clock=clock,
                updates=[_LOG_CHANGES, _LOG_JUDGEMENTS, *_UPDATES.values()],
                replace_evidence=_REPLACE_EVIDENCE,
                keep_causes=_KEEP_CAUSES,
                restamp=RESTAMP_CHANGES,
            )
        if adaptive:
            rate = n / max(time.monotonic() - started, 1e-3)
            target = int(min(ceiling, max(1_000, rate * BATCH_SECONDS)))
            store.let_waiters_in()
        report.items += sum(by_type.values())
        report.batches += 1
        report.by_type.update(by_type)
        report.by_verdict.update(by_verdict)
        progress(min(report.items / total, 1.0), f"Classified {report.items:,} of {total:,} items ({first} to {last})")
    return report


def _run_oracle(
    store: Store,
    *,
    now: dt.datetime,
    config: ClassifierConfig,
    include_classified: bool,
    since: dt.date | None,
    until: dt.date | None,
    batch_size: int,
    progress: Progress,
    clock: Clock | None = None,
) -> Report:
    total = count_to_classify(store, include_classified=include_classified, since=since, until=until)
    report = Report()
    progress(0.0, f"{total:,} items to classify")
    if total == 0:
        progress(1.0, "Nothing to classify")
        return report
    # One query selects the items; its result is a snapshot, so the writes below do not change it.
    for frame in unclassified_items(
        store, include_classified=include_classified, since=since, until=until, chunk=batch_size
    ):
        failures = [failure_from_item(item) for item in _records(frame)]
        judged = classify_batch(store, failures, config)
        with store.touching((since, until)), store.transaction(label="classify") as tx:
            _write_verdicts(tx, judged, now=now, overwrite=include_classified, clock=clock)
        store.let_waiters_in()
        report.items += len(judged)
        report.batches += 1
        for _, v in judged:
            report.by_type[v.failure_type.value] += 1
            report.by_verdict.update(m.verdict.value for m in v.missing)
        progress(min(report.items / total, 1.0), f"Classified {report.items:,} of {total:,} items")
    return report


def player_season(
    store: Store, lookup: str, start: dt.date, end: dt.date
) -> list[tuple[ScheduledGame, str, str, str | None]]:
    """His team's games from ``start`` to ``end``, each marked PLAYED or with why he is missing. (The range is
    clamped to the calendar's last day but one: a row dated 9999-12-31 must not break anyone's page.)"""
    end = min(end, LATEST - dt.timedelta(days=1))
    if start > end:
        return []
    probe = FailureToClassify("precompute_failures", "player-page", end + dt.timedelta(days=1), lookup, "MISSING_DATA")
    config = ClassifierConfig(lookback_days=min((end - start).days + 1, MAX_WINDOW_DAYS))
    return player_timeline(lookup, load_evidence(store, [probe], config), start, end)
