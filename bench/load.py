"""Eight people at once: concurrent headless chromium sessions against one dashboard server, while the nightly job
runs on the same database.

    python bench/load.py --db PATH [--sessions 8] [--rounds 1] [--think 0] [--seed 1] [--typed] [--no-nightly]
                         [--nice-browsers] [--browser shell|full] [--animations] [--keep] [--open-only PAGE]

Each session works as a person does. It opens the dashboard (an address typed in: the browser starts Streamlit's
front end, timed as "first open"), signs in under its own name (``load-1`` ...), then moves within that session: the
sidebar's link to the failure list, the "Entity contains" filter set to its own player (whose one item in the range
is its own), the list's row (the item panel opens), a resolution with a note, the panel's link to the player's
season, the filter cleared, and the sidebar's link to the overview. ``--rounds`` repeats the list and the overview.
A page's time runs from the click until the page's title is shown and Streamlit's run is over. ``--think`` adds a
person's reading time before every click (seeded); without it every session clicks the moment its page is done, so
all eight ask at once. ``--typed`` makes every page a typed address (a full load and a new Streamlit session each),
as the first version of this bench did. The nightly job covers the latest ``--nightly-days`` days.

Printed: p50, p95 and the slowest time per page over every session and round, as figures and as ratios against the
bare page (the Activity page for a signed-out visitor, typed in, measured in the same run); the errors; the CPU the
server and the browsers used; the server's peak memory; and the checks:

* no lost and no doubled write: each session's item has exactly one event by that session's name, and nothing
  else was changed under those names (an item the nightly job's auto-resolve settled first has none: the session's
  dialog said there was nothing to change, and the item must be settled);
* no session sees another's state: after every session signed in and resolved, each moves to another page and
  still acts under its own name.

``--open-only overview`` (or ``activity``) makes each session only open the dashboard at that page (a typed
address, timed as "first open") and leave: what the eight browsers' starts cost on this machine apart from
everything else. ``activity`` is the bare page (below): its first open is the floor any page of this dashboard, or
of any Streamlit app, has on this machine, whatever the server does.

The database is copied first (``--keep`` keeps the copy). Figures are printed, never asserted: the machines are
shared and noisy. Needs Debian's chromium headless shell (``make load-browser``; ``--browser full``: the full
chromium of ``make browser``) and Playwright from requirements-dev.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.async_api import Page, async_playwright  # noqa: E402

from lib.model import SORTS, Filters, ItemKey  # noqa: E402
from lib.model import Page as ListPage  # noqa: E402
from lib.store import DuckDBStore  # noqa: E402
from lib.store import queries as q  # noqa: E402
from lib.store.duckdb_store import release_idle  # noqa: E402
from tests.servers import free_port, wait_until_answering  # noqa: E402

#: ms: every wait, on a machine eight browsers share with the server and the nightly job
TIMEOUT = int(os.environ.get("LOAD_TIMEOUT_MS", "180000"))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


#: ms between checks of the run state: Playwright's default checks on every animation frame, which in eight browsers
#: at once was CPU taken from the server and the pages being measured.
POLL_MS = 50
_STATE = "document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state')"


#: Every element drawn: Streamlit's front end loads the code of most elements (metrics, tables, charts, inputs) the
#: first time a page shows one, with a skeleton in its place meanwhile, and a Plotly chart is drawn once its 4.7 MB
#: of code has run. Until stop 53 the bench stopped at the run's end: on a first open the page was then a title over
#: skeletons, its elements and charts drawn 1.5-1.9 s later on an idle machine.
_DRAWN = (
    "!document.querySelector('[data-testid=\"stSkeleton\"]') && [...document.querySelectorAll("
    "'[data-testid=\"stPlotlyChart\"]')].every(e => e.querySelector('.main-svg'))"
)


async def settled(page: Page) -> None:
    """Until Streamlit's run is over (its front end marks the app root with its run state) and every element it sent
    is drawn (``_DRAWN``). Called once the action's own effect is on screen (the new page's title, the filter's
    description, the item's panel): that run has begun then, so this waits for exactly it. Streamlit's status widget
    is no signal: a run shorter than its delay never shows it, and waiting for it added up to a second to every
    page."""
    await page.wait_for_function(f"() => {_STATE} === 'notRunning' && {_DRAWN}", polling=POLL_MS, timeout=TIMEOUT)


#: Each person's own computer draws their pages; here eight browsers share two cores with the server and the job. Their
#: animations (Streamlit's running indicator, the skeletons of elements still to come) were drawn sixty times a second
#: in every browser while it waited for the server, CPU taken from the server and from the pages being measured. So
#: the browsers ask for reduced motion and drop CSS animations and transitions (``--animations`` keeps them).
_STILL = """
document.addEventListener('DOMContentLoaded', () => {
  const style = document.createElement('style');
  style.textContent = '*, *::before, *::after { animation: none !important; transition: none !important; }';
  document.head.appendChild(style);
});
"""


async def person(browser, animations: bool = False):  # type: ignore[no-untyped-def]
    """A browser context as one person's: a 1280x800 window, and still unless ``animations``."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800},
                                        reduced_motion="no-preference" if animations else "reduce")  # fmt: skip
    if not animations:
        await context.add_init_script(_STILL)
    return context


