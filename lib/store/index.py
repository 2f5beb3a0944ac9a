"""The item index: every item as the pages read it, stored, and its daily rollups, kept up to date per date.

Collapsing failure rows into items at read time costs a pass over every row in range on every page load. The
index stores the item relation (``labelled`` of lib/store/relation.py, the one definition) in
``nba_processing.failure_items``, one row per item, and item counts per date and dimension in
``nba_processing.failure_rollups``. Both are derived data: any date can be rebuilt from the failure rows and
the status events at any time, and nothing else is ever written to them.

**Never stale.** ``nba_processing.failure_index_dates`` keeps, per source table and date, a fingerprint of the
failure rows and status events the date was built from (lib/store/relation.py ``FINGERPRINTS``: a count, and
an order-free sum and XOR of hashes of the columns that change in production: keys, run, time, verdict,
status). Before any read, ``ensure`` computes the fingerprints
of the dates in range (one pass over a few columns, no sort), and rebuilds exactly the dates whose fingerprint
differs or is missing: a processor's DELETE + INSERT rerun, rows streamed in by the pipeline, a resolution
made by another process, a new index version. Between two changes of the data nothing is recomputed: the
store's data version (a file stamp, or the tables' modification times) is remembered with the ranges found
fresh. The dashboard's own writes call ``ensure`` for the dates they touched, so that the next page finds
them ready.

**Order of a refresh.** The fingerprints are taken first, then the dates' items and rollups are replaced,
then the fingerprints are stored. If the data changes in between, the stored fingerprint is the older one
and the next read rebuilds the date again; if a refresh stops half way, the date has no stored fingerprint
and is rebuilt. A store that cannot be written (a read-only file, a viewer's credentials) keeps working:
the reads then compute items from the failure rows, as before the index existed.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from lib.access import require_resolver
from lib.errors import TriageError
from lib.model import EARLIEST, EXPECTED_CATEGORIES, LATEST, UNCLASSIFIED, Actor, Filters
from lib.store import changes
from lib.store.base import Store
from lib.store.relation import (
    JUDGEMENT_COLUMNS,
    LABELLED_COLUMNS,
    compared_sql,
    differs_sql,
    items_cte,
    judged_cte,
    judged_sql,
    rows_cte,
    stale_dates_sql,
)
from lib.store.schema import (
    FAILURE_INDEX_DATES,
    FAILURE_ITEMS,
    FAILURE_RESOLUTIONS,
    FAILURE_ROLLUPS,
    FAILURE_SETTLED,
    FAILURE_TABLES,
    INDEX_TABLES,
    ITEM_JUDGEMENTS,
)

#: Bumped whenever what the index stores changes (a column, a rule of the relation, the expected categories):
#: every stored fingerprint then differs and each date is rebuilt on first use.
INDEX_VERSION = "7"

Progress = Callable[[float, str], None]

#: Failure rows (and dates) rebuilt per step of a large refresh: bounded work per step, and progress between.
CHUNK_ROWS = 300_000
CHUNK_DATES = 400
#: Failure rows per step while another process waits for the file (``Store.others_waiting``), outside a dashboard run
#: (the nightly job's refresh, say, while the dashboard waits): each step holds the file about a second, not three
#: (the job's 30 days at 10M rows), at a quarter more work in all. A page's own refresh keeps its steps: people wait
#: for it, and the job has its turn between runs (``DuckDBStore.held``).
SHARED_CHUNK_ROWS = 30_000

_ITEMS = FAILURE_ITEMS.ref
_ROLLUPS = FAILURE_ROLLUPS.ref
_DATES = FAILURE_INDEX_DATES.ref
_SETTLED = FAILURE_SETTLED.ref

#: How long before a rebuild its items count as settled, at most: a briefing compares now with 24 hours ago and the
#: 24 hours before (lib/briefing.py), so its earlier instant is never before a rebuild's horizon of 48 hours.
SETTLED_LAG = dt.timedelta(hours=48)

_IN_CHUNK = "source_table = @source_table AND item_date BETWEEN @date_from AND @date_to AND item_date IN UNNEST(@dates)"

_ROLLUP_DIMENSIONS = (
    "item_date, source_table, processor_name, failure_category, failure_type_label, correctable_class, status, "
    "is_expected"
)


def _insert_items(table: str) -> str:
    """The items of the dates ``@dates``, with their last change from the change log written just before, their
    latest verdict of ours, and when they settled: an item whose first row and last change are both at or before
    its date's horizon (its date's last instant, and never later than ``@horizon``) has ``settled_at`` = that
    horizon. An item whose present differs from where its history ends (a change at ``FAR_FUTURE``) never settles."""
    columns = ", ".join(LABELLED_COLUMNS)
    keys = ("source_table", "processor_name", "item_date", "entity_id")
    return (
        f"INSERT INTO {_ITEMS} ({columns}, changed_at, {', '.join(JUDGEMENT_COLUMNS)}, settled_at)\nWITH "
        + rows_cte(Filters(tables=(table,)))
        + ","
        + items_cte(detail=True)
        + ","
        + judged_cte(" AND source_table = @source_table AND item_date IN UNNEST(@dates)")
        + f""",
