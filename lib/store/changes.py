"""The change log: what "what changed" and the KPIs at a past instant are counted from, never rebuilt from rows.

lib/store/history.py defines each item's state at any instant from the append-only sources (rows' recording
times, status events, verdict changes). That state only changes at those sources' instants, so the index's upkeep
(lib/store/index.py) evaluates it there once, for the dates it rebuilds, and stores in
``nba_processing.failure_item_changes`` one row per instant after the item's first row (``born``) at which the
state (status, verdict, correctability, occurrences) changed: the state before (``from_*``) and after (``to_*``),
the item's previous and next change (``prev_at``: NULL for its first; ``next_at``: NULL for its last), and what
the item is now. Where the present (the failure list's ``labelled``) differs from where the history ends (a
pipeline rerun wrote its own verdict after the dashboard's), one more row at ``FAR_FUTURE`` goes from the one to
the other: every instant before it reads the history, the present reads the item. The index's items carry
``born`` and ``changed_at`` (their last change's instant, or NULL).

A briefing at three instants (``before_at`` < ``since_at`` < now) then splits the items in range four ways, each
an aggregate:

* **quiet** (from the index): no change after ``before_at``, or first recorded after ``since_at``. Their state at
  each instant is their state now where they existed then (``born``), and nothing before. Most of them settled
  long before: their counts per date and state are stored (``failure_settled``, with the instant they had all
  settled by) and read as such when ``before_at`` is later; only the rest are read item by item.
* **one change** (from the log): the item's only change after ``before_at``: the state before it holds until
  its instant, the state after it from then on.
* **several changes** (from the log, grouped per item: the only per-item work, and only for these items): the
  state at each instant is the one before the first change after it.
"""

from __future__ import annotations

from lib.model import Filters
from lib.store.history import EPOCH_SQL, VERDICT_ORDER_SQL
from lib.store.relation import _INDEX_FILTERS, _restricts, items_cte, rows_cte
from lib.store.schema import FAILURE_ITEM_CHANGES, FAILURE_SETTLED

__all__ = ["CHANGES", "FAR_FUTURE_SQL", "cube_sql", "insert_sql"]

CHANGES = FAILURE_ITEM_CHANGES.ref
#: The instant of the row that takes a history to the present where the two differ: after every real instant.
FAR_FUTURE_SQL = "TIMESTAMP '9999-12-31 00:00:00+00'"

_KEYS = ("source_table", "processor_name", "item_date", "entity_id")
_KEY_LIST = ", ".join(_KEYS)
_STATE = ("status", "type", "correctable", "occurrences")
_NOW = ("status", "failure_type_label", "correctable_class", "occurrences")

#: The log's columns, in order.
COLUMNS: tuple[str, ...] = (
    *_KEYS, "failure_category", "is_expected", "last_actor", *_NOW, "born", "at", "prev_at", "next_at",
    *(f"from_{s}" for s in _STATE), *(f"to_{s}" for s in _STATE),
)  # fmt: skip


def _on(a: str, b: str, *, at: bool = False) -> str:
    keys = " AND ".join(f"{a}.{k} = {b}.{k}" for k in _KEYS)
    return keys + (f" AND {a}.t = {b}.t" if at else "")


def _ks(alias: str) -> str:
    return ", ".join(f"{alias}.{k}" for k in _KEYS)


def _correctable(value: str) -> str:
    return f"CASE WHEN {value} THEN 'correctable' WHEN NOT {value} THEN 'uncorrectable' ELSE 'unknown' END"


def _differs(a: str, b: str, columns: tuple[str, ...] = _STATE) -> str:
    """States ``a.{s}`` and ``b.{t}`` differ (NULLs equal each other): ``a`` and ``b`` are prefixes."""
    return " OR ".join(
        f"NOT (COALESCE({a}{s} = {b}{t}, FALSE) OR ({a}{s} IS NULL AND {b}{t} IS NULL))"
        for s, t in zip(_STATE, columns, strict=True)
    )