async def timed_goto(page: Page, url: str, title: str) -> float:
    started = time.perf_counter()
    await page.goto(url, timeout=TIMEOUT)
    await page.get_by_role("heading", name=title).first.wait_for(timeout=TIMEOUT)
    await settled(page)
    return time.perf_counter() - started


async def acting_as(page: Page) -> str:
    text = await page.locator('[data-testid="stSidebar"]').get_by_text("Acting as").first.inner_text(timeout=TIMEOUT)
    return " ".join(text.split())


async def think(rng: random.Random, seconds: float) -> None:
    """A person reading the page before the next click: uniform between half and one and a half times ``seconds``."""
    if seconds > 0:
        await asyncio.sleep(rng.uniform(0.5, 1.5) * seconds)


async def timed_click(page: Page, target, title: str) -> float:
    """From a click (a link of the sidebar or of a page: Streamlit's front end moves without reloading) until the
    page's title is shown and Streamlit's run is over."""
    started = time.perf_counter()
    await target.click(timeout=TIMEOUT)
    await page.get_by_role("heading", name=title).first.wait_for(timeout=TIMEOUT)
    await settled(page)
    return time.perf_counter() - started


async def sign_in(page: Page, name: str) -> None:
    field = page.locator('[data-testid="stSidebar"]').get_by_label("Your name, for the audit trail")
    await field.fill(name, timeout=TIMEOUT)
    await field.press("Enter")
    await page.locator('[data-testid="stSidebar"]').get_by_text(name, exact=True).first.wait_for(timeout=TIMEOUT)
    await settled(page)


async def _close_dialog(page: Page, dialog) -> None:  # type: ignore[no-untyped-def]
    if await page.locator(".st-key-resolve_close").count():
        # (The dialog's own corner button is named "Close" too: the session's is the dialog's body's.)
        await page.locator(".st-key-resolve_close").get_by_role("button").click(timeout=TIMEOUT)
    else:
        await page.keyboard.press("Escape")
    await dialog.wait_for(state="detached", timeout=TIMEOUT)
    await settled(page)


