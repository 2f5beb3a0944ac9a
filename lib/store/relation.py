"""The item relation, declared once: failure rows -> items -> decisions -> labelled items.

``failure_rows`` brings the three failure tables into one shape, ``items`` collapses each item's rows (its
latest values, occurrences, runs, first and last seen), ``decisions`` reads each item's latest status event
and ``labelled`` derives its status and labels. The item index (lib/store/index.py) stores ``labelled``;
the reads (lib/store/queries.py) and the classifier's batches build on the same text.
"""

from __future__ import annotations

from lib.model import FailureTableSpec, Filters, SourceTable

#: The item key's processor part, escaped as ``lib.model.encode_key_part`` does.
KEY_PROCESSOR_SQL = "REPLACE(REPLACE(i.processor_name, '%', '%25'), ':', '%3A')"


def _rows_select(spec: FailureTableSpec) -> str:
    """One failure table's rows in the common shape of ``failure_rows``: only fixed text from its spec."""

    def column(name: str | None, kind: str) -> str:
        return name if name else f"CAST(NULL AS {kind})"

    window = "raw_data_checked" if spec.classifier_writes_window else "CAST(NULL AS BOOL)"
    return f"""
  SELECT '{spec.table.value}' AS source_table, CAST({spec.phase} AS INT64) AS phase,
    COALESCE(processor_name, '') AS processor_name, {spec.date_column} AS item_date,
    COALESCE(entity_id, '') AS entity_id, {column(spec.entity_type_column, "STRING")} AS entity_type, run_id,
    COALESCE(failure_category, '') AS failure_category, failure_reason, can_retry, failure_type, is_correctable,
    {column(spec.expected_column, "INT64")} AS expected_count, {column(spec.actual_column, "INT64")} AS actual_count,
    {spec.missing_column} AS missing_json, {window} AS raw_data_checked, resolution_status, resolved_at, created_at
  FROM {spec.ref}
  WHERE {spec.date_column} BETWEEN @date_from AND @date_to"""


# One SELECT per failure table into a common shape, generated from the tables' specs (lib/model.py).
_ROWS: dict[SourceTable, str] = {t: _rows_select(t.spec) for t in SourceTable}


def _restricts(filters: Filters, name: str) -> bool:
    """Whether a filter field restricts: set, for the exact entity ("" names the items without one); non-empty,
    for the rest."""
    value = getattr(filters, name)
    return value is not None if name == "entity_exact" else bool(value)


_ROW_FILTERS = {
    "processors": "COALESCE(processor_name, '') IN UNNEST(@processors)",
    "entity": "STRPOS(LOWER(COALESCE(entity_id, '')), LOWER(@entity)) > 0",
    "entity_exact": "COALESCE(entity_id, '') = @entity_exact",
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
    # When the item first existed (lib/store/history.py): its first row; a row with no created_at was always there.
    "born": "MIN(COALESCE(created_at, TIMESTAMP '1970-01-01 00:00:00+00'))",
}


