"""Every table the dashboard reads or writes, as BigQuery DDL: the one definition both engines use.

The failure and evidence tables belong to the pipeline; their columns are fixed by it (see the domain
brief) and are never altered here. The dialect module turns this DDL into each engine's own.
"""

from __future__ import annotations

from dataclasses import dataclass

DATASETS: tuple[str, ...] = ("nba_processing", "nba_raw", "nba_analytics", "nba_reference")


@dataclass(frozen=True)
class TableDef:
    dataset: str
    name: str
    ddl: str
    owned_by_pipeline: bool

    @property
    def ref(self) -> str:
        return f"{self.dataset}.{self.name}"


_FAILURE_STATUS_COLUMNS = """
  resolution_status STRING DEFAULT 'UNRESOLVED',
  resolved_at TIMESTAMP,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP()"""

PRECOMPUTE_FAILURES = TableDef(
    "nba_processing",
    "precompute_failures",
    f"""CREATE TABLE IF NOT EXISTS nba_processing.precompute_failures (
  processor_name STRING NOT NULL,
  run_id STRING NOT NULL,
  analysis_date DATE NOT NULL,
  entity_id STRING NOT NULL,
  failure_category STRING NOT NULL,
  failure_reason STRING NOT NULL,
  can_retry BOOL NOT NULL,
  failure_type STRING,
  is_correctable BOOL,
  expected_game_count INT64,
  actual_game_count INT64,
  missing_game_dates STRING,
  raw_data_checked BOOL,{_FAILURE_STATUS_COLUMNS}
)
PARTITION BY analysis_date
CLUSTER BY processor_name, failure_category, can_retry""",
    True,
)

ANALYTICS_FAILURES = TableDef(
    "nba_processing",
    "analytics_failures",
    f"""CREATE TABLE IF NOT EXISTS nba_processing.analytics_failures (
  processor_name STRING NOT NULL,
  run_id STRING NOT NULL,
  analysis_date DATE NOT NULL,
  entity_id STRING NOT NULL,
  entity_type STRING NOT NULL,
  failure_category STRING NOT NULL,
  failure_reason STRING NOT NULL,
  failure_type STRING,
  is_correctable BOOL,
  expected_record_count INT64,
  actual_record_count INT64,
  missing_game_ids STRING,
  can_retry BOOL NOT NULL,{_FAILURE_STATUS_COLUMNS}
)
PARTITION BY analysis_date
CLUSTER BY processor_name, failure_category, can_retry""",
    True,
)

PREDICTION_FAILURES = TableDef(
    "nba_processing",
    "prediction_failures",
    f"""CREATE TABLE IF NOT EXISTS nba_processing.prediction_failures (
  processor_name STRING NOT NULL,
  run_id STRING NOT NULL,
  prediction_date DATE NOT NULL,
  entity_id STRING NOT NULL,
  failure_category STRING NOT NULL,
  failure_reason STRING NOT NULL,
  failure_type STRING,
  is_correctable BOOL,
  missing_upstream_tables STRING,
  cache_age_hours FLOAT64,
  can_retry BOOL NOT NULL,{_FAILURE_STATUS_COLUMNS}
)
PARTITION BY prediction_date
CLUSTER BY processor_name, failure_category, can_retry""",
    True,
)

SCHEDULE = TableDef(
    "nba_raw",
    "nbac_schedule",
    """CREATE TABLE IF NOT EXISTS nba_raw.nbac_schedule (
  game_id STRING,
  game_date DATE,
  game_status INT64,
  home_team_tricode STRING,
  away_team_tricode STRING,
  season_year INT64,
  is_regular_season BOOL,
  is_playoffs BOOL
)
PARTITION BY game_date
CLUSTER BY home_team_tricode, away_team_tricode""",
    True,
)

GAMEBOOK = TableDef(
    "nba_raw",
    "nbac_gamebook_player_stats",
    """CREATE TABLE IF NOT EXISTS nba_raw.nbac_gamebook_player_stats (
  game_id STRING,
  game_date DATE,
  team_abbr STRING,
  player_lookup STRING,
  player_name STRING,
  player_status STRING,
  dnp_reason STRING,
  minutes STRING,
  name_resolution_status STRING
)
PARTITION BY game_date
CLUSTER BY team_abbr, player_lookup""",
    True,
)

PLAYER_GAME_SUMMARY = TableDef(
    "nba_analytics",
    "player_game_summary",
    """CREATE TABLE IF NOT EXISTS nba_analytics.player_game_summary (
  game_id STRING,
  game_date DATE,
  team_abbr STRING,
  player_lookup STRING,
  minutes_played FLOAT64,
  is_dnp BOOL
)
PARTITION BY game_date
CLUSTER BY team_abbr, player_lookup""",
    True,
)

