"""Charts are built once per data version and kept (ui/data.py ``figure``): a kept chart never outlives the data it
shows, on a real DuckDB file and on the overview in AppTest."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from lib.model import Filters
from lib.store import DuckDBStore
from lib.store import queries as q
from tests.conftest import ROOT, precompute_row
from ui import data

APP = str(ROOT / "app.py")


def test_a_kept_chart_is_built_again_after_a_write_for_other_filters_and_after_a_refresh(store: DuckDBStore) -> None:
    built: list[str] = []

    def build(name: str) -> object:
        built.append(name)
        return object()

    window = Filters(date_from=dt.date(2021, 12, 1), date_to=dt.date(2021, 12, 31))
    first = data.figure(store, window, "chart", lambda: build("first"))
    assert data.figure(store, window, "chart", lambda: build("again")) is first and built == ["first"]
    assert data.figure(store, window.with_(hide_expected=False), "chart", lambda: build("other filters")) is not first
    assert data.figure(store, window, "chart", lambda: build("other minute"), "08:01") is not first
    store.insert_frame("nba_processing.precompute_failures", pd.DataFrame([precompute_row()]))
    after = data.figure(store, window, "chart", lambda: build("after a write"))
    assert after is not first and built[-1] == "after a write"
    data.refresh()
    assert data.figure(store, window, "chart", lambda: build("after a refresh")) is not after
    assert built == ["first", "other filters", "other minute", "after a write", "after a refresh"]
    for n in range(data.FIGURES_KEPT + 5):  # bounded: the oldest go first
        data.figure(store, window, f"many-{n}", object)
    assert len(data._figures) == data.FIGURES_KEPT


def _matrix_cells(at: AppTest) -> dict[tuple[str, str], str]:
    """The category matrix as drawn: (category, processor) -> the count written in the cell."""
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    matrix = next(c for c in charts if c["data"] and c["data"][0].get("mode") == "markers+text")
    trace = matrix["data"][0]
    return {(x, y): str(t) for x, y, t in zip(trace["x"], trace["y"], trace["text"], strict=True)}


def test_the_overview_shows_a_write_made_between_two_runs(app_db: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    before = _matrix_cells(at)
    at.run()  # nothing changed: the kept charts are shown, the same
    assert _matrix_cells(at) == before
    store = DuckDBStore(app_db)
    _, end = q.bounds(store).default_range() or (None, None)
    assert end is not None
    rows = [precompute_row(processor_name="PlayerDailyCacheProcessor", failure_category="KEPT_CHART_PROBE",
                           entity_id=f"probe{n}", analysis_date=end, run_id="probe") for n in range(3)]  # fmt: skip
    store.insert_frame("nba_processing.precompute_failures", pd.DataFrame(rows))
    at.run()
    assert not at.exception
    after = _matrix_cells(at)
    assert after[("KEPT_CHART_PROBE", "PlayerDailyCacheProcessor")] == "3"
    assert {k: v for k, v in after.items() if k[0] != "KEPT_CHART_PROBE"} == before
