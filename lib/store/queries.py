"""The reads behind the pages: failure rows collapsed into items, then counted, grouped or listed.

All SQL is BigQuery Standard SQL built only from the fixed fragments in this module; every value a
person chose travels as a named parameter. Every statement on a failure table filters its partition
column (``analysis_date`` / ``prediction_date``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from lib.model import (
    EARLIEST,
    EXPECTED_CATEGORIES,
    LATEST,
    UNCLASSIFIED,
    Choices,
    DataBounds,
    Filters,
    ItemKey,
    Kpis,
    Page,
    SourceTable,
    encode_key_part,
)
from lib.store.base import Store
from lib.store.history import change_condition, history_ctes

#: Used when a filter leaves a date open: still a predicate on the partition column.
_EARLIEST = EARLIEST
_LATEST = LATEST

#: The item key's processor part, escaped as ``lib.model.encode_key_part`` does.
KEY_PROCESSOR_SQL = "REPLACE(REPLACE(i.processor_name, '%', '%25'), ':', '%3A')"

# One SELECT per failure table into a common shape. Only fixed text: the table is chosen by enum.
_ROWS: dict[SourceTable, str] = {
    SourceTable.PRECOMPUTE: """
  SELECT 'precompute_failures' AS source_table, 4 AS phase, COALESCE(processor_name, '') AS processor_name,
    analysis_date AS item_date, COALESCE(entity_id, '') AS entity_id, CAST(NULL AS STRING) AS entity_type, run_id,
    COALESCE(failure_category, '') AS failure_category, failure_reason, can_retry,
    failure_type, is_correctable, expected_game_count AS expected_count, actual_game_count AS actual_count,
    missing_game_dates AS missing_json, raw_data_checked, resolution_status, resolved_at, created_at
  FROM nba_processing.precompute_failures
  WHERE analysis_date BETWEEN @date_from AND @date_to""",
    SourceTable.ANALYTICS: """
  SELECT 'analytics_failures' AS source_table, 3 AS phase, COALESCE(processor_name, '') AS processor_name,
    analysis_date AS item_date, COALESCE(entity_id, '') AS entity_id, entity_type, run_id,
    COALESCE(failure_category, '') AS failure_category, failure_reason, can_retry,
    failure_type, is_correctable, expected_record_count AS expected_count, actual_record_count AS actual_count,
    missing_game_ids AS missing_json, CAST(NULL AS BOOL) AS raw_data_checked, resolution_status, resolved_at,
    created_at
  FROM nba_processing.analytics_failures
  WHERE analysis_date BETWEEN @date_from AND @date_to""",
    SourceTable.PREDICTION: """
  SELECT 'prediction_failures' AS source_table, 5 AS phase, COALESCE(processor_name, '') AS processor_name,
    prediction_date AS item_date, COALESCE(entity_id, '') AS entity_id, CAST(NULL AS STRING) AS entity_type, run_id,
    COALESCE(failure_category, '') AS failure_category, failure_reason, can_retry,
    failure_type, is_correctable, CAST(NULL AS INT64) AS expected_count, CAST(NULL AS INT64) AS actual_count,
    missing_upstream_tables AS missing_json, CAST(NULL AS BOOL) AS raw_data_checked, resolution_status,
    resolved_at, created_at
  FROM nba_processing.prediction_failures
  WHERE prediction_date BETWEEN @date_from AND @date_to""",
}

_ROW_FILTERS = {
    "processors": "COALESCE(processor_name, '') IN UNNEST(@processors)",
    "entity": "STRPOS(LOWER(COALESCE(entity_id, '')), LOWER(@entity)) > 0",
}


def _latest(column: str) -> str:
    """The value of ``column`` on the item's most recent row.

    Rows are ordered by created_at (missing counts as oldest), then run id, then category, so that every
    column of an item comes from the same row even when two rows share a timestamp.
    """
    return f"ANY_VALUE({column} HAVING MAX seen_at)"


# What an item is made of: name -> aggregate over its rows. The first group is all that counting needs;
# the second is only computed for lists and single items, since every extra aggregate costs time.
_ITEM_SUMMARY = {
    "phase": "ANY_VALUE(phase)",
    "occurrences": "COUNT(*)",
    "failure_category": _latest("failure_category"),
    "failure_type": _latest("failure_type"),
    "is_correctable": _latest("is_correctable"),
    "row_status": _latest("resolution_status"),
    "last_seen": "MAX(created_at)",
    "first_seen": "MIN(created_at)",
}
#: An item's entity type where its rows do not say it, guessed from the shape of its id.
ENTITY_TYPE_GUESS = """CASE
        WHEN entity_id = 'DATE_LEVEL' THEN 'DATE'
        WHEN REGEXP_CONTAINS(entity_id, r'^[A-Z]{2,3}$') THEN 'TEAM'
        WHEN REGEXP_CONTAINS(entity_id, r'^[0-9][0-9_A-Z]*$') THEN 'GAME'
        ELSE 'PLAYER'
      END"""
#: The order of an item's rows: created_at (missing counts as oldest), then run id, then category.
SEEN_AT = (
    "CONCAT(LPAD(CAST(UNIX_MICROS(COALESCE(created_at, TIMESTAMP '1970-01-01 00:00:00+00')) AS STRING), 20, '0'),\n"
    "        '|', COALESCE(run_id, ''), '|', COALESCE(failure_category, ''))"
)

_ITEM_DETAIL = {
    "entity_type": f"""COALESCE({_latest("entity_type")},
      {ENTITY_TYPE_GUESS})""",
    "runs": "COUNT(DISTINCT run_id)",
    "latest_run_id": _latest("run_id"),
    "failure_reason": _latest("failure_reason"),
    "can_retry": _latest("can_retry"),
    "expected_count": _latest("expected_count"),
    "actual_count": _latest("actual_count"),
    "missing_json": _latest("missing_json"),
    "raw_data_checked": _latest("raw_data_checked"),
    "resolved_at": "MAX(resolved_at)",
}


def _items_cte(detail: bool) -> str:
    aggregates = {**_ITEM_SUMMARY, **(_ITEM_DETAIL if detail else {})}
    columns = ",\n    ".join(f"{expr} AS {name}" for name, expr in aggregates.items())
    key_processor = KEY_PROCESSOR_SQL
    return f"""
