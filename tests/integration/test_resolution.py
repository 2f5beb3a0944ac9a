"""Resolution events on real DuckDB files: reruns, regressions, concurrency, roles, hostile notes, sync."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from lib import activity, briefing, resolution
from lib.access import SYSTEM
from lib.errors import BadInput
from lib.model import Actor, Filters, ItemKey, Role
from lib.store import DuckDBStore
from lib.store import queries as q
from tests.conftest import ROOT, Writer, analytics_row, precompute_row

T0 = dt.datetime(2022, 1, 2, 9, 0, tzinfo=dt.UTC)
ALICE, BOB = Actor("alice"), Actor("bob")
KEY = ItemKey("precompute_failures", "PlayerDailyCacheProcessor", dt.date(2021, 12, 31), "zachlavine")
P3KEY = ItemKey("analytics_failures", "PlayerGameSummaryProcessor", dt.date(2021, 12, 31), "0022100500")


def _status(store: DuckDBStore, key: ItemKey = KEY) -> str | None:
    return activity.status_of(store, key)


def _rerun(store: DuckDBStore, write_rows: Writer, *, recurs: bool, at: str) -> None:
    """A phase-4 rerun: delete the processor's rows of the date, insert what it found this time."""
    store.execute(
        "DELETE FROM nba_processing.precompute_failures WHERE analysis_date = @d AND processor_name = @p",
        {"d": KEY.item_date, "p": KEY.processor_name},
    )
    if recurs:
        write_rows("precompute_failures", [precompute_row(run_id=f"rerun-{at}", created_at=pd.Timestamp(at))])


@pytest.fixture
def one_item(store: DuckDBStore, write_rows: Writer) -> DuckDBStore:
    write_rows("precompute_failures", [precompute_row(resolution_status=None)])
    return store


def test_a_rerun_keeps_permanent_and_turns_resolved_into_regressed(one_item: DuckDBStore, write_rows: Writer) -> None:
    scope = resolution.Scope.of_keys([KEY])
    resolution.apply(one_item, scope, "RESOLVED", actor=ALICE, note="re-scraped", now=T0)
    assert _status(one_item) == "RESOLVED"
    _rerun(one_item, write_rows, recurs=True, at="2022-01-03 08:00Z")
    item = q.get_item(one_item, KEY)
    assert item is not None and item["status"] == "REGRESSED" and bool(item["recurred"])
    assert q.count_items(one_item, Filters(statuses=("REGRESSED",), hide_expected=False)) == 1

    resolution.apply(one_item, scope, "PERMANENT", actor=BOB, note="he did not play", now=T0 + dt.timedelta(days=2))
    _rerun(one_item, write_rows, recurs=True, at="2022-01-05 08:00Z")
    item = q.get_item(one_item, KEY)
    assert item is not None and item["status"] == "PERMANENT" and bool(item["recurred"])


def test_an_item_whose_rows_are_deleted_without_recurring_stays_resolved(one_item: DuckDBStore,
                                                                          write_rows: Writer) -> None:  # fmt: skip
    resolution.apply(one_item, resolution.Scope.of_keys([KEY]), "RESOLVED", actor=ALICE, note="fixed", now=T0)
    _rerun(one_item, write_rows, recurs=False, at="2022-01-03 08:00Z")
    assert q.get_item(one_item, KEY) is None
    assert _status(one_item) == "RESOLVED"


def test_resolutions_never_update_failure_rows_and_are_append_only(one_item: DuckDBStore) -> None:
    scope = resolution.Scope.of_keys([KEY])
    for n, status in enumerate(["INVESTIGATING", "RESOLVED", "UNRESOLVED"]):
        resolution.apply(one_item, scope, status, actor=ALICE, note=f"step {n}", now=T0 + dt.timedelta(hours=n))
    events = activity.history(one_item, KEY)
    assert list(events["to_status"]) == ["UNRESOLVED", "RESOLVED", "INVESTIGATING"]  # newest first
    assert list(events["from_status"]) == ["RESOLVED", "INVESTIGATING", "UNRESOLVED"]
    assert _status(one_item) == "UNRESOLVED"  # reopening is the undo


