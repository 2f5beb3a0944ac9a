"""Who did what: the audit trail's reads, for the Activity page, an item's history and the command line.

The trail itself is ``nba_processing.failure_resolutions``, append-only, written only by ``lib.resolution``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lib.model import EARLIEST, LATEST, ItemKey
from lib.store import queries as q
from lib.store.base import Store


def history(store: Store, key: ItemKey) -> pd.DataFrame:
    sql = """
SELECT at, actor, from_status, to_status, note, origin, batch_id, event_id
FROM nba_processing.failure_resolutions
WHERE item_date = @item_date AND source_table = @source_table AND processor_name = @processor_name
  AND entity_id = @entity_id
ORDER BY at DESC, event_id DESC"""
    return store.query(
        sql,
        {"item_date": key.item_date, "source_table": key.source_table, "processor_name": key.processor_name,
         "entity_id": key.entity_id},
        label="history",
    )  # fmt: skip


def status_of(store: Store, key: ItemKey) -> str | None:
    """An item's current status; for an item whose rows are all gone, the latest event's."""
    item = q.get_item(store, key)
    if item is not None:
        return str(item["status"])
    events = history(store, key)
    return str(events.iloc[0]["to_status"]) if len(events) else None


# -- the activity page and the command line ---------------------------------------------------------


@dataclass(frozen=True)
class ActivityFilters:
    item_from: dt.date | None = None
    item_to: dt.date | None = None
    actors: tuple[str, ...] = ()
    to_statuses: tuple[str, ...] = ()
    text: str = ""


_ACTIVITY_COLUMNS = (
    "at, actor, item_key, source_table, processor_name, item_date, entity_id, from_status, to_status, note, "
    "origin, batch_id, event_id"
)
_ACTIVITY_FILTERS = {
    "actors": "actor IN UNNEST(@actors)",
    "to_statuses": "to_status IN UNNEST(@to_statuses)",
    "text": "STRPOS(LOWER(CONCAT(note, ' ', item_key, ' ', actor)), LOWER(@text)) > 0",
}


def _activity_sql(f: ActivityFilters) -> str:
    extra = "".join(f"\n  AND {frag}" for name, frag in _ACTIVITY_FILTERS.items() if getattr(f, name))
    return (
        f"SELECT {_ACTIVITY_COLUMNS}\nFROM nba_processing.failure_resolutions\n"
        f"WHERE item_date BETWEEN @item_from AND @item_to{extra}\n"
    )


def _activity_params(f: ActivityFilters) -> dict[str, Any]:
    return {
        "item_from": f.item_from or EARLIEST,
        "item_to": f.item_to or LATEST,
        "actors": list(f.actors),
        "to_statuses": list(f.to_statuses),
        "text": f.text.strip()[:200],
    }


_ACTIVITY_ORDER = "ORDER BY at DESC, event_id DESC"


def activity(store: Store, f: ActivityFilters, *, limit: int = 200, offset: int = 0) -> pd.DataFrame:
    sql = _activity_sql(f) + _ACTIVITY_ORDER + "\nLIMIT @page_limit OFFSET @page_offset"
    return store.query(sql, {**_activity_params(f), "page_limit": limit, "page_offset": offset}, label="activity")


def activity_count(store: Store, f: ActivityFilters) -> int:
    sql = f"SELECT COUNT(*) AS n FROM ({_activity_sql(f)}) AS a"
    return int(store.query(sql, _activity_params(f), label="activity").iloc[0]["n"])


def iter_activity(store: Store, f: ActivityFilters, *, chunk: int = 50_000) -> Iterator[pd.DataFrame]:
    return store.stream(_activity_sql(f) + _ACTIVITY_ORDER, _activity_params(f), chunk=chunk, label="activity-export")


def actors(store: Store) -> list[str]:
    frame = store.query(
        "SELECT DISTINCT actor FROM nba_processing.failure_resolutions WHERE item_date BETWEEN @a AND @b "
        "ORDER BY actor",
        {"a": EARLIEST, "b": LATEST},
        label="activity",
    )
    return [str(a) for a in frame["actor"]]


__all__ = ["ActivityFilters", "activity", "activity_count", "actors", "history", "iter_activity", "status_of"]