# Every processor run, as the pipeline records it (production names and types; the dashboard only reads it): how a
# re-run request is followed until its data is back (lib/reruns.py).
PROCESSOR_RUN_HISTORY = TableDef(
    "nba_reference",
    "processor_run_history",
    """CREATE TABLE IF NOT EXISTS nba_reference.processor_run_history (
  processor_name STRING NOT NULL,
  run_id STRING NOT NULL,
  season_year INT64,
  status STRING NOT NULL,
  duration_seconds FLOAT64,
  records_processed INT64,
  data_date DATE NOT NULL,
  started_at TIMESTAMP NOT NULL,
  processed_at TIMESTAMP,
  phase STRING,
  output_table STRING,
  output_dataset STRING,
  triggered_by STRING,
  trigger_source STRING,
  trigger_message_id STRING,
  trigger_message_data JSON,
  parent_processor STRING,
  backfill_mode BOOL,
  force_reprocess BOOL,
  errors JSON,
  warnings JSON,
  summary JSON,
  retry_attempt INT64,
  skipped BOOL,
  skip_reason STRING
)
PARTITION BY data_date
CLUSTER BY processor_name, status, season_year""",
    True,
)

FAILURE_TABLES: tuple[TableDef, ...] = (PRECOMPUTE_FAILURES, ANALYTICS_FAILURES, PREDICTION_FAILURES)
EVIDENCE_TABLES: tuple[TableDef, ...] = (SCHEDULE, GAMEBOOK, PLAYER_GAME_SUMMARY)
PIPELINE_TABLES: tuple[TableDef, ...] = FAILURE_TABLES + EVIDENCE_TABLES + (PROCESSOR_RUN_HISTORY,)

FAILURE_MISSING_GAMES = TableDef(
    "nba_processing",
    "failure_missing_games",
    """CREATE TABLE IF NOT EXISTS nba_processing.failure_missing_games (
  source_table STRING NOT NULL,
  processor_name STRING NOT NULL,
  run_id STRING,
  analysis_date DATE NOT NULL,
  entity_id STRING NOT NULL,
  game_date DATE,
  game_id STRING,
  team_abbr STRING,
  verdict STRING NOT NULL,
  is_correctable BOOL,
  dnp_reason STRING,
  classified_at TIMESTAMP NOT NULL
)
PARTITION BY analysis_date
CLUSTER BY source_table, processor_name, entity_id""",
    False,
)

# Verdicts of one classification batch on their way into the failure rows (UPDATE ... FROM).
CLASSIFICATION_STAGING = TableDef(
    "nba_processing",
    "classification_staging",
    """CREATE TABLE IF NOT EXISTS nba_processing.classification_staging (
  batch_id STRING NOT NULL,
  source_table STRING NOT NULL,
  processor_name STRING NOT NULL,
  item_date DATE NOT NULL,
  entity_id STRING NOT NULL,
  failure_type STRING NOT NULL,
  is_correctable BOOL,
  expected_count INT64,
  actual_count INT64,
  missing_game_dates STRING,
  raw_data_checked BOOL
)
PARTITION BY item_date""",
    False,
)

# The engine-side classifier's working rows for one batch (lib/engine_verdicts.py): each item's route and
# placement, and each game it considers with its verdict. Cleared when the batch is written.
CLASSIFICATION_ITEMS = TableDef(
    "nba_processing",
    "classification_items",
    """CREATE TABLE IF NOT EXISTS nba_processing.classification_items (
  batch_id STRING NOT NULL,
  source_table STRING NOT NULL,
  processor_name STRING,
  item_date DATE NOT NULL,
  entity_id STRING,
  run_id STRING,
  route STRING NOT NULL,
  can_retry BOOL,
  bootstrap BOOL,
  judge_history BOOL,
  listed STRING,
  dates_listed BOOL,
  ids_listed BOOL,
  season INT64,
  team STRING,
  no_apps BOOL,
  unknown_ids BOOL,
  expected_count INT64,
  actual_count INT64
)
PARTITION BY item_date""",
    False,
)

CLASSIFICATION_GAMES = TableDef(
    "nba_processing",
    "classification_games",
    """CREATE TABLE IF NOT EXISTS nba_processing.classification_games (
  batch_id STRING NOT NULL,
  source_table STRING NOT NULL,
  processor_name STRING,
  item_date DATE NOT NULL,
  entity_id STRING,
  run_id STRING,
  game_date DATE,
  game_id STRING,
  team_abbr STRING,
  verdict STRING,
  dnp_reason STRING
)
PARTITION BY item_date""",
    False,
)