def test_the_status_sync_writes_rows_and_can_run_again(one_item: DuckDBStore, write_rows: Writer) -> None:
    resolution.apply(one_item, resolution.Scope.of_keys([KEY]), "PERMANENT", actor=ALICE, note="dnp", now=T0)
    rows = one_item.query("SELECT resolution_status, resolved_at FROM nba_processing.precompute_failures")
    assert list(rows["resolution_status"]) == ["PERMANENT"] and rows["resolved_at"].iloc[0] == pd.Timestamp(T0)
    _rerun(one_item, write_rows, recurs=True, at="2022-01-03 08:00Z")  # the rerun wrote UNRESOLVED again
    assert resolution.sync_statuses(one_item, actor=SYSTEM) == 1
    assert resolution.sync_statuses(one_item, actor=SYSTEM) == 0  # idempotent
    rows = one_item.query("SELECT resolution_status FROM nba_processing.precompute_failures")
    assert list(rows["resolution_status"]) == ["PERMANENT"]


def test_a_confirm_is_refused_when_its_items_changed_since_the_dialog_opened(one_item: DuckDBStore) -> None:
    scope = resolution.Scope.of_keys([KEY])
    opened = T0
    resolution.apply(one_item, scope, "INVESTIGATING", actor=BOB, note="mine", now=T0 + dt.timedelta(seconds=5))
    with pytest.raises(resolution.Conflict) as caught:
        resolution.apply(one_item, scope, "RESOLVED", actor=ALICE, note="fixed", now=T0 + dt.timedelta(seconds=9),
                         opened_at=opened)  # fmt: skip
    assert KEY.text in str(caught.value) and "Nothing was written" in str(caught.value)
    assert len(activity.history(one_item, KEY)) == 1
    resolution.apply(one_item, scope, "RESOLVED", actor=ALICE, note="fixed", now=T0 + dt.timedelta(seconds=20),
                     opened_at=T0 + dt.timedelta(seconds=10))  # fmt: skip
    assert _status(one_item) == "RESOLVED"


def test_a_confirm_is_refused_when_its_items_moved_even_if_the_counts_did_not(store: DuckDBStore,
                                                                               write_rows: Writer) -> None:  # fmt: skip
    """Stamped before the dialog opened (as the nightly job stamps its events), committed after its preview: one item
    resolved and another reopened leave the counts by status as they were, and the change is still refused."""
    write_rows("precompute_failures", [precompute_row(resolution_status=None),
                                       precompute_row(entity_id="lebronjames", resolution_status=None)])  # fmt: skip
    other = ItemKey(KEY.source_table, KEY.processor_name, KEY.item_date, "lebronjames")
    resolution.apply(store, resolution.Scope.of_keys([other]), "RESOLVED", actor=BOB, note="done", now=T0)
    scope = resolution.Scope.of_keys([KEY, other])
    opened = T0 + dt.timedelta(hours=2)
    seen = resolution.preview(store, scope, "PERMANENT")
    assert seen.by_status == {"UNRESOLVED": 1, "RESOLVED": 1}
    early = T0 + dt.timedelta(hours=1)
    resolution.apply(store, resolution.Scope.of_keys([KEY]), "RESOLVED", actor=BOB, note="job", now=early)
    resolution.apply(store, resolution.Scope.of_keys([other]), "UNRESOLVED", actor=BOB, note="job", now=early)
    assert resolution.preview(store, scope, "PERMANENT").by_status == seen.by_status  # the counts alone: unchanged
    with pytest.raises(resolution.Conflict) as caught:
        resolution.apply(store, scope, "PERMANENT", actor=ALICE, note="dnp", now=opened, opened_at=opened, seen=seen)
    assert "changed status" in str(caught.value) and KEY.text in str(caught.value)
    assert "Nothing was written" in str(caught.value)
    assert _status(store) == "RESOLVED" and _status(store, other) == "UNRESOLVED"
    again = resolution.preview(store, scope, "PERMANENT")  # read anew: the change goes through
    done = resolution.apply(store, scope, "PERMANENT", actor=ALICE, note="dnp", now=opened, opened_at=opened,
                            seen=again)  # fmt: skip
    assert done.changed == 2 and _status(store) == "PERMANENT" == _status(store, other)


