"""BigQuery's partition metadata spares the item index's fingerprints of the dates nobody wrote (issue 23, item 4).

Where the engine says when each date partition was last written (BigQuery's ``INFORMATION_SCHEMA.PARTITIONS``), a
refresh fingerprints only the dates one of whose partitions was written since their fingerprints were last found
current (lib/store/index.py ``_plan``). The local emulator's view has no ``last_modified_time``: there the store
says it has no metadata and every date is fingerprinted, as before. So the decision is tested against metadata the
test keeps itself, as BigQuery would: at each read of it, every partition (table and date) whose rows differ in any
column from the previous read counts as written between the two reads. What the test proves: after every random
step, the full pass (every date fingerprinted) finds nothing that the refresh from metadata left out of date; the
pages read the same from the index as from the rows; and fewer dates were fingerprinted than the full pass takes.
"""

from __future__ import annotations

import collections
import datetime as dt
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lib.model import EARLIEST, LATEST, SourceTable
from lib.store import DuckDBStore, Store, index
from lib.store.base import PartitionTimes
from lib.store.bigquery_store import BigQueryStore, extent_of_partitions, read_partitions
from lib.store.schema import FAILURE_RESOLUTIONS, FAILURE_TABLES, TableDef
from tests import bq
from tests.conftest import precompute_row
from tests.integration import test_item_index as ix
from tests.worlds import build, load

FIRST, LAST = ix.FIRST, ix.LAST
#: The engine's clock at the first read of the metadata; each read moves it on an hour (longer than the index's
#: margin, lib/store/index.py ``METADATA_MARGIN``), and a partition written in between is stamped half-way.
START = pd.Timestamp("2026-11-27 06:00", tz="UTC")


def _date_column(table: TableDef) -> str:
    return SourceTable(table.name).date_column if table in FAILURE_TABLES else "item_date"


class Metadata:
    """Partition metadata kept by the test, for an engine that keeps none here (DuckDB, the emulator)."""

    keeps_partition_times = True

    clock: pd.Timestamp
    seen: dict[tuple[str, dt.date], frozenset[Any]]
    written: dict[tuple[str, dt.date], pd.Timestamp]
    #: Tables whose writes the metadata does not show (a test of what the decision rests on).
    hidden: set[str]
    #: Tables said to have streamed rows in no partition yet.
    streaming: set[str]
    reads: int

    def start_metadata(self) -> None:
        self.clock, self.seen, self.written, self.hidden, self.streaming, self.reads = START, {}, {}, set(), set(), 0

    def _contents(
        self, tables: Sequence[TableDef]
    ) -> dict[tuple[str, dt.date], frozenset[tuple[tuple[str, ...], int]]]:
        """Every partition's rows, every column, as a multiset."""
        out: dict[tuple[str, dt.date], collections.Counter[tuple[str, ...]]] = {}
        for table in tables:
            column = _date_column(table)
            frame = self.query(f"SELECT * FROM {table.ref} WHERE {column} BETWEEN @a AND @b",  # type: ignore[attr-defined]
                               {"a": EARLIEST, "b": LATEST})  # fmt: skip
            frame = frame[sorted(frame.columns)]
            for day, row in zip(frame[column], frame.astype(str).itertuples(index=False), strict=True):
                out.setdefault((table.ref, day), collections.Counter())[tuple(row)] += 1
        return {key: frozenset(rows.items()) for key, rows in out.items()}

    def partition_times(self, tables: Sequence[TableDef], lo: dt.date, hi: dt.date) -> PartitionTimes | None:
        self.reads += 1
        before, self.clock = self.clock, self.clock + pd.Timedelta(hours=1)
        now = self._contents(tables)
        for key in set(now) | set(self.seen):
            if now.get(key) != self.seen.get(key) and key[0] not in self.hidden:
                self.written[key] = before + pd.Timedelta(minutes=30)
        self.seen = now
        modified = {key: at for key, at in self.written.items() if key in now and lo <= key[1] <= hi}
        return PartitionTimes(now=self.clock, modified=modified, unsettled=frozenset(self.streaming))


