"""Each item as it stood at a past instant: the SQL behind "what changed since yesterday".

The failure rows only hold the present: their latest verdict and a status the sync copies from the
events. The past is rebuilt from what is append-only:

* an item existed at ``t`` if a row of it was recorded (``created_at``) at or before ``t`` (a row with no
  ``created_at`` counts as always there, as it sorts first everywhere else);
* its status at ``t`` is the last event at or before ``t`` (REGRESSED if that was RESOLVED and a row
  arrived after it, by ``t``); with no event by then, the status the first later event saw (``from_status``),
  or, for an item nobody ever decided on, the status it shows now (the pipeline only writes UNRESOLVED);
* its verdict at ``t`` is the last verdict the classifier wrote at or before ``t``
  (``classification_changes``); with none by then, the verdict the first later change replaced; with no
  change at all, the verdict it shows now.

These CTEs go after ``failure_rows`` and ``labelled`` (lib/store/queries.py) and add ``item_history``:
one row per labelled item with, for every instant parameter ``p``, ``exists_p``, ``status_p``, ``type_p``,
``correctable_p`` and ``occurrences_p``, plus ``born`` and ``last_actor`` (who made its latest event).
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.model import OPEN_STATUSES, SETTLED_STATUSES

__all__ = ["EPOCH_SQL", "EVENTS_CTE", "OPEN_STATUSES", "SETTLED_STATUSES", "change_condition", "history_ctes"]
#: The moment before anything: a row with no created_at was always there.
EPOCH_SQL = "TIMESTAMP '1970-01-01 00:00:00+00'"
#: The order of an item's verdict changes: by instant, then batch, then (a batch that recorded two verdicts for one item
#: at one instant) by the verdicts themselves, so that no two differing changes tie and every reader (the rows' history
#: here, the index's change log in lib/store/changes.py) takes the same one as the last.
VERDICT_ORDER_SQL = (
    "CONCAT(LPAD(CAST(UNIX_MICROS(at) AS STRING), 20, '0'), batch_id, '|', COALESCE(to_type, ''), '|', "
    "COALESCE(CAST(to_correctable AS STRING), ''), '|', COALESCE(from_type, ''), '|', "
    "COALESCE(CAST(from_correctable AS STRING), ''))"
)

_KEYS = ("source_table", "processor_name", "item_date", "entity_id")


def _on(left: str, right: str) -> str:
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in _KEYS)


def _correctable(value: str) -> str:
    return f"CASE WHEN {value} THEN 'correctable' WHEN NOT {value} THEN 'uncorrectable' ELSE 'unknown' END"


#: Every status change of the items in range, with its order (time, then id): ``hist_events``.
EVENTS_CTE = """,
hist_events AS (
  SELECT source_table, processor_name, item_date, entity_id, from_status, to_status, actor, origin, at,
    CONCAT(LPAD(CAST(UNIX_MICROS(at) AS STRING), 20, '0'), event_id) AS o
  FROM nba_processing.failure_resolutions
  WHERE item_date BETWEEN @date_from AND @date_to
)"""


def history_ctes(instants: Sequence[str]) -> str:
    """``,rows_at AS (...), ..., item_history AS (...)`` for the timestamp parameters named in ``instants``."""
    keys = ", ".join(_KEYS)
    per_rows = "".join(
        f",\n    MAX(IF(created_at <= @{p}, created_at, NULL)) AS seen_{p},"
        f"\n    COUNTIF(COALESCE(created_at, {EPOCH_SQL}) <= @{p}) AS occ_{p}"
        for p in instants
    )
    sql = f""",
rows_at AS (
  SELECT {keys}, MIN(COALESCE(created_at, {EPOCH_SQL})) AS born{per_rows}
  FROM failure_rows
  GROUP BY {keys}
){EVENTS_CTE},
events_all AS (
  SELECT {keys}, ANY_VALUE(from_status HAVING MIN o) AS pre, ANY_VALUE(actor HAVING MAX o) AS last_actor
  FROM hist_events
  GROUP BY {keys}
),
hist_verdicts AS (
  SELECT DISTINCT {keys}, from_type, from_correctable, to_type, to_correctable, at, {VERDICT_ORDER_SQL} AS o
  FROM nba_processing.classification_changes
  WHERE item_date BETWEEN @date_from AND @date_to
)"""
    for p in instants:
        sql += f""",
