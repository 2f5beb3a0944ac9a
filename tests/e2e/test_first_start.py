"""Issue 13: a newcomer's first minutes. `streamlit run app.py` on a fresh machine, the README's links
followed in a real browser as the server's very first request, every page with something to show
without a manual step, and the README's command-line examples run on the same demo data."""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from lib import activity, classification
from lib.store import DuckDBStore
from lib.store import queries as q
from tests.conftest import ROOT
from tests.e2e import laptop
from tests.e2e.conftest import ARTIFACTS
from tests.servers import free_port, stop, wait_until_answering

README = (ROOT / "README.md").read_text()
LINKS = sorted(set(re.findall(r"http://localhost:8501(/[A-Za-z0-9_./?=&%-]*)", README)))
_EXAMPLES = README.split("For example, on the demo database", 1)[1].split("```")[1]
COMMANDS = [" ".join(c.split()) for c in _EXAMPLES.replace("\\\n", " ").splitlines() if c.startswith("python -m lib")]


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """What a newcomer types, on a machine with no database yet: the conventional start, no wrapper."""
    db = tmp_path_factory.mktemp("fresh") / "data" / "triage.duckdb"
    port = free_port()
    env = {**os.environ, "TRIAGE_DB": str(db)}
    env.pop("TRIAGE_OPERATOR", None)
    log = open(tmp_path_factory.mktemp("fresh-log") / "streamlit.log", "w")  # noqa: SIM115 - closed by stop()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until_answering(f"{url}/_stcore/health", proc, log.name)
    yield url, db
    stop(proc, log)


def _no_trouble(page: Page) -> None:
    expect(page.get_by_text("Page not found")).to_have_count(0, timeout=60_000)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0, timeout=60_000)
    expect(page.locator('[data-testid="stAlertContentError"]')).to_have_count(0, timeout=60_000)


def test_the_readme_has_links_and_examples_to_follow() -> None:
    assert any(link.startswith("/player?player=isaiahthompson") for link in LINKS) and len(COMMANDS) == 2, (
        LINKS,
        COMMANDS,
    )


def test_the_first_visitor_of_a_readme_deep_link_gets_the_page(
    fresh_server: tuple[str, Path], browser: Browser
) -> None:
    url, _ = fresh_server
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    try:
        # The server's very first request is the deep link; the demo is seeded and classified on the way.
        page.goto(url + "/player?player=isaiahthompson", timeout=300_000)
        expect(
            page.get_by_role("heading", name=re.compile("Isaiah Thompson|isaiahthompson", re.I)).first
        ).to_be_visible(timeout=300_000)
        _no_trouble(page)
        expect(page.get_by_text(re.compile("SAC|MIA")).first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Reasons in the box score").first).to_be_visible(timeout=120_000)
        expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=120_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "first-start-player.png"), full_page=True)
        for link in LINKS:
            page.goto(url + link, timeout=120_000)
            expect(page.locator('[data-testid="stSidebar"]')).to_be_visible(timeout=60_000)
            _no_trouble(page)
    finally:
        page.close()


def test_every_page_has_something_to_show_on_first_start(fresh_server: tuple[str, Path], browser: Browser) -> None:
    url, _ = fresh_server
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    try:
        page.goto(url + "/patterns", timeout=300_000)
        expect(page.get_by_text("Teams × dates").first).to_be_visible(timeout=300_000)
        expect(page.get_by_text("No open PLAYER_DNP item in this range.")).to_have_count(0, timeout=60_000)
        _no_trouble(page)
        page.goto(url + "/work", timeout=120_000)
        expect(page.get_by_text("Raw box scores to re-scrape").first).to_be_visible(timeout=120_000)
        # The last 30 days of the demo have correctable work: processors to re-run, with the dates.
        expect(page.get_by_text("No processor to re-run.")).to_have_count(0, timeout=60_000)
        expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible(timeout=60_000)
        _no_trouble(page)
        page.screenshot(path=str(ARTIFACTS / "first-start-work.png"), full_page=True)
    finally:
        page.close()


