"""Issue 13: BigQuery's error paths, through a fault-injecting proxy between the real client and the emulator.

Rate limits, server errors, stalls past the deadline, answers lost after the job was accepted and the
streaming buffer's refusal of DML: each is retried within bounds or reported as what happened and what
to do. A resolution is never recorded twice or half; the status sync catches up on what the buffer refused.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pandas as pd
import pytest

from lib import activity, classification, resolution
from lib.access import SYSTEM
from lib.errors import TriageError
from lib.model import Actor, Filters, ItemKey
from lib.store import queries as q
from lib.store.bigquery_store import BigQueryStore
from tests import bq, faults
from tests.conftest import precompute_row

pytestmark = pytest.mark.bigquery
ALICE = Actor("alice")
DAY = dt.date(2021, 12, 31)
#: The request that starts a statement: jobs.query for a read, jobs.insert for a write (lib/store/bigquery_store.py).
JOBS = r"/projects/[^/]+/(jobs|queries)(\?|$)"
_tags = itertools.count(1)


@pytest.fixture(scope="module")
def proxy(emulator: str) -> Iterator[faults.FaultProxy]:
    with faults.running(emulator) as p:
        yield p


@pytest.fixture
def world(emulator: str, proxy: faults.FaultProxy) -> tuple[BigQueryStore, BigQueryStore, list[ItemKey]]:
    """(the store through the proxy, the same datasets reached directly, the items' keys)."""
    proxy.clear()
    tag = f"fault{next(_tags)}"
    direct = bq.store(emulator, tag)
    direct.init_schema()
    rows = [precompute_row(entity_id=f"player{i}", created_at=pd.Timestamp("2021-12-31 08:00", tz="UTC"))
            for i in range(6)]  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    direct.insert_frame("nba_processing.precompute_failures", frame)
    keys = [ItemKey("precompute_failures", "PlayerDailyCacheProcessor", DAY, f"player{i}") for i in range(6)]
    return through(proxy, tag), direct, keys


def through(proxy: faults.FaultProxy, tag: str, timeout: float = 60) -> BigQueryStore:
    return BigQueryStore(bq.PROJECT, endpoint=proxy.url, datasets=bq.datasets(tag), timeout=timeout)


def _tag(store: BigQueryStore) -> str:
    return store.dialect.datasets["nba_processing"].removesuffix("_processing")


def _events(store: BigQueryStore) -> pd.DataFrame:
    return store.query("SELECT item_key, batch_id, to_status FROM nba_processing.failure_resolutions "
                       "WHERE item_date BETWEEN @a AND @b", {"a": DAY, "b": DAY})  # fmt: skip


def test_reads_ride_out_rate_limits_and_server_errors(world, proxy: faults.FaultProxy) -> None:
    store, direct, _ = world
    expected = q.kpis(direct, Filters(date_from=DAY, date_to=DAY, hide_expected=False))
    proxy.add(faults.Rule("status", path=JOBS, status=429, message="Exceeded rate limits: too many api requests"),
              faults.Rule("status", path=JOBS, status=500, message="An internal error occurred"),
              faults.Rule("status", path=JOBS, status=503, message="The service is currently unavailable"))  # fmt: skip
    assert q.kpis(store, Filters(date_from=DAY, date_to=DAY, hide_expected=False)) == expected
    assert [s for _, _, s in proxy.seen if not s.startswith("passed")] == ["status 429", "status 500", "status 503"]


def test_a_read_that_never_answers_is_reported_not_waited_for(world, proxy: faults.FaultProxy) -> None:
    _, direct, _ = world
    impatient = through(proxy, _tag(direct), timeout=4)
    proxy.add(faults.Rule("stall", path=JOBS, times=-1, stall=20))
    with pytest.raises(TriageError) as failed:
        q.kpis(impatient, Filters(date_from=DAY, date_to=DAY))
    assert "took too long" in failed.value.what or "did not answer" in failed.value.what, failed.value.what
    assert failed.value.todo


def test_persistent_rate_limits_end_in_a_clear_message(world, proxy: faults.FaultProxy) -> None:
    _, direct, _ = world
    impatient = through(proxy, _tag(direct), timeout=5)
    proxy.add(faults.Rule("status", path=JOBS, times=-1, status=429, message="Exceeded rate limits"))
    with pytest.raises(TriageError) as failed:
        q.count_items(impatient, Filters(date_from=DAY, date_to=DAY))
    assert "quota" in str(failed.value).lower() or "took too long" in str(failed.value), str(failed.value)


def test_a_resolution_rides_out_server_errors_and_is_recorded_once(world, proxy: faults.FaultProxy) -> None:
    store, direct, keys = world
    proxy.add(faults.Rule("status", path=JOBS, body="failure_resolutions", times=2, status=503))
    change = resolution.apply(store, resolution.Scope.of_keys(keys), "PERMANENT", actor=ALICE, note="dnp")
    events = _events(direct)
    assert change.changed == len(keys) == len(events) and set(events["batch_id"]) == {change.batch_id}


def test_a_resolution_whose_answer_is_lost_is_never_recorded_twice(world, proxy: faults.FaultProxy) -> None:
    store, direct, keys = world
    proxy.add(faults.Rule("drop", path=JOBS, body="INSERT INTO", times=1))
    scope = resolution.Scope.of_keys(keys)
    try:
        resolution.apply(store, scope, "PERMANENT", actor=ALICE, note="dnp")
    except TriageError as exc:  # reported as what happened; then the operator simply does it again
        assert exc.what
        resolution.apply(store, scope, "PERMANENT", actor=ALICE, note="dnp, again")
    assert "dropped" in [s for _, _, s in proxy.seen]
    events = _events(direct)
    assert sorted(events["item_key"]) == sorted(k.text for k in keys)  # exactly one event per item
    assert all(activity.status_of(direct, k) == "PERMANENT" for k in keys)


def test_the_streaming_buffer_refusal_is_caught_up_by_the_sync(world, proxy: faults.FaultProxy) -> None:
    store, direct, keys = world
    table = f"{bq.PROJECT}.{_tag(direct)}_processing.precompute_failures"
    refusal = faults.Rule("status", path=JOBS, body="UPDATE", times=-1, status=400,
                          message=faults.STREAMING_BUFFER.format(table=table))  # fmt: skip
    proxy.add(refusal)
    change = resolution.apply(store, resolution.Scope.of_keys(keys), "PERMANENT", actor=ALICE, note="dnp")
    assert change.changed == len(keys) and change.synced is False  # the events are saved, the rows lag
    assert len(_events(direct)) == len(keys)
    with pytest.raises(TriageError, match="streaming buffer") as refused:
        resolution.sync_statuses(store, actor=SYSTEM, since=DAY, until=DAY)
    assert "sync-status" in refused.value.todo
    rows = direct.query("SELECT resolution_status FROM nba_processing.precompute_failures WHERE analysis_date = @d",
                        {"d": DAY})  # fmt: skip
    assert set(rows["resolution_status"]) == {"UNRESOLVED"}
    proxy.clear()  # the buffer has flushed
    assert resolution.sync_statuses(store, actor=SYSTEM, since=DAY, until=DAY) == len(keys)
    rows = direct.query("SELECT resolution_status FROM nba_processing.precompute_failures WHERE analysis_date = @d",
                        {"d": DAY})  # fmt: skip
    assert set(rows["resolution_status"]) == {"PERMANENT"}


def _verdicts(store: BigQueryStore) -> pd.DataFrame:
    frame = store.query("SELECT entity_id, failure_type, is_correctable, expected_game_count, missing_game_dates "
                        "FROM nba_processing.precompute_failures WHERE analysis_date = @d", {"d": DAY})  # fmt: skip
    return frame.sort_values("entity_id").reset_index(drop=True)


@pytest.mark.heavy(25)
def test_classification_rides_out_errors_and_never_half_writes(world, proxy: faults.FaultProxy) -> None:
    store, direct, _ = world
    now = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)
    proxy.add(faults.Rule("status", path=JOBS, body="BEGIN TRANSACTION", times=1, status=500))
    classification.run(store, actor=SYSTEM, now=now, since=DAY, until=DAY)
    reference = _verdicts(direct)
    assert reference["failure_type"].notna().all()
    # The verdict script's answer is lost after BigQuery accepted it; then one stalls past the deadline.
    proxy.add(faults.Rule("drop", path=JOBS, body="BEGIN TRANSACTION", times=1))
    try:
        classification.run(store, actor=SYSTEM, now=now, since=DAY, until=DAY, include_classified=True)
    except TriageError as exc:
        assert exc.what
    assert _verdicts(direct).equals(reference)  # whole or not at all: never a half-written batch
    impatient = through(proxy, _tag(direct), timeout=4)
    proxy.add(faults.Rule("stall", path=JOBS, body="BEGIN TRANSACTION", times=-1, stall=20))
    with pytest.raises(TriageError):
        classification.run(impatient, actor=SYSTEM, now=now, since=DAY, until=DAY, include_classified=True)
    assert _verdicts(direct).equals(reference)
    proxy.clear()
    classification.run(store, actor=SYSTEM, now=now, since=DAY, until=DAY, include_classified=True)
    assert _verdicts(direct).equals(reference)