last_change AS (
  SELECT {", ".join(keys)}, MAX(at) AS changed_at FROM {changes.CHANGES} WHERE {_IN_CHUNK}
  GROUP BY {", ".join(keys)}
)
SELECT {columns}, changed_at, {", ".join(JUDGEMENT_COLUMNS)}, IF(last_at <= horizon, horizon, NULL) AS settled_at
FROM (
  SELECT *, LEAST(@horizon, MAX(real_at) OVER (PARTITION BY item_date)) AS horizon
  FROM (
    SELECT {", ".join("l." + c for c in LABELLED_COLUMNS)}, c.changed_at,
      {", ".join("j." + c for c in JUDGEMENT_COLUMNS)}, GREATEST(l.born, COALESCE(c.changed_at, l.born)) AS last_at,
      GREATEST(l.born, IF(c.changed_at < {changes.FAR_FUTURE_SQL}, c.changed_at, l.born)) AS real_at
    FROM labelled AS l
    LEFT JOIN last_change AS c ON {" AND ".join(f"c.{k} = l.{k}" for k in keys)}
    LEFT JOIN judged AS j ON {" AND ".join(f"j.{k} = l.{k}" for k in keys)}
    WHERE l.item_date IN UNNEST(@dates)
  ) AS a
) AS h"""
    )


#: What a chunk's rebuild removes first (the fingerprints first: a rebuild cut short leaves its dates unindexed).
_DELETES = tuple(f"DELETE FROM {t} WHERE {_IN_CHUNK}" for t in (_DATES, _ITEMS, _ROLLUPS, changes.CHANGES, _SETTLED))

_INSERT_ROLLUPS = f"""
INSERT INTO {_ROLLUPS} (item_date, source_table, processor_name, failure_category, failure_type, correctable_class,
  status, is_expected, first_seen_day, phase, items, occurrences, judged, pipeline_judged, disagree)
SELECT {_ROLLUP_DIMENSIONS}, DATE(first_seen), MIN(phase), COUNT(*), CAST(SUM(occurrences) AS INT64),
  COUNTIF({judged_sql("i.judged_at", "i")}), COUNTIF({compared_sql("i", "i.judged_at", "i")}),
  COUNTIF({differs_sql("i", "i.judged_at", "i")})