async def resolve_open_item(page: Page, n: int, times: dict) -> bool:
    """Resolve the item whose panel is open, with a note. Timed as the person's two waits: from the click on Resolve
    until the dialog is drawn and its run over, and from the click on Confirm until the page reports the write and its
    run is over; the typing of the note between them is the person's (``resolution`` is the sum, the parts are
    printed too). The nightly job covers the same days and may settle the item first (its auto-resolve): before the
    dialog opens (it then says there is nothing to change), or while it is open (the confirm is refused, or the
    confirm's run finds nothing left to change). The session then closes the dialog, untimed. Returns whether the
    session resolved the item."""
    started = time.perf_counter()
    detail = page.locator(".st-key-failures_detail")
    await detail.get_by_role("button", name="Resolve").click(timeout=TIMEOUT)
    dialog = page.get_by_role("dialog")
    note = dialog.get_by_label("Note (required): why?")
    nothing = dialog.get_by_text("Nothing to change")
    await note.or_(nothing).first.wait_for(timeout=TIMEOUT)
    if await nothing.count():
        await _close_dialog(page, dialog)
        return False
    await settled(page)
    opening = time.perf_counter() - started
    await note.fill(f"load test, session {n + 1}", timeout=TIMEOUT)
    started = time.perf_counter()
    await dialog.get_by_role("button", name="Confirm: RESOLVED").click(timeout=TIMEOUT)
    # The dialog's buttons run it as a fragment, which need not mark the app's run state: what shows the write is the
    # page's report of it, then the run that drew it over.
    done = page.get_by_text("1 item marked RESOLVED")
    refused = dialog.get_by_text("changed status since you opened this")
    await done.or_(nothing).or_(refused).first.wait_for(timeout=TIMEOUT)
    if not await done.count():
        await _close_dialog(page, dialog)
        return False
    await dialog.wait_for(state="detached", timeout=TIMEOUT)
    await settled(page)
    confirming = time.perf_counter() - started
    times["resolution"].append(opening + confirming)
    times[" its dialog"].append(opening)
    times[" its confirm"].append(confirming)
    return True


async def session(
    n: int,
    browser,
    url: str,
    plan: dict,
    args: argparse.Namespace,
    times: dict,
    errors: list,
    settled_first: list[int],
    together: asyncio.Barrier,
) -> str:
    """One person: opens the dashboard (a typed address: the browser starts Streamlit's front end), signs in, then
    works within that session as people do: the sidebar's links, the filter, a row of the list, the item's buttons
    and its link to the player. With ``--typed``, every page is a typed address instead (a full load each)."""
    name = f"load-{n + 1}"
    rng = random.Random(args.seed * 1000 + n)
    context = await person(browser, args.animations)
    page = await context.new_page()
    span = f"from={plan['from']}&to={plan['to']}"
    nav = page.locator('[data-testid="stSidebarNav"]')
    seen = ""
    step = ["arriving"]  # what the session was doing, for the error it may meet
    try:
        await think(rng, args.think)  # people do not all arrive in the same instant
        if args.open_only:
            step[0] = "first open"
            page_path, title = OPEN_ONLY[args.open_only]
            times["first open"].append(await timed_goto(page, f"{url}{page_path}?{span}", title))
            return ""
        if args.typed:
            if not await typed_session(n, page, url, plan, args, times, rng, span):
                settled_first.append(n)
        else:
            step[0] = "first open"
            times["first open"].append(await timed_goto(page, f"{url}/?{span}", "Failure overview"))
            step[0] = "signing in"
            await sign_in(page, name)
            for round_ in range(args.rounds):
                await think(rng, args.think)
                step[0] = "failure list"
                times["failure list"].append(await timed_click(page, nav.get_by_text("Failure list", exact=True),
                                                               "Failure list"))  # fmt: skip
                await think(rng, args.think)
                if round_ == 0:  # this session's own item: the only one its entity filter matches
                    step[0] = "filter"
                    entity = page.locator('[data-testid="stSidebar"]').get_by_label("Entity contains")
                    await entity.fill(plan["entities"][n], timeout=TIMEOUT)
                    started = time.perf_counter()
                    await entity.press("Enter")
                    await page.get_by_text(f"entity contains “{plan['entities'][n]}”").first.wait_for(timeout=TIMEOUT)
                    await settled(page)
                    times["filter"].append(time.perf_counter() - started)
                    await think(rng, args.think)
                    step[0] = "item panel"
                    grid = page.locator('[data-testid="stDataFrame"]').first
                    await grid.wait_for(timeout=TIMEOUT)
                    box = await grid.bounding_box(timeout=TIMEOUT)
                    assert box is not None
                    started = time.perf_counter()
                    await page.mouse.click(box["x"] + 12, box["y"] + 38 + 17)  # the first (only) row's box
                    await page.locator(".st-key-failures_detail").get_by_role("button", name="Resolve").wait_for(
                        timeout=TIMEOUT)  # fmt: skip
                    await settled(page)
                    times["item panel"].append(time.perf_counter() - started)
                    await think(rng, args.think)
                    step[0] = "resolution"
                    if not await resolve_open_item(page, n, times):
                        settled_first.append(n)
                    await think(rng, args.think)
                    step[0] = "player"
                    link = page.get_by_role("link", name=f"Open {plan['entities'][n]}'s season")
                    times["player"].append(await timed_click(page, link, "Player"))
                    await think(rng, args.think)
                    step[0] = "filter cleared"
                    await entity.fill("", timeout=TIMEOUT)  # the filter off again: the whole team's view
                    started = time.perf_counter()
                    await entity.press("Enter")
                    await page.get_by_text(f"entity contains “{plan['entities'][n]}”").first.wait_for(
                        state="detached", timeout=TIMEOUT)  # fmt: skip
                    await settled(page)
                    times["filter"].append(time.perf_counter() - started)
                await think(rng, args.think)
                step[0] = "overview"
                times["overview"].append(await timed_click(page, nav.get_by_text("Overview", exact=True),
                                                           "Failure overview"))  # fmt: skip
        # Once every session has signed in under its name and resolved, each moves to another page within its own
        # session (the sidebar's link) and must still act under its own name, not the last one given.
        step[0] = "waiting for the others"
        await asyncio.wait_for(together.wait(), timeout=TIMEOUT / 1000)
        step[0] = "Settling, still under its own name"
        await nav.get_by_text("Settling", exact=True).click(timeout=TIMEOUT)
        await page.get_by_role("heading", name="Settling").first.wait_for(timeout=TIMEOUT)
        await settled(page)
        seen = await acting_as(page)
    except Exception as exc:  # reported, never hidden: one session's failure must not stop the others
        try:
            state = await page.evaluate(f"() => [{_STATE}, window.__runs, location.pathname]")
        except Exception:  # the page itself may be gone
            state = "unknown"
        errors.append(f"session {n + 1}, {step[0]} (run state {state}): {type(exc).__name__}: "
                      f"{str(exc).splitlines()[0][:200]}")  # fmt: skip
        await together.abort()
    finally:
        await context.close()
    return seen


