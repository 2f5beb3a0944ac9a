"""The reads behind the pages: failure rows collapsed into items, then counted, grouped or listed.

All SQL is BigQuery Standard SQL built only from the fixed fragments in this module; every value a
person chose travels as a named parameter. Every statement on a failure table filters its partition
column (``analysis_date`` / ``prediction_date``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pandas as pd

from lib.model import (
    EXPECTED_CATEGORIES,
    UNCLASSIFIED,
    Choices,
    DataBounds,
    Filters,
    ItemKey,
    Kpis,
    Page,
    SourceTable,
)
from lib.store.base import Store

#: Used when a filter leaves a date open: still a predicate on the partition column.
_EARLIEST = dt.date(1900, 1, 1)
_LATEST = dt.date(2999, 12, 31)

# One SELECT per failure table into a common shape. Only fixed text: the table is chosen by enum.
_ROWS: dict[SourceTable, str] = {
    SourceTable.PRECOMPUTE: """
  SELECT 'precompute_failures' AS source_table, 4 AS phase, processor_name, analysis_date AS item_date,
    entity_id, CAST(NULL AS STRING) AS entity_type, run_id, failure_category, failure_reason, can_retry,
    failure_type, is_correctable, expected_game_count AS expected_count, actual_game_count AS actual_count,
    missing_game_dates AS missing_json, raw_data_checked, resolution_status, resolved_at, created_at
  FROM nba_processing.precompute_failures
  WHERE analysis_date BETWEEN @date_from AND @date_to""",
    SourceTable.ANALYTICS: """
  SELECT 'analytics_failures' AS source_table, 3 AS phase, processor_name, analysis_date AS item_date,
    entity_id, entity_type, run_id, failure_category, failure_reason, can_retry,
    failure_type, is_correctable, expected_record_count AS expected_count, actual_record_count AS actual_count,
    missing_game_ids AS missing_json, CAST(NULL AS BOOL) AS raw_data_checked, resolution_status, resolved_at,
    created_at
  FROM nba_processing.analytics_failures
  WHERE analysis_date BETWEEN @date_from AND @date_to""",
    SourceTable.PREDICTION: """
  SELECT 'prediction_failures' AS source_table, 5 AS phase, processor_name, prediction_date AS item_date,
    entity_id, CAST(NULL AS STRING) AS entity_type, run_id, failure_category, failure_reason, can_retry,
    failure_type, is_correctable, CAST(NULL AS INT64) AS expected_count, CAST(NULL AS INT64) AS actual_count,
    missing_upstream_tables AS missing_json, CAST(NULL AS BOOL) AS raw_data_checked, resolution_status,
    resolved_at, created_at
  FROM nba_processing.prediction_failures
  WHERE prediction_date BETWEEN @date_from AND @date_to""",
}

_ROW_FILTERS = {
    "processors": "processor_name IN UNNEST(@processors)",
    "entity": "STRPOS(LOWER(entity_id), LOWER(@entity)) > 0",
}

# Latest values of an item come from its most recent row; rows without created_at count as oldest.
_ITEMS = """
items AS (
  SELECT
    source_table, processor_name, item_date, entity_id,
    ANY_VALUE(phase) AS phase,
    COALESCE(ANY_VALUE(entity_type HAVING MAX seen_at),
      CASE
        WHEN entity_id = 'DATE_LEVEL' THEN 'DATE'
        WHEN REGEXP_CONTAINS(entity_id, r'^[A-Z]{2,3}$') THEN 'TEAM'
        WHEN REGEXP_CONTAINS(entity_id, r'^[0-9][0-9_A-Z]*$') THEN 'GAME'
        ELSE 'PLAYER'
      END) AS entity_type,
    COUNT(*) AS occurrences,
    COUNT(DISTINCT run_id) AS runs,
    MIN(created_at) AS first_seen,
    MAX(created_at) AS last_seen,
    ANY_VALUE(run_id HAVING MAX seen_at) AS latest_run_id,
    ANY_VALUE(failure_category HAVING MAX seen_at) AS failure_category,
    ANY_VALUE(failure_reason HAVING MAX seen_at) AS failure_reason,
    ANY_VALUE(can_retry HAVING MAX seen_at) AS can_retry,
    ANY_VALUE(failure_type HAVING MAX seen_at) AS failure_type,
    ANY_VALUE(is_correctable HAVING MAX seen_at) AS is_correctable,
    ANY_VALUE(expected_count HAVING MAX seen_at) AS expected_count,
    ANY_VALUE(actual_count HAVING MAX seen_at) AS actual_count,
    ANY_VALUE(missing_json HAVING MAX seen_at) AS missing_json,
    ANY_VALUE(raw_data_checked HAVING MAX seen_at) AS raw_data_checked,
    ANY_VALUE(resolution_status HAVING MAX seen_at) AS row_status,
    MAX(resolved_at) AS resolved_at
  FROM (
    SELECT *, COALESCE(created_at, TIMESTAMP '1970-01-01 00:00:00+00') AS seen_at FROM failure_rows
  ) AS r
  GROUP BY source_table, processor_name, item_date, entity_id
),
labelled AS (
  SELECT *,
    COALESCE(row_status, 'UNRESOLVED') AS status,
    COALESCE(failure_type, @unclassified) AS failure_type_label,
    CASE WHEN is_correctable THEN 'correctable' WHEN NOT is_correctable THEN 'uncorrectable'
      ELSE 'unknown' END AS correctable_class,
    UPPER(failure_category) IN UNNEST(@expected_categories) AS is_expected
  FROM items
)"""

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
    "missing_json, raw_data_checked, status, resolved_at, is_expected"
)


def _params(filters: Filters) -> dict[str, Any]:
    return {
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


def _rows_cte(filters: Filters) -> str:
    tables = [SourceTable(t) for t in filters.tables] if filters.tables else list(SourceTable)
    extra = [frag for name, frag in _ROW_FILTERS.items() if getattr(filters, name)]
    extra_sql = "".join(f"\n    AND {frag}" for frag in extra) if extra else ""
    selects = [_ROWS[t] + extra_sql for t in SourceTable if t in tables]
    return "failure_rows AS (" + "\n  UNION ALL".join(selects) + "\n)"


def _filtered_items_sql(filters: Filters, *, include_expected_filter: bool) -> str:
    """``WITH ... filtered AS (...)``: the items matching every filter (optionally but the toggle)."""
    conditions = [frag for name, frag in _ITEM_FILTERS.items() if getattr(filters, name)]
    if include_expected_filter and filters.hide_expected:
        conditions.append("NOT is_expected")
    where = " AND ".join(conditions) if conditions else "TRUE"
    return "WITH " + _rows_cte(filters) + "," + _ITEMS + ",\nfiltered AS (SELECT * FROM labelled WHERE " + where + ")\n"


def kpis(store: Store, filters: Filters) -> Kpis:
    sql = (
        _filtered_items_sql(filters, include_expected_filter=False)
        + """
