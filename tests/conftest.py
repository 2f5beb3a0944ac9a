"""Shared fixtures: real DuckDB files built from code (the demo season, or rows a test writes)."""

from __future__ import annotations

import datetime as dt
import functools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lib import demo
from lib.access import SYSTEM
from lib.store import DuckDBStore
from lib.store.duckdb_store import release_idle

ROOT = Path(__file__).resolve().parent.parent

_MARK_BY_FOLDER = {"integration": "integration", "app": "app", "e2e": "e2e"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in _MARK_BY_FOLDER:
            item.add_marker(getattr(pytest.mark, _MARK_BY_FOLDER[folder]))
    _start_heavy_tests_first(items, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1))


def _weight(item: pytest.Item) -> float:
    mark = item.get_closest_marker("heavy")
    return float(mark.args[0]) if mark and mark.args else 0.0


def _start_heavy_tests_first(items: list[pytest.Item], workers: int) -> None:
    """Order the tests so that each worker starts with its share of the heavy ones (``@pytest.mark.heavy``).

    pytest-xdist's work-stealing scheduler first hands each worker a run of consecutive tests (each idle worker in
    turn takes the pending count divided by the workers left), then balances by taking tests from the end of the
    longest queue. A heavy test placed anywhere else may start last and end the run alone; placed at the head of a
    run, it starts at once. Heavy tests go to the runs by longest first onto the lightest run; the others keep
    their order (and their modules' fixtures). The order is the same in every worker, as xdist requires."""
    heavy = sorted((i for i in items if _weight(i)), key=_weight, reverse=True)
    if workers < 2 or not heavy:
        return
    sizes, left = [], len(items)
    for w in range(workers):
        sizes.append(left // (workers - w))
        left -= sizes[-1]
    runs: list[list[pytest.Item]] = [[] for _ in sizes]
    loads = [0.0] * workers
    for item in heavy:
        j = min((j for j in range(workers) if len(runs[j]) < sizes[j]), key=lambda j: loads[j])
        runs[j].append(item)
        loads[j] += _weight(item)
    light = iter([i for i in items if not _weight(i)])
    items[:] = [i for j, run in enumerate(runs) for i in (*run, *(next(light) for _ in range(sizes[j] - len(run))))]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local BigQuery emulator for a test module (tests/bq.py). Not one for the whole run: the emulator keeps every
    query's result as a table, and each statement lists every table it holds, so a statement got 0.03 s slower with
    every thousand statements before it; a new one starts in about 2 s."""
    from tests import bq

    yield from bq.start(tmp_path_factory.mktemp("bigquery-emulator"))


@pytest.fixture(autouse=True, scope="session")
def _scan_for_streamlit_components_once() -> None:
    """Every new AppTest scans each installed package for Streamlit component manifests (0.1 s, a third of a short
    page's test); the installed packages do not change during a run, so the scan's answer is kept."""
    from streamlit.components.v2 import manifest_scanner

    scan = manifest_scanner.scan_component_manifests
    if not hasattr(scan, "cache_info"):
        manifest_scanner.scan_component_manifests = functools.lru_cache(maxsize=4)(scan)  # type: ignore[assignment]


@pytest.fixture(autouse=True, scope="module")
def _drop_the_bigquery_datasets_of_the_module() -> Iterator[None]:
    """The emulator's datasets that a module's fixtures made are dropped when the module ends (tests/bq.py)."""
    from tests import bq

    point = bq.mark()
    yield
    bq.drop_since(point)


@pytest.fixture(autouse=True)
def _drop_the_bigquery_datasets_of_the_test() -> Iterator[None]:
    from tests import bq

    point = bq.mark()
    yield
    bq.drop_since(point)


@pytest.fixture(scope="session")
def demo_season() -> demo.Demo:
    return demo.build(seed=7)


@pytest.fixture(scope="session")
def demo_db_path(tmp_path_factory: pytest.TempPathFactory, demo_season: demo.Demo) -> Path:
    """A demo database written once per test session; tests that write use ``demo_store`` (a copy)."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    store = DuckDBStore(path)
    demo.write(store, demo_season, actor=SYSTEM)
    return path


#: When the session's classified demo was judged (the day after the season's last date).
CLASSIFIED_AT = dt.datetime(2022, 4, 11, 6, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def classified_demo_path(demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database with every item judged by the dashboard at ``CLASSIFIED_AT``, once per test session
    (five to ten seconds); modules copy it (incidents, patterns, re-runs, the fix loop in the browser)."""
    from lib import classification

    path = tmp_path_factory.mktemp("classified") / "classified.duckdb"
    shutil.copy(demo_db_path, path)
    classification.run(DuckDBStore(path), actor=SYSTEM, now=CLASSIFIED_AT, include_classified=True)
    release_idle(path)  # closed and checkpointed: the file is whole when copied
    return path


@pytest.fixture(scope="module")
def classified(classified_demo_path: Path, tmp_path_factory: pytest.TempPathFactory) -> DuckDBStore:
    """A module's own copy of the classified demo (its tests may write to it; other modules never see that)."""
    path = tmp_path_factory.mktemp("classified") / "c.duckdb"
    shutil.copy(classified_demo_path, path)
    return DuckDBStore(path)


@pytest.fixture
def demo_store(demo_db_path: Path, tmp_path: Path) -> DuckDBStore:
    target = tmp_path / "demo.duckdb"
    shutil.copy(demo_db_path, target)
    return DuckDBStore(target)


@pytest.fixture
def app_db(demo_db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the demo database that the dashboard under test (AppTest) opens."""
    db = tmp_path / "app.duckdb"
    shutil.copy(demo_db_path, db)
    monkeypatch.setenv("TRIAGE_DB", str(db))
    return db


@pytest.fixture(scope="session")
def empty_db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database with every table, made once per test session (``init_schema`` is some forty statements)."""
    path = tmp_path_factory.mktemp("empty") / "empty.duckdb"
    DuckDBStore(path).init_schema()
    release_idle(path)  # closed and checkpointed: the file is whole when copied
    return path


@pytest.fixture
def store(empty_db_path: Path, tmp_path: Path) -> DuckDBStore:
    """An empty database of the test's own (a copy of ``empty_db_path``)."""
    target = tmp_path / "empty.duckdb"
    shutil.copy(empty_db_path, target)
    return DuckDBStore(target)


def precompute_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "processor_name": "PlayerDailyCacheProcessor",
        "run_id": "run-1",
        "analysis_date": dt.date(2021, 12, 31),
        "entity_id": "zachlavine",
        "failure_category": "INCOMPLETE_DATA",
        "failure_reason": "L14D window incomplete",
        "can_retry": True,
        "failure_type": None,
        "is_correctable": None,
        "expected_game_count": None,
        "actual_game_count": None,
        "missing_game_dates": None,
        "raw_data_checked": None,
        "resolution_status": "UNRESOLVED",
        "resolved_at": None,
        "created_at": pd.Timestamp("2021-12-31 08:00", tz="UTC"),
    }
    row.update(overrides)
    return row


def analytics_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "processor_name": "PlayerGameSummaryProcessor",
        "run_id": "p3-run-1",
        "analysis_date": dt.date(2021, 12, 31),
        "entity_id": "0022100500",
        "entity_type": "GAME",
        "failure_category": "MISSING_DATA",
        "failure_reason": "No gamebook rows",
        "failure_type": None,
        "is_correctable": None,
        "expected_record_count": 2,
        "actual_record_count": 0,
        "missing_game_ids": '["0022100500"]',
        "can_retry": True,
        "resolution_status": "UNRESOLVED",
        "resolved_at": None,
        "created_at": pd.Timestamp("2021-12-31 09:00", tz="UTC"),
    }
    row.update(overrides)
    return row


def prediction_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "processor_name": "PlayerPropPredictionWorker",
        "run_id": "p5-run-1",
        "prediction_date": dt.date(2021, 12, 31),
        "entity_id": "zachlavine",
        "failure_category": "STALE_DATA",
        "failure_reason": "feature cache stale",
        "failure_type": None,
        "is_correctable": None,
        "missing_upstream_tables": "[]",
        "cache_age_hours": 30.5,
        "can_retry": True,
        "resolution_status": "UNRESOLVED",
        "resolved_at": None,
        "created_at": pd.Timestamp("2021-12-31 10:00", tz="UTC"),
    }
    row.update(overrides)
    return row


Writer = Callable[..., None]


@pytest.fixture
def write_rows(store: DuckDBStore) -> Writer:
    """``write_rows(table_name, [row, ...])`` into the empty store."""

    def write(table: str, rows: list[dict[str, Any]]) -> None:
        frame = pd.DataFrame(rows)
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        store.insert_frame(f"nba_processing.{table}", frame)

    return write


@pytest.fixture(scope="module")
def pubsub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Pub/Sub emulator for a test module (tests/pubsub.py): ``host:port``."""
    from tests import pubsub as emulator

    yield from emulator.start(tmp_path_factory.mktemp("pubsub-emulator"))