async def typed_session(
    n: int, page: Page, url: str, plan: dict, args: argparse.Namespace, times: dict, rng: random.Random, span: str
) -> bool:
    """Every page a typed address: a new Streamlit session and a full load of its front end each time. Returns whether
    the session resolved its item (``resolve_open_item``)."""
    for _ in range(args.rounds):
        times["overview"].append(await timed_goto(page, f"{url}/?{span}", "Failure overview"))
        await think(rng, args.think)
        times["failure list"].append(await timed_goto(page, f"{url}/failures?{span}", "Failure list"))
        await think(rng, args.think)
        player = quote(plan["entities"][n], safe="")
        times["player"].append(await timed_goto(page, f"{url}/player?player={player}&{span}", "Player"))
        await think(rng, args.think)
    key = quote(plan["keys"][n], safe="")
    times["item panel"].append(await timed_goto(page, f"{url}/failures?item={key}&{span}", "Failure list"))
    await sign_in(page, f"load-{n + 1}")  # each address typed is a new Streamlit session: say who you are
    await think(rng, args.think)
    return await resolve_open_item(page, n, times)


async def bare_page(browser, url: str, repeat: int, animations: bool) -> float:
    """The baseline: an empty Streamlit page (the health endpoint's page shell and one run of a script that only
    writes a title) is not available, so: the dashboard's Activity page for a signed-out visitor, which reads
    nothing but the audit trail's first page."""
    context = await person(browser, animations)
    page = await context.new_page()
    times = [await timed_goto(page, f"{url}/activity", "Activity") for _ in range(repeat)]
    await context.close()
    return statistics.median(times)