def decisions_sql(where: str = "TRUE") -> str:
    """Each item's latest status event (the last in commit order: time, then id), its time and the number of
    events: the status decided for it. ``where`` narrows the events (fixed text only)."""
    return f"""
  SELECT source_table, processor_name, item_date, entity_id,
    ANY_VALUE(to_status HAVING MAX event_order) AS decided_status,
    MAX(at) AS decided_at,
    ANY_VALUE(actor HAVING MAX event_order) AS decided_by,
    COUNT(*) AS events
  FROM (
    SELECT *, CONCAT(LPAD(CAST(UNIX_MICROS(at) AS STRING), 20, '0'), event_id) AS event_order
    FROM nba_processing.failure_resolutions
    WHERE item_date BETWEEN @date_from AND @date_to AND {where}
  ) AS e
  GROUP BY source_table, processor_name, item_date, entity_id
"""


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
decisions AS ({decisions_sql()}),
labelled AS (
  SELECT i.*,
    CONCAT(i.source_table, ':', {key_processor}, ':', CAST(i.item_date AS STRING), ':', i.entity_id) AS item_key,
    CASE
      WHEN d.decided_status IS NULL THEN COALESCE(i.row_status, 'UNRESOLVED')
      WHEN d.decided_status = 'RESOLVED' AND i.last_seen > d.decided_at THEN 'REGRESSED'
      ELSE d.decided_status
    END AS status,
    d.decided_at AS status_at,
    d.decided_by AS last_actor,
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


def rows_cte(filters: Filters, *, within: str = "") -> str:
    """``failure_rows``: the rows of the filters' tables and dates (and, with ``within``, only of the dates that CTE
    lists: see ``active_dates_cte``)."""
    tables = [SourceTable(t) for t in filters.tables] if filters.tables else list(SourceTable)
    extra = [frag for name, frag in _ROW_FILTERS.items() if _restricts(filters, name)]
    extra_sql = "".join(f"\n    AND {frag}" for frag in extra) if extra else ""
    selects = [
        _ROWS[t] + extra_sql + (f"\n    AND {t.date_column} IN (SELECT item_date FROM {within})" if within else "")
        for t in SourceTable
        if t in tables
    ]
    return "failure_rows AS (" + "\n  UNION ALL".join(selects) + "\n)"


#: The columns of ``labelled`` (with the detail aggregates), in order: the item index's columns.
LABELLED_COLUMNS: tuple[str, ...] = (
    "source_table", "processor_name", "item_date", "entity_id", *_ITEM_SUMMARY, *_ITEM_DETAIL,
    "item_key", "status", "status_at", "last_actor", "events", "recurred", "failure_type_label", "correctable_class",
    "is_expected",
)  # fmt: skip

#: Row filters on the stored items: the same meaning as ``_ROW_FILTERS`` (the index holds the coalesced values).
_INDEX_FILTERS = {
    "tables": "source_table IN UNNEST(@tables)",
    "processors": "processor_name IN UNNEST(@processors)",
    "entity": "STRPOS(LOWER(entity_id), LOWER(@entity)) > 0",
    "entity_exact": "entity_id = @entity_exact",
}


def _judged(judged_at: str, item: str) -> str:
    return f"{judged_at} >= COALESCE({item}.last_seen, TIMESTAMP '1970-01-01 00:00:00+00')"


def judged_sql(judged_at: str, item: str) -> str:
    """The dashboard judged the item (alias ``item``) since its rows were written (aliases only)."""
    return f"COALESCE({_judged(judged_at, item)}, FALSE)"


def compared_sql(judgement: str, judged_at: str, item: str) -> str:
    """Judged since its rows were written, and the pipeline had given a verdict before ours (aliases only)."""
    return f"COALESCE({_judged(judged_at, item)} AND {judgement}.pipeline_type IS NOT NULL, FALSE)"


def differs_sql(judgement: str, judged_at: str, item: str) -> str:
    """The dashboard judged the item since its rows were written (``judged_at``), and the pipeline had said another
    type or correctability: the one rule behind the 'disagree' filter and the overview's counts (aliases only)."""
    return (
        f"COALESCE({_judged(judged_at, item)}"
        f" AND {judgement}.pipeline_type IS NOT NULL"
        f" AND ({judgement}.pipeline_type != COALESCE({item}.failure_type, '')"
        f" OR COALESCE(CAST({judgement}.pipeline_correctable AS STRING), '-')"
        f" != COALESCE(CAST({item}.is_correctable AS STRING), '-')), FALSE)"
    )


#: The item index's columns beyond the relation: each item's latest verdict of ours (``judged_cte``).
JUDGEMENT_COLUMNS: tuple[str, ...] = ("judged_at", "pipeline_type", "pipeline_correctable")


def judged_cte(where: str = "") -> str:
    """``judged``: each item's latest verdict of ours (item_judgements, in the range's dates; ``where``: more fixed
    conditions): when (``judged_at``), and what the pipeline had said before it. The latest is the last by time,
    then batch id, so that two judgements at one instant give the same answer every time."""
    return f"""
judged AS (
  SELECT source_table, processor_name, item_date, entity_id, MAX(at) AS judged_at,
    ANY_VALUE(pipeline_type HAVING MAX judgement_order) AS pipeline_type,
    ANY_VALUE(pipeline_correctable HAVING MAX judgement_order) AS pipeline_correctable
  FROM (
    SELECT *, CONCAT(LPAD(CAST(UNIX_MICROS(at) AS STRING), 20, '0'), batch_id) AS judgement_order
    FROM nba_processing.item_judgements
    WHERE item_date BETWEEN @date_from AND @date_to{where}
  ) AS j
  GROUP BY source_table, processor_name, item_date, entity_id
)"""


def indexed_cte(
    filters: Filters, *, within: str = "", name: str = "labelled", outside: bool = False, judgements: bool = False
) -> str:
    """``labelled`` read from the item index (lib/store/index.py): what ``items_cte(detail=True)`` computes (and,
    with ``judgements``, the ``JUDGEMENT_COLUMNS``). With ``within``, only the items of the dates that CTE lists
    (``outside``: only the others), under ``name``."""
    extra = "".join(f"\n    AND {frag}" for key, frag in _INDEX_FILTERS.items() if _restricts(filters, key))
    if within:
        extra += f"\n    AND item_date {'NOT IN' if outside else 'IN'} (SELECT item_date FROM {within})"
    columns = (*LABELLED_COLUMNS, *(JUDGEMENT_COLUMNS if judgements else ()))
    return f"""
{name} AS (
  SELECT {", ".join(columns)} FROM nba_processing.failure_items
  WHERE item_date BETWEEN @date_from AND @date_to{extra}
)"""


def active_dates_cte(instant: str) -> str:
    """``active_dates``: the dates in range where an item may have changed after the timestamp parameter
    ``instant``: a row recorded after it, its rows found changed after it (by anyone: the index's ``changed_at``),
    a status event or a verdict change after it. Every other date's items stood then as they stand now, so the
    history (lib/store/history.py) need not be rebuilt from their rows. Read after the index is brought up to
    date (``queries.indexed``)."""
    return f"""
active_dates AS (
  SELECT item_date FROM nba_processing.failure_items
  WHERE item_date BETWEEN @date_from AND @date_to AND last_seen > @{instant}
  UNION DISTINCT
  SELECT item_date FROM nba_processing.failure_index_dates
  WHERE item_date BETWEEN @date_from AND @date_to AND changed_at > @{instant}
  UNION DISTINCT
  SELECT item_date FROM nba_processing.failure_resolutions
  WHERE item_date BETWEEN @date_from AND @date_to AND at > @{instant}
  UNION DISTINCT
  SELECT item_date FROM nba_processing.classification_changes
  WHERE item_date BETWEEN @date_from AND @date_to AND at > @{instant}
)"""


#: The columns of a failure row that change in production without a new row: the keys, the run and its time (a
#: rerun or streamed rows), and what the pipeline or the classifier update in place (verdict, status). The
#: descriptive columns (reason, counts, lists) are left out: only a new row changes them, and hashing their
#: text would cost a BigQuery scan of the widest columns. ``python -m lib reindex`` rebuilds after a hand edit.
_FINGERPRINTED = (
    "processor_name, entity_id, run_id, failure_category, failure_type, is_correctable, resolution_status, "
    "UNIX_MICROS(resolved_at), UNIX_MICROS(created_at)"
)


# Per source table and date: a fingerprint of its failure rows, of its items' status events and of our verdicts on
# them (item_judgements), and the index's version. Cheap (one pass over the rows in range, no sort) and sensitive
# to any insert, delete or update: the row count, and the sum and the XOR of the rows' hashes (a sum, because two
# identical rows cancel in a XOR); of the events and the verdicts, their count and the sum of their hashes (an
# event or verdict edited in place shows). ``ROW_HASH`` is spelled per engine by lib/store/dialect.py.
# Then each (table, date) whose fingerprint differs from the one stored when it was indexed, is not stored, is
# gone (stored, but nothing left), or was stored twice (two refreshes at once): the dates to rebuild (every date
# with ``@every``), with what was stored; and a last row without a table that counts the pairs.
def stale_dates_sql(*, only_checked: bool = False) -> str:
    """The statement described above. With ``only_checked``, only the dates of the array parameter ``@checked_dates``
    are fingerprinted and compared (the others were found unchanged by the engine's partition metadata: see
    lib/store/index.py ``_plan``), and the last row counts those."""
    checks = "checks AS (SELECT d AS item_date FROM UNNEST(@checked_dates) AS d),\n" if only_checked else ""
    only = "\n    AND item_date IN (SELECT item_date FROM checks)" if only_checked else ""
    return f"""
WITH {checks}{rows_cte(Filters(), within="checks" if only_checked else "")},
row_prints AS (
  SELECT source_table, item_date, COUNT(*) AS n,
    CONCAT(CAST(SUM(MOD(h, 4294967291)) AS STRING), '.', CAST(BIT_XOR(h) AS STRING)) AS h
  FROM (SELECT *, ROW_HASH({_FINGERPRINTED}) AS h FROM failure_rows) AS r
  GROUP BY source_table, item_date
),
event_prints AS (
  SELECT source_table, item_date, COUNT(*) AS n,
    CAST(SUM(MOD(ROW_HASH(event_id, to_status, UNIX_MICROS(at)), 4294967291)) AS STRING) AS h
  FROM nba_processing.failure_resolutions
  WHERE item_date BETWEEN @date_from AND @date_to{only}
  GROUP BY source_table, item_date
),
judgement_prints AS (
  SELECT source_table, item_date, COUNT(*) AS n,
    CAST(SUM(MOD(ROW_HASH(batch_id, processor_name, entity_id, UNIX_MICROS(at), pipeline_type, pipeline_correctable),
      4294967291)) AS STRING) AS h
  FROM nba_processing.item_judgements
  WHERE item_date BETWEEN @date_from AND @date_to{only}
  GROUP BY source_table, item_date
),
row_event_prints AS (
  SELECT COALESCE(r.source_table, e.source_table) AS source_table, COALESCE(r.item_date, e.item_date) AS item_date,
    r.n AS row_n, r.h AS row_h, e.n AS event_n, e.h AS event_h
  FROM row_prints AS r
  FULL OUTER JOIN event_prints AS e ON e.source_table = r.source_table AND e.item_date = r.item_date
),
prints AS (
  SELECT COALESCE(p.source_table, j.source_table) AS source_table, COALESCE(p.item_date, j.item_date) AS item_date,
    COALESCE(p.row_n, 0) AS row_count,
    CONCAT(@index_version, '/', CAST(COALESCE(p.row_n, 0) AS STRING), '/', COALESCE(p.row_h, '-'),
      '/', CAST(COALESCE(p.event_n, 0) AS STRING), '/', COALESCE(p.event_h, '-'),
      '/', CAST(COALESCE(j.n, 0) AS STRING), '/', COALESCE(j.h, '-')) AS fingerprint
  FROM row_event_prints AS p
  FULL OUTER JOIN judgement_prints AS j ON j.source_table = p.source_table AND j.item_date = p.item_date
),
stored AS (
  SELECT source_table, item_date, MIN(fingerprint) AS fingerprint, MAX(changed_at) AS changed_at, COUNT(*) AS copies
  FROM nba_processing.failure_index_dates
  WHERE item_date BETWEEN @date_from AND @date_to{only}
  GROUP BY source_table, item_date
)
SELECT COALESCE(p.source_table, s.source_table) AS source_table, COALESCE(p.item_date, s.item_date) AS item_date,
  COALESCE(p.row_count, 0) AS row_count, p.fingerprint, s.fingerprint AS stored, s.changed_at,
  CAST(NULL AS INT64) AS checked
FROM prints AS p
FULL OUTER JOIN stored AS s ON s.source_table = p.source_table AND s.item_date = p.item_date
WHERE @every OR p.fingerprint IS NULL OR s.fingerprint IS NULL OR p.fingerprint <> s.fingerprint OR s.copies > 1
UNION ALL
SELECT CAST(NULL AS STRING), CAST(NULL AS DATE), 0, CAST(NULL AS STRING), CAST(NULL AS STRING),
  CAST(NULL AS TIMESTAMP), COUNT(*)
FROM prints"""


STALE_DATES = stale_dates_sql()