def insert_sql(table: str) -> str:
    """The log rows of the dates ``@dates`` of one failure table (``@source_table``): the statement the index's
    upkeep runs before it writes the items (which read each item's last change from it). The rules are
    lib/store/history.py's, evaluated at every instant of an item's rows, events and verdict changes: ``t_at`` holds,
    per item and instant, the rows recorded then (and the latest), the last event and verdict change then;
    ``t_run`` runs over each item's instants in order (rows by then, the latest row, the last event and verdict
    change by then, the first verdict change after), so that each instant's state is a lookup by order key."""
    chunk = "source_table = @source_table AND item_date BETWEEN @date_from AND @date_to AND item_date IN UNNEST(@dates)"
    return f"""
INSERT INTO {CHANGES} ({", ".join(COLUMNS)})
WITH {rows_cte(Filters(tables=(table,)))},{items_cte(detail=False)},
cur AS (SELECT * FROM labelled WHERE item_date IN UNNEST(@dates)),
t_rows AS (SELECT {_KEY_LIST}, created_at FROM failure_rows WHERE item_date IN UNNEST(@dates)),
t_born AS (
  SELECT {_KEY_LIST}, MIN(COALESCE(created_at, {EPOCH_SQL})) AS born FROM t_rows GROUP BY {_KEY_LIST}
),
t_events AS (
  SELECT {_KEY_LIST}, from_status, to_status, actor, at,
    CONCAT(LPAD(CAST(UNIX_MICROS(at) AS STRING), 20, '0'), event_id) AS o
  FROM nba_processing.failure_resolutions WHERE {chunk}
),
t_verdicts AS (
  SELECT DISTINCT {_KEY_LIST}, from_type, from_correctable, to_type, to_correctable, at, {VERDICT_ORDER_SQL} AS o
  FROM nba_processing.classification_changes WHERE {chunk}
),
t_first AS (
  SELECT {_KEY_LIST}, ANY_VALUE(from_status HAVING MIN o) AS pre, ANY_VALUE(actor HAVING MAX o) AS last_actor
  FROM t_events GROUP BY {_KEY_LIST}
),
t_at AS (
  SELECT {_KEY_LIST}, t, SUM(r) AS r, MAX(seen) AS seen, MAX(eo) AS eo, MAX(vo) AS vo, MIN(vo) AS first_vo
  FROM (
    SELECT {_KEY_LIST}, COALESCE(created_at, {EPOCH_SQL}) AS t, 1 AS r, created_at AS seen,
      CAST(NULL AS STRING) AS eo, CAST(NULL AS STRING) AS vo
    FROM t_rows
    UNION ALL SELECT {_KEY_LIST}, at, 0, CAST(NULL AS TIMESTAMP), o, CAST(NULL AS STRING) FROM t_events
    UNION ALL SELECT {_KEY_LIST}, at, 0, CAST(NULL AS TIMESTAMP), CAST(NULL AS STRING), o FROM t_verdicts
  ) AS u
  GROUP BY {_KEY_LIST}, t
),
t_run AS (
  SELECT {_KEY_LIST}, t,
    SUM(r) OVER (PARTITION BY {_KEY_LIST} ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS occ,
    MAX(seen) OVER (PARTITION BY {_KEY_LIST} ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS seen,
    MAX(eo) OVER (PARTITION BY {_KEY_LIST} ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS eo,
    MAX(vo) OVER (PARTITION BY {_KEY_LIST} ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS vo,
    MIN(first_vo) OVER (PARTITION BY {_KEY_LIST} ORDER BY t ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
      AS next_vo
  FROM t_at
),
t_state AS (
  SELECT {_ks("i")}, i.t, b.born,
    CASE
      WHEN e.to_status IS NULL THEN IF(f.last_actor IS NULL, c.status, COALESCE(f.pre, 'UNRESOLVED'))
      WHEN e.to_status = 'RESOLVED' AND i.seen > e.at THEN 'REGRESSED'
      ELSE e.to_status
    END AS status,
    CASE
      WHEN v.to_type IS NOT NULL THEN v.to_type
      WHEN i.next_vo IS NOT NULL THEN COALESCE(n.from_type, @unclassified)
      ELSE c.failure_type_label
    END AS type,
    CASE
      WHEN v.to_type IS NOT NULL THEN {_correctable("v.to_correctable")}
      WHEN i.next_vo IS NOT NULL THEN {_correctable("n.from_correctable")}
      ELSE c.correctable_class
    END AS correctable,
    i.occ AS occurrences
  FROM t_run AS i
  JOIN t_born AS b ON {_on("b", "i")}
  JOIN cur AS c ON {_on("c", "i")}
  LEFT JOIN t_first AS f ON {_on("f", "i")}
  LEFT JOIN t_events AS e ON {_on("e", "i")} AND e.o = i.eo
  LEFT JOIN t_verdicts AS v ON {_on("v", "i")} AND v.o = i.vo
  LEFT JOIN t_verdicts AS n ON {_on("n", "i")} AND n.o = i.next_vo
  WHERE i.t >= b.born
),
t_seq AS (
  SELECT *,
    {", ".join(f"LAG({s}) OVER (PARTITION BY {_KEY_LIST} ORDER BY t) AS p_{s}" for s in _STATE)},
    LEAD(t) OVER (PARTITION BY {_KEY_LIST} ORDER BY t) AS next_t
  FROM t_state
),
t_changes AS (
  SELECT {_KEY_LIST}, born, t AS at, {", ".join(f"p_{s} AS from_{s}" for s in _STATE)},
    {", ".join(f"{s} AS to_{s}" for s in _STATE)}
  FROM t_seq
  WHERE t > born AND ({_differs("", "p_")})
  UNION ALL
  SELECT {_ks("s")}, s.born, {FAR_FUTURE_SQL}, {", ".join(f"s.{s}" for s in _STATE)},
    {", ".join(f"c.{n}" for n in _NOW)}
  FROM t_seq AS s JOIN cur AS c ON {_on("c", "s")}
  WHERE s.next_t IS NULL AND ({_differs("s.", "c.", _NOW)})
)
SELECT {_ks("x")}, c.failure_category, c.is_expected, c.last_actor, {", ".join(f"c.{n}" for n in _NOW)}, x.born,
  x.at, LAG(x.at) OVER (PARTITION BY {_ks("x")} ORDER BY x.at) AS prev_at,
  LEAD(x.at) OVER (PARTITION BY {_ks("x")} ORDER BY x.at) AS next_at,
  {", ".join(f"x.from_{s}" for s in _STATE)}, {", ".join(f"x.to_{s}" for s in _STATE)}
FROM t_changes AS x
JOIN cur AS c ON {_on("c", "x")}"""


