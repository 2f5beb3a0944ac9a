"""Resolve, mark permanent, investigate, reopen: append-only events, never an UPDATE of a failure row.

An item's status is its latest event's ``to_status`` (``nba_processing.failure_resolutions``); without
events it is the rows' own ``resolution_status`` (NULL counts as UNRESOLVED). A RESOLVED item that a run
recorded again after it was resolved shows as REGRESSED; a PERMANENT one stays PERMANENT. Processor
reruns replace failure rows, and BigQuery refuses DML on rows still in its streaming buffer, so the
events are the truth and the rows' own status columns are only kept in step by :func:`sync_statuses`,
which can fail and be run again without losing anything.

Every change names an actor with the resolver role and a note, checks that none of its items changed
status since the person looked at them (``opened_at``), and writes all its events in one statement
inside one transaction: two people acting at once both keep their events, and the later one decides.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lib import classification, operations
from lib.access import SYSTEM, NotAllowed, require_person, require_resolver
from lib.classifier import ClassifierConfig
from lib.errors import BadInput, TriageError
from lib.model import (
    EARLIEST,
    LATEST,
    OPEN_STATUSES,
    Actor,
    Clock,
    FailureType,
    Filters,
    ItemKey,
    ResolutionStatus,
    SourceTable,
    rising,
    stamp,
)
from lib.store import index
from lib.store import queries as q
from lib.store.base import Store
from lib.store.relation import decisions_sql

MAX_NOTE = 1_000_000  # characters; a note is stored verbatim, whatever it holds
MAX_KEYS = 50_000  # per change made of listed keys; larger changes go by filter


class Conflict(TriageError):
    """Items changed status after the person looked at them; nothing was written."""

    def __init__(self, keys: Sequence[str], total: int, *, selection: bool = False) -> None:
        if selection:  # what the dialog showed is no longer what the scope holds: which items is not known
            head = (f"{total} item(s) changed status or left this selection since you opened this" if total
                    else "Items of this selection changed status since you opened this")  # fmt: skip
            head += f" (among {', '.join(keys)})." if keys else "."
        else:
            shown = ", ".join(keys[:5]) + (f" and {total - 5} more" if total > 5 else "")
            head = f"{total} item(s) changed status since you opened this" + (f": {shown}." if keys else ".")
        super().__init__(head, "Nothing was written. Look at them again, then confirm anew.")
        self.keys = list(keys)


@dataclass(frozen=True)
class Scope:
    """The items a change is about: those matching ``filters``, narrowed to ``keys`` when given."""

    filters: Filters
    keys: tuple[str, ...] = ()

    @classmethod
    def of_keys(cls, keys: Sequence[str | ItemKey]) -> Scope:
        parsed = [k if isinstance(k, ItemKey) else ItemKey.parse(k) for k in keys]
        if not parsed:
            raise BadInput("No items chosen.", "Select items first, or act on every item matching the filter.")
        if len(parsed) > MAX_KEYS:
            raise BadInput(f"{len(parsed):,} items listed one by one is too many.", "Act on a filter instead.")
        filters = Filters(
            date_from=min(k.item_date for k in parsed),
            date_to=max(k.item_date for k in parsed),
            tables=tuple(sorted({k.source_table for k in parsed})),
            processors=tuple(sorted({k.processor_name for k in parsed})),
            hide_expected=False,
        )
        return cls(filters, tuple(sorted({k.text for k in parsed})))


@dataclass(frozen=True)
class Preview:
    count: int  # items that would change
    already: int  # items of the scope already in the target status
    sample: tuple[str, ...]
    by_status: dict[str, int] = field(default_factory=dict)
    #: Of the items that would change, those whose verdict is PLAYER_DNP (the data will never come).
    did_not_play: int = 0
    #: The scope's items and their statuses, as a fingerprint (``_state``): what ``apply(seen=...)`` compares.
    state: str = ""


@dataclass(frozen=True)
class Change:
    batch_id: str
    changed: int
    already: int
    to_status: ResolutionStatus
    at: dt.datetime
    synced: bool = True  # False: the events are saved; the rows' status columns catch up on the next sync


def _target(status: ResolutionStatus | str) -> ResolutionStatus:
    try:
        target = ResolutionStatus(status)
    except ValueError as exc:
        raise BadInput(f"Unknown status {str(status)[:40]!r}.") from exc
    if not target.is_target:
        raise BadInput(f"{target} is derived from the failure rows and cannot be set.")
    return target


def _note(note: str) -> str:
    if not isinstance(note, str) or not note.strip():
        raise BadInput("A note is required: say why.", "It is kept in the audit trail with your name.")
    if len(note) > MAX_NOTE:
        raise BadInput(f"The note has {len(note):,} characters; at most {MAX_NOTE:,} are kept.")
    return note


def _scoped_sql(scope: Scope, *, detail: bool = False, indexed: bool = False) -> str:
    """``WITH ... scoped AS (...)``: the scope's items with their current status. Writes compute them from the
    failure rows inside their transaction (``indexed=False``); previews read the item index."""
    sql = q.filtered_items_sql(scope.filters, detail=detail, indexed=indexed)
    where = "item_key IN UNNEST(@keys)" if scope.keys else "TRUE"
    return sql + f",\nscoped AS (SELECT * FROM filtered WHERE {where})\n"


def _params(scope: Scope) -> dict[str, Any]:
    return {**q.params_of(scope.filters), "keys": list(scope.keys)}


def preview(store: Store, scope: Scope, to_status: ResolutionStatus | str, *, sample: int = 8) -> Preview:
    target = _target(to_status)
    use_index = q.indexed(store, scope.filters)
    counts = store.query(_scoped_sql(scope, indexed=use_index) + _BY_STATUS, _params(scope), label="preview")
    by_status = _by_status(counts)
    did_not_play = sum(int(d or 0) for s, d in zip(counts["status"], counts["dnp"], strict=True) if s != target.value)
    keys = store.query(
        _scoped_sql(scope, indexed=use_index)
        + "SELECT item_key FROM scoped WHERE status <> @to_status ORDER BY item_date DESC, item_key LIMIT @n",
        {**_params(scope), "to_status": target.value, "n": sample},
        label="preview",
    )
    already = by_status.get(target.value, 0)
    return Preview(sum(by_status.values()) - already, already, tuple(keys["item_key"]), by_status, did_not_play,
                   _state(counts))  # fmt: skip


#: The scope's items by status, with a fingerprint of each status's items: the sum of the hashes of their keys (two
#: changes that leave the counts as they were, one item resolved and another reopened, still change it).
_BY_STATUS = """SELECT status, COUNT(*) AS n, SUM(CASE WHEN failure_type = 'PLAYER_DNP' THEN 1 ELSE 0 END) AS dnp,
  SUM(MOD(ROW_HASH(item_key), 4294967291)) AS h