FROM {_ITEMS} AS i
WHERE {_IN_CHUNK}
GROUP BY {_ROLLUP_DIMENSIONS}, DATE(first_seen)"""

_SETTLED_DIMENSIONS = (
    "item_date, source_table, processor_name, failure_category, is_expected, status, failure_type_label, "
    "correctable_class, last_actor, settled_at"
)
#: The settled items per date and state (lib/store/changes.py ``cube_sql`` counts them without reading the items).
_INSERT_SETTLED = f"""
INSERT INTO {_SETTLED} ({_SETTLED_DIMENSIONS}, items, occurrences)
SELECT {_SETTLED_DIMENSIONS}, COUNT(*), CAST(SUM(occurrences) AS INT64)
FROM {_ITEMS}
WHERE {_IN_CHUNK} AND settled_at IS NOT NULL
GROUP BY {_SETTLED_DIMENSIONS}"""


@dataclasses.dataclass
class Refresh:
    """What one ``ensure`` or ``reindex`` did."""

    checked_dates: int = 0
    refreshed_dates: int = 0
    items: int = 0
    seconds: float = 0.0
    #: Dates whose fingerprints were taken (None: every date in range, for want of partition metadata).
    fingerprinted_dates: int | None = None
    #: False when the index could not be used (missing tables on a read-only store, or no write access).
    usable: bool = True
    reason: str = ""


@dataclasses.dataclass
class _Memo:
    version: str = ""
    fresh: list[tuple[dt.date, dt.date]] = dataclasses.field(default_factory=list)
    unusable: str = ""
    bypassed: int = 0
    tables_ready: bool = False


_memos: weakref.WeakKeyDictionary[Store, _Memo] = weakref.WeakKeyDictionary()
_locks: weakref.WeakKeyDictionary[Store, threading.Lock] = weakref.WeakKeyDictionary()
_guard = threading.Lock()


def _state(store: Store) -> tuple[_Memo, threading.Lock]:
    with _guard:
        memo = _memos.setdefault(store, _Memo())
        lock = _locks.setdefault(store, threading.Lock())
    return memo, lock


def _span(date_from: dt.date | None, date_to: dt.date | None) -> tuple[dt.date, dt.date]:
    return date_from or EARLIEST, date_to or LATEST


_Dates = tuple[dt.date, dt.date]
#: Spans found current that a memo keeps (the oldest go first: forgetting one only costs a check).
FRESH_KEPT = 64


def _after(day: dt.date) -> dt.date:
    return day if day == LATEST else day + dt.timedelta(days=1)


def _before(day: dt.date) -> dt.date:
    return day if day == EARLIEST else day - dt.timedelta(days=1)


def _merged(spans: Iterable[_Dates]) -> list[_Dates]:
    """The same dates as fewer spans: sorted, overlapping and adjacent ones joined."""
    out: list[_Dates] = []
    for lo, hi in sorted(spans):
        if out and lo <= _after(out[-1][1]):
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _without(spans: Iterable[_Dates], cuts: Iterable[_Dates]) -> list[_Dates]:
    """The dates of ``spans`` outside every one of ``cuts``."""
    out = list(spans)
    for c_lo, c_hi in cuts:
        kept: list[_Dates] = []
        for lo, hi in out:
            if hi < c_lo or c_hi < lo:
                kept.append((lo, hi))
                continue
            if lo < c_lo:
                kept.append((lo, _before(c_lo)))
            if c_hi < hi:
                kept.append((_after(c_hi), hi))
        out = kept
    return _merged(out)


def _carry(store: Store, memo: _Memo, version: str) -> None:
    """Bring what the memo found current to data version ``version``, where this process's journal says what changed
    since (``Store.written_between``: its own writes, each saying which dates it changed): the dates they changed are
    no longer known to be current, every other date still is. Where the journal cannot say, the memo stays at its
    version, and the caller checks afresh."""
    if memo.version == version or not memo.version or memo.unusable or not memo.fresh:
        return
    written = store.written_between(memo.version, version)
    if written is None:
        return
    memo.fresh = _without(memo.fresh, [_span(lo, hi) for lo, hi in written])
    memo.version = version


def _gaps(memo: _Memo, version: str, lo: dt.date, hi: dt.date) -> list[_Dates]:
    """The dates in range not known to be current at ``version``."""
    return _without([(lo, hi)], memo.fresh) if memo.version == version else [(lo, hi)]


def _covered(memo: _Memo, version: str, lo: dt.date, hi: dt.date) -> bool:
    return memo.version == version and not _gaps(memo, version, lo, hi)


def _remember(store: Store, memo: _Memo, version: str, lo: dt.date, hi: dt.date) -> None:
    """The range was found current at ``version``, the data version its checks began from (never a later one: a
    refresh of several chunks lets waiting processes write in between). It is carried to the version now across the
    refresh's own rebuilds, less what other writes of this process changed meanwhile; a write the journal cannot
    vouch for leaves it at ``version``, and the next read checks every date again."""
    if memo.version != version:
        memo.version, memo.fresh, memo.unusable = version, [], ""
    memo.fresh = _merged([*memo.fresh, (lo, hi)])[-FRESH_KEPT:]
    _carry(store, memo, store.data_version())


#: A write that began before a read of the partition metadata can carry a modification time a little before that
#: read's clock: dates written within this margin before a check are fingerprinted again at the next one.
METADATA_MARGIN = dt.timedelta(minutes=10)

_STORED = f"""
SELECT source_table, item_date, MIN(fingerprint) AS fingerprint, MIN(checked_at) AS checked_at, COUNT(*) AS copies
FROM {_DATES}
WHERE item_date BETWEEN @date_from AND @date_to
GROUP BY source_table, item_date"""


@dataclasses.dataclass(frozen=True)
class Plan:
    """Which dates a refresh must fingerprint, decided from the engine's partition metadata (``_plan``)."""

    #: The time stored with the fingerprints taken now: any later write to their partitions is later than it.
    checked_at: pd.Timestamp
    #: The dates to fingerprint (every source table of each).
    dates: list[dt.date]
    #: (source table, date) pairs found unchanged from the metadata alone.
    skipped: int