# The audit trail and the source of truth of every item's status: append-only, never updated.
FAILURE_RESOLUTIONS = TableDef(
    "nba_processing",
    "failure_resolutions",
    """CREATE TABLE IF NOT EXISTS nba_processing.failure_resolutions (
  event_id STRING NOT NULL,
  item_key STRING NOT NULL,
  source_table STRING NOT NULL,
  processor_name STRING NOT NULL,
  item_date DATE NOT NULL,
  entity_id STRING NOT NULL,
  from_status STRING,
  to_status STRING NOT NULL,
  actor STRING NOT NULL,
  note STRING NOT NULL,
  at TIMESTAMP NOT NULL,
  batch_id STRING NOT NULL,
  origin STRING NOT NULL
)
PARTITION BY item_date
CLUSTER BY source_table, processor_name, entity_id""",
    False,
)

# Every write other than a status change (classification, auto-resolve, status sync, demo data, schema):
# who ran it, from where, over which dates, and how it ended. Append-only.
TRIAGE_OPERATIONS = TableDef(
    "nba_processing",
    "triage_operations",
    """CREATE TABLE IF NOT EXISTS nba_processing.triage_operations (
  operation_id STRING NOT NULL,
  kind STRING NOT NULL,
  actor STRING NOT NULL,
  origin STRING NOT NULL,
  started_at TIMESTAMP NOT NULL,
  finished_at TIMESTAMP NOT NULL,
  date_from DATE,
  date_to DATE,
  outcome STRING NOT NULL,
  summary STRING
)
PARTITION BY DATE(started_at)""",
    False,
)

# Every verdict the classifier wrote that differs from what the item showed before: the history behind "whose
# classification changed since yesterday" (the failure rows only keep the latest verdict). Append-only.
CLASSIFICATION_CHANGES = TableDef(
    "nba_processing",
    "classification_changes",
    """CREATE TABLE IF NOT EXISTS nba_processing.classification_changes (
  batch_id STRING NOT NULL,
  source_table STRING NOT NULL,
  processor_name STRING NOT NULL,
  item_date DATE NOT NULL,
  entity_id STRING NOT NULL,
  from_type STRING,
  from_correctable BOOL,
  to_type STRING NOT NULL,
  to_correctable BOOL,
  at TIMESTAMP NOT NULL
)
PARTITION BY item_date
CLUSTER BY source_table, processor_name, entity_id""",
    False,
)

# The root causes an item's evidence named before it was judged again (lib/incidents.py): the per-game evidence
# keeps only the latest judgement, so an incident would lose the items its fix settled. Append-only, one row per
# item and cause.
INCIDENT_LINKS = TableDef(
    "nba_processing",
    "incident_links",
    """CREATE TABLE IF NOT EXISTS nba_processing.incident_links (
  cause STRING NOT NULL,
  game_id STRING NOT NULL,
  team_abbr STRING NOT NULL,
  game_date DATE,
  source_table STRING NOT NULL,
  processor_name STRING NOT NULL,
  item_date DATE NOT NULL,
  entity_id STRING NOT NULL,
  linked_at TIMESTAMP NOT NULL
)
PARTITION BY item_date
CLUSTER BY source_table, processor_name, entity_id""",
    False,
)

# Re-run requests to the pipeline (lib/reruns.py): one row per message and step of its life (claimed, then sent,
# recorded, failed or duplicate), who asked and why, where it went and what it carried. Append-only.
RERUN_REQUESTS = TableDef(
    "nba_processing",
    "rerun_requests",
    """CREATE TABLE IF NOT EXISTS nba_processing.rerun_requests (
  request_id STRING NOT NULL,
  message_key STRING NOT NULL,
  correlation_id STRING NOT NULL,
  incident_id STRING,
  step INT64 NOT NULL,
  stage STRING NOT NULL,
  kind STRING NOT NULL,
  processors STRING NOT NULL,
  data_date DATE NOT NULL,
  destination_type STRING NOT NULL,
  destination STRING NOT NULL,
  payload STRING NOT NULL,
  items INT64 NOT NULL,
  outcome STRING NOT NULL,
  message_id STRING,
  error STRING,
  actor STRING NOT NULL,
  note STRING NOT NULL,
  at TIMESTAMP NOT NULL
)
PARTITION BY data_date
CLUSTER BY kind, processors""",
    False,
)