#: The instants a briefing names, as parameters (lib/briefing.py).
_THEN, _BEFORE = "since_at", "before_at"


def _scope(filters: Filters) -> str:
    return "".join(f"\n    AND {frag}" for key, frag in _INDEX_FILTERS.items() if _restricts(filters, key))


def _grouped(source: str) -> str:
    """The cube's rows from ``source`` (one row per item or group of items with these columns, and ``n``)."""
    states = ", ".join(f"exists_{p}, status_{p}, type_{p}, correctable_{p}" for p in (_THEN, _BEFORE))
    return f"""
SELECT failure_category, is_expected, status_now, type_now, correctable_now, {states}, last_actor,
  CAST(SUM(n) AS INT64) AS items, CAST(SUM(occurrences_now) AS INT64) AS occurrences_now,
  CAST(SUM(occurrences_{_THEN}) AS INT64) AS occurrences_{_THEN},
  CAST(SUM(occurrences_{_BEFORE}) AS INT64) AS occurrences_{_BEFORE}
FROM ({source}) AS g
GROUP BY failure_category, is_expected, status_now, type_now, correctable_now, {states}, last_actor"""


def _state_at(p: str, exists: str, source: dict[str, str]) -> str:
    """``exists_p``, ``status_p``, ``type_p``, ``correctable_p`` and ``occurrences_p``: ``source``'s values where
    ``exists`` holds, nothing (and no occurrences) where the item did not exist yet."""
    out = [f"{exists} AS exists_{p}"]
    for s in ("status", "type", "correctable"):
        out.append(f"IF({exists}, {source[s]}, NULL) AS {s}_{p}")
    out.append(f"IF({exists}, {source['occurrences']}, 0) AS occurrences_{p}")
    return ", ".join(out)