class MetadataDuck(Metadata, DuckDBStore):
    pass


class MetadataBigQuery(Metadata, BigQueryStore):
    pass


def _event(store: Store, table: str, processor: str, day: dt.date, entity: str, at: dt.datetime) -> None:
    """A status event written by another process, with no change to any failure row (its sync not run)."""
    key = f"{table}:{processor}:{day}:{entity}"
    store.insert_frame("nba_processing.failure_resolutions", pd.DataFrame([{
        "event_id": f"behind-{at:%d%H%M%S}-{entity}", "item_key": key, "source_table": table,
        "processor_name": processor, "item_date": day, "entity_id": entity, "from_status": "UNRESOLVED",
        "to_status": "INVESTIGATING", "actor": "someone", "note": "elsewhere", "at": pd.Timestamp(at),
        "batch_id": f"behind-{at:%d%H%M%S}", "origin": "dashboard",
    }]))  # fmt: skip


def _event_behind(store: Store, rng: random.Random, clock: dt.datetime) -> None:
    """An event on an item with rows, from another process."""
    picked = ix._some_row(store, rng)
    if picked is not None:
        table, date, row = picked
        _event(store, table, row["processor_name"], row[date], row["entity_id"], clock)


def _event_alone(store: Store, rng: random.Random, clock: dt.datetime) -> None:
    """An event of a table on a date where that table has no row (an item of events only), on a date with rows
    in another table or the day after (often a date with no row at all)."""
    picked = ix._some_row(store, rng)
    if picked is not None:
        table, date, row = picked
        other = rng.choice([t.name for t in FAILURE_TABLES if t.name != table])
        day = row[date] + dt.timedelta(days=rng.choice((0, 1)))
        _event(store, other, "SomeNewProcessor", day, "nobody", clock)


#: What happens in production (tests/integration/test_item_index.py), and status events written elsewhere.
OPERATIONS = [*ix.OPERATIONS, _event_behind, _event_alone]


def _full_pass(store: Store) -> pd.DataFrame:
    """What the full pass (every date fingerprinted, no metadata) finds out of date."""
    pairs, _ = index.stale(store, FIRST, LAST)
    return pairs


def _dates_in_range(store: Store) -> int:
    _, checked = index.stale(store, FIRST, LAST, every=True)
    return checked


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[MetadataDuck]:
    store = MetadataDuck(tmp_path / "meta.duckdb")
    store.start_metadata()
    store.init_schema()
    yield store


@pytest.mark.parametrize("seed", [1, 13])
def test_a_refresh_from_partition_metadata_leaves_nothing_the_full_pass_finds_and_fingerprints_less(
    duck: MetadataDuck, seed: int
) -> None:
    rng = random.Random(seed)
    load(duck, build(seed))
    index.forget(duck)
    first = index.ensure(duck, FIRST, LAST)
    assert first.usable and first.fingerprinted_dates is not None and first.refreshed_dates > 3
    assert _full_pass(duck).empty
    fingerprinted = full = 0
    clock = ix.NOW - dt.timedelta(days=3)
    done = []
    for step in range(14):
        op = rng.choice(OPERATIONS)
        clock += dt.timedelta(hours=rng.randint(1, 12))
        op(duck, rng, clock)
        index.forget(duck)  # a read in another process: it knows nothing but what is stored
        refresh = index.ensure(duck, FIRST, LAST)
        assert refresh.usable and refresh.fingerprinted_dates is not None
        left = _full_pass(duck)
        assert left.empty, f"step {step} ({op.__name__}): the refresh from metadata left {len(left)} date(s) stale"
        fingerprinted += refresh.fingerprinted_dates
        full += len({d for (_, d) in duck.seen})
        done.append(op.__name__)
    assert fingerprinted < full / 4, (fingerprinted, full, done)
    views = ix._views(rng)
    ix._assert_index_equals_rows(duck, [views[0], views[2]], ix._keys(duck, rng), "the last step")