# The items each re-run message should settle (lib/reruns.py). Append-only, written with the message's claim.
RERUN_REQUEST_ITEMS = TableDef(
    "nba_processing",
    "rerun_request_items",
    """CREATE TABLE IF NOT EXISTS nba_processing.rerun_request_items (
  request_id STRING NOT NULL,
  message_key STRING NOT NULL,
  source_table STRING NOT NULL,
  processor_name STRING NOT NULL,
  item_date DATE NOT NULL,
  entity_id STRING NOT NULL
)
PARTITION BY item_date
CLUSTER BY source_table, processor_name, entity_id""",
    False,
)

# Every item the dashboard's classifier judged, each time it judged it: what the pipeline had said (its own
# verdict on the item's rows before the first judgement since they were written, NULL when it gave none) and
# what the dashboard says. An item whose rows are newer than its latest judgement carries the pipeline's
# verdict only, and is judged again. Append-only.
ITEM_JUDGEMENTS = TableDef(
    "nba_processing",
    "item_judgements",
    """CREATE TABLE IF NOT EXISTS nba_processing.item_judgements (
  batch_id STRING NOT NULL,
  source_table STRING NOT NULL,
  processor_name STRING NOT NULL,
  item_date DATE NOT NULL,
  entity_id STRING NOT NULL,
  pipeline_type STRING,
  pipeline_correctable BOOL,
  failure_type STRING NOT NULL,
  is_correctable BOOL,
  at TIMESTAMP NOT NULL
)
PARTITION BY item_date
CLUSTER BY source_table, processor_name, entity_id""",
    False,
)

# When each operator (or signed-in user) opened the dashboard: "what changed since my last visit".
TRIAGE_VISITS = TableDef(
    "nba_processing",
    "triage_visits",
    """CREATE TABLE IF NOT EXISTS nba_processing.triage_visits (
  operator STRING NOT NULL,
  visited_at TIMESTAMP NOT NULL
)
PARTITION BY DATE(visited_at)
CLUSTER BY operator""",
    False,
)

# The item index (lib/store/index.py): the item relation (lib/store/relation.py) stored, one row per item, kept
# up to date per date and source table. Derived data: rebuilt from the failure rows and events at any time. Beyond
# the relation: the item's last change (the change log) and its latest verdict of ours (item_judgements: when, and
# what the pipeline had said before it), for the first morning's panels.
FAILURE_ITEMS = TableDef(
    "nba_processing",
    "failure_items",
    """CREATE TABLE IF NOT EXISTS nba_processing.failure_items (
  source_table STRING NOT NULL,
  processor_name STRING NOT NULL,
  item_date DATE NOT NULL,
  entity_id STRING NOT NULL,
  phase INT64,
  occurrences INT64,
  failure_category STRING,
  failure_type STRING,
  is_correctable BOOL,
  row_status STRING,
  last_seen TIMESTAMP,
  first_seen TIMESTAMP,
  entity_type STRING,
  runs INT64,
  latest_run_id STRING,
  failure_reason STRING,
  can_retry BOOL,
  expected_count INT64,
  actual_count INT64,
  missing_json STRING,
  raw_data_checked BOOL,
  resolved_at TIMESTAMP,
  born TIMESTAMP,
  item_key STRING NOT NULL,
  status STRING NOT NULL,
  status_at TIMESTAMP,
  last_actor STRING,
  events INT64,
  recurred BOOL,
  failure_type_label STRING,
  correctable_class STRING,
  is_expected BOOL,
  changed_at TIMESTAMP,
  judged_at TIMESTAMP,
  pipeline_type STRING,
  pipeline_correctable BOOL,
  settled_at TIMESTAMP
)
PARTITION BY item_date
CLUSTER BY source_table, processor_name, status, entity_id""",
    False,
)

# Item counts per date and every dimension the overview, the trend, the KPIs and the patterns group by; of them, the
# items we judged since their rows were written, those the pipeline had a verdict on before ours, and those it
# disagreed with (the overview's disagreement panel).
FAILURE_ROLLUPS = TableDef(
    "nba_processing",
    "failure_rollups",
    """CREATE TABLE IF NOT EXISTS nba_processing.failure_rollups (
  item_date DATE NOT NULL,
  source_table STRING NOT NULL,
  processor_name STRING NOT NULL,
  failure_category STRING,
  phase INT64,
  failure_type STRING,
  correctable_class STRING,
  status STRING,
  is_expected BOOL,
  first_seen_day DATE,
  items INT64,
  occurrences INT64,
  judged INT64,
  pipeline_judged INT64,
  disagree INT64
)
PARTITION BY item_date
CLUSTER BY source_table, processor_name, failure_category""",
    False,
)