FROM scoped GROUP BY status"""


def _by_status(counts: pd.DataFrame) -> dict[str, int]:
    return {str(s): int(n) for s, n in zip(counts["status"], counts["n"], strict=True)}


def _state(counts: pd.DataFrame) -> str:
    return " ".join(sorted(f"{s}={int(n)}:{int(h)}" for s, n, h in zip(counts["status"], counts["n"], counts["h"],
                                                                     strict=True)))  # fmt: skip


_CONFLICTS = """
SELECT DISTINCT s.item_key
FROM scoped AS s
JOIN nba_processing.failure_resolutions AS r
  ON r.source_table = s.source_table AND r.processor_name = s.processor_name
  AND r.item_date = s.item_date AND r.entity_id = s.entity_id
WHERE r.item_date BETWEEN @date_from AND @date_to AND r.at > @opened_at
ORDER BY s.item_key"""

_INSERT_EVENTS = """
INSERT INTO nba_processing.failure_resolutions
  (event_id, item_key, source_table, processor_name, item_date, entity_id, from_status, to_status, actor, note,
   at, batch_id, origin)
SELECT * FROM (
  {scoped}
  SELECT GENERATE_UUID() AS event_id, item_key, source_table, processor_name, item_date, entity_id,
    status AS from_status, @to_status AS to_status, @actor AS actor, {note} AS note,
    GREATEST(@at, COALESCE(TIMESTAMP_ADD(status_at, INTERVAL 1 MICROSECOND), @at)) AS at,
    @batch_id AS batch_id, @origin AS origin
  FROM scoped
  WHERE status <> @to_status {extra}
    AND NOT EXISTS (
      SELECT 1 FROM nba_processing.failure_resolutions AS earlier
      WHERE earlier.item_date BETWEEN @date_from AND @date_to AND earlier.batch_id = @batch_id)
) AS new_events"""

# The batch id is the change's idempotency key: a statement retried after it committed (a dropped answer)
# inserts nothing the second time, and the change is counted from what is stored.
_COUNT_BATCH = """
SELECT COUNT(*) AS n FROM nba_processing.failure_resolutions
WHERE item_date BETWEEN @date_from AND @date_to AND batch_id = @batch_id"""


def apply(
    store: Store,
    scope: Scope,
    to_status: ResolutionStatus | str,
    *,
    actor: Actor | None,
    note: str,
    now: dt.datetime | None = None,
    opened_at: dt.datetime | None = None,
    seen: Preview | None = None,
    origin: str = "dashboard",
) -> Change:
    """Record one change for every item of the scope not already in ``to_status``.

    ``opened_at`` and ``seen`` (the preview the person read) guard against a change made meanwhile: an event stamped
    after ``opened_at``, or items and statuses that are not what the preview showed, refuse the change with
    :class:`Conflict`. The second catches what the stamps cannot: a write that stamped its events before the dialog
    opened and committed after its preview.

    The order of events is the order of commits: the time is read inside the write (``now`` stands in for
    the clock in tests), each event is stamped after its item's latest event, and ``from_status`` is the
    status the write itself saw. Whatever the interleaving of writers, an item's events form an unbroken
    chain and its status is the last committed change.
    """
    who = require_person(actor)
    target = _target(to_status)
    text = _note(note)
    params: dict[str, Any] = {
        **_params(scope),
        "to_status": target.value,
        "actor": who.name,
        "note": text,
        "batch_id": uuid.uuid4().hex,
        "origin": origin,
    }
    # Its events and the rows' status columns are of the scope's dates only: the item index keeps the rest current.
    with store.touching((scope.filters.date_from, scope.filters.date_to)), store.transaction(label="resolve") as tx:
        params["at"] = now or dt.datetime.now(dt.UTC)
        params["opened_at"] = opened_at or params["at"]
        if opened_at is not None:
            changed = tx.query(_scoped_sql(scope) + _CONFLICTS, params)
            if len(changed):
                raise Conflict(list(changed["item_key"]), len(changed))
        counts = tx.query(_scoped_sql(scope) + _BY_STATUS, params)
        by_status = _by_status(counts)
        if seen is not None and _state(counts) != seen.state:
            raise _moved(scope, seen.by_status, by_status)
        already = by_status.get(target.value, 0)
        tx.execute(_INSERT_EVENTS.format(scoped=_scoped_sql(scope), note="@note", extra=""), params)
        inserted = int(tx.query(_COUNT_BATCH, params).iloc[0]["n"])
    synced = _try_sync(store, scope.filters)
    return Change(params["batch_id"], inserted, already, target, params["at"], synced)


def _moved(scope: Scope, seen: Mapping[str, int], now: Mapping[str, int]) -> Conflict:
    """The refusal of a change whose scope no longer holds what the person read: how many items moved, by the counts
    (none when the changes cancel out), and the scope's items where it names five or fewer."""
    grown = sum(max(0, n - seen.get(s, 0)) for s, n in now.items())
    shrunk = sum(max(0, n - now.get(s, 0)) for s, n in seen.items())
    if len(scope.keys) == 1:  # one item: it is the one that moved
        return Conflict(list(scope.keys), 1)
    return Conflict(list(scope.keys) if len(scope.keys) <= 5 else [], max(grown, shrunk), selection=True)


