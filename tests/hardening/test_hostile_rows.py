"""Issue 13: rows the pipeline can write that our own schema would refuse, on every page and command.

BigQuery's failure tables may hold NULL where the DuckDB schema says NOT NULL: the test drops those
constraints to hold the same rows. Before the fix a NULL processor_name raised a TypeError on every page,
a NULL category an AttributeError, an empty entity or a ``:`` in a processor name made an item impossible to
open or resolve by key, rows dated outside 1900-2999 were invisible, and a read-only file could not be listed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lib import activity, resolution
from lib.model import Actor, Filters, ItemKey
from lib.store import DuckDBStore
from lib.store import queries as q
from tests.conftest import ROOT, precompute_row

HOSTILE = [
    {"processor_name": None, "entity_id": "nullproc"},
    {"failure_category": None, "entity_id": "nullcat"},
    {"entity_id": ""},
    {"entity_id": None, "run_id": "run-2"},
    {"processor_name": "Weird:Proc%3A", "entity_id": "a:b"},
    {"processor_name": "100%", "entity_id": "pct"},
    {"analysis_date": dt.date(1850, 1, 1), "entity_id": "old"},
    {"analysis_date": dt.date(3100, 1, 1), "entity_id": "future"},
    {"failure_reason": None, "run_id": None, "can_retry": None, "entity_id": "nulls"},
    {"entity_id": "x" * 100_000},
    {"entity_id": "ctl\x00\x01\x1b[31m\u202e", "failure_reason": "\x00" * 10},
]


def hostile_store(path: Path, rows: list[dict[str, object]] | None = None) -> DuckDBStore:
    store = DuckDBStore(path)
    store.init_schema()
    for col in ("processor_name", "entity_id", "failure_category", "run_id", "failure_reason", "can_retry"):
        store.execute(f"ALTER TABLE nba_processing.precompute_failures ALTER COLUMN {col} DROP NOT NULL")
    frame = pd.DataFrame([precompute_row(**r) for r in (HOSTILE if rows is None else rows)])
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    store.insert_frame("nba_processing.precompute_failures", frame)
    return store


@pytest.fixture
def hostile(tmp_path: Path) -> DuckDBStore:
    return hostile_store(tmp_path / "hostile.duckdb")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lib", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TRIAGE_ACTOR": ""}, timeout=300)  # fmt: skip


def test_every_hostile_row_is_an_item_that_opens_and_resolves_by_its_key(hostile: DuckDBStore) -> None:
    items = list(q.iter_items(hostile, Filters(hide_expected=False)))
    frame = pd.concat(items)
    assert len(frame) == len(HOSTILE) - 1  # NULL and empty entity are one item ("" either way)
    assert dt.date(1850, 1, 1) in set(frame["item_date"]) and dt.date(3100, 1, 1) in set(frame["item_date"])
    for text in frame["key"]:
        key = ItemKey.parse(text)
        assert key.text == text  # the encoding is reversible
        item = q.get_item(hostile, key)
        assert item is not None and item["entity_id"] == key.entity_id and item["processor_name"] == key.processor_name
    change = resolution.apply(hostile, resolution.Scope.of_keys(list(frame["key"])), "INVESTIGATING",
                              actor=Actor("alice"), note="looking at odd rows")  # fmt: skip
    assert change.changed == len(frame)
    assert all(activity.status_of(hostile, ItemKey.parse(k)) == "INVESTIGATING" for k in frame["key"])


def test_a_resolve_by_filter_over_a_date_with_null_columns_goes_through(hostile: DuckDBStore) -> None:
    day = dt.date(2021, 12, 31)
    scope = resolution.Scope(Filters(date_from=day, date_to=day, hide_expected=False))
    change = resolution.apply(hostile, scope, "PERMANENT", actor=Actor("alice"), note="all settled")
    assert change.changed == q.count_items(hostile, scope.filters) > 5
    assert resolution.sync_statuses(hostile, actor=Actor("alice")) >= 0


def test_the_default_view_is_not_hijacked_by_a_row_dated_in_the_far_future(hostile: DuckDBStore) -> None:
    b = q.bounds(hostile)
    assert b.last_date == dt.date(3100, 1, 1) and b.first_date == dt.date(1850, 1, 1)
    assert b.default_range() == (dt.date(2021, 12, 2), dt.date(2021, 12, 31))


PAGES = ["views/triage/overview.py", "views/triage/failures.py", "views/triage/incidents.py",
         "views/triage/player.py", "views/triage/patterns.py",
         "views/triage/work.py", "views/triage/settling.py", "views/audit/activity.py"]  # fmt: skip


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_hostile_rows(hostile: DuckDBStore, page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_DB", str(hostile.path))
    monkeypatch.setenv("TRIAGE_OPERATOR", "alice")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["from"] = "1850-01-01"
    at.query_params["to"] = "3100-01-01"
    at.query_params["hide_expected"] = "false"
    at.run()
    if page != PAGES[0]:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value[:500] for e in at.exception]
    assert not at.error, [e.value[:500] for e in at.error]


def test_the_failure_list_opens_an_item_with_an_empty_entity_and_a_colon_in_its_processor(
    hostile: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIAGE_DB", str(hostile.path))
    for key in (
        "precompute_failures:Weird%3AProc%253A:2021-12-31:a:b",
        "precompute_failures:PlayerDailyCacheProcessor:2021-12-31:",
    ):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        at.switch_page("views/triage/failures.py")
        at.query_params["item"] = key
        at.run()
        assert not at.exception and not at.error, [e.value[:300] for e in [*at.exception, *at.error]]
        assert any(ItemKey.parse(key).entity_id in (m.value or "") or "Weird" in m.value for m in at.markdown)


def test_the_command_line_lists_and_resolves_hostile_items(hostile: DuckDBStore) -> None:
    db = str(hostile.path)
    listed = _cli("items", "--db", db, "--include-expected", "--since", "1800-01-01")
    assert listed.returncode == 0, listed.stderr
    keys = [i["key"] for i in json.loads(listed.stdout)]
    assert len(keys) == len(HOSTILE) - 1
    weird = next(k for k in keys if "Weird" in k)
    done = _cli("resolve", "--db", db, "--actor", "alice", "--to", "PERMANENT", "--note", "n", "--item", weird)
    assert done.returncode == 0 and "Marked 1 item(s)" in done.stdout, done.stderr
    as_csv = _cli("items", "--db", db, "--include-expected", "--format", "csv", "--since", "1800-01-01")
    assert as_csv.returncode == 0 and "Traceback" not in as_csv.stderr


def test_a_read_only_database_file_can_be_listed(hostile: DuckDBStore, tmp_path: Path) -> None:
    path = Path(hostile.path)
    path.chmod(stat.S_IRUSR | stat.S_IRGRP)
    try:
        listed = _cli("items", "--db", str(path), "--include-expected")
        assert listed.returncode == 0, listed.stderr
        assert len(json.loads(listed.stdout)) == len(HOSTILE) - 1
        refused = _cli("resolve", "--db", str(path), "--actor", "alice", "--to", "PERMANENT", "--note", "n",
                       "--since", "2021-12-31", "--until", "2021-12-31")  # fmt: skip
        assert refused.returncode == 1 and "Traceback" not in refused.stderr and "read" in refused.stderr.lower()
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