items AS (
  SELECT
    source_table, processor_name, item_date, entity_id,
    {columns}
  FROM (
    SELECT *,
      {SEEN_AT} AS seen_at
    FROM failure_rows
  ) AS r
  GROUP BY source_table, processor_name, item_date, entity_id
),
decisions AS (
  SELECT source_table, processor_name, item_date, entity_id,
    ANY_VALUE(to_status HAVING MAX event_order) AS decided_status,
    MAX(at) AS decided_at,
    COUNT(*) AS events
  FROM (
    SELECT *, CONCAT(LPAD(CAST(UNIX_MICROS(at) AS STRING), 20, '0'), event_id) AS event_order
    FROM nba_processing.failure_resolutions
    WHERE item_date BETWEEN @date_from AND @date_to
  ) AS e
  GROUP BY source_table, processor_name, item_date, entity_id
),
labelled AS (
  SELECT i.*,
    CONCAT(i.source_table, ':', {key_processor}, ':', CAST(i.item_date AS STRING), ':', i.entity_id) AS item_key,
    CASE
      WHEN d.decided_status IS NULL THEN COALESCE(i.row_status, 'UNRESOLVED')
      WHEN d.decided_status = 'RESOLVED' AND i.last_seen > d.decided_at THEN 'REGRESSED'
      ELSE d.decided_status
    END AS status,
    d.decided_at AS status_at,
    COALESCE(d.events, 0) AS events,
    COALESCE(d.decided_at IS NOT NULL AND i.last_seen > d.decided_at, FALSE) AS recurred,
    COALESCE(i.failure_type, @unclassified) AS failure_type_label,
    CASE WHEN i.is_correctable THEN 'correctable' WHEN NOT i.is_correctable THEN 'uncorrectable'
      ELSE 'unknown' END AS correctable_class,
    UPPER(i.failure_category) IN UNNEST(@expected_categories) AS is_expected
  FROM items AS i
  LEFT JOIN decisions AS d
    ON d.source_table = i.source_table AND d.processor_name = i.processor_name
    AND d.item_date = i.item_date AND d.entity_id = i.entity_id
)"""


def items_cte(*, detail: bool) -> str:
    """``items``, ``decisions`` and ``labelled``: the failure rows collapsed into items with their status."""
    return _items_cte(detail)


_ITEM_FILTERS = {
    "categories": "failure_category IN UNNEST(@categories)",
    "failure_types": "failure_type_label IN UNNEST(@failure_types)",
    "correctable": "correctable_class IN UNNEST(@correctable)",
    "statuses": "status IN UNNEST(@statuses)",
}

_SORTS = {
    "newest date": "item_date DESC, source_table, processor_name, entity_id",
    "oldest date": "item_date, source_table, processor_name, entity_id",
    "most occurrences": "occurrences DESC, item_date DESC, source_table, processor_name, entity_id",
    "last seen": "last_seen DESC, source_table, processor_name, item_date, entity_id",
    "processor": "processor_name, item_date DESC, source_table, entity_id",
    "entity": "entity_id, item_date DESC, source_table, processor_name",
}

ITEM_COLUMNS = (
    "source_table, phase, processor_name, item_date, entity_id, entity_type, occurrences, runs, "
    "first_seen, last_seen, latest_run_id, failure_category, failure_reason, can_retry, "
    "failure_type_label AS failure_type, is_correctable, correctable_class, expected_count, actual_count, "
    "missing_json, raw_data_checked, status, status_at, events, recurred, resolved_at, is_expected"
)


def _params(filters: Filters) -> dict[str, Any]:
    changed = {"changed_since": filters.changed_since} if filters.changed else {}
    return changed | {
        "date_from": filters.date_from or _EARLIEST,
        "date_to": filters.date_to or _LATEST,
        "processors": list(filters.processors),
        "entity": filters.entity.strip(),
        "categories": list(filters.categories),
        "failure_types": list(filters.failure_types),
        "correctable": list(filters.correctable),
        "statuses": list(filters.statuses),
        "expected_categories": list(EXPECTED_CATEGORIES),
        "unclassified": UNCLASSIFIED,
    }


def rows_cte(filters: Filters) -> str:
    tables = [SourceTable(t) for t in filters.tables] if filters.tables else list(SourceTable)
    extra = [frag for name, frag in _ROW_FILTERS.items() if getattr(filters, name)]
    extra_sql = "".join(f"\n    AND {frag}" for frag in extra) if extra else ""
    selects = [_ROWS[t] + extra_sql for t in SourceTable if t in tables]
    return "failure_rows AS (" + "\n  UNION ALL".join(selects) + "\n)"


def _filtered_items_sql(filters: Filters, *, include_expected_filter: bool, detail: bool = False) -> str:
    """``WITH ... filtered AS (...)``: the items matching every filter (optionally but the toggle)."""
    conditions = [frag for name, frag in _ITEM_FILTERS.items() if getattr(filters, name)]
    if include_expected_filter and filters.hide_expected:
        conditions.append("NOT is_expected")
    where = " AND ".join(conditions) if conditions else "TRUE"
    if filters.changed:  # only the items that changed this way since the instant (lib/store/history.py)
        return (
            "WITH "
            + rows_cte(filters)
            + ","
            + _items_cte(detail)
            + history_ctes(["changed_since"])
            + ",\nfiltered AS (SELECT labelled.* FROM labelled JOIN item_history AS h"
            + "\n  ON h.source_table = labelled.source_table AND h.processor_name = labelled.processor_name"
            + "\n  AND h.item_date = labelled.item_date AND h.entity_id = labelled.entity_id\n  WHERE "
            + where
            + " AND "
            + change_condition(filters.changed, "changed_since")
            + ")\n"
        )
    return (
        "WITH "
        + rows_cte(filters)
        + ","
        + _items_cte(detail)
        + ",\nfiltered AS (SELECT * FROM labelled WHERE "
        + where
        + ")\n"
    )


def summary(store: Store, filters: Filters) -> pd.DataFrame:
    """Item counts by processor, category, date, type, status, correctability and expectedness.

    One grouped query in the engine; the overview's KPIs, matrix and trend are all cut from this
    small frame (``kpis_of``, ``matrix_of``, ``trend_of``) instead of regrouping the rows three times.
    """
    sql = (
        _filtered_items_sql(filters, include_expected_filter=False)
        + """