def unmatched_keys(store: Store, scope: Scope) -> list[str]:
    """The listed keys of a scope that name no item (a typo, a stray space, an item that never existed)."""
    if not scope.keys:
        return []
    use_index = q.indexed(store, scope.filters)
    found = store.query(_scoped_sql(scope, indexed=use_index) + "SELECT item_key FROM scoped", _params(scope),
                        label="preview")  # fmt: skip
    known = set(found["item_key"])
    return [k for k in scope.keys if k not in known]


def _try_sync(store: Store, filters: Filters) -> bool:
    """Keep the rows' status columns in step now; if that fails, ``sync_statuses`` catches up later."""
    try:
        _sync(store, since=filters.date_from, until=filters.date_to)
    except TriageError:
        return False
    finally:
        index.after_write(store, filters.date_from, filters.date_to)
    return True


# -- keeping the failure rows' own status in step -----------------------------------------------------

_SYNC = {
    table: f"""
UPDATE {table.spec.ref} AS t
SET resolution_status = d.decided_status,
  resolved_at = IF(d.decided_status IN ('RESOLVED', 'PERMANENT'), d.decided_at, NULL)
FROM ({decisions_sql(f"source_table = '{table.value}'")}) AS d
WHERE t.{table.date_column} BETWEEN @date_from AND @date_to
  AND COALESCE(t.processor_name, '') = d.processor_name AND t.{table.date_column} = d.item_date
  AND COALESCE(t.entity_id, '') = d.entity_id
  AND (d.decided_status = 'PERMANENT' OR t.created_at IS NULL OR t.created_at <= d.decided_at)
  AND (t.resolution_status IS NULL OR t.resolution_status <> d.decided_status)"""
    for table in SourceTable
}


def sync_statuses(
    store: Store,
    *,
    actor: Actor | None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    origin: str = "lib",
    refresh_index: bool = True,
) -> int:
    """Write each item's decided status into its failure rows (rows recorded after the decision keep theirs,
    unless the item is PERMANENT). Idempotent: run it again after a failure. Recorded in the operations log.
    ``refresh_index=False`` leaves the item index to the next write that refreshes it or to the first read (a new
    demo, whose classification rebuilds every date again at once)."""
    with operations.logged(store, "sync-status", actor, origin=origin, date_from=since, date_to=until) as op:
        changed = _sync(store, since=since, until=until)
        if refresh_index:
            index.after_write(store, since, until)
        op.summary = [f"{changed:,} failure row(s) brought in step."]
    return changed


