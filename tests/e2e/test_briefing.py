"""The morning briefing in a real browser: what changed, a click through to exactly those items, Settling."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from lib import resolution
from lib.model import Actor, Filters
from lib.store import DuckDBStore
from lib.store import queries as q
from tests.e2e.conftest import ARTIFACTS, serve

WAIT = 60_000
LAST = dt.date(2022, 4, 10)


@pytest.fixture(scope="module")
def briefing_server(demo_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo, on which alice marked three items permanent two hours ago."""
    db = tmp_path_factory.mktemp("briefing") / "briefing.duckdb"
    shutil.copy(demo_db_path, db)
    store = DuckDBStore(db)
    keys = list(q.list_items(store, Filters(date_from=LAST, date_to=LAST), q.Page(1, 3))["key"])
    resolution.apply(store, resolution.Scope.of_keys(keys), "PERMANENT", actor=Actor("alice"), note="dnp",
                     now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))  # fmt: skip
    del store
    yield from serve(db, tmp_path_factory.mktemp("briefing-log"))


def _tile(page: Page, label: str):
    return page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text(label, exact=True)).first


def test_what_changed_links_to_exactly_those_items(briefing_server: str, page: Page) -> None:
    page.goto(briefing_server, timeout=WAIT)
    expect(page.get_by_role("heading", name=re.compile("What changed"))).to_be_visible(timeout=WAIT)
    expect(_tile(page, "Settled").locator('[data-testid="stMetricValue"]')).to_have_text("3", timeout=WAIT)
    expect(page.get_by_text("Settled by alice 3 permanent.")).to_be_visible(timeout=WAIT)
    expect(_tile(page, "Unresolved").get_by_text("-3 vs then")).to_be_visible(timeout=WAIT)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "briefing-overview.png"), full_page=True)

    page.get_by_role("link", name="List them").first.click()
    expect(page).to_have_url(re.compile(r"/failures\?.*changed=settled.*since="), timeout=WAIT)
    expect(page.get_by_text("Showing only the 3 item(s) counted as Settled")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("3 items match")).to_be_visible(timeout=WAIT)
    page.get_by_role("button", name="Show every item").click()
    expect(page).not_to_have_url(re.compile(r"changed="), timeout=WAIT)
    expect(page.get_by_text("Showing only")).to_have_count(0, timeout=WAIT)


def test_a_chosen_comparison_time_and_the_settling_page(briefing_server: str, page: Page) -> None:
    page.goto(briefing_server, timeout=WAIT)
    expect(page.get_by_role("heading", name=re.compile("What changed"))).to_be_visible(timeout=WAIT)
    page.get_by_text("A chosen time", exact=True).click()
    expect(page).to_have_url(re.compile(r"compare=A\+chosen\+time|compare=A%20chosen%20time"), timeout=WAIT)
    expect(page.get_by_text("Day (UTC)")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text(re.compile(r"each delta compares with the 7 days before"))).to_be_visible(timeout=WAIT)
    page.get_by_role("link", name="Settling").first.click()
    expect(page.get_by_role("heading", name="Settling")).to_be_visible(timeout=WAIT)
    expect(_tile(page, "Settled").locator('[data-testid="stMetricValue"]')).to_have_text("3", timeout=WAIT)
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=WAIT)
    page.screenshot(path=str(ARTIFACTS / "briefing-settling.png"), full_page=True)