@pytest.mark.parametrize(
    "actor, message",
    [(None, "say who you are"), (Actor("  "), "say who you are"), (Actor("vera", Role.VIEWER), "is a viewer")],
)
def test_writes_without_a_resolver_are_refused(one_item: DuckDBStore, actor: Actor | None, message: str) -> None:
    with pytest.raises(resolution.NotAllowed, match=message):
        resolution.apply(one_item, resolution.Scope.of_keys([KEY]), "RESOLVED", actor=actor, note="x", now=T0)
    assert len(activity.history(one_item, KEY)) == 0


@pytest.mark.parametrize("note, status", [("   ", "RESOLVED"), ("ok", "REGRESSED"), ("ok", "DONE")])
def test_bad_changes_are_refused_with_a_clear_message(one_item: DuckDBStore, note: str, status: str) -> None:
    with pytest.raises(BadInput):
        resolution.apply(one_item, resolution.Scope.of_keys([KEY]), status, actor=ALICE, note=note, now=T0)


@pytest.mark.parametrize(
    "note",
    [
        "<script>alert('x')</script> **bold** [link](javascript:alert(1))",
        "'; DROP TABLE nba_processing.failure_resolutions; --",
        "ünï\x00cødé\n\ttabs & newlines",
        "x" * 100_000 + "END",
    ],
)
def test_hostile_notes_are_stored_verbatim(one_item: DuckDBStore, note: str) -> None:
    resolution.apply(one_item, resolution.Scope.of_keys([KEY]), "PERMANENT", actor=ALICE, note=note, now=T0)
    assert activity.history(one_item, KEY).iloc[0]["note"] == note
    assert len(activity.activity(one_item, activity.ActivityFilters())) == 1


def test_two_people_at_once_both_keep_their_events_in_commit_order(one_item: DuckDBStore) -> None:
    """Bob's clock is a minute ahead of Alice's: the order of events is still the order of commits."""
    scope = resolution.Scope.of_keys([KEY])
    errors: list[BaseException] = []

    def act(actor: Actor, status: str, at: dt.datetime) -> None:
        try:
            for i in range(10):
                resolution.apply(one_item, scope, status if i % 2 == 0 else "INVESTIGATING", actor=actor,
                                 note=f"{actor.name} {i}", now=at + dt.timedelta(seconds=i))  # fmt: skip
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=act, args=(ALICE, "RESOLVED", T0)),
               threading.Thread(target=act, args=(BOB, "PERMANENT", T0 + dt.timedelta(minutes=1)))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    events = activity.history(one_item, KEY)
    assert 10 <= len(events) <= 20  # a change to the status it already has is skipped, never lost
    chain = events.iloc[::-1]
    assert list(chain["from_status"].iloc[1:]) == list(chain["to_status"].iloc[:-1])  # no link broken
    assert chain["at"].is_monotonic_increasing and chain["at"].is_unique
    assert _status(one_item) == events.iloc[0]["to_status"]