def plan_for(store: DuckDBStore, sessions: int) -> dict:
    """Each session's item in the latest 30 days: a player of its own (no other entity's name contains his), and
    the first row the failure list shows for him under its default sort with "Entity contains" set to his name,
    when that item is unresolved."""
    _, last, _ = store.date_bounds()
    assert last is not None, "the database has no failure rows"
    first = last - dt.timedelta(days=29)
    view = Filters(date_from=first, date_to=last)  # the sidebar's defaults over that range
    players = store.query(
        q.relation(store, view) + "SELECT entity_id FROM filtered WHERE entity_type = 'PLAYER' GROUP BY entity_id "
        "ORDER BY entity_id LIMIT 500",
        q.params_of(view),
    )
    keys, entities = [], []
    for entity in players["entity_id"]:
        mine = view.with_(entity=str(entity))
        if q.count_items(store, mine) != q.count_items(store, view.with_(entity_exact=str(entity))):
            continue  # "contains" also finds another entity
        top = q.list_items(store, mine, ListPage(1, 1, SORTS[0]))
        if len(top) and top["status"].iloc[0] == "UNRESOLVED":
            keys.append(str(top["key"].iloc[0]))
            entities.append(str(entity))
        if len(keys) == sessions:
            break
    assert len(keys) == sessions, "not enough players whose first listed item is unresolved, one per session"
    return {"from": first, "to": last, "keys": keys, "entities": entities}


def check_writes(store: DuckDBStore, plan: dict, sessions: int, settled_first: list[int]) -> list[str]:
    """Each session's item has exactly one RESOLVED event by that session, on that item; or, where the nightly job
    settled the item before the session confirmed (``settled_first``), none by the session and the item settled."""
    events = store.query(
        "SELECT actor, source_table, processor_name, item_date, entity_id, to_status "
        "FROM nba_processing.failure_resolutions WHERE STARTS_WITH(actor, 'load-') AND item_date BETWEEN @a AND @b",
        {"a": plan["from"], "b": plan["to"]},
    )
    problems = []
    for n in range(sessions):
        mine = events[events["actor"] == f"load-{n + 1}"]
        want = ItemKey.parse(plan["keys"][n])
        if n in settled_first:
            item = q.get_item(store, want)
            status = None if item is None else item["status"]
            if len(mine) or status not in ("RESOLVED", "PERMANENT"):
                problems.append(f"load-{n + 1} found its item settled by another, but recorded {len(mine)} event(s) "
                                f"and the item is {status}")  # fmt: skip
            continue
        if len(mine) != 1 or mine["to_status"].iloc[0] != "RESOLVED":
            problems.append(f"load-{n + 1} recorded {len(mine)} event(s), not one RESOLVED")
            continue
        got = mine.iloc[0]
        if (got["source_table"], got["processor_name"], got["item_date"], got["entity_id"]) != (
            want.source_table, want.processor_name, want.item_date, want.entity_id):  # fmt: skip
            problems.append(f"load-{n + 1} changed another item than its own {plan['keys'][n]}")
    return problems


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory of a process and its children (VmHWM), in MB."""
    total = 0
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                     text=True).stdout.split()]  # fmt: skip
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


#: ``--open-only``: the page each session opens, and its title.
OPEN_ONLY = {"overview": ("/", "Failure overview"), "activity": ("/activity", "Activity")}


#: The browser builds the bench can drive, both Debian's: the headless shell (Chromium's own build for automation,
#: which Playwright also drives by default when it runs headless: no browser window's machinery) and the full browser.
BROWSERS = {"shell": ("chromium-headless-shell",), "full": ("chromium", "chromium-browser")}


def chromium(work: Path, nice: bool, build: str) -> str:
    """Debian's chromium, as its headless shell (``build="shell"``, the default: eight people's browsers share this
    machine's two cores with the server, and the shell draws the same pages with a quarter less CPU) or the full
    browser; with ``nice``, started at the lowest priority, so that on a machine that hosts both the browsers and the
    server, the server is served first (as when the people are on machines of their own)."""
    path = next((found for name in BROWSERS[build] if (found := shutil.which(name))), None)
    if not path:
        raise SystemExit(f"Needs Debian's {BROWSERS[build][0]}: make load-browser (or --browser full: make browser)")
    if not nice:
        return path
    wrapper = work / "chromium-nice"
    wrapper.write_text(f'#!/bin/sh\nexec nice -n 19 {path} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user and system, with reaped children) the processes have used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return total / tick


def descendants(pid: int) -> list[int]:
    """The processes started, directly or not, by ``pid`` (this bench's browsers, never another's)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def browser_pids(server: int) -> list[int]:
    """This bench's chromium processes (the browser, its zygotes and renderers: renderers that end are counted in
    the process that reaps them)."""
    mine = set(descendants(os.getpid())) - {server, *descendants(server)}
    out = []
    for p in mine:
        try:
            if "chrom" in Path(f"/proc/{p}/comm").read_text():
                out.append(p)
        except OSError:
            pass
    return out