#: The tables partitioned by item date whose rows of a date belong to every source table's items of that date: the
#: status events and our verdicts, in the order their counts come in a fingerprint.
_DATE_WIDE = (FAILURE_RESOLUTIONS, ITEM_JUDGEMENTS)


def _counts(fingerprint: str) -> tuple[int, ...]:
    """What a stored fingerprint counted: failure rows, then each of ``_DATE_WIDE``
    (``version/rows/hash/events/hash/verdicts/hash``)."""
    parts = fingerprint.rsplit("/", 2 * (1 + len(_DATE_WIDE)))
    return tuple(int(n) for n in parts[1::2])


def _unchanged(
    stored: Mapping[Any, Any] | None, partition: pd.Timestamp | None, wide: Sequence[pd.Timestamp | None]
) -> bool:
    """Whether one (source table, date) is as it was when its fingerprint was last found current, from metadata
    alone: its fingerprint stored once, by this index version, with a check time; each partition it is built from
    (its failure rows; the date's status events and verdicts, ``wide``) written before that time; and a partition
    where, and only where, the fingerprint counted rows of it."""
    if stored is None:
        return partition is None
    fingerprint, checked_at = str(stored["fingerprint"]), stored["checked_at"]
    if int(stored["copies"]) != 1 or pd.isna(checked_at) or not fingerprint.startswith(f"{INDEX_VERSION}/"):
        return False
    counted = _counts(fingerprint)
    if (partition is not None) != (counted[0] > 0):
        return False
    if any(at is None and n > 0 for at, n in zip(wide, counted[1:], strict=True)):
        return False
    return all(at is None or at < checked_at for at in (partition, *wide))


def _plan(store: Store, lo: dt.date, hi: dt.date) -> Plan | None:
    """The dates whose fingerprints must be taken, where the engine says when each partition was last written
    (BigQuery): a date none of whose partitions (its failure rows in each table, its status events) was written
    since its fingerprints were last found current is skipped, with no scan of its rows. None where the engine
    keeps no such metadata: every date in range is fingerprinted."""
    if not store.keeps_partition_times:
        return None
    # Both at once: on BigQuery each is a round trip, and a refresh waits for both.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        asked = pool.submit(store.partition_times, [*FAILURE_TABLES, *_DATE_WIDE], lo, hi)
        read = pool.submit(store.query, _STORED, {"date_from": lo, "date_to": hi}, label="index-stored")
        meta, stored = asked.result(), read.result()
    if meta is None:
        return None
    kept = {(str(r["source_table"]), r["item_date"]): r for r in stored.to_dict("records")}
    tables = [(t.name, t.ref) for t in FAILURE_TABLES]
    unsettled = bool(meta.unsettled & {*(ref for _, ref in tables), *(t.ref for t in _DATE_WIDE)})
    dates = {d for (_, d) in meta.modified if lo <= d <= hi} | {d for (_, d) in kept}
    checks, skipped = [], 0
    for day in sorted(dates):
        wide = [meta.modified.get((t.ref, day)) for t in _DATE_WIDE]
        here = [kept.get((name, day)) for name, _ in tables]
        fine = (
            not unsettled
            # Events or verdicts there: each was written before the check of every pair stored that date, and a
            # check takes every table of its date, so those of a table without a stored pair would have been seen.
            and (all(at is None for at in wide) or any(row is not None for row in here))
            and all(_unchanged(row, meta.modified.get((ref, day)), wide) for (_, ref), row in zip(tables, here,
                                                                                                strict=True))
        )  # fmt: skip
        if fine:
            skipped += sum(row is not None for row in here)
        else:
            checks.append(day)
    return Plan(checked_at=meta.now - METADATA_MARGIN, dates=checks, skipped=skipped)