def _world(store: Store) -> None:
    load(store, build(4))
    index.forget(store)
    assert index.ensure(store, FIRST, LAST).usable


def _touch(store: Store) -> dt.date:
    """A hand-made UPDATE of one failure row's verdict: the day it is on."""
    row = ix._precompute(store).iloc[0]
    store.execute(
        "UPDATE nba_processing.precompute_failures SET failure_type = 'DATA_GAP', is_correctable = NOT "
        "COALESCE(is_correctable, FALSE) WHERE analysis_date = @d AND entity_id = @e AND processor_name = @p",
        {"d": row["analysis_date"], "e": row["entity_id"], "p": row["processor_name"]},
    )
    day: dt.date = row["analysis_date"]
    return day


def test_the_dates_skipped_are_those_the_metadata_says_nobody_wrote(duck: MetadataDuck) -> None:
    """The decision rests on the metadata: a write it hides is not seen until the full pass; a shown one is, with
    only its date fingerprinted."""
    _world(duck)
    index.forget(duck)
    assert index.ensure(duck, FIRST, LAST).fingerprinted_dates == 0  # nothing written since the first build
    _touch(duck)
    index.forget(duck)
    shown = index.ensure(duck, FIRST, LAST)
    assert (shown.fingerprinted_dates, shown.refreshed_dates) == (1, 1)
    assert _full_pass(duck).empty
    row = ix._precompute(duck).iloc[-1]
    _event(duck, "precompute_failures", row["processor_name"], row["analysis_date"], row["entity_id"], ix.NOW)
    _event(duck, "prediction_failures", "SomeNewProcessor", row["analysis_date"], "nobody", ix.NOW)
    index.forget(duck)
    events = index.ensure(duck, FIRST, LAST)  # events alone: their date is fingerprinted, both pairs rebuilt
    assert (events.fingerprinted_dates, events.refreshed_dates) == (1, 2)
    assert _full_pass(duck).empty
    _event(duck, "analytics_failures", "SomeNewProcessor", LAST, "nobody", ix.NOW)  # a date with no row at all
    index.forget(duck)
    alone = index.ensure(duck, FIRST, LAST)
    assert (alone.fingerprinted_dates, alone.refreshed_dates) == (1, 1)
    assert _full_pass(duck).empty
    duck.hidden.add("nba_processing.precompute_failures")
    _touch(duck)
    index.forget(duck)
    hidden = index.ensure(duck, FIRST, LAST)
    assert (hidden.fingerprinted_dates, hidden.refreshed_dates) == (0, 0)
    assert len(_full_pass(duck)) == 1  # what the metadata hid is there: the skip is the metadata's doing


def test_streamed_rows_in_no_partition_yet_or_a_reindex_mean_every_date_is_fingerprinted(duck: MetadataDuck) -> None:
    _world(duck)
    every = _dates_in_range(duck)
    duck.streaming.add("nba_processing.analytics_failures")
    index.forget(duck)
    assert index.ensure(duck, FIRST, LAST).fingerprinted_dates == len({d for (_, d) in duck.seen})
    duck.streaming.clear()
    index.forget(duck)
    assert index.ensure(duck, FIRST, LAST).fingerprinted_dates == 0  # checked just now: nothing since
    index.reindex(duck, FIRST, LAST, actor=ix.ALICE)  # a reindex takes no metadata: its dates are checked next
    index.forget(duck)
    after = index.ensure(duck, FIRST, LAST)
    assert after.fingerprinted_dates == len({d for (_, d) in duck.seen}) and after.refreshed_dates == 0
    assert every > 0