SELECT
  COUNT(*) AS all_items,
  COUNTIF(is_expected) AS expected,
  COUNTIF(shown) AS items,
  COALESCE(SUM(IF(shown, occurrences, 0)), 0) AS occurrences,
  COUNTIF(shown AND status = 'UNRESOLVED') AS unresolved,
  COUNTIF(shown AND correctable_class = 'correctable') AS correctable,
  COUNTIF(shown AND correctable_class = 'uncorrectable') AS uncorrectable,
  COUNTIF(shown AND failure_type IS NULL) AS unclassified
FROM (SELECT *, NOT (@hide_expected AND is_expected) AS shown FROM filtered) AS f"""
    )
    row = store.query(sql, {**_params(filters), "hide_expected": filters.hide_expected}, label="kpis").iloc[0]
    return Kpis(**{k: int(row[k]) for k in Kpis.__dataclass_fields__})


def matrix(store: Store, filters: Filters) -> pd.DataFrame:
    """Items by processor and category (with occurrences), largest first."""
    sql = (
        _filtered_items_sql(filters, include_expected_filter=True)
        + """
SELECT processor_name, failure_category, ANY_VALUE(phase) AS phase,
  COUNT(*) AS items, CAST(SUM(occurrences) AS INT64) AS occurrences
FROM filtered
GROUP BY processor_name, failure_category
ORDER BY items DESC, processor_name, failure_category"""
    )
    return store.query(sql, _params(filters), label="matrix")


def trend(store: Store, filters: Filters) -> pd.DataFrame:
    """Items per date and failure type."""
    sql = (
        _filtered_items_sql(filters, include_expected_filter=True)
        + """
SELECT item_date, failure_type_label AS failure_type, COUNT(*) AS items, CAST(SUM(occurrences) AS INT64) AS occurrences
FROM filtered
GROUP BY item_date, failure_type_label
ORDER BY item_date, failure_type_label"""
    )
    return store.query(sql, _params(filters), label="trend")


def count_items(store: Store, filters: Filters) -> int:
    sql = _filtered_items_sql(filters, include_expected_filter=True) + "SELECT COUNT(*) AS n FROM filtered"
    return int(store.query(sql, _params(filters), label="count").iloc[0]["n"])


def _list_sql(filters: Filters, sort: str) -> str:
    return (
        _filtered_items_sql(filters, include_expected_filter=True)
        + f"SELECT {ITEM_COLUMNS}\nFROM filtered\nORDER BY {_SORTS[sort]}\n"
        + "LIMIT @page_limit OFFSET @page_offset"
    )


def list_items(store: Store, filters: Filters, page: Page) -> pd.DataFrame:
    params = {**_params(filters), "page_limit": page.size, "page_offset": (page.number - 1) * page.size}
    return with_keys(store.query(_list_sql(filters, page.sort), params, label="list"))


def iter_items(
    store: Store, filters: Filters, *, sort: str = "newest date", chunk: int = 50_000
) -> Iterator[pd.DataFrame]:
    """Every matching item, in pages of ``chunk``, for exports."""
    for frame in store.iter_query(_list_sql(filters, sort), _params(filters), chunk=chunk, label="export"):
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
    sql = _filtered_items_sql(scope, include_expected_filter=False) + (
        f"SELECT {ITEM_COLUMNS}\nFROM filtered\nWHERE entity_id = @entity_id"
    )
    frame = with_keys(store.query(sql, {**_params(scope), "entity_id": key.entity_id}, label="item"))
    return frame.iloc[0] if len(frame) else None


def with_keys(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the item's text key ``TABLE:PROCESSOR:YYYY-MM-DD:ENTITY`` as the first column."""
    keys = (
        (
            frame["source_table"].astype(str)
            + ":"
            + frame["processor_name"].astype(str)
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
        + _rows_cte(scope)
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
    first, last, rows = store.date_bounds()
    return DataBounds(first, last, rows)