_RUN = re.compile(r"run page=(\S+) seconds=([\d.]+) file_wait=([\d.]+|-)")


def server_runs(log: str) -> dict[str, tuple[list[float], list[float]]]:
    """Per page: the seconds of each run the server logged (ui/runlog.py), and each run's wait to take the file."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for page, seconds, waited in _RUN.findall(log):
        spans, waits = out.setdefault(page, ([], []))
        spans.append(float(seconds))
        if waited != "-":
            waits.append(float(waited))
    return out


def quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]  # nearest rank


async def main_async(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="triage-load-"))
    db = work / "load.duckdb"
    shutil.copy(args.db, db)
    store = DuckDBStore(db)
    store.init_schema()
    plan = plan_for(store, args.sessions)
    release_idle(db)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(work / "streamlit.log", "w")  # noqa: SIM115
    env = {**os.environ, "TRIAGE_DB": str(db), "TRIAGE_LOG_RUNS": "1"}  # every run's time in the log (ui/runlog.py)
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    nightly = None
    try:
        wait_until_answering(f"{url}/_stcore/health", server, log.name, timeout=120)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium(work, args.nice_browsers, args.browser),
                                               args=FLAGS)  # fmt: skip
            # The first visit starts the server's caches and the index's check: measured apart, as "first visit".
            first = await person(browser, args.animations)
            first_page = await first.new_page()
            first_visit = await timed_goto(first_page, f"{url}/?from={plan['from']}&to={plan['to']}",
                                           "Failure overview")  # fmt: skip
            await first.close()
            base = await bare_page(browser, url, 3, args.animations)
            if not args.no_nightly:
                nightly = subprocess.Popen(
                    [sys.executable, "-m", "lib", "nightly", "--db", str(db), "--actor", "system", "--since",
                     str(plan["from"] - dt.timedelta(days=args.nightly_days - 30))],
                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "nightly.log", "w"),  # noqa: SIM115
                )  # fmt: skip
            times: dict[str, list[float]] = {k: [] for k in ("first open", "overview", "failure list", "filter",
                                                             "item panel", "resolution", " its dialog",
                                                             " its confirm", "player")}  # fmt: skip
            errors: list[str] = []
            settled_first: list[int] = []  # sessions whose item the nightly job settled before they confirmed
            log.flush()
            log_from = (work / "streamlit.log").stat().st_size  # the sessions' runs are logged after this
            started = time.perf_counter()
            server_cpu, browsers = cpu_seconds([server.pid]), browser_pids(server.pid)
            browser_cpu = cpu_seconds(browsers)
            together = asyncio.Barrier(args.sessions)
            seen = await asyncio.gather(*(session(n, browser, url, plan, args, times, errors, settled_first, together)
                                          for n in range(args.sessions)))  # fmt: skip
            wall = time.perf_counter() - started
            server_cpu = cpu_seconds([server.pid]) - server_cpu
            browser_cpu = cpu_seconds(browsers) - browser_cpu  # the same processes: renderers that ended, reaped
            await browser.close()
        nightly_rc = nightly.wait(timeout=3600) if nightly else None
        peak = peak_rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    release_idle(db)
    # (Sessions that only opened a page wrote nothing: there is nothing to check.)
    problems = [] if args.open_only else check_writes(DuckDBStore(db), plan, args.sessions, settled_first)
    for n, text in enumerate(seen):
        if text and f"load-{n + 1}" not in text.split():
            problems.append(f"session {n + 1} shows {text!r}, not its own name")
    rows = sum(int(n) for n in [store.date_bounds()[2]])
    print(f"{args.sessions} sessions x {args.rounds} round(s) on {rows:,} failure rows ({args.db}), "
          f"latest 30 days {plan['from']} to {plan['to']}; browsers: {BROWSERS[args.browser][0]}; "
          "nightly job alongside: "
          f"{'no' if nightly is None else f'yes (exit {nightly_rc})'}")  # fmt: skip
    print(
        f"first visit (cold caches) {first_visit:.2f} s; bare page (Activity, signed out) {base:.2f} s; "
        f"all sessions done in {wall:.1f} s; server peak memory {peak:,.0f} MB"
    )
    cores = os.cpu_count() or 1
    print(f"CPU while the sessions ran ({cores} cores, {wall * cores:.0f} core-seconds): server {server_cpu:.0f} s, "
          f"the browsers {browser_cpu:.0f} s")  # fmt: skip
    print(f"{'page':<14}{'n':>4}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'p50 x':>8}{'p95 x':>8}")
    for page, values in times.items():
        if values:
            p50, p95 = statistics.median(values), quantile(values, 0.95)
            print(
                f"{page:<14}{len(values):>4}{p50:>8.2f}{p95:>8.2f}{max(values):>8.2f}{p50 / base:>8.1f}"
                f"{p95 / base:>8.1f}"
            )
    runs = server_runs((work / "streamlit.log").read_bytes()[log_from:].decode(errors="replace"))
    if runs:
        print("the server's share: each run of a page's script while the sessions ran (its log), and its wait to take"
              " the file")  # fmt: skip
        print(f"{'run of':<14}{'n':>4}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'wait p50':>10}{'wait p95':>10}")
        for page, (spans, waits) in sorted(runs.items()):
            print(
                f"{page:<14}{len(spans):>4}{statistics.median(spans):>8.2f}{quantile(spans, 0.95):>8.2f}"
                f"{max(spans):>8.2f}{statistics.median(waits or [0]):>10.2f}{quantile(waits or [0], 0.95):>10.2f}"
            )
    if settled_first:
        print("settled by the nightly job before their session confirmed (the dialog said so, the session closed it): "
              + ", ".join(f"load-{n + 1}" for n in sorted(settled_first)))  # fmt: skip
    print(f"errors: {len(errors)}")
    for e in errors:
        print("  " + e)
    done = "none: each session only opened a page" if args.open_only else "every write once, each session its own name"
    print(f"checks: {done if not problems else ''}")
    for p in problems:
        print("  PROBLEM: " + p)
    if args.keep or errors or problems:  # what went wrong stays for a look: the server's and the job's logs
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if errors or problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--db", required=True, help="a DuckDB file with data (e.g. from `python -m lib demo --scale 10M`)"
    )
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="times each session goes through the pages")
    parser.add_argument("--no-nightly", action="store_true", help="without the nightly job alongside")
    parser.add_argument("--nice-browsers", action="store_true", help="the browsers at the lowest CPU priority")
    parser.add_argument("--browser", choices=sorted(BROWSERS), default="shell",
                        help="Debian's chromium headless shell (default) or the full browser")  # fmt: skip
    parser.add_argument(
        "--nightly-days",
        type=int,
        default=30,
        help="the nightly job covers the latest this many days (its --since), as scheduled in production",
    )
    parser.add_argument("--think", type=float, default=0.0,
                        help="seconds a person reads a page before the next click (uniform, half to one and a half"
                        " times this; 0: every click at once)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="the think times' random seed")
    parser.add_argument("--typed", action="store_true", help="every page a typed address (a full load each)")
    parser.add_argument(
        "--animations", action="store_true", help="keep the pages' animations (each browser draws them while it waits)"
    )
    parser.add_argument(
        "--open-only",
        choices=sorted(OPEN_ONLY),
        help="each session only opens the dashboard at this page (activity: the bare page) and leaves",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the copied database and the logs (kept anyway after an error)"
    )
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