def stale(
    store: Store, date_from: dt.date, date_to: dt.date, *, every: bool = False, plan: Plan | None = None
) -> tuple[pd.DataFrame, int]:
    """The (source_table, item_date) pairs in range whose index is out of date (changed, new, gone, or written
    twice by two refreshes at once), with their fingerprint now and failure row count; and how many pairs with
    rows or events the range holds. One statement: a pass over the rows and events in range (with a ``plan``,
    of its dates only), and the stored fingerprints."""
    params: dict[str, object] = {"date_from": date_from, "date_to": date_to, "index_version": INDEX_VERSION,
                                 "every": every}  # fmt: skip
    if plan is not None:
        if not plan.dates:
            return pd.DataFrame(columns=_PAIR_COLUMNS), plan.skipped
        params |= {"date_from": min(plan.dates), "date_to": max(plan.dates), "checked_dates": plan.dates}
    frame = store.query(stale_dates_sql(only_checked=plan is not None), params, label="index-fingerprints")
    total = frame["source_table"].isna()
    checked = int(frame.loc[total, "checked"].iloc[0]) + (plan.skipped if plan else 0)
    pairs = frame[~total].drop(columns=["checked"]).sort_values(["source_table", "item_date"], ignore_index=True)
    return pairs, checked


_PAIR_COLUMNS = ["source_table", "item_date", "row_count", "fingerprint", "stored", "changed_at"]


def _chunks(
    pairs: pd.DataFrame, rows: dict[tuple[str, dt.date], int], budget: Callable[[], int] = lambda: CHUNK_ROWS
) -> Iterable[tuple[str, list[dt.date]]]:
    """Per table, runs of dates of about ``budget()`` failure rows (and at most ``CHUNK_DATES`` dates) each; the budget
    is asked as each run begins (after the step before it, which may have let a waiting process in)."""
    for table, group in pairs.groupby("source_table", sort=True):
        chunk: list[dt.date] = []
        size = 0
        limit = budget()
        for day in sorted(group["item_date"]):
            n = rows.get((str(table), day), 0)
            if chunk and (size + n > limit or len(chunk) >= CHUNK_DATES):
                yield str(table), chunk
                chunk, size = [], 0
                limit = budget()
            chunk.append(day)
            size += n
        if chunk:
            yield str(table), chunk


def _rebuild(
    store: Store, table: str, dates: Sequence[dt.date], pairs: pd.DataFrame, checked_at: pd.Timestamp | None
) -> int:
    """Replace the items, rollups and fingerprints of these dates of one failure table; returns items written."""
    params = {
        "source_table": table,
        "tables": [table],
        "date_from": min(dates),
        "date_to": max(dates),
        "dates": list(dates),
        "expected_categories": list(EXPECTED_CATEGORIES),
        "unclassified": UNCLASSIFIED,
        # At the minute, as the briefing's instants are (ui/briefing.py): a briefing the same minute as a rebuild
        # still finds the rebuild's settled counts at or before its earlier instant, rather than every item.
        "horizon": (pd.Timestamp.now(tz="UTC") - SETTLED_LAG).floor("min"),
    }
    mine = pairs[(pairs["source_table"] == table) & pairs["item_date"].isin(set(dates))]
    mine = mine[mine["fingerprint"].notna()]  # a date with nothing left keeps no fingerprint
    if store.engine == "bigquery":
        return _rebuild_in_one_job(store, params, _state_rows(mine, pd.Timestamp.now(tz="UTC"), checked_at), checked_at)
    with store.touching((min(dates), max(dates)), derived=True), store.transaction(label="index") as tx:
        # The fingerprint goes first and comes back last: a refresh cut short leaves its dates unindexed.
        for sql in _DELETES:
            tx.execute(sql, params)
        tx.execute(changes.insert_sql(table), params)
        # Settled items first, by date, then the few that are not: a briefing reads the unsettled ones item by item
        # (lib/store/changes.py), and after a backfill there is one on every date; kept together they are a few of
        # DuckDB's vectors to decode, not one on every date.
        written = tx.execute(_insert_items(table) + "\nORDER BY settled_at IS NULL, item_date", params)
        tx.execute(_INSERT_ROLLUPS, params)
        tx.execute(_INSERT_SETTLED, params)
        if len(mine):
            tx.insert_frame(_DATES, _state_rows(mine, pd.Timestamp.now(tz="UTC"), checked_at))
    return written


#: The fingerprints stored by a rebuild on BigQuery come in one parameter, a row per date: ``date|changed|fingerprint``
#: (``changed`` in microseconds since the epoch, empty when unknown; a fingerprint is counts joined by ``/``).
_INSERT_DATES = f"""
INSERT INTO {_DATES} (source_table, item_date, fingerprint, indexed_at, changed_at, checked_at)
SELECT @source_table, CAST(SPLIT(r, '|')[OFFSET(0)] AS DATE), SPLIT(r, '|')[OFFSET(2)], @indexed_at,
  IF(SPLIT(r, '|')[OFFSET(1)] = '', NULL, TIMESTAMP_MICROS(CAST(SPLIT(r, '|')[OFFSET(1)] AS INT64))),
  CAST(@checked_at AS TIMESTAMP)
FROM UNNEST(@fingerprints) AS r"""
#: How often a rebuild that met another one's transaction on the same tables is tried again.
CONFLICT_TRIES = 4