def test_bigquery_partition_rows_are_read_as_dates_streaming_and_nulls() -> None:
    at = pd.Timestamp("2026-11-30 10:00", tz="UTC")
    frame = pd.DataFrame({
        "dataset": ["nba_processing"] * 4 + [None],
        "table_name": ["precompute_failures", "precompute_failures", "analytics_failures", "prediction_failures", None],
        "partition_id": ["20211005", "__NULL__", "__UNPARTITIONED__", "20220101", None],
        "last_modified_time": [at, at, at, at.tz_convert(None), None],
        "now": [at + pd.Timedelta(minutes=1)] * 5,
    })  # fmt: skip
    meta = read_partitions(frame)
    assert meta.now == at + pd.Timedelta(minutes=1)
    assert meta.modified == {("nba_processing.precompute_failures", dt.date(2021, 10, 5)): at,
                             ("nba_processing.prediction_failures", dt.date(2022, 1, 1)): at}  # fmt: skip
    assert meta.unsettled == frozenset({"nba_processing.analytics_failures"})
    empty = read_partitions(frame.tail(1))  # a dataset with no partition yet: only the clock
    assert not empty.modified and empty.now == at + pd.Timedelta(minutes=1)


@pytest.mark.bigquery
def test_on_the_emulator_without_the_metadata_every_date_is_fingerprinted_and_with_it_the_same_sql_runs(
    emulator: str,
) -> None:
    """The emulator's PARTITIONS view has no last_modified_time: the real store says so (None) and the index takes
    every fingerprint. With metadata the test keeps, the statements only the metadata path runs (the fingerprints
    of some dates, the check times) run on BigQuery's dialect and leave nothing the full pass finds."""
    kept: Any = bq.store(emulator, cls=MetadataBigQuery)
    kept.start_metadata()
    kept.init_schema()
    assert BigQueryStore.partition_times(kept, [*FAILURE_TABLES, FAILURE_RESOLUTIONS], FIRST, LAST) is None
    _world(kept)
    day = _touch(kept)
    index.forget(kept)
    refresh = index.ensure(kept, FIRST, LAST)
    assert (refresh.fingerprinted_dates, refresh.refreshed_dates) == (1, 1)
    stored = kept.query("SELECT checked_at FROM nba_processing.failure_index_dates WHERE item_date = @d", {"d": day})
    assert len(stored) and (stored["checked_at"] >= START).all()
    assert _full_pass(kept).empty


def test_bounds_from_partition_rows_count_undated_rows_apart_and_give_way_to_streamed_rows() -> None:
    frame = pd.DataFrame({
        "partition_id": ["20211005", "20211007", "31000101", "__NULL__", None],
        "total_rows": [3, 0, 1, 2, None],
    })  # fmt: skip
    plausible = dt.date(2027, 12, 1)
    assert extent_of_partitions(frame, plausible=plausible) == (
        dt.date(2021, 10, 5), dt.date(3100, 1, 1), 4, dt.date(2021, 10, 5), 2)  # fmt: skip
    streamed = pd.concat([frame, pd.DataFrame({"partition_id": ["__UNPARTITIONED__"], "total_rows": [5]})])
    assert extent_of_partitions(streamed, plausible=plausible) is None  # their dates are unknown: scan instead
    empty = extent_of_partitions(frame.tail(1), plausible=plausible)
    assert empty == (None, None, 0, None, 0)


@pytest.mark.bigquery
def test_on_the_emulator_the_bounds_from_partition_metadata_equal_the_scans(emulator: str) -> None:
    """The emulator's PARTITIONS view has ``total_rows``: the bounds every page starts from come from it in one
    metadata query, and equal what a scan of each failure table finds (three tables, a date in 3100). Our tables
    refuse undated rows; the unit test above reads the partition that holds them elsewhere."""
    store = bq.store(emulator)
    store.init_schema()
    assert store.date_extent() == (None, None, 0, None, 0)
    load(store, build(4))
    far = pd.DataFrame([precompute_row(analysis_date=dt.date(3100, 1, 1), entity_id="far")])
    store.insert_frame("nba_processing.precompute_failures", far)
    scanned = Store.date_extent(store)
    assert store.date_extent() == scanned
    assert scanned[1] == dt.date(3100, 1, 1) and scanned[3] is not None and scanned[3] < scanned[1] and scanned[2] > 10
