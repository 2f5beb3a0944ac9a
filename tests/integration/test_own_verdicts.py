"""Every verdict on screen is the dashboard's own (issue 21): a run judges the items whose verdict the pipeline
wrote, keeps what the pipeline said beside ours, and says where the two differ.

The truth here is read from the failure rows as the pipeline wrote them (before any run), with pandas, not
through the relation or the judgement SQL under test."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from lib import classification
from lib.access import SYSTEM
from lib.model import Filters, Page, SourceTable
from lib.store import DuckDBStore
from lib.store import queries as q

NOW = dt.datetime(2022, 4, 12, tzinfo=dt.UTC)
KEY = ["source_table", "processor_name", "item_date", "entity_id"]


def _pipeline_said(store: DuckDBStore) -> pd.DataFrame:
    """Each item's verdict as the pipeline wrote it: its latest row's type and correctability (items whose latest
    rows disagree among themselves are left out: no single answer to compare with)."""
    frames = []
    for t in SourceTable:
        rows = store.query(
            f"SELECT processor_name, {t.date_column} AS item_date, entity_id, failure_type, is_correctable, created_at "
            f"FROM {t.spec.ref} WHERE {t.date_column} BETWEEN @a AND @b",
            {"a": dt.date(1, 1, 1), "b": dt.date(9999, 12, 31)},
        )
        frames.append(rows.assign(source_table=t.value))
    rows = pd.concat(frames, ignore_index=True)
    rows["processor_name"] = rows["processor_name"].fillna("")
    rows["entity_id"] = rows["entity_id"].fillna("")
    rows["created_at"] = pd.to_datetime(rows["created_at"], utc=True).fillna(pd.Timestamp(0, tz="UTC"))
    latest = rows[rows["created_at"] == rows.groupby(KEY)["created_at"].transform("max")]
    latest = latest.assign(
        t=latest["failure_type"].astype("string").fillna("<none>"),
        c=latest["is_correctable"].astype("string").fillna("<none>"),
    )
    groups = latest.groupby(KEY)
    single = latest[(groups["t"].transform("nunique") == 1) & (groups["c"].transform("nunique") == 1)]
    return single.groupby(KEY, as_index=False).first()[[*KEY, "failure_type", "is_correctable"]]


def _shown(store: DuckDBStore) -> pd.DataFrame:
    items = pd.concat(q.iter_items(store, Filters(hide_expected=False)), ignore_index=True)
    return q.with_pipeline_verdicts(store, items)


def test_a_run_judges_every_item_the_pipeline_classified_and_keeps_what_it_said(demo_store: DuckDBStore) -> None:
    said = _pipeline_said(demo_store)
    by_pipeline = said[said["failure_type"].notna()]
    assert len(by_pipeline) > 1000  # the demo's pipeline classified many items (its known mistakes included)
    report = classification.run(demo_store, actor=SYSTEM, now=NOW)
    shown = _shown(demo_store)
    assert report.items == len(shown)  # every item judged, the pipeline's included
    assert shown["judged"].all()
    assert classification.count_to_classify(demo_store) == 0
    assert classification.run(demo_store, actor=SYSTEM, now=NOW).items == 0  # nothing left: a second run is idle
    both = shown.merge(by_pipeline, on=KEY, suffixes=("", "_raw"), validate="one_to_one")
    assert len(both) == len(by_pipeline)
    assert (both["pipeline_type"] == both["failure_type_raw"]).all()
    raw_fix = both["is_correctable_raw"].astype("boolean")
    assert (both["pipeline_correctable"].astype("boolean").fillna(False) == raw_fix.fillna(False)).all()
    # Where we disagree, exactly: our verdict against the pipeline's as the rows had it.
    differs = (both["failure_type"] != both["failure_type_raw"]) | (
        both["is_correctable"].astype("boolean").astype("string").fillna("-") != raw_fix.astype("string").fillna("-")
    )
    assert set(map(tuple, both.loc[differs, KEY].to_numpy().tolist())) == set(
        map(tuple, shown.loc[shown["disagrees"], KEY].to_numpy().tolist())
    )
    assert differs.sum() > 0  # the pipeline's classifier is wrong in places (domain.md): there is something to show
    assert q.count_items(demo_store, Filters(hide_expected=False, disagree=True)) == int(differs.sum())
    table = q.disagreement(demo_store, Filters(hide_expected=False))
    assert int(table["disagree"].sum()) == int(differs.sum())
    assert int(table["pipeline_judged"].sum()) == len(both)
    listed = q.list_items(demo_store, Filters(hide_expected=False, disagree=True), Page(1, 1000))
    assert q.with_pipeline_verdicts(demo_store, listed)["disagrees"].all()


def test_a_rerun_by_the_pipeline_brings_its_verdict_back_until_the_next_run_judges_it(
    demo_store: DuckDBStore,
) -> None:
    classification.run(demo_store, actor=SYSTEM, now=NOW)
    item = _shown(demo_store).query("failure_type == 'PLAYER_DNP'").iloc[0]
    rerun = demo_store.query(
        "SELECT * FROM nba_processing.precompute_failures WHERE analysis_date = @d AND entity_id = @e "
        "AND processor_name = @p LIMIT 1",
        {"d": item["item_date"], "e": item["entity_id"], "p": item["processor_name"]},
    )
    assert len(rerun) == 1
    later = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=1)
    rerun = rerun.assign(run_id="rerun", created_at=later, failure_type="COMPLETE", is_correctable=True)
    demo_store.insert_frame("nba_processing.precompute_failures", rerun)
    assert classification.count_to_classify(demo_store) == 1
    mine = _shown(demo_store).set_index(KEY).loc[tuple(item[KEY])]
    assert not mine["judged"] and mine["failure_type"] == "COMPLETE"  # the pipeline's, and said to be
    import time

    time.sleep(max(0.0, (later - pd.Timestamp.now(tz="UTC")).total_seconds()) + 0.05)
    assert classification.run(demo_store, actor=SYSTEM, now=NOW).items == 1
    mine = _shown(demo_store).set_index(KEY).loc[tuple(item[KEY])]
    assert mine["judged"] and mine["pipeline_type"] == "COMPLETE" and mine["failure_type"] == "PLAYER_DNP"
    assert mine["disagrees"]
