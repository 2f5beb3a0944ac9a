"""An operator's first minutes, in a real browser: overview, a filter, a click through to the list, CSV."""

from __future__ import annotations

import csv
import re
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import Page, expect

from tests.e2e.conftest import ARTIFACTS


def _metric(page: Page, label: str) -> int:
    tile = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    value = tile.locator('[data-testid="stMetricValue"]').inner_text()
    return int(value.replace(",", "").strip())


def _settled(page: Page) -> None:
    """Wait until Streamlit has finished the current run."""
    page.wait_for_timeout(300)
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=60_000)


def test_overview_filter_click_through_and_csv_export(server: str, page: Page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(server)
    expect(page.get_by_role("heading", name="Failure overview")).to_be_visible()
    expect(page.locator('[data-testid="stMetric"]').first).to_be_visible()
    _settled(page)
    items_before = _metric(page, "Items")
    assert items_before > 0
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

    # Change a filter: include the expected failures that are set aside by default.
    page.locator('[data-testid="stSidebar"]').get_by_text("Set aside expected failures").click()
    _settled(page)
    expect(page).to_have_url(re.compile(r"hide_expected=false"))
    assert _metric(page, "Items") > items_before
    page.locator('[data-testid="stSidebar"]').get_by_text("Set aside expected failures").click()
    _settled(page)
    assert _metric(page, "Items") == items_before

    # Click a cell of the processor x category chart: the list opens with that filter.
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    point = chart.locator("g.scatterlayer path.point").first
    expect(point).to_be_visible()
    box = point.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(300)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.get_by_role("heading", name="Failure list")).to_be_visible()
    _settled(page)
    query = parse_qs(urlparse(page.url).query)
    assert "/failures" in page.url
    assert len(query.get("processor", [])) == 1 and len(query.get("category", [])) == 1
    summary = page.get_by_text(re.compile(r"[\d,]+ items match")).first.inner_text()
    total = int(summary.split(" items")[0].replace(",", ""))
    assert total > 0
    page.screenshot(path=str(ARTIFACTS / "failures.png"), full_page=True)

    # Export everything matching the filter.
    with page.expect_download() as download_info:
        page.get_by_role("button", name=re.compile(r"Export [\d,]+ items as CSV")).click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == total
    assert {row["processor_name"] for row in rows} == set(query["processor"])
    assert {row["failure_category"] for row in rows} == set(query["category"])
    assert all(row["key"].count(":") >= 3 for row in rows)