events_{p} AS (
  SELECT {keys}, ANY_VALUE(to_status HAVING MAX o) AS st, MAX(at) AS at
  FROM hist_events WHERE at <= @{p}
  GROUP BY {keys}
),
verdict_{p} AS (
  SELECT {keys}, ANY_VALUE(to_type HAVING MAX o) AS ty, ANY_VALUE(to_correctable HAVING MAX o) AS co
  FROM hist_verdicts WHERE at <= @{p}
  GROUP BY {keys}
),
replaced_{p} AS (
  SELECT {keys}, ANY_VALUE(from_type HAVING MIN o) AS ty, ANY_VALUE(from_correctable HAVING MIN o) AS co,
    COUNT(*) AS n
  FROM hist_verdicts WHERE at > @{p}
  GROUP BY {keys}
)"""
    columns = ""
    joins = ""
    for p in instants:
        columns += f""",
    ra.born <= @{p} AS exists_{p},
    CASE
      WHEN ra.born > @{p} THEN NULL
      WHEN e_{p}.st IS NULL THEN IF(ea.last_actor IS NULL, l.status, COALESCE(ea.pre, 'UNRESOLVED'))
      WHEN e_{p}.st = 'RESOLVED' AND ra.seen_{p} > e_{p}.at THEN 'REGRESSED'
      ELSE e_{p}.st
    END AS status_{p},
    CASE
      WHEN ra.born > @{p} THEN NULL
      WHEN v_{p}.ty IS NOT NULL THEN v_{p}.ty
      WHEN r_{p}.n IS NOT NULL THEN COALESCE(r_{p}.ty, @unclassified)
      ELSE l.failure_type_label
    END AS type_{p},
    CASE
      WHEN ra.born > @{p} THEN NULL
      WHEN v_{p}.ty IS NOT NULL THEN {_correctable(f"v_{p}.co")}
      WHEN r_{p}.n IS NOT NULL THEN {_correctable(f"r_{p}.co")}
      ELSE l.correctable_class
    END AS correctable_{p},
    ra.occ_{p} AS occurrences_{p}"""
        joins += f"""
  LEFT JOIN events_{p} AS e_{p} ON {_on(f"e_{p}", "l")}
  LEFT JOIN verdict_{p} AS v_{p} ON {_on(f"v_{p}", "l")}
  LEFT JOIN replaced_{p} AS r_{p} ON {_on(f"r_{p}", "l")}"""
    sql += f""",
item_history AS (
  SELECT l.source_table, l.processor_name, l.item_date, l.entity_id, ra.born, ea.last_actor{columns}
  FROM labelled AS l
  JOIN rows_at AS ra ON {_on("ra", "l")}
  LEFT JOIN events_all AS ea ON {_on("ea", "l")}{joins}
)"""
    return sql


def _in(column: str, values: Sequence[str]) -> str:
    return f"COALESCE({column}, '') IN (" + ", ".join(f"'{v}'" for v in values) + ")"


#: What changed between a past instant ``p`` and now, for an item of ``labelled`` joined to ``item_history``
#: as ``h``: the same definitions lib/briefing.py counts with (a test holds the two to each other).
def change_condition(kind: str, p: str) -> str:
    was_open_correctable = (
        f"(h.exists_{p} AND {_in(f'h.status_{p}', OPEN_STATUSES)} AND h.correctable_{p} = 'correctable')"
    )
    conditions = {
        "new": f"NOT h.exists_{p}",
        "regressed": f"status = 'REGRESSED' AND COALESCE(h.status_{p}, '') != 'REGRESSED'",
        "settled": f"{_in('status', SETTLED_STATUSES)} AND NOT {_in(f'h.status_{p}', SETTLED_STATUSES)}",
        "reclassified": (
            f"h.exists_{p} AND (h.type_{p} != failure_type_label OR h.correctable_{p} != correctable_class)"
        ),
        "new_correctable": (
            f"{_in('status', OPEN_STATUSES)} AND correctable_class = 'correctable' AND NOT {was_open_correctable}"
        ),
    }
    return conditions[kind]
