"""Failure rows collapse into items; every filter, sort and page works in the engine."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from lib.model import Filters, Page
from lib.store import DuckDBStore
from lib.store import queries as q
from lib.store.schema import FAILURE_TABLES
from tests.conftest import Writer, analytics_row, precompute_row, prediction_row

DAY = dt.date(2021, 12, 31)
ALL = Filters(hide_expected=False)


def test_init_creates_the_production_schemas_exactly_and_is_idempotent(tmp_path) -> None:
    s = DuckDBStore(tmp_path / "x.duckdb")
    first = s.init_schema()
    # seven pipeline tables (failures, evidence, processor runs) and the dashboard's seventeen (five of them the item
    # index, its change log and its settled counts; incident links; re-run requests and their items)
    assert len(first) == 24
    assert s.init_schema() == []
    with s.connect() as con:  # DuckDB's own catalogue, not a BigQuery-dialect query
        cols = con.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'nba_processing' AND table_name = 'precompute_failures' ORDER BY ordinal_position"
        ).df()
    assert list(cols["column_name"]) == [
        "processor_name", "run_id", "analysis_date", "entity_id", "failure_category", "failure_reason",
        "can_retry", "failure_type", "is_correctable", "expected_game_count", "actual_game_count",
        "missing_game_dates", "raw_data_checked", "resolution_status", "resolved_at", "created_at",
    ]  # fmt: skip
    required = set(cols.loc[cols["is_nullable"] == "NO", "column_name"])
    assert required == {"processor_name", "run_id", "analysis_date", "entity_id", "failure_category",
                        "failure_reason", "can_retry"}  # fmt: skip
    for t in FAILURE_TABLES:
        assert t.ref in s.existing_tables()


def test_reruns_and_duplicates_collapse_into_one_item_with_the_latest_values(
    store: DuckDBStore, write_rows: Writer
) -> None:
    write_rows(
        "analytics_failures",
        [
            analytics_row(run_id="a", failure_category="MISSING_DATA", created_at=pd.Timestamp("2021-12-31 08:00Z")),
            analytics_row(run_id="a", failure_category="MISSING_DATA", created_at=pd.Timestamp("2021-12-31 08:00Z")),
            analytics_row(
                run_id="b", failure_category="INCOMPLETE_UPSTREAM", failure_reason="latest",
                created_at=pd.Timestamp("2022-01-01 08:00Z"),
            ),
        ],
    )  # fmt: skip
    items = q.list_items(store, ALL, Page())
    assert len(items) == 1
    item = items.iloc[0]
    assert item["key"] == "analytics_failures:PlayerGameSummaryProcessor:2021-12-31:0022100500"
    assert item["occurrences"] == 3 and item["runs"] == 2
    assert item["failure_category"] == "INCOMPLETE_UPSTREAM" and item["failure_reason"] == "latest"
    assert item["entity_type"] == "GAME"
    assert item["first_seen"] == pd.Timestamp("2021-12-31 08:00Z")
    assert item["last_seen"] == pd.Timestamp("2022-01-01 08:00Z")
    k = q.kpis(store, ALL)
    assert (k.items, k.occurrences) == (1, 3)


def test_null_status_counts_as_unresolved_and_null_created_at_counts_as_oldest(
    store: DuckDBStore, write_rows: Writer
) -> None:
    write_rows(
        "precompute_failures",
        [
            precompute_row(run_id="old", resolution_status=None, failure_category="OLD", created_at=None),
            precompute_row(run_id="new", resolution_status=None, failure_category="NEW"),
        ],
    )
    item = q.list_items(store, ALL, Page()).iloc[0]
    assert item["status"] == "UNRESOLVED"
    assert item["failure_category"] == "NEW"
    assert q.count_items(store, ALL.with_(statuses=("UNRESOLVED",))) == 1


def test_items_of_all_three_tables_share_one_shape(store: DuckDBStore, write_rows: Writer) -> None:
    write_rows("precompute_failures", [precompute_row(), precompute_row(entity_id="LAL"),
                                       precompute_row(entity_id="DATE_LEVEL")])  # fmt: skip
    write_rows("analytics_failures", [analytics_row()])
    write_rows("prediction_failures", [prediction_row()])
    items = q.list_items(store, ALL, Page(sort="entity"))
    assert set(items["source_table"]) == {"precompute_failures", "analytics_failures", "prediction_failures"}
    kinds = dict(zip(items["entity_id"] + "@" + items["source_table"], items["entity_type"], strict=True))
    assert kinds["LAL@precompute_failures"] == "TEAM"
    assert kinds["DATE_LEVEL@precompute_failures"] == "DATE"
    assert kinds["zachlavine@prediction_failures"] == "PLAYER"
    assert set(items["phase"]) == {3, 4, 5}


@pytest.fixture
def varied(store: DuckDBStore, write_rows: Writer) -> DuckDBStore:
    write_rows(
        "precompute_failures",
        [
            precompute_row(entity_id="a", failure_category="INSUFFICIENT_DATA"),
            precompute_row(entity_id="b", failure_type="PLAYER_DNP", is_correctable=False),
            precompute_row(entity_id="c", failure_type="DATA_GAP", is_correctable=True,
                           processor_name="MLFeatureStoreProcessor"),
            precompute_row(entity_id="d", failure_category="calculation_error", resolution_status="INVESTIGATING"),
            precompute_row(entity_id="e", analysis_date=DAY - dt.timedelta(days=40)),
            precompute_row(entity_id="f", failure_category="BRAND_NEW_CATEGORY"),
        ],
    )  # fmt: skip
    write_rows("prediction_failures", [prediction_row(entity_id="g")])
    return store


@pytest.mark.parametrize(
    "filters, entities",
    [
        (Filters(hide_expected=False), "abcdefg"),
        (Filters(hide_expected=True), "bcdefg"),
        (Filters(date_from=DAY, date_to=DAY, hide_expected=False), "abcdfg"),
        (Filters(tables=("prediction_failures",)), "g"),
        (Filters(processors=("MLFeatureStoreProcessor",)), "c"),
        (Filters(categories=("calculation_error",)), "d"),
        (Filters(categories=("BRAND_NEW_CATEGORY",)), "f"),
        (Filters(failure_types=("PLAYER_DNP", "DATA_GAP")), "bc"),
        (Filters(failure_types=("UNCLASSIFIED",), hide_expected=False), "adefg"),
        (Filters(correctable=("correctable",)), "c"),
        (Filters(correctable=("uncorrectable", "unknown")), "bdefg"),
        (Filters(statuses=("INVESTIGATING",)), "d"),
        (Filters(entity="E"), "e"),
    ],
)
def test_each_filter_selects_exactly_its_items(varied: DuckDBStore, filters: Filters, entities: str) -> None:
    items = q.list_items(varied, filters, Page(sort="entity"))
    assert "".join(items["entity_id"]) == entities
    assert q.count_items(varied, filters) == len(entities)
    assert q.kpis(varied, filters).items == len(entities)


@pytest.mark.parametrize(
    "hostile",
    ["%", "_", "'", "\"; DROP TABLE nba_processing.precompute_failures; --", "\\", "<script>alert(1)</script>",
     "ünïcødé", "x" * 5000, "\x00"],
)  # fmt: skip
def test_hostile_entity_searches_match_literally_and_harm_nothing(
    store: DuckDBStore, write_rows: Writer, hostile: str
) -> None:
    write_rows("precompute_failures", [precompute_row(entity_id="plain"), precompute_row(entity_id=f"odd{hostile}")])
    found = q.list_items(store, Filters(entity=hostile, hide_expected=False), Page())
    assert list(found["entity_id"]) == [f"odd{hostile}"]
    assert q.count_items(store, ALL) == 2


def test_kpis_add_up(varied: DuckDBStore) -> None:
    k = q.kpis(varied, Filters())
    assert k.all_items == 7 and k.expected == 1 and k.items == 6
    assert k.correctable == 1 and k.uncorrectable == 1 and k.unclassified == 4
    assert k.unresolved == 5
    assert k.expected_share == pytest.approx(1 / 7)


def test_pages_cover_every_item_exactly_once_in_every_sort(demo_store: DuckDBStore) -> None:
    f = Filters(date_from=dt.date(2022, 3, 1), date_to=dt.date(2022, 3, 10))
    total = q.count_items(demo_store, f)
    assert total > 300
    for sort in ("newest date", "most occurrences", "entity"):
        keys: list[str] = []
        number = 1
        while True:
            page = q.list_items(demo_store, f, Page(number=number, size=100, sort=sort))
            keys += list(page["key"])
            if len(page) < 100:
                break
            number += 1
        assert len(keys) == total and len(set(keys)) == total


def test_sorts_order_as_named(demo_store: DuckDBStore) -> None:
    f = Filters(hide_expected=False)
    newest = q.list_items(demo_store, f, Page(size=200, sort="newest date"))
    assert list(newest["item_date"]) == sorted(newest["item_date"], reverse=True)
    most = q.list_items(demo_store, f, Page(size=200, sort="most occurrences"))
    assert list(most["occurrences"]) == sorted(most["occurrences"], reverse=True)
    assert most["occurrences"].iloc[0] > 1


def test_export_pages_through_every_matching_item(demo_store: DuckDBStore) -> None:
    f = Filters(date_from=dt.date(2022, 2, 1), date_to=dt.date(2022, 2, 28))
    frames = list(q.iter_items(demo_store, f, chunk=500))
    assert len(frames) > 1
    keys = pd.concat(frames)["key"]
    assert len(keys) == q.count_items(demo_store, f) and keys.is_unique


def test_matrix_and_trend_count_the_same_items_as_the_kpis(demo_store: DuckDBStore) -> None:
    f = Filters(date_from=dt.date(2021, 12, 1), date_to=dt.date(2021, 12, 31))
    k = q.kpis(demo_store, f)
    assert q.matrix(demo_store, f)["items"].sum() == k.items
    t = q.trend(demo_store, f)
    assert t["items"].sum() == k.items
    assert t["occurrences"].sum() == k.occurrences
    assert set(t["item_date"]) <= {dt.date(2021, 12, 1) + dt.timedelta(days=i) for i in range(31)}


def test_choices_and_bounds_come_from_the_data(demo_store: DuckDBStore) -> None:
    b = q.bounds(demo_store)
    assert b.first_date == dt.date(2021, 10, 19) and b.last_date == dt.date(2022, 4, 10)
    c = q.choices(demo_store, Filters())
    assert "calculation_error" in c.categories and "SCHEMA_DRIFT" in c.categories
    assert "PlayerDailyCacheProcessor" in c.processors and "PlayerGameSummaryProcessor" in c.processors


def test_the_data_version_changes_when_data_is_written(store: DuckDBStore, write_rows: Writer) -> None:
    before = store.data_version()
    write_rows("precompute_failures", [precompute_row()])
    assert store.data_version() != before