SELECT processor_name, failure_category, ANY_VALUE(phase) AS phase, item_date,
  failure_type_label AS failure_type, status, correctable_class, is_expected,
  COUNT(*) AS items, CAST(SUM(occurrences) AS INT64) AS occurrences
FROM filtered
GROUP BY processor_name, failure_category, item_date, failure_type_label, status, correctable_class, is_expected"""
    )
    frame = store.query(sql, _params(filters), label="summary")
    frame["is_expected"] = frame["is_expected"].astype(bool)
    return frame


def _shown(cube: pd.DataFrame, hide_expected: bool) -> pd.DataFrame:
    return cube[~cube["is_expected"]] if hide_expected else cube


def filtered_items_sql(filters: Filters, *, detail: bool = False) -> str:
    """``WITH ... filtered AS (...)``: every item matching the filters, for statements built on top."""
    return _filtered_items_sql(filters, include_expected_filter=True, detail=detail)


def params_of(filters: Filters) -> dict[str, Any]:
    """The named parameters ``filtered_items_sql`` needs."""
    return _params(filters)


def kpis_of(cube: pd.DataFrame, hide_expected: bool) -> Kpis:
    shown = _shown(cube, hide_expected)

    def items(frame: pd.DataFrame) -> int:
        return int(frame["items"].sum())

    return Kpis(
        items=items(shown),
        occurrences=int(shown["occurrences"].sum()),
        unresolved=items(shown[shown["status"] == "UNRESOLVED"]),
        correctable=items(shown[shown["correctable_class"] == "correctable"]),
        uncorrectable=items(shown[shown["correctable_class"] == "uncorrectable"]),
        unclassified=items(shown[shown["failure_type"] == UNCLASSIFIED]),
        expected=items(cube[cube["is_expected"]]),
        all_items=items(cube),
    )


def matrix_of(cube: pd.DataFrame, hide_expected: bool) -> pd.DataFrame:
    """Items by processor and category (with occurrences), largest first."""
    shown = _shown(cube, hide_expected)
    grouped = shown.groupby(["processor_name", "failure_category"], as_index=False).agg(
        phase=("phase", "first"), items=("items", "sum"), occurrences=("occurrences", "sum")
    )
    return grouped.sort_values(["items", "processor_name", "failure_category"], ascending=[False, True, True],
                               ignore_index=True)  # fmt: skip


def trend_of(cube: pd.DataFrame, hide_expected: bool) -> pd.DataFrame:
    """Items per date and failure type."""
    shown = _shown(cube, hide_expected)
    grouped = shown.groupby(["item_date", "failure_type"], as_index=False)[["items", "occurrences"]].sum()
    return grouped.sort_values(["item_date", "failure_type"], ignore_index=True)


def kpis(store: Store, filters: Filters) -> Kpis:
    return kpis_of(summary(store, filters), filters.hide_expected)


def matrix(store: Store, filters: Filters) -> pd.DataFrame:
    return matrix_of(summary(store, filters), filters.hide_expected)


def trend(store: Store, filters: Filters) -> pd.DataFrame:
    return trend_of(summary(store, filters), filters.hide_expected)


def count_items(store: Store, filters: Filters) -> int:
    sql = _filtered_items_sql(filters, include_expected_filter=True) + "SELECT COUNT(*) AS n FROM filtered"
    return int(store.query(sql, _params(filters), label="count").iloc[0]["n"])


def _ordered_sql(filters: Filters, sort: str) -> str:
    return (
        _filtered_items_sql(filters, include_expected_filter=True, detail=True)
        + f"SELECT {ITEM_COLUMNS}\nFROM filtered\nORDER BY {_SORTS[sort]}\n"
    )


def list_items(store: Store, filters: Filters, page: Page) -> pd.DataFrame:
    params = {**_params(filters), "page_limit": page.size, "page_offset": (page.number - 1) * page.size}
    sql = _ordered_sql(filters, page.sort) + "LIMIT @page_limit OFFSET @page_offset"
    return with_keys(store.query(sql, params, label="list"))


def iter_items(
    store: Store, filters: Filters, *, sort: str = "newest date", chunk: int = 50_000
) -> Iterator[pd.DataFrame]:
    """Every matching item, from one ordered query streamed in frames of ``chunk`` rows, for exports."""
    for frame in store.stream(_ordered_sql(filters, sort), _params(filters), chunk=chunk, label="export"):
        yield with_keys(frame)


def get_item(store: Store, key: ItemKey) -> pd.Series | None:
    """One item by its key (any status, expected or not), or None if no row of it is left."""
    scope = Filters(
        date_from=key.item_date,
        date_to=key.item_date,
        tables=(key.source_table,),
        processors=(key.processor_name,),
        hide_expected=False,
    )
    sql = _filtered_items_sql(scope, include_expected_filter=False, detail=True) + (
        f"SELECT {ITEM_COLUMNS}\nFROM filtered\nWHERE entity_id = @entity_id"
    )
    frame = with_keys(store.query(sql, {**_params(scope), "entity_id": key.entity_id}, label="item"))
    return frame.iloc[0] if len(frame) else None


_MISSING_GAMES = """
SELECT game_date, game_id, team_abbr, verdict, is_correctable, dnp_reason, run_id, classified_at
FROM nba_processing.failure_missing_games
WHERE analysis_date = @item_date AND source_table = @source_table AND processor_name = @processor_name
  AND entity_id = @entity_id