# What each date of each failure table looked like when it was indexed: a fingerprint of its failure rows and
# status events. A date whose fingerprint differs now (a rerun, rows streamed in) is refreshed before it is read;
# changed_at is when a refresh last found its content changed (not a first build, a reindex or a new version);
# checked_at, where the engine keeps partition metadata (BigQuery), is when the fingerprint was last known current:
# a date none of whose partitions was written since is not fingerprinted again (lib/store/index.py ``_plan``).
FAILURE_INDEX_DATES = TableDef(
    "nba_processing",
    "failure_index_dates",
    """CREATE TABLE IF NOT EXISTS nba_processing.failure_index_dates (
  source_table STRING NOT NULL,
  item_date DATE NOT NULL,
  fingerprint STRING NOT NULL,
  indexed_at TIMESTAMP NOT NULL,
  changed_at TIMESTAMP,
  checked_at TIMESTAMP
)
PARTITION BY item_date
CLUSTER BY source_table""",
    False,
)

# The change log (lib/store/changes.py): every instant after an item's first row at which its state as the
# history rebuilds it (lib/store/history.py) changed, with the state before and after, kept with the item index.
# An item whose present state differs from the state its history ends in has one more row, at 9999-12-31.
FAILURE_ITEM_CHANGES = TableDef(
    "nba_processing",
    "failure_item_changes",
    """CREATE TABLE IF NOT EXISTS nba_processing.failure_item_changes (
  source_table STRING NOT NULL,
  processor_name STRING NOT NULL,
  item_date DATE NOT NULL,
  entity_id STRING NOT NULL,
  failure_category STRING,
  is_expected BOOL,
  last_actor STRING,
  status STRING,
  failure_type_label STRING,
  correctable_class STRING,
  occurrences INT64,
  born TIMESTAMP NOT NULL,
  at TIMESTAMP NOT NULL,
  prev_at TIMESTAMP,
  next_at TIMESTAMP,
  from_status STRING,
  from_type STRING,
  from_correctable STRING,
  from_occurrences INT64,
  to_status STRING,
  to_type STRING,
  to_correctable STRING,
  to_occurrences INT64
)
PARTITION BY item_date
CLUSTER BY source_table, processor_name, entity_id""",
    False,
)

# The settled items (lib/store/index.py ``_INSERT_SETTLED``): items whose first row and last change are both at or
# before their date's ``settled_at`` (a rebuild's horizon), counted per date and state. A briefing whose earlier
# instant is at or after ``settled_at`` counts them as they are now, without reading the items one by one.
FAILURE_SETTLED = TableDef(
    "nba_processing",
    "failure_settled",
    """CREATE TABLE IF NOT EXISTS nba_processing.failure_settled (
  item_date DATE NOT NULL,
  source_table STRING NOT NULL,
  processor_name STRING NOT NULL,
  failure_category STRING,
  is_expected BOOL,
  status STRING,
  failure_type_label STRING,
  correctable_class STRING,
  last_actor STRING,
  settled_at TIMESTAMP NOT NULL,
  items INT64,
  occurrences INT64
)
PARTITION BY item_date
CLUSTER BY source_table, processor_name""",
    False,
)

#: The item index's tables: derived, never part of the data version that invalidates caches on BigQuery.
INDEX_TABLES: tuple[TableDef, ...] = (
    FAILURE_ITEMS, FAILURE_ROLLUPS, FAILURE_INDEX_DATES, FAILURE_ITEM_CHANGES, FAILURE_SETTLED,
)  # fmt: skip

#: Tables the dashboard owns, beside the pipeline's.
DASHBOARD_TABLES: tuple[TableDef, ...] = (
    FAILURE_MISSING_GAMES,
    CLASSIFICATION_STAGING,
    CLASSIFICATION_ITEMS,
    CLASSIFICATION_GAMES,
    FAILURE_RESOLUTIONS,
    TRIAGE_OPERATIONS,
    CLASSIFICATION_CHANGES,
    INCIDENT_LINKS,
    RERUN_REQUESTS,
    RERUN_REQUEST_ITEMS,
    ITEM_JUDGEMENTS,
    TRIAGE_VISITS,
    *INDEX_TABLES,
)

ALL_TABLES: tuple[TableDef, ...] = PIPELINE_TABLES + DASHBOARD_TABLES


def table(ref: str) -> TableDef:
    for t in ALL_TABLES:
        if t.ref == ref or t.name == ref:
            return t
    raise KeyError(f"No such table: {ref}")