def test_two_command_line_processes_lose_no_event(tmp_path: Path, write_rows: Writer, store: DuckDBStore) -> None:
    keys = [ItemKey(KEY.source_table, KEY.processor_name, KEY.item_date, f"player{i}") for i in range(20)]
    write_rows("precompute_failures", [precompute_row(entity_id=k.entity_id) for k in keys])
    runs = []
    for who, half in (("alice", keys[:10]), ("bob", keys[10:])):
        args = [sys.executable, "-m", "lib", "resolve", "--db", str(store.path), "--to", "PERMANENT",
                "--actor", who, "--note", f"{who} settles these"]  # fmt: skip
        for k in half:
            args += ["--item", k.text]
        runs.append(subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        assert "Marked 10 item(s) PERMANENT" in out
    events = activity.activity(store, activity.ActivityFilters())
    assert len(events) == 20 and set(events["actor"]) == {"alice", "bob"}
    assert q.count_items(store, Filters(statuses=("PERMANENT",), hide_expected=False)) == 20


def test_a_filter_scope_changes_every_matching_item_in_one_batch(store: DuckDBStore, write_rows: Writer) -> None:
    write_rows("precompute_failures", [precompute_row(entity_id=f"p{i}", failure_type="PLAYER_DNP",
                                                      is_correctable=False) for i in range(7)]
               + [precompute_row(entity_id="gap", failure_type="DATA_GAP", is_correctable=True)])  # fmt: skip
    write_rows("analytics_failures", [analytics_row()])
    scope = resolution.dnp_scope(Filters(hide_expected=False))
    preview = resolution.preview(store, scope, "PERMANENT")
    assert preview.count == 7 and len(preview.sample) == 7
    change = resolution.apply(store, scope, "PERMANENT", actor=ALICE, note="all DNP", now=T0)
    assert change.changed == 7 and change.already == 0
    events = activity.activity(store, activity.ActivityFilters())
    assert events["batch_id"].nunique() == 1 and len(events) == 7
    assert resolution.preview(store, scope, "PERMANENT").count == 0  # nothing left to settle
    assert _status(store, ItemKey(KEY.source_table, KEY.processor_name, KEY.item_date, "gap")) == "UNRESOLVED"


def test_activity_filters_by_person_status_and_text(one_item: DuckDBStore) -> None:
    scope = resolution.Scope.of_keys([KEY])
    resolution.apply(one_item, scope, "INVESTIGATING", actor=ALICE, note="checking the box score", now=T0)
    resolution.apply(one_item, scope, "RESOLVED", actor=BOB, note="re-scraped", now=T0 + dt.timedelta(hours=1))
    af = activity.ActivityFilters
    assert activity.activity_count(one_item, af()) == 2
    assert list(activity.activity(one_item, af(actors=("bob",)))["to_status"]) == ["RESOLVED"]
    assert list(activity.activity(one_item, af(to_statuses=("INVESTIGATING",)))["actor"]) == ["alice"]
    assert activity.activity_count(one_item, af(text="BOX SCORE")) == 1
    assert activity.activity_count(one_item, af(text="%")) == 0
    assert activity.actors(one_item) == ["alice", "bob"]
    exported = pd.concat(list(activity.iter_activity(one_item, af())))
    assert len(exported) == 2


def test_autoresolve_closes_items_whose_data_arrived_as_system(demo_store: DuckDBStore) -> None:
    injected = demo_store.query(
        "SELECT DISTINCT analysis_date FROM nba_processing.precompute_failures "
        "WHERE analysis_date BETWEEN @a AND @b", {"a": dt.date(2021, 10, 1), "b": dt.date(2022, 5, 1)}
    )  # fmt: skip
    assert len(injected) > 100
    # Backfilled games make some failures stale: auto-resolve finds and closes them with their evidence.
    after = dt.datetime(2022, 4, 15, 9, 0, tzinfo=dt.UTC)  # the morning after the data, as in real life
    report, resolved = resolution.autoresolve(demo_store, actor=SYSTEM, now=after, since=dt.date(2021, 11, 1),
                                              until=dt.date(2022, 4, 10))  # fmt: skip
    assert report.by_type["COMPLETE"] > 0 and resolved == q.count_items(
        demo_store, Filters(date_from=dt.date(2021, 11, 1), date_to=dt.date(2022, 4, 10), failure_types=("COMPLETE",),
                            statuses=("RESOLVED",), hide_expected=False))  # fmt: skip
    events = activity.activity(demo_store, activity.ActivityFilters(actors=("system",)), limit=10_000)
    assert len(events) == resolved and (events["origin"] == "autoresolve").all()
    assert events["note"].str.contains("re-classified COMPLETE").all()
    evidence = events["note"].str.contains(r"\d+ of \d+ expected in the window") | events["note"].str.contains(
        "nothing missing any more"
    )
    assert evidence.all() and events["note"].str.contains(r"\d+ of \d+ expected").any()
    assert not events["note"].str.contains(r"\?").any()
    again = resolution.autoresolve(demo_store, actor=SYSTEM, now=after + dt.timedelta(hours=1),
                                   since=dt.date(2021, 11, 1), until=dt.date(2022, 4, 10))[1]  # fmt: skip
    assert again == 0


def test_the_auto_resolve_stamps_its_events_when_it_writes_them(demo_store: DuckDBStore) -> None:
    """The job starts, a person looks while it re-classifies, then it writes: its settlements are after that visit, and
    "what changed since my last visit" counts them (stamped with the job's start, they were before it and missed)."""
    started = dt.datetime(2022, 4, 15, 9, 0, tzinfo=dt.UTC)
    visit, written = started + dt.timedelta(minutes=5), started + dt.timedelta(minutes=10)
    days = (dt.date(2022, 3, 1), dt.date(2022, 3, 10))  # where the demo backfilled games (auto-resolvable items)
    view = Filters(date_from=days[0], date_to=days[1], hide_expected=False)
    assert briefing.brief(demo_store, view, now=visit, since=started - dt.timedelta(days=1)).counts["settled"] == 0
    _, resolved = resolution.autoresolve(demo_store, actor=SYSTEM, now=started, since=days[0], until=days[1],
                                         clock=lambda: written)  # fmt: skip
    assert resolved > 0
    events = activity.activity(demo_store, activity.ActivityFilters(actors=("system",)), limit=10_000)
    assert len(events) == resolved and (pd.to_datetime(events["at"], utc=True) >= pd.Timestamp(written)).all()
    assert (
        briefing.brief(demo_store, view, now=written + dt.timedelta(hours=1), since=visit).counts["settled"] == resolved
    )


def test_the_items_command_lists_json_and_csv(one_item: DuckDBStore) -> None:
    base = [sys.executable, "-m", "lib", "items", "--db", str(one_item.path), "--include-expected"]
    as_json = subprocess.run([*base, "--format", "json"], cwd=ROOT, capture_output=True, text=True, check=True)
    items = json.loads(as_json.stdout)
    assert [i["key"] for i in items] == [KEY.text]
    assert {"key", "source_table", "processor_name", "item_date", "entity_id", "status", "failure_type",
            "is_correctable", "occurrences"} <= set(items[0])  # fmt: skip
    assert items[0]["item_date"] == "2021-12-31" and items[0]["status"] == "UNRESOLVED"
    as_csv = subprocess.run([*base, "--format", "csv", "--status", "PERMANENT"], cwd=ROOT, capture_output=True,
                            text=True, check=True)  # fmt: skip
    assert as_csv.stdout.splitlines()[0].startswith("key,source_table,processor_name")
    assert len(as_csv.stdout.splitlines()) == 1  # the header alone: nothing is PERMANENT


def test_the_resolve_command_refuses_viewers_and_unclear_scopes(one_item: DuckDBStore) -> None:
    base = [sys.executable, "-m", "lib", "resolve", "--db", str(one_item.path), "--to", "RESOLVED", "--note", "x"]
    viewer = subprocess.run([*base, "--actor", "Vera", "--item", KEY.text], cwd=ROOT, capture_output=True, text=True,
                            env={"TRIAGE_VIEWERS": "vera", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert viewer.returncode == 1 and "viewer" in viewer.stderr and "Traceback" not in viewer.stderr
    vague = subprocess.run([*base, "--actor", "alice"], cwd=ROOT, capture_output=True, text=True)
    assert vague.returncode == 2 and "say which items" in vague.stderr
    dry = subprocess.run([*base, "--actor", "alice", "--item", KEY.text, "--dry-run"], cwd=ROOT, capture_output=True,
                         text=True)  # fmt: skip
    assert dry.returncode == 0 and "Would mark 1 item(s) RESOLVED" in dry.stdout
    assert len(activity.history(one_item, KEY)) == 0