def test_the_readme_command_line_examples_work_on_the_demo(fresh_server: tuple[str, Path], browser: Browser) -> None:
    url, db = fresh_server
    page = browser.new_page()
    try:  # make sure the first start has finished seeding
        page.goto(url, timeout=300_000)
        expect(page.locator('[data-testid="stMetric"]').first).to_be_visible(timeout=300_000)
    finally:
        page.close()
    env = {**os.environ, "TRIAGE_ACTOR": ""}
    items, resolve = (shlex.split(c.replace("data/triage.duckdb", str(db))) for c in COMMANDS)
    listed = subprocess.run([sys.executable, *items[1:]], cwd=ROOT, capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("isaiahthompson") >= 2, listed.stdout
    keys = [line.split(",", 1)[0] for line in listed.stdout.splitlines()[1:]]
    # The demo lives in the present: his items are dated within the last year, never today or later.
    today = dt.datetime.now(dt.UTC).date()
    dates = [dt.date.fromisoformat(k.split(":")[2]) for k in keys]
    assert dates and all(today - dt.timedelta(days=367) < d < today for d in dates), keys
    changed = subprocess.run([sys.executable, *resolve[1:]], cwd=ROOT, capture_output=True, text=True, env=env)
    marked = re.search(r"Marked (\d+) item\(s\) INVESTIGATING as alice \((\d+) already were\)", changed.stdout)
    assert changed.returncode == 0 and marked, changed.stderr
    assert int(marked[1]) + int(marked[2]) == len(keys), (changed.stdout, keys)


def test_the_first_morning_shows_only_our_verdicts_and_reads_whole_on_a_laptop(
    fresh_server: tuple[str, Path], browser: Browser
) -> None:
    """Issue 21: after the first start no item shown carries a verdict of the pipeline's without ours (judged from
    the evidence, the pipeline's kept beside it), the demo lives in the present, and every page reads whole at
    1280x800 (and wide): no metric cut, the key columns of every table drawn, no key value wider than its column."""
    url, db = fresh_server
    page = browser.new_page()
    try:  # the first start has finished seeding and classifying
        page.goto(url, timeout=300_000)
        expect(page.locator('[data-testid="stMetric"]').first).to_be_visible(timeout=300_000)
        _no_trouble(page)
    finally:
        page.close()
    store = DuckDBStore(db, busy_timeout=60)
    assert classification.count_to_classify(store) == 0  # every item judged by the dashboard since it was written
    unjudged = store.query(
        "SELECT COUNT(*) AS n FROM nba_processing.failure_items AS i WHERE i.failure_type IS NOT NULL AND NOT EXISTS "
        "(SELECT 1 FROM nba_processing.item_judgements AS j WHERE j.source_table = i.source_table AND "
        "j.processor_name = i.processor_name AND j.item_date = i.item_date AND j.entity_id = i.entity_id)"
    ).iloc[0]["n"]
    assert unjudged == 0
    bounds = q.bounds(store)
    today = dt.datetime.now(dt.UTC).date()  # the demo ends the day before it was placed (a run may cross midnight)
    assert bounds.last_date in (today - dt.timedelta(days=1), today - dt.timedelta(days=2)), bounds
    problems = laptop.check_pages(browser, url, laptop.PAGES)
    assert problems == [], "\n".join(problems)
    wide = laptop.check_pages(browser, url, ("", "failures", "player?player=isaiahthompson"), width=1600)
    assert wide == [], "\n".join(wide)  # and wide
    # The audit trail cuts its notes at the table's edge: a row selected shows its change whole, on screen below the
    # table at 1280x800, with its note uncut.
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.goto(f"{url}/activity", timeout=laptop.WAIT)
        grid = page.locator('[data-testid="stDataFrame"]').first
        expect(grid.locator("th").first).to_be_attached(timeout=laptop.WAIT)
        _no_trouble(page)
        box = grid.bounding_box(timeout=laptop.WAIT)
        assert box is not None
        page.mouse.click(box["x"] + 12, box["y"] + 38 + 35 * 2 + 17)  # the third row
        change = page.locator(".st-key-activity_change")
        expect(change).to_be_in_viewport(timeout=laptop.WAIT)
        shown = bounds.default_range()  # the sidebar's range when none is given
        assert shown is not None
        newest = activity.activity(store, activity.ActivityFilters(*shown), limit=3)
        expect(change.get_by_text(str(newest["note"].iloc[2]), exact=True)).to_be_visible(timeout=laptop.WAIT)
    finally:
        context.close()
