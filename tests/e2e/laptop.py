"""Issue 21: every page readable on a 1280x800 laptop, in chromium (the checks; test_first_start runs them on the
first morning's demo, every page).

What the browser renders is compared with the full values: a metric's label, value or delta cut with an ellipsis
(its text wider than its box), a table whose key columns are not drawn without scrolling sideways, or a key cell
whose text is wider than its column. Screenshots of every page at 1280x800 and 1600 wide land in test-artifacts/."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.conftest import ARTIFACTS
from ui.widgets import ITEM_COLUMN_CONFIG

WAIT = 120_000

#: Page, and for each of its tables (by the order on the page) the columns that must be drawn at 1280 px.
PAGES: dict[str, dict[int, tuple[str, ...]]] = {
    "": {},
    "failures": {0: ("Date", "Proc.", "Entity", "Type", "Fix?", "Pipeline said", "Status")},
    "incidents": {0: ("Root cause", "State", "Open", "Settled", "Players")},
    "player?player=isaiahthompson": {0: ("Date", "Proc.", "Type", "Fix?", "Status")},
    "patterns": {
        0: ("Proc.", "Judged", "Perm.", "Share"),
        1: ("Player", "Team", "Games", "From", "To"),
        2: ("Date", "All items", "Did not play"),
    },
    "work": {},
    "settling": {},
    "activity": {0: ("When (UTC)", "Who", "Item date", "Proc.", "Entity", "From", "To", "Note")},
}

#: Columns sized in pixels: every value drawn in them must fit (glide draws 8 px of padding each side).
FIXED: dict[str, int] = {
    str(c["label"]): int(c["width"])
    for c in (ITEM_COLUMN_CONFIG[k] for k in ("item_date", "failure_type", "status", "pipeline_said"))
    if isinstance(c, dict) and isinstance(c.get("width"), int)
}
assert len(FIXED) == 4, FIXED  # the sizes the check holds the drawn text to

_MEASURE = """() => {
  const cut = [];
  for (const el of document.querySelectorAll(
      '[data-testid="stMetricLabel"] p, [data-testid="stMetricValue"] p, [data-testid="stMetricDelta"] p')) {
    if (el.scrollWidth > el.clientWidth + 1) cut.push(el.textContent);
  }
  return cut;
}"""

_TABLES = """(fixed) => {
  const canvas = document.createElement('canvas').getContext('2d');
  return [...document.querySelectorAll('[data-testid="stDataFrame"]')].map(grid => {
    const heads = {};
    for (const th of grid.querySelectorAll('th')) heads[th.getAttribute('aria-colindex')] = th.textContent;
    const font = getComputedStyle(grid).fontFamily;
    const wide = [];
    for (const td of grid.querySelectorAll('td')) {
      const label = heads[td.getAttribute('aria-colindex')];
      if (!(label in fixed)) continue;
      canvas.font = `14px ${font}`;
      const width = canvas.measureText(td.textContent).width + 16;
      if (width > fixed[label]) wide.push(`${label}: ${td.textContent} (${Math.round(width)} px > ${fixed[label]})`);
    }
    return {heads: Object.values(heads), wide};
  });
}"""


def _settled(page: Page) -> None:
    status = page.locator('[data-testid="stStatusWidget"]')
    with contextlib.suppress(PlaywrightTimeout):
        status.wait_for(state="visible", timeout=1_500)
    expect(status).to_have_count(0, timeout=WAIT)


def check_pages(browser: Browser, url: str, paths: Iterable[str], width: int = 1280) -> list[str]:
    """Open each of ``paths`` at ``width`` x 800 and return what reads cut (empty: nothing); a screenshot of each is
    kept. The paths are opened one after the other in one tab (each a whole new load of the page): its renderer keeps
    the app's several MB of scripts compiled, which a new tab or context parses and compiles again (the eleven pages of
    the first morning, side by side: 131-155 CPU-seconds of chromium and the server with a context each, 62-65 in one
    tab; a tab each in one context gained nothing)."""
    context = browser.new_context(viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        return [problem for path in paths for problem in _check(page, url, path, width)]
    finally:
        context.close()


def _check(page: Page, url: str, path: str, width: int) -> list[str]:
    problems: list[str] = []
    page.set_viewport_size({"width": width, "height": 800})  # the last path's screenshot made it taller
    page.goto(f"{url}/{path}", timeout=WAIT)  # a whole new document: nothing of the last path's is left
    expect(page.locator("h1").first).to_be_visible(timeout=WAIT)
    _settled(page)
    wanted = PAGES.get(path, {})
    if wanted:
        expect(page.locator('[data-testid="stDataFrame"]').nth(max(wanted))).to_be_visible(timeout=WAIT)
        for n in wanted:  # a grid draws its header cells after it is shown: slowly on a busy machine
            expect(page.locator('[data-testid="stDataFrame"]').nth(n).locator("th").first).to_be_attached(timeout=WAIT)
    page.wait_for_timeout(1_500)  # the grids draw after their data arrives
    problems += [f"/{path}: metric text cut: {t!r}" for t in page.evaluate(_MEASURE)]
    tables = page.evaluate(_TABLES, FIXED)
    for n, columns in wanted.items():
        missing = set(columns) - set(tables[n]["heads"])
        if missing:
            problems.append(f"/{path}: table {n} does not show {sorted(missing)} (drawn: {tables[n]['heads']})")
    problems += [f"/{path}: {w}" for t in tables for w in t["wide"]]
    # The whole page for the record: Streamlit scrolls inside its own container, so the window grows to it.
    tall = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 800")
    page.set_viewport_size({"width": width, "height": min(max(800, int(tall) + 40), 8000)})
    page.wait_for_timeout(1_500)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"laptop-{path.split('?')[0] or 'overview'}-{width}.png"))
    return problems