ORDER BY game_date, team_abbr"""


def missing_games(store: Store, key: ItemKey) -> pd.DataFrame:
    """The classifier's verdict on each missing game of an item (empty until it is classified)."""
    params = {
        "item_date": key.item_date,
        "source_table": key.source_table,
        "processor_name": key.processor_name,
        "entity_id": key.entity_id,
    }
    return store.query(_MISSING_GAMES, params, label="missing-games")


def with_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the item's text key ``TABLE:PROCESSOR:YYYY-MM-DD:ENTITY`` as the first column."""
    keys = (
        (
            frame["source_table"].astype(str)
            + ":"
            + frame["processor_name"].map(lambda p: encode_key_part("" if p is None else str(p)))
            + ":"
            + frame["item_date"].map(lambda d: d.isoformat() if d is not None else "").astype(str)
            + ":"
            + frame["entity_id"].astype(str)
        )
        if len(frame)
        else pd.Series([], dtype=object)
    )
    frame.insert(0, "key", keys)
    return frame


def choices(store: Store, filters: Filters) -> Choices:
    """Processors and categories present in the date range (plus the known ones)."""
    scope = Filters(date_from=filters.date_from, date_to=filters.date_to)
    sql = (
        "WITH "
        + rows_cte(scope)
        + """
SELECT processor_name, failure_category, COUNT(*) AS n FROM failure_rows
GROUP BY processor_name, failure_category"""
    )
    frame = store.query(sql, _params(scope), label="choices")
    return Choices(
        processors=tuple(sorted(set(frame["processor_name"]))),
        categories=tuple(sorted(set(frame["failure_category"]), key=lambda c: (c.upper(), c))),
    )


def bounds(store: Store) -> DataBounds:
    first, last, rows, plausible = store.date_extent()
    return DataBounds(first, last, rows, plausible)