def cube_sql(filters: Filters) -> str:
    """The briefing's cube (lib/briefing.py ``_cube``) from the index and the change log, for the items of the
    filters' dates, tables, processors and entity: one statement of three aggregates."""
    scope = _scope(filters)
    in_range = f"item_date BETWEEN @date_from AND @date_to{scope}"
    now_cols = "status AS status_now, failure_type_label AS type_now, correctable_class AS correctable_now"
    current = {"status": "status", "type": "failure_type_label", "correctable": "correctable_class",
               "occurrences": "occurrences"}  # fmt: skip
    # Items with no change after before_at are nearly all of them: counted by their few distinct states first, and
    # only then given their state at each instant (per group, not per item). Those settled by before_at (first row
    # and last change at or before their date's horizon, itself at or before before_at) existed at both instants
    # as they are now: their counts per date and state are stored (``failure_settled``), and only the other items
    # are read one by one. An entity filter needs the items themselves.
    state = "failure_category, is_expected, status, failure_type_label, correctable_class, last_actor"
    by_group = not (_restricts(filters, "entity") or _restricts(filters, "entity_exact"))
    settled = (
        f"""
    SELECT {state}, TRUE AS born_{_THEN}, TRUE AS born_{_BEFORE},
      CAST(SUM(occurrences) AS INT64) AS occurrences, CAST(SUM(items) AS INT64) AS n
    FROM {FAILURE_SETTLED.ref}
    WHERE {in_range} AND settled_at <= @{_BEFORE}
    GROUP BY {state}
    UNION ALL"""
        if by_group
        else ""
    )
    unsettled = f" AND NOT COALESCE(settled_at <= @{_BEFORE}, FALSE)" if by_group else ""
    quiet = f"""
  SELECT failure_category, is_expected, {now_cols},
    {_state_at(_THEN, f"born_{_THEN}", current)},
    {_state_at(_BEFORE, f"born_{_BEFORE}", current)},
    last_actor, occurrences AS occurrences_now, n
  FROM ({settled}
    SELECT {state}, born <= @{_THEN} AS born_{_THEN}, born <= @{_BEFORE} AS born_{_BEFORE},
      CAST(SUM(occurrences) AS INT64) AS occurrences, COUNT(*) AS n
    FROM nba_processing.failure_items
    WHERE {in_range} AND (born > @{_THEN} OR changed_at IS NULL OR changed_at <= @{_BEFORE}){unsettled}
    GROUP BY {state}, born_{_THEN}, born_{_BEFORE}
  ) AS q"""
    before = {s: f"from_{s}" for s in _STATE}
    then = {s: f"IF(at <= @{_THEN}, to_{s}, from_{s})" for s in _STATE}
    single = f"""
  SELECT failure_category, is_expected, {now_cols},
    {_state_at(_THEN, "TRUE", then)},
    {_state_at(_BEFORE, f"born <= @{_BEFORE}", before)},
    last_actor, occurrences AS occurrences_now, 1 AS n
  FROM {CHANGES}
  WHERE {in_range} AND born <= @{_THEN} AND at > @{_BEFORE}
    AND next_at IS NULL AND (prev_at IS NULL OR prev_at <= @{_BEFORE})"""
    # Items with two changes or more after before_at: each change after it, per item.
    several = f"""
  SELECT failure_category, is_expected, {now_cols},
    {_state_at(_THEN, "TRUE", {s: f"IF(has_then, then_{s}, last_{s})" for s in _STATE})},
    {_state_at(_BEFORE, f"born <= @{_BEFORE}", {s: f"first_{s}" for s in _STATE})},
    last_actor, occurrences AS occurrences_now, 1 AS n
  FROM (
    SELECT {_KEY_LIST}, ANY_VALUE(failure_category) AS failure_category, ANY_VALUE(is_expected) AS is_expected,
      ANY_VALUE(status) AS status, ANY_VALUE(failure_type_label) AS failure_type_label,
      ANY_VALUE(correctable_class) AS correctable_class, ANY_VALUE(occurrences) AS occurrences,
      ANY_VALUE(last_actor) AS last_actor, ANY_VALUE(born) AS born,
      {", ".join(f"ANY_VALUE(from_{s} HAVING MIN at) AS first_{s}" for s in _STATE)},
      {", ".join(f"ANY_VALUE(to_{s} HAVING MAX late) AS last_{s}" for s in _STATE)},
      {", ".join(f"ANY_VALUE(from_{s} HAVING MIN after) AS then_{s}" for s in _STATE)},
      LOGICAL_OR(at > @{_THEN}) AS has_then
    FROM (
      SELECT *, IF(at <= @{_THEN}, at, {EPOCH_SQL}) AS late,
        IF(at > @{_THEN}, at, TIMESTAMP '9999-12-31 23:59:59+00') AS after
      FROM {CHANGES} AS c
      WHERE {in_range} AND born <= @{_THEN} AND at > @{_BEFORE}
        AND EXISTS (
          SELECT 1 FROM {CHANGES} AS m
          WHERE m.item_date BETWEEN @date_from AND @date_to AND m.item_date = c.item_date
            AND m.source_table = c.source_table
            AND m.processor_name = c.processor_name AND m.entity_id = c.entity_id
            AND m.at > @{_BEFORE} AND NOT (m.next_at IS NULL AND (m.prev_at IS NULL OR m.prev_at <= @{_BEFORE}))
        )
    ) AS w
    GROUP BY {_KEY_LIST}
  ) AS p"""
    return "\n".join([_grouped(quiet), "UNION ALL", _grouped(single), "UNION ALL", _grouped(several)])