def _sync(store: Store, *, since: dt.date | None, until: dt.date | None) -> int:
    params = {"date_from": since or EARLIEST, "date_to": until or LATEST}
    with store.touching((since, until)):  # the rows of those dates only
        return sum(store.execute(sql, params, label="sync-status") for sql in _SYNC.values())


# -- suggested actions ----------------------------------------------------------------------------


def dnp_scope(filters: Filters) -> Scope:
    """Every PLAYER_DNP item of the view that is not settled yet: candidates for PERMANENT."""
    statuses = tuple(s for s in OPEN_STATUSES if not filters.statuses or s in filters.statuses)
    return Scope(filters.with_(failure_types=(FailureType.PLAYER_DNP.value,), statuses=statuses or ("UNRESOLVED",)))


#: A streak's items: those dated from its first missed game to this long after its last (their windows hold it).
STREAK_REACH = dt.timedelta(days=14)


def streak_scope(filters: Filters, player: str, first: dt.date, last: dt.date) -> Scope:
    """One player's open PLAYER_DNP items around a streak of games he missed: his own, by his exact lookup, never
    those of a player whose lookup contains his (``goranbrown`` is not ``goranbrownjr``)."""
    until = last + STREAK_REACH if last <= LATEST - STREAK_REACH else LATEST
    return Scope(dnp_scope(filters).filters.with_(date_from=first, date_to=until, entity="", entity_exact=player))


def complete_scope(since: dt.date | None, until: dt.date | None) -> Scope:
    """Open items whose data has arrived (classified COMPLETE)."""
    return Scope(Filters(date_from=since, date_to=until, failure_types=(FailureType.COMPLETE.value,),
                         statuses=OPEN_STATUSES, hide_expected=False))  # fmt: skip


_AUTO_NOTE = (
    "CONCAT('Auto-resolved: re-classified COMPLETE on ', FORMAT_TIMESTAMP('%Y-%m-%d %H:%M UTC', @at), '. ', "
    "CASE WHEN expected_count IS NULL OR actual_count IS NULL "
    "THEN 'The evidence shows nothing missing any more.' "
    "ELSE CONCAT('Every missing game has arrived: ', CAST(actual_count AS STRING), ' of ', "
    "CAST(expected_count AS STRING), ' expected in the window.') END, ' Requested by ', @requested_by, '.')"
)


def autoresolve(
    store: Store,
    *,
    actor: Actor | None,
    now: dt.datetime,
    since: dt.date | None = None,
    until: dt.date | None = None,
    progress: classification.Progress = classification._quiet,
    config: ClassifierConfig | None = None,
    origin: str = "lib",
    clock: Clock | None = None,
) -> tuple[classification.Report, int]:
    """Re-classify the range from today's evidence, then resolve (as ``system``, on behalf of ``actor``, who
    must be a resolver) what is now COMPLETE.

    The events are stamped when they are written (``clock()`` read inside the write, never before ``now``): the
    re-classification before them takes minutes on a long range, and an event stamped at the start of the work but
    committed after it would be before a visit it came after ("what changed since my last visit" would miss it).
    Without ``clock`` (tests) they are stamped ``now``."""
    who = operations.check("autoresolve", actor)
    clock = rising(clock)  # its events after its re-classification's last batch, whatever the wall clock does
    with operations.logged(store, "autoresolve", who, origin=origin, date_from=since, date_to=until) as op:
        report = classification.run(store, actor=who, now=now, config=config, include_classified=True, since=since,
                                    until=until, progress=progress, origin=origin, clock=clock)  # fmt: skip
        scope = complete_scope(since, until)
        params = {
            **_params(scope),
            "to_status": ResolutionStatus.RESOLVED.value,
            "actor": SYSTEM.name,
            "requested_by": who.name.strip(),
            "batch_id": uuid.uuid4().hex,
            "origin": "autoresolve",
        }
        with store.touching((since, until)), store.transaction(label="autoresolve") as tx:
            params["at"] = stamp(now, clock)
            tx.execute(_INSERT_EVENTS.format(scoped=_scoped_sql(scope, detail=True), note=_AUTO_NOTE, extra=""), params)
            resolved = int(tx.query(_COUNT_BATCH, params).iloc[0]["n"])
        _try_sync(store, scope.filters)
        op.summary = [f"{resolved:,} item(s) resolved whose data has arrived."]
    return report, resolved


__all__ = [
    "SYSTEM",
    "Change",
    "Conflict",
    "NotAllowed",
    "Preview",
    "Scope",
    "apply",
    "autoresolve",
    "preview",
    "require_resolver",
    "sync_statuses",
    "unmatched_keys",
]