def _rebuild_in_one_job(
    store: Store, params: dict[str, Any], state: pd.DataFrame, checked_at: pd.Timestamp | None
) -> int:
    """``_rebuild`` on BigQuery: one multi-statement transaction instead of seven statements and a load job (each a
    job of its own, about a second each in BigQuery). The chunk is replaced whole or not at all; a refresh that meets
    another one on the same tables (another process's) is tried again, as the dates it rebuilds are the same."""

    def micros(at: Any) -> str:
        return "" if pd.isna(at) else str(pd.Timestamp(at).value // 1000)

    rows = [f"{d.isoformat()}|{micros(c)}|{f}" for d, c, f in zip(state["item_date"], state["changed_at"],
                                                                 state["fingerprint"], strict=True)]  # fmt: skip
    if any("|" in str(f) for f in state["fingerprint"]):
        raise TriageError("An item index fingerprint holds a '|'; it cannot be stored in one job.")
    statements = [
        *_DELETES,
        changes.insert_sql(str(params["source_table"])),
        _insert_items(str(params["source_table"])),
        "SET written = @@row_count",
        _INSERT_ROLLUPS,
        _INSERT_SETTLED,
        *([_INSERT_DATES] if rows else []),
    ]
    script = (
        "DECLARE written INT64 DEFAULT 0;\nBEGIN TRANSACTION;\n"
        + ";\n".join(s.strip() for s in statements)
        + ";\nCOMMIT TRANSACTION;\nSELECT written AS written"
    )
    indexed_at = state["indexed_at"].iloc[0] if len(state) else pd.Timestamp.now(tz="UTC")
    given = {**params, "fingerprints": rows, "indexed_at": indexed_at, "checked_at": checked_at}
    for attempt in range(CONFLICT_TRIES):
        try:
            return int(store.write_script(script, given, label="index")["written"].iloc[0])
        except TriageError as exc:
            if attempt + 1 == CONFLICT_TRIES or not _CONFLICT.search(str(exc)):
                raise
            time.sleep(0.5 * (attempt + 1) + random.random())
    raise AssertionError("unreachable")


#: BigQuery's refusal of a transaction that met another one's changes to the same table.
_CONFLICT = re.compile(r"concurrent update|aborted due to|Transaction is aborted", re.I)


def _body(fingerprint: object) -> str:
    """A fingerprint without the index version: what the rows and events were."""
    return str(fingerprint).split("/", 1)[-1]


def _state_rows(pairs: pd.DataFrame, now: pd.Timestamp, checked_at: pd.Timestamp | None = None) -> pd.DataFrame:
    """The fingerprints to store. ``changed_at`` is now where a stored fingerprint said otherwise (the rows or
    events changed); it is kept where only the index was rebuilt (a new version, a reindex) or unknown where the
    date was never indexed: "what changed since" needs to know when a date's content last changed. ``checked_at``
    (from partition metadata; unknown without) is when the fingerprint was known to be current."""
    changed = [
        now if isinstance(old, str) and _body(old) != _body(new) else (None if pd.isna(at) else at)
        for new, old, at in zip(pairs["fingerprint"], pairs["stored"], pairs["changed_at"], strict=True)
    ]
    rows = pairs[["source_table", "item_date", "fingerprint"]].reset_index(drop=True)
    return rows.assign(
        indexed_at=now,
        changed_at=pd.to_datetime(pd.Series(changed, dtype=object), utc=True),
        checked_at=pd.to_datetime(pd.Series([checked_at] * len(rows), dtype=object), utc=True),
    )


def _rebuild_all(
    store: Store, pairs: pd.DataFrame, progress: Progress | None, checked_at: pd.Timestamp | None = None
) -> int:
    rows = {(str(t), d): int(n) for t, d, n in zip(pairs["source_table"], pairs["item_date"], pairs["row_count"],
                                                      strict=True)}  # fmt: skip
    total = len(pairs)
    progress = progress if len(list(_chunks(pairs, rows))) > 1 else None  # one step is a moment: nothing to show
    done = written = 0

    # While another process waits for the file (the dashboard, during the nightly job's refresh), steps are smaller:
    # it has its turn between them (``let_waiters_in``) after a second, not after three. Not in a page's own refresh.
    def budget() -> int:
        return SHARED_CHUNK_ROWS if not store.in_dashboard_run() and store.others_waiting() else CHUNK_ROWS

    for table, dates in _chunks(pairs, rows, budget):
        if progress:
            progress(done / total, f"Indexing {table}: {dates[0]} to {dates[-1]} ({done:,} of {total:,} dates)")
        written += _rebuild(store, table, dates, pairs, checked_at)
        done += len(dates)
        store.let_waiters_in()
    if progress:
        progress(1.0, f"Indexed {total:,} dates ({written:,} items)")
    return written


def _usable(store: Store, memo: _Memo) -> str:
    """Why the index cannot be used on this store ('' when it can). Its tables are looked for once per process;
    they are never created here (a read creates no table): the dashboard's start, ``init`` and every writer do.
    Tables of an older layout (derived data) are dropped and made again, where the store can be written."""
    if memo.tables_ready:
        return ""
    existing = store.existing_tables()
    missing = [t.ref for t in INDEX_TABLES if t.ref not in existing and t is not FAILURE_SETTLED]
    if missing:  # (the settled items came later: an index without them is of an older layout, made again below)
        return f"the item index's tables ({', '.join(missing)}) do not exist yet: `python -m lib init` creates them"
    items = store.query(f"SELECT * FROM {_ITEMS} WHERE item_date IS NULL", label="index-layout")
    dates = store.query(f"SELECT * FROM {_DATES} WHERE item_date IS NULL", label="index-layout")
    rollups = store.query(f"SELECT * FROM {_ROLLUPS} WHERE item_date IS NULL", label="index-layout")
    if not (
        {*LABELLED_COLUMNS, *JUDGEMENT_COLUMNS, "changed_at", "settled_at"} <= set(items.columns)
        and "checked_at" in dates.columns
        and {"disagree", "first_seen_day"} <= set(rollups.columns)
        and _SETTLED in existing
    ):
        if getattr(store, "read_only", False):
            return "the item index's tables are of an older layout and the database is read-only"
        try:
            for table in INDEX_TABLES:  # derived data: rebuilt date by date on first use
                store.execute(f"DROP TABLE IF EXISTS {table.ref}", label="index-layout")
                store.execute(table.ddl, label="index-layout")
        except TriageError as exc:
            return f"the item index's tables are of an older layout and could not be made again: {exc.what}"
    memo.tables_ready = True
    return ""


def _unusable(memo: _Memo, version: str, reason: str, checked: int = 0) -> Refresh:
    memo.version, memo.fresh, memo.unusable = version, [], reason
    return Refresh(checked_dates=checked, usable=False, reason=reason)


def ensure(
    store: Store, date_from: dt.date | None, date_to: dt.date | None, *, progress: Progress | None = None
) -> Refresh:
    """Bring the index up to date for the dates in range; say whether reads may use it.

    Cheap when nothing changed since the last call on this store (no query at all), one fingerprint pass over
    the range otherwise, plus the rebuild of the dates that changed."""
    lo, hi = _span(date_from, date_to)
    memo, lock = _state(store)
    if memo.bypassed:
        return Refresh(usable=False, reason="bypassed: items computed from the failure rows")
    with lock:
        version = store.data_version()
        if memo.version == version and memo.unusable:
            return Refresh(usable=False, reason=memo.unusable)
        _carry(store, memo, version)
        if _covered(memo, version, lo, hi):
            return Refresh()
        started = dt.datetime.now(dt.UTC)
        reason = _usable(store, memo)
        if reason:
            return _unusable(memo, store.data_version(), reason)
        result = Refresh()
        # Only the dates not known to be current: after this process's own write of a date, that date (not the
        # whole history a page reads).
        for g_lo, g_hi in _gaps(memo, version, lo, hi):
            try:
                plan = _plan(store, g_lo, g_hi)
                pairs, checked = stale(store, g_lo, g_hi, plan=plan)
            except TriageError:
                memo.tables_ready = False  # dropped since they were seen? then say so; else the failure stands
                reason = _usable(store, memo)
                if reason:
                    return _unusable(memo, store.data_version(), reason)
                raise
            result.checked_dates += checked
            if len(pairs):
                if getattr(store, "read_only", False):
                    why = f"{len(pairs):,} date(s) of the item index are out of date and the database is read-only"
                    return _unusable(memo, version, why, result.checked_dates)
                try:
                    result.items += _rebuild_all(store, pairs, progress, plan.checked_at if plan else None)
                except TriageError as exc:
                    why = f"the item index could not be brought up to date: {exc.what}"
                    return _unusable(memo, store.data_version(), why, result.checked_dates)
                result.refreshed_dates += len(pairs)
            if plan is not None and plan.dates and checked - plan.skipped > int(pairs["fingerprint"].notna().sum()):
                _checked(store, plan, pairs)  # some fingerprints taken were found current: stamp them
            if plan is not None:
                result.fingerprinted_dates = (result.fingerprinted_dates or 0) + len(plan.dates)
        _remember(store, memo, version, lo, hi)
        result.seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
        return result


def _checked(store: Store, plan: Plan, rebuilt: pd.DataFrame) -> None:
    """Store that the fingerprints just taken and found current were current at ``plan.checked_at`` (those rebuilt
    have it already): until their partitions are written again, the next refreshes skip them. Where this cannot be
    written, the next refreshes take those fingerprints again, and nothing else follows."""
    if getattr(store, "read_only", False):
        return
    done = {f"{t}|{d}" for t, d in zip(rebuilt["source_table"], rebuilt["item_date"], strict=True)}
    params = {"checked_at": plan.checked_at, "date_from": min(plan.dates), "date_to": max(plan.dates),
              "dates": plan.dates, "rebuilt": sorted(done)}  # fmt: skip
    with contextlib.suppress(TriageError):
        store.execute(
            f"UPDATE {_DATES} SET checked_at = @checked_at WHERE item_date BETWEEN @date_from AND @date_to"
            " AND item_date IN UNNEST(@dates) AND (checked_at IS NULL OR checked_at < @checked_at)"
            " AND CONCAT(source_table, '|', CAST(item_date AS STRING)) NOT IN UNNEST(@rebuilt)",
            params,
            label="index",
        )


def after_write(store: Store, date_from: dt.date | None, date_to: dt.date | None) -> Refresh:
    """After a write through ``lib``: refresh the dates it touched, so that the next page finds them ready.
    Never raises: the write itself is done, and a read that finds a date out of date refreshes it first."""
    memo, lock = _state(store)
    with lock:
        # Its dates are checked again whatever the data version says (a cached one may not show the write yet).
        memo.fresh = _without(memo.fresh, [_span(date_from, date_to)])
    try:
        return ensure(store, date_from, date_to)
    except TriageError as exc:
        return Refresh(usable=False, reason=exc.what)


def reindex(
    store: Store,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    *,
    actor: Actor | None,
    progress: Progress | None = None,
) -> Refresh:
    """Rebuild every date in range, whatever its fingerprint says (``python -m lib reindex``); ``actor`` must be a
    resolver. (Reads keep the index up to date on their own, as a cache: that needs nobody's permission.)"""
    require_resolver(actor, what="rebuild the item index")
    lo, hi = _span(date_from, date_to)
    memo, lock = _state(store)
    with lock:
        started = dt.datetime.now(dt.UTC)
        reason = _usable(store, memo)
        if reason:
            raise TriageError(f"Cannot rebuild the item index: {reason}.", "Run `python -m lib init` first.")
        pairs, checked = stale(store, lo, hi, every=True)
        written = _rebuild_all(store, pairs, progress)
        memo.version, memo.fresh, memo.unusable = store.data_version(), [(lo, hi)], ""
        return Refresh(
            checked_dates=checked,
            refreshed_dates=len(pairs),
            items=written,
            seconds=(dt.datetime.now(dt.UTC) - started).total_seconds(),
        )


@contextlib.contextmanager
def bypassed(store: Store) -> Iterator[None]:
    """Within the block, reads on this store compute items from the failure rows, as if there were no index: the
    reference the index is tested and measured against."""
    memo, _ = _state(store)
    memo.bypassed += 1
    try:
        yield
    finally:
        memo.bypassed -= 1


def forget(store: Store) -> None:
    """Drop what this process remembers about the store's index (the next read checks the fingerprints)."""
    memo, _ = _state(store)
    memo.version, memo.fresh, memo.unusable, memo.tables_ready = "", [], "", False


__all__ = [
    "INDEX_VERSION",
    "Refresh",
    "after_write",
    "bypassed",
    "ensure",
    "forget",
    "reindex",
    "stale",
]
